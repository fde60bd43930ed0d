/**
 * Real programs under punning (alone, and as `punning,ud2`), against their native runs (the
 * oracle): same exit status and output, and the trace hook shows the calls came through punning.
 * Runs as a plain process: nothing here needs root or page 0.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "@sysi/core/elf";
import { planModule } from "@sysi/core/plan";
import { scanElf } from "@sysi/core/scan";
import { isRefusal } from "@sysi/core/strategy";
import { trampolineSpans } from "../src/stats.ts";
import {
  buildNative,
  LIBSYSI,
  modulesOf,
  PUNNING_SO,
  punningMember,
  runNative,
  runUnder,
  ud2Member,
  which,
  writePlans,
} from "./harness.ts";

const NATIVE_OK =
  buildNative() &&
  spawnSync("make", ["-s", "-C", join(import.meta.dir, "..", "native"), "build/squat.so"]).status === 0;
const UD2 = await ud2Member();
const PY = ["/usr/bin/python3", "/bin/python3"].find((p) => existsSync(p)) ?? null;
const PERL = which("perl");

function byStrategy(trace: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of trace.split("\n")) {
    if (line === "") continue;
    const j = JSON.parse(line) as { strategy: string };
    out[j.strategy] = (out[j.strategy] ?? 0) + 1;
  }
  return out;
}

const PY_THREADS = `
import threading, subprocess, os
res = [0] * 8
def work(i):
    with open("/proc/self/stat") as f: f.read()
    res[i] = sum(range(i * 1000))
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(res)
print(subprocess.run(["echo", "spawned"], capture_output=True, text=True).stdout.strip())
pid = os.fork()
if pid == 0:
    os._exit(7)
print("child", os.waitpid(pid, 0)[1] >> 8)
`;

const PERL_FORK = `
my @kids;
for my $i (1..3) { my $p = fork(); if ($p == 0) { exit $i } push @kids, $p }
my $sum = 0; for my $p (@kids) { waitpid($p, 0); $sum += $? >> 8 }
my $out = \`echo backtick\`; print "sum $sum $out";
`;

const cases: { name: string; argv: string[]; skip: boolean }[] = [
  { name: "ls -la /usr/lib", argv: ["ls", "-la", "/usr/lib"], skip: false },
  { name: "python3 threads, subprocess (vfork), fork", argv: [PY ?? "python3", "-c", PY_THREADS], skip: PY === null },
  { name: "perl fork and backticks", argv: [PERL ?? "perl", "-e", PERL_FORK], skip: PERL === null },
];

describe.skipIf(!NATIVE_OK)("real programs under punning (needs cc and make)", () => {
  for (const c of cases) {
    test.skipIf(c.skip)(
      `${c.name}: same output as native, calls through punning`,
      async () => {
        const native = runNative(c.argv);
        const r = await runUnder(c.argv, [punningMember()]);
        expect(r.stderr).toBe(native.stderr);
        expect(r.status).toBe(native.status);
        expect(r.stdout).toBe(native.stdout);
        const by = byStrategy(r.trace);
        expect(by.punning ?? 0).toBeGreaterThan(10);
      },
      120_000,
    );
    test.skipIf(c.skip || UD2 === null)(
      `${c.name}: same output under punning,ud2`,
      async () => {
        const native = runNative(c.argv);
        const r = await runUnder(c.argv, [punningMember(), UD2 as NonNullable<typeof UD2>]);
        expect(r.status).toBe(native.status);
        expect(r.stdout).toBe(native.stdout);
        expect(byStrategy(r.trace).punning ?? 0).toBeGreaterThan(10);
      },
      120_000,
    );
  }

  test.skipIf(UD2 === null)(
    "taken trampoline pages make those sites fall to ud2 (punning,ud2)",
    async () => {
      // Plan libc as the harness does, and squat every virtual page its punning trampolines use
      // (a preloaded helper maps them PROT_NONE before libsysi's constructor runs).
      const libc = "/lib/x86_64-linux-gnu/libc.so.6";
      const elf = readElfFile(libc);
      const scan = await scanElf(elf);
      const plan = planModule(elf, scan, [{ strategy: punningMember().strategy, options: {} }], { checks: {} });
      const pages = new Set<number>();
      for (const ps of plan.sites) {
        const d = ps.decisions[0];
        if (ps.taken !== "punning" || d === undefined || isRefusal(d.result)) continue;
        for (const s of trampolineSpans(ps.site.vaddr, d.result)) pages.add(s.vpage * 4096);
      }
      expect(pages.size).toBeGreaterThan(0);
      const offsets = [...pages].map((p) => (p < 0 ? `-${(-p).toString(16)}` : p.toString(16))).join(",");
      const argv = ["ls", "-la", "/usr/lib"];
      const native = runNative(argv);
      const squat = join(import.meta.dir, "..", "native/build/squat.so");
      const free = await runUnder(argv, [punningMember(), UD2 as NonNullable<typeof UD2>]);
      const taken = await runUnder(argv, [punningMember(), UD2 as NonNullable<typeof UD2>], {
        preload: squat,
        env: { SQUAT_OFFSETS: offsets },
      });
      expect(taken.status).toBe(native.status);
      expect(taken.stdout).toBe(native.stdout);
      const a = byStrategy(free.trace);
      const b = byStrategy(taken.trace);
      // Without squatting libc's calls go through punning; with it, they fall to ud2.
      expect(a.punning ?? 0).toBeGreaterThan(10);
      expect(b.ud2 ?? 0).toBeGreaterThan(10);
      expect(b.punning ?? 0).toBeLessThan(a.punning ?? 0);
    },
    120_000,
  );

  /**
   * The program prints its own maps. Every trampoline page of libc must be a mapping of the memfd
   * (two virtual pages share a memfd offset exactly when the plan gives them the same physical
   * page), or, when mapped on first use (the default, native/lazy.c), still inside a PROT_NONE
   * range the runtime reserved.
   */
  async function libcPages(env: Record<string, string>) {
    const libc = realpathSync("/lib/x86_64-linux-gnu/libc.so.6");
    const r = await runUnder(["cat", "/proc/self/maps"], [punningMember()], { hook: "passthrough", env });
    expect(r.status).toBe(0);
    const maps = r.stdout.split("\n").map((l) => l.split(/\s+/));
    const libcBase = maps.find((f) => f[5] === libc && Number.parseInt(f[2] as string, 16) === 0);
    expect(libcBase).toBeDefined();
    const elf = readElfFile(libc);
    const firstLoad = Math.min(...elf.segments.filter((s) => s.type === 1).map((s) => s.vaddr));
    const bias = Number.parseInt((libcBase as string[])[0]?.split("-")[0] as string, 16) - firstLoad;
    const memfd: { start: number; end: number; off: number }[] = [];
    const reserved: { start: number; end: number }[] = [];
    for (const f of maps) {
      const [a, b] = ((f[0] as string) ?? "").split("-").map((x) => Number.parseInt(x, 16)) as [number, number];
      if ((f[5] ?? "").includes("memfd:sysi-punning"))
        memfd.push({ start: a, end: b, off: Number.parseInt(f[2] as string, 16) });
      else if (f[1] === "---p" && f[4] === "0" && (f[5] ?? "") === "") reserved.push({ start: a, end: b });
    }
    const offsetOf = (addr: number) => {
      const m = memfd.find((x) => addr >= x.start && addr < x.end);
      return m === undefined ? -1 : m.off + (addr - m.start);
    };
    const plan = planModule(elf, await scanElf(elf), [{ strategy: punningMember().strategy, options: {} }], {
      checks: {},
    });
    const physToOff = new Map<number, number>();
    const offToPhys = new Map<number, number>();
    const vpages = new Set<number>();
    let mapped = 0;
    let inReserve = 0;
    for (const ps of plan.sites) {
      const d = ps.decisions[0];
      if (ps.taken !== "punning" || d === undefined || isRefusal(d.result)) continue;
      for (const s of trampolineSpans(ps.site.vaddr, d.result)) {
        const addr = bias + s.vpage * 4096;
        if (vpages.has(addr)) continue;
        vpages.add(addr);
        const off = offsetOf(addr);
        if (off < 0) {
          expect(reserved.some((x) => addr >= x.start && addr < x.end)).toBe(true); // reserved, not yet used
          inReserve++;
          continue;
        }
        mapped++;
        expect(off % 4096).toBe(0);
        expect(physToOff.get(s.phys) ?? off).toBe(off);
        expect(offToPhys.get(off) ?? s.phys).toBe(s.phys);
        physToOff.set(s.phys, off);
        offToPhys.set(off, s.phys);
      }
    }
    return {
      pages: vpages.size,
      mapped,
      inReserve,
      phys: offToPhys.size,
      planPhys: plan.stats.reported?.punning?.["physical-pages"],
    };
  }

  test("SYSI_PUNNING_EAGER=1: every libc trampoline page is mapped onto its planned physical page (/proc/self/maps)", async () => {
    const r = await libcPages({ SYSI_PUNNING_EAGER: "1" });
    expect(r.mapped).toBe(r.pages);
    expect(r.phys).toBe(r.planPhys as number);
  }, 120_000);

  test("by default libc's trampoline pages are mapped on first use, onto their planned physical pages", async () => {
    const r = await libcPages({});
    console.log(JSON.stringify(r));
    // cat's openat/read/write/close ran through some trampolines: those pages are mapped; most are not
    expect(r.mapped).toBeGreaterThan(0);
    expect(r.inReserve).toBeGreaterThan(r.mapped);
    expect(r.mapped + r.inReserve).toBe(r.pages);
  }, 120_000);

  const SETPRIV = which("setpriv");
  test.skipIf(SETPRIV === null || process.getuid?.() !== 0)(
    "works as a non-root user (needs root to drop to nobody, setpriv)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sysi-punning-nobody-"));
      await writePlans(modulesOf("/usr/bin/ls"), [punningMember()], join(dir, "plans"));
      spawnSync("chmod", ["-R", "a+rX", dir]);
      const env = [
        `LD_PRELOAD=${LIBSYSI}`,
        `SYSI_PLAN_DIR=${join(dir, "plans")}`,
        `SYSI_RUNTIMES=${PUNNING_SO}#sysi_punning_ops`,
        "SYSI_HOOK=passthrough",
        "SYSI_DEBUG=1",
      ];
      const drop = [SETPRIV as string, "--reuid=65534", "--regid=65534", "--clear-groups", "env"];
      const r = spawnSync(drop[0] as string, [...drop.slice(1), ...env, "ls", "/usr"], { encoding: "utf8" });
      const native = spawnSync(drop[0] as string, [...drop.slice(1), "ls", "/usr"], { encoding: "utf8" });
      expect(r.status).toBe(native.status);
      expect(r.stdout).toBe(native.stdout);
      const m = /applying plan to \S*libc\.so\.6\nsysi: sites patched in this module: (\d+)/.exec(r.stderr);
      expect(Number(m?.[1] ?? 0)).toBeGreaterThan(400);
    },
    120_000,
  );
});
