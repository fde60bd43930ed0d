/**
 * `sysi run --complete` (issue 16, docs/complete.md): Syscall User Dispatch catches every system
 * call no patch reaches. Under `--complete --hook count`, per syscall name the counts equal the
 * strace oracle (packages/core/src/runtime/strace-oracle.ts: `strace -f` of the whole run, from
 * each image's start marker on, without sysi's own bracketed work), where a catch-all SIGSYS
 * frame is a runtime trap frame like ud2's SIGILL: its first call is the program's, its
 * rt_sigreturn sysi's. Calls from run-time generated code are also checked against a native
 * `strace -f -c` of the program alone (they are not the loader's, so the numbers must be equal),
 * and the summary must say they came through the catch-all.
 *
 * Lazy patching (sud-lazy.c): a site in a file-backed, read-only mapping no plan reaches
 * (fixtures/complete/lazy.c maps its code from a file itself) and one in a library whose plan
 * refused it (stub.c: outside every function, uncertain) are patched by the catch-all's first call with the chain's ud2 variant (or zpoline's `call *%rax` with SYSI_LAZY=zpoline):
 * counts = strace, the summary's "sites patched lazily", and per path the first call through
 * the catch-all and every other through the strategy (two runs of different lengths differ
 * only in the strategy's calls; with SYSI_LAZY=off only in the catch-all's).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";

const CLI = join(import.meta.dir, "../../bin/run.js");
const FIX = join(import.meta.dir, "fixtures/complete");
const dir = mkdtempSync(join(tmpdir(), "sysi-complete-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = await probeHost();
const sud = host.check("sud")?.ok === true;
const ptrace = Bun.which("strace") !== null && host.check("ptrace")?.ok !== false;
const cc = Bun.which("cc") !== null;
const why = !sud ? "no Syscall User Dispatch" : !ptrace ? "strace/ptrace unavailable" : !cc ? "no cc" : null;
/** Lazy patching asks the kernel about a site's mapping with PROCMAP_QUERY (Linux 6.11+). */
const [major = 0, minor = 0] = release().split(".").map(Number);
const lazyWhy = why ?? (major * 1000 + minor < 6011 ? "no PROCMAP_QUERY before Linux 6.11: no lazy patching" : null);
const lazySkip = lazyWhy === null || why !== null ? "" : ` (skipped: ${lazyWhy})`;

