import { describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { HOST_CHECK_IDS, probeHost } from "./index.ts";
import type { ChildProbe } from "./types.ts";

const isRoot = process.getuid?.() === 0;
const hasSetpriv = existsSync("/usr/bin/setpriv");
const mmapMinAddr = Number(readFileSync("/proc/sys/vm/mmap_min_addr", "utf8").trim());

/** Run probe-child.ts as `nobody` with no capabilities; its JSON lines by id. */
function childAsNobody(): Map<string, ChildProbe> {
  const script = fileURLToPath(new URL("./probe-child.ts", import.meta.url));
  const r = Bun.spawnSync(
    ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", process.execPath, script],
    { stdout: "pipe", stderr: "pipe", cwd: "/" },
  );
  expect(r.exitCode).toBe(0);
  const out = new Map<string, ChildProbe>();
  for (const line of r.stdout
    .toString()
    .split("\n")
    .filter((l) => l !== "")) {
    const p = JSON.parse(line) as ChildProbe;
    out.set(p.id, p);
  }
  return out;
}

// Host-dependent expectations, branched on below. The oracle for pkeys is the kernel's own view
// of the CPU: /proc/cpuinfo's pku (CPU) and ospke (OS enabled it) flags.
const cpuFlags = new Set(
  (/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").split(/\s+/).filter(Boolean),
);
const ospke = cpuFlags.has("ospke");
const here = await probeHost();
const pkeysHere = here.check("pkeys")?.ok === true;

describe("probeHost", () => {
  it("reports every check once, in order, with one-line details", async () => {
    const report = await probeHost();
    expect(report.checks.map((c) => c.id)).toEqual([...HOST_CHECK_IDS]);
    for (const c of report.checks) {
      expect(typeof c.ok).toBe("boolean");
      expect(c.detail).not.toContain("\n");
      expect(c.detail.length).toBeGreaterThan(0);
    }
    const facts = report.facts().checks;
    for (const [id, ok] of Object.entries(facts)) expect(report.check(id as never)?.ok).toBe(ok);
    expect(Object.keys(facts).sort()).toEqual(["cc", "modify_ldt", "page0", "pkeys", "ptrace", "seccomp", "sud"]);
  });

  it("leaves the calling process clean (nothing mapped at address 0)", async () => {
    const report = await probeHost();
    expect(report.checks.length).toBe(HOST_CHECK_IDS.length);
    const maps = readFileSync("/proc/self/maps", "utf8");
    expect(maps).not.toMatch(/^0+-/m);
  });

  it.skipIf(!isRoot || !hasSetpriv || mmapMinAddr === 0)(
    "finds page 0 closed to an unprivileged process with the kernel's EPERM (needs root, setpriv, mmap_min_addr>0)",
    () => {
      const probes = childAsNobody();
      expect(probes.get("page0")).toMatchObject({ ok: false, errno: -1, failed: "mmap" });
      // The other probes need no privilege.
      expect(probes.get("seccomp")?.ok).toBe(true);
    },
  );

  it.skipIf(!isRoot || mmapMinAddr === 0)(
    "maps page 0 as root (needs root and mmap_min_addr>0 to be meaningful)",
    async () => {
      const report = await probeHost();
      if (report.check("seccomp")?.detail.startsWith("no seccomp")) expect(report.check("page0")?.ok).toBe(true);
      expect(report.check("page0")?.detail).toContain("NULL reads no longer fault");
    },
  );

  it(`finds pkeys ${ospke ? "working (cpuinfo has ospke)" : "missing, with the CPU's reason (cpuinfo has no ospke)"}`, async () => {
    const pkeys = (await probeHost()).check("pkeys");
    if (ospke) {
      // pkey_alloc can still be refused by a seccomp filter; without one it works
      if (readFileSync("/proc/self/status", "utf8").includes("Seccomp:\t0")) expect(pkeys?.ok).toBe(true);
    } else {
      expect(pkeys?.ok).toBe(false);
      expect(pkeys?.detail).toContain(cpuFlags.has("pku") ? "the OS did not enable it" : "CPU has no pku");
    }
  });

  it(`says what a mapped page 0 means for NULL reads here (${pkeysHere ? "pkeys: execute-only, they fault" : "no pkeys: readable, they do not fault"})`, () => {
    const page0 = here.check("page0");
    if (page0?.ok !== true) expect(page0?.detail).not.toContain("NULL reads");
    else if (pkeysHere)
      expect(page0.detail).toContain("NULL reads no longer fault unless a pkey makes it execute-only");
    else expect(page0.detail).toContain("NULL reads no longer fault (no pkeys here to make it execute-only)");
  });
});
