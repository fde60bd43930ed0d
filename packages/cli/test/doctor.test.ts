import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { HOST_CHECK_IDS } from "@sysi/core/host";
import { makeSysiHome, RUN_JS, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());

interface Check {
  id: string;
  ok: boolean;
  detail: string;
  enables: string[];
  rulesOut: string[];
}

function procStatusField(name: string): string | undefined {
  return readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`))
    ?.split(":")[1]
    ?.trim();
}

describe("sysi doctor", () => {
  it("--json reports every check with a boolean ok and a one-line detail", async () => {
    const r = await sysi(["doctor", "--json"], home.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout) as { checks: Check[]; facts: { checks: Record<string, boolean> } };
    expect(report.checks.map((c) => c.id)).toEqual([...HOST_CHECK_IDS]);
    for (const c of report.checks) {
      expect(typeof c.ok).toBe("boolean");
      expect(c.detail.length).toBeGreaterThan(0);
      expect(c.detail).not.toContain("\n");
      expect(Array.isArray(c.enables) && Array.isArray(c.rulesOut)).toBe(true);
    }
    const byId = new Map(report.checks.map((c) => [c.id, c]));
    // Outside oracles: the kernel release, the sysctl file, cc itself.
    expect(byId.get("kernel")?.detail).toContain(release());
    const min = readFileSync("/proc/sys/vm/mmap_min_addr", "utf8").trim();
    expect(byId.get("mmapMinAddr")?.detail).toContain(`vm.mmap_min_addr=${min}`);
    const cc = Bun.spawnSync(["sh", "-c", "cc --version 2>/dev/null | head -1"]).stdout.toString().trim();
    expect(byId.get("cc")?.ok).toBe(cc !== "");
    if (cc !== "") expect(byId.get("cc")?.detail).toContain(cc);
    // page 0 is mappable exactly when mmap_min_addr is 0 or we hold CAP_SYS_RAWIO (bit 17), absent seccomp.
    if (procStatusField("Seccomp") === "0") {
      const rawio = ((BigInt(`0x${procStatusField("CapEff") ?? "0"}`) >> 17n) & 1n) === 1n;
      expect(byId.get("page0")?.ok).toBe(min === "0" || rawio);
    }
    for (const [id, ok] of Object.entries(report.facts.checks)) expect(byId.get(id)?.ok).toBe(ok);
  });

  it("prints ✓/✗ per check and exits 0", async () => {
    const r = await sysi(["doctor"], home.env);
    expect(r.code).toBe(0);
    for (const id of HOST_CHECK_IDS) expect(r.stdout).toMatch(new RegExp(`^[✓✗] ${id}\\s`, "m"));
    expect(r.stdout).toContain("default chain:");
  });

  it("takes zpoline into the default chain only where page 0 can be mapped execute-only (page0 and pkeys)", async () => {
    const r = await sysi(["doctor", "--json"], home.env);
    const report = JSON.parse(r.stdout) as {
      facts: { checks: Record<string, boolean> };
      defaultChain: string;
      defaultChainLeftOut: { name: string; missing: string[] }[];
    };
    const { page0, pkeys } = report.facts.checks;
    const chain = report.defaultChain.split(",");
    expect(chain.includes("zpoline")).toBe(page0 === true && pkeys === true);
    expect(chain[0]).toBe("punning");
    expect(chain.at(-1)).toBe("ud2");
    const left = report.defaultChainLeftOut.find((l) => l.name === "zpoline");
    if (page0 === true && pkeys !== true) {
      expect(left?.missing).toEqual(["pkeys"]);
      const text = await sysi(["doctor"], home.env);
      expect(text.stdout).toContain("zpoline left out: no protection keys");
    }
  });
});

const canDrop = process.getuid?.() === 0 && existsSync("/usr/bin/setpriv");
const minAddr = Number(readFileSync("/proc/sys/vm/mmap_min_addr", "utf8").trim());

describe("sysi doctor as an unprivileged user", () => {
  it.skipIf(!canDrop || minAddr === 0)(
    "reports page0 unavailable with the reason and still exits 0 (needs root to drop to nobody, mmap_min_addr>0)",
    () => {
      chmodSync(home.dir, 0o755);
      for (const v of Object.values(home.env)) chmodSync(v, 0o777);
      const r = Bun.spawnSync(
        [
          "setpriv",
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "--inh-caps=-all",
          process.execPath,
          RUN_JS,
        ].concat(["doctor", "--json"]),
        { env: { ...process.env, ...home.env, HOME: home.dir }, cwd: "/", stdout: "pipe", stderr: "pipe" },
      );
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
      const report = JSON.parse(r.stdout.toString()) as { checks: Check[]; defaultChain: string | null };
      const page0 = report.checks.find((c) => c.id === "page0");
      expect(page0?.ok).toBe(false);
      expect(page0?.detail).toContain("EPERM");
      expect(page0?.detail).toContain(`vm.mmap_min_addr=${minAddr}`);
      expect(page0?.detail).toContain("no CAP_SYS_RAWIO");
      expect(page0?.rulesOut).toContain("zpoline");
      expect(report.defaultChain ?? "").not.toContain("zpoline");
    },
  );
});