const bin = (name: string) => join(dir, name);
beforeAll(() => {
  if (why !== null) return;
  const build = (args: string[]) => {
    const r = Bun.spawnSync(["cc", "-O1", "-Wall", ...args], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  };
  for (const n of ["jit", "seccomp", "ownsud", "int80"]) build(["-o", bin(n), join(FIX, `${n}.c`)]);
  for (const n of ["forkexec", "lazy", "lazy-race"]) build(["-pthread", "-o", bin(n), join(FIX, `${n}.c`)]);
  build(["-shared", "-fPIC", "-o", bin("librawlib.so"), join(FIX, "rawlib.c")]);
  build(["-shared", "-fPIC", "-o", bin("libstub.so"), join(FIX, "stub.c")]);
});

/** File I/O and a TCP echo on 127.0.0.1, for `node -e` and `bun -e`. */
const IO = `const fs = require("fs"), net = require("net"), os = require("os"), path = require("path");
const d = fs.mkdtempSync(path.join(os.tmpdir(), "sysi-complete-io-"));
fs.writeFileSync(path.join(d, "a"), "hello".repeat(1000));
const back = fs.readFileSync(path.join(d, "a"), "utf8");
fs.rmSync(d, { recursive: true });
const srv = net.createServer((s) => s.on("data", (b) => s.end(b)));
srv.listen(0, "127.0.0.1", () => {
  const c = net.connect(srv.address().port, "127.0.0.1", () => c.write("ping"));
  c.on("data", (b) => { console.log(back.length, b.toString()); c.destroy(); srv.close(); });
});`;

/** A catch-all SIGSYS frame is a runtime trap frame, as the CPU's traps of ud2 are. */
const TRAP = /^--- SIG(ILL|TRAP|SEGV) \{si_signo=SIG\w+, si_code=(ILL_ILLOPN|SI_KERNEL)\b/;
const CATCH_ALL = /^--- SIGSYS \{si_signo=SIGSYS, si_code=SYS_USER_DISPATCH\b/;

interface Case {
  name: string;
  cmd: () => string[];
  needs?: string;
  /** Calls made only from run-time generated code or raw sites: native strace -f -c must agree. */
  native?: string[];
  /** The summary's catch-all count is at least this. */
  catchAll?: number;
  /** The summary's count of sites patched lazily is at least this. */
  lazily?: number;
  /** The program handles SIGSYS of its own (its SUD): those frames are the program's. */
  ownSigsys?: boolean;
}

const CASES: Case[] = [
  {
    name: "C program calling from fresh and rewritten pages",
    cmd: () => [bin("jit"), "500"],
    native: ["getppid", "getpid"],
    catchAll: 1500,
  },
  { name: "node -e: file and TCP I/O on 127.0.0.1", cmd: () => ["node", "-e", IO], needs: "node" },
  { name: "bun -e: file and TCP I/O on 127.0.0.1", cmd: () => ["bun", "-e", IO], needs: "bun" },
  {
    name: "python3 ctypes: a dlopened library with raw syscalls, and generated code",
    cmd: () => ["python3", join(FIX, "ctypes-raw.py"), bin("librawlib.so")],
    needs: "python3",
    native: ["getppid", "getpid"],
    catchAll: 200,
  },
  {
    name: "a shell script execs python3, which runs a subprocess",
    cmd: () => ["sh", join(FIX, "exec-chain.sh")],
    needs: "python3",
  },
  { name: "hard case: its own seccomp filter (EPERM and SIGSYS traps)", cmd: () => [bin("seccomp")], catchAll: 2 },
  { name: "hard case: Syscall User Dispatch of its own", cmd: () => [bin("ownsud")], ownSigsys: true },
  {
    name: "file-backed sites no plan patches (no plan; refused as uncertain), patched lazily",
    cmd: () => [bin("lazy"), join(dir, "lazy-code"), "300", bin("libstub.so")],
    native: ["getppid"],
    catchAll: 2,
    lazily: 2,
  },
  {
    name: "hard case: fork + exec, a thread, generated code in each",
    cmd: () => [bin("forkexec")],
    native: ["getppid"],
    catchAll: 75,
  },
];

type Counts = Record<string, { calls: number; errors: number }>;

function nativeCounts(cmd: string[]): Counts {
  const out = join(dir, "native.txt");
  const r = Bun.spawnSync(["strace", "-f", "-c", "-U", "name,calls,errors", "-o", out, ...cmd], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.exitCode).toBe(0);
  const counts: Counts = {};
  for (const line of readFileSync(out, "utf8").split("\n")) {
    const m = /^\s*(\w+)\s+(\d+)\s*(\d*)\s*$/.exec(line);
    if (m && m[1] !== "total") counts[m[1] as string] = { calls: Number(m[2]), errors: Number(m[3] || 0) };
  }
  return counts;
}

describe(`sysi run --complete --hook count = strace${why ? ` (skipped: ${why})` : ""}`, () => {
  for (const c of CASES) {
    const skip =
      why !== null ||
      (c.needs !== undefined && Bun.which(c.needs) === null) ||
      (c.lazily !== undefined && lazyWhy !== null);
    test.skipIf(skip)(c.name, () => {
      const trace = join(dir, "strace.txt");
      const out = join(dir, "counts.json");
      const argv = countUnderStraceArgv(CLI, "punning,ud2", trace, out, c.cmd());
      argv.splice(argv.indexOf("run") + 1, 0, "--complete");
      const r = Bun.spawnSync(argv, {
        cwd: dir,
        env: { ...process.env, SYSI_CACHE_DIR: cache, SYSI_MARKER: "1" },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(r.stderr.toString()).not.toContain("sysi: error");
      expect(r.exitCode).toBe(0);
      const oracle = straceOracle(readFileSync(trace, "utf8"), {
        isRuntimeSignal: (l) => TRAP.test(l) || (!c.ownSigsys && CATCH_ALL.test(l)),
      });
      const report = JSON.parse(readFileSync(out, "utf8")) as {
        syscalls: { name: string; calls: number; errors: number }[];
        strategies: Record<string, number>;
        complete: { catchAll: number; lazilyPatched: number; missed: Record<string, number> };
      };
      const ours: Counts = {};
      for (const s of report.syscalls) ours[s.name] = { calls: s.calls, errors: s.errors };
      const theirs: Counts = {};
      for (const [name, n] of Object.entries(oracle.byName)) theirs[name] = { calls: n.calls, errors: n.errors };
      expect(oracle.total).toBeGreaterThan(0);
      if (!Bun.deepEquals(ours, theirs)) {
        const kept = join(tmpdir(), `sysi-complete-mismatch-${process.pid}-${Date.now()}.strace`);
        copyFileSync(trace, kept);
        console.error(`count mismatch for ${c.name}: strace log kept in ${kept}`);
      }
      expect(ours).toEqual(theirs);
      expect(report.complete.catchAll).toBe(report.strategies["catch-all"] as number);
      expect(report.complete.catchAll).toBeGreaterThanOrEqual(c.catchAll ?? 0);
      expect(report.complete.lazilyPatched).toBeGreaterThanOrEqual(c.lazily ?? 0);
      expect(Object.values(report.complete.missed).every((n) => n === 0)).toBe(true);
      // calls no loader makes: the program alone under strace -f -c makes exactly as many
      if (c.native !== undefined) {
        const native = nativeCounts(c.cmd());
        for (const name of c.native) expect({ name, ...ours[name] }).toEqual({ name, ...native[name] });
      }
    });
  }

  test.skipIf(why !== null)("without --complete the generated code's calls bypass the hook", () => {
    const out = join(dir, "plain.json");
    const r = Bun.spawnSync(["bun", CLI, "run", "--hook", "count", "--json", "-o", out, "--", bin("jit"), "500"], {
      env: { ...process.env, SYSI_CACHE_DIR: cache },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      syscalls: { name: string; calls: number }[];
    };
    const getppid = report.syscalls.find((s) => s.name === "getppid")?.calls ?? 0;
    expect(getppid).toBeLessThan(1000);
  });

  interface Paths {
    strategies: Record<string, number>;
    complete: { catchAll: number; lazilyPatched: number };
    getppid: number;
    /** Calls of every syscall. */
    total: number;
  }
  /** lazy.c making n calls per thread under --complete, the JSON report's paths. */
  const lazyRun = (n: number, extra: string[], env: Record<string, string> = {}): Paths => {
    const out = join(dir, `lazy-${n}.json`);
    const r = Bun.spawnSync(
      ["bun", CLI, "run", "--complete", "--hook", "count", "--json", "-o", out, ...extra, "--"].concat([
        bin("lazy"),
        join(dir, `lazy-code-${n}`),
        `${n}`,
        bin("libstub.so"),
      ]),
      { env: { ...process.env, SYSI_CACHE_DIR: cache, ...env }, stdout: "pipe", stderr: "pipe" },
    );
    expect(r.stderr.toString()).not.toContain("sysi: error");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString().trim()).toBe(`${4 * n}`); // every call returned the parent's pid
    const report = JSON.parse(readFileSync(out, "utf8")) as Paths & { syscalls: { name: string; calls: number }[] };
    const getppid = report.syscalls.find((s) => s.name === "getppid")?.calls ?? 0;
    return { ...report, getppid, total: report.syscalls.reduce((t, s) => t + s.calls, 0) };
  };
  const N1 = 20;
  const N2 = 1020;
  const more = 4 * (N2 - N1); // two sites, two threads

  test.skipIf(lazyWhy !== null)(
    `lazy patching: a site's first call via the catch-all, the rest via ud2${lazySkip}`,
    () => {
      const [a, b] = [lazyRun(N1, ["-s", "punning,ud2"]), lazyRun(N2, ["-s", "punning,ud2"])];
      expect(b.getppid - a.getppid).toBe(more);
      expect(a.complete.lazilyPatched).toBeGreaterThanOrEqual(2);
      expect(b.complete.lazilyPatched).toBe(a.complete.lazilyPatched);
      expect(b.complete.catchAll).toBe(a.complete.catchAll);
      expect((b.strategies.ud2 ?? 0) - (a.strategies.ud2 ?? 0)).toBe(more);
      // off: every call of the site is the catch-all's
      const [c, d] = [N1, N2].map((n) => lazyRun(n, ["-s", "punning,ud2"], { SYSI_LAZY: "off" })) as [Paths, Paths];
      expect(c.complete.lazilyPatched).toBe(0);
      expect(d.complete.catchAll - c.complete.catchAll).toBe(more);
      expect(d.getppid - c.getppid).toBe(more);
    },
  );

  test.skipIf(lazyWhy !== null)(`the summary says how many sites were patched lazily${lazySkip}`, () => {
    const r = Bun.spawnSync(
      ["bun", CLI, "run", "--complete", "--hook", "count", "--", bin("lazy"), join(dir, "s"), "5"],
      {
        env: { ...process.env, SYSI_CACHE_DIR: cache },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString()).toMatch(/^sysi: complete: catch-all \d+ calls? \(sites patched lazily: [1-9]\d*\)/m);
  });

  test.skipIf(lazyWhy !== null)(
    `threads racing on a site while it is patched lazily: no call lost, none killed${lazySkip}`,
    () => {
      const n = 20000;
      const native = nativeCounts([bin("lazy-race"), join(dir, "race-native"), `${n}`]).getppid?.calls;
      expect(native).toBe(4 * n + 4); // each thread's own getppid() too
      // the race is in the timing: one run in ~15 was killed by SIGSYS before the site was recorded
      // ahead of its new bytes (sud-lazy.c)
      for (let i = 0; i < 12; i++) {
        const out = join(dir, "race.json");
        const r = Bun.spawnSync(
          ["bun", CLI, "run", "--complete", "--hook", "count", "--json", "-o", out, "--"].concat([
            bin("lazy-race"),
            join(dir, `race-${i}`),
            `${n}`,
          ]),
          { env: { ...process.env, SYSI_CACHE_DIR: cache }, stdout: "pipe", stderr: "pipe" },
        );
        expect({ i, exit: r.exitCode, out: r.stdout.toString().trim() }).toEqual({ i, exit: 0, out: `${4 * n}` });
        const report = JSON.parse(readFileSync(out, "utf8")) as {
          syscalls: { name: string; calls: number }[];
          complete: { lazilyPatched: number };
        };
        expect(report.syscalls.find((s) => s.name === "getppid")?.calls).toBe(native);
        expect(report.complete.lazilyPatched).toBe(1);
      }
    },
  );

  const page0 = host.check("page0")?.ok === true;
  test.skipIf(lazyWhy !== null || !page0)(
    `lazy patching with zpoline's call *%rax (SYSI_LAZY=zpoline)${page0 ? "" : " (skipped: page 0 cannot be mapped)"}`,
    () => {
      const z = { SYSI_LAZY: "zpoline" };
      const [a, b] = [lazyRun(N1, ["-s", "zpoline,ud2"], z), lazyRun(N2, ["-s", "zpoline,ud2"], z)];
      expect(b.getppid - a.getppid).toBe(more);
      expect(a.complete.lazilyPatched).toBeGreaterThanOrEqual(2);
      expect(b.complete.catchAll).toBe(a.complete.catchAll);
      // libc's sites are zpoline's too, and a futex in pthread_join comes and goes: zpoline's
      // extra calls are the lazy sites' plus the other calls' difference
      const others = (p: Paths) => p.total - p.getppid;
      expect((b.strategies.zpoline ?? 0) - (a.strategies.zpoline ?? 0)).toBe(more + others(b) - others(a));
      expect(b.strategies.ud2 ?? 0).toBe(a.strategies.ud2 ?? 0);
    },
  );

  test.skipIf(why !== null)("int $0x80 from generated code: made unhooked, counted as missed; --strict fails", () => {
    const out = join(dir, "int80.json");
    const run = (extra: string[]) =>
      Bun.spawnSync(["bun", CLI, "run", "--complete", ...extra, "--", bin("int80")], {
        env: { ...process.env, SYSI_CACHE_DIR: cache },
        stdout: "pipe",
        stderr: "pipe",
      });
    const r = run(["--json", "-o", out]);
    expect(r.exitCode).toBe(0); // the call was made: the program saw its own pid
    const report = JSON.parse(readFileSync(out, "utf8")) as { complete: { missed: Record<string, number> } };
    expect(report.complete.missed.int80).toBe(1);
    const s = run(["--strict"]);
    expect(s.exitCode).toBe(2);
    expect(s.stderr.toString()).toContain("--strict: the catch-all made 1 call (int80) without the hook");
  });
});
