/**
 * `sysi run` on statically linked programs (issue 15, slice B): they run as a patched copy from
 * the cache (the runtime linked in, @sysi/core patch/static-cache.ts), so nothing of theirs runs
 * before the runtime. Oracles: the program's native output, and `strace -f` of the whole
 * `sysi run` restricted to the calls after each image's start marker (strace-oracle.ts): per
 * syscall name, calls and errors equal the count hook's. The static Go fixture execs `sh`
 * (dynamic: its calls are counted through the preloaded runtime as usual).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goFunctionStarts, readElfFile } from "@sysi/core/elf";
import { probeHost } from "@sysi/core/host";
import { countUnderStraceArgv, straceOracle } from "@sysi/core/testing";
import { lines, sysi } from "../helpers.ts";
import { goBinary, programEnv } from "./programs.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-run-static-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));
const host = await probeHost();
const ptrace = Bun.which("strace") !== null && host.check("ptrace")?.ok !== false;
const DOCKER = "/usr/local/bin/docker";
const TERRAFORM = Bun.which("terraform") ?? "/usr/local/bin/terraform";

/**
 * The runtime's traps (strace-oracle.ts's default: ud2's SIGILL/SIGTRAP/SIGSEGV), and the SIGSYS
 * Syscall User Dispatch raises for a call the vDSO makes (static/vdso.c): in its frame the first
 * call is the program's (the one the vDSO made), the rest and its rt_sigreturn are the runtime's.
 */
const RUNTIME_SIGNAL =
  /^--- (SIG(ILL|TRAP|SEGV) \{si_signo=SIG\w+, si_code=(ILL_ILLOPN|SI_KERNEL)|SIGSYS \{si_signo=SIGSYS, si_code=SYS_USER_DISPATCH)\b/;

type Counts = Record<string, { calls: number; errors: number }>;

function native(cmd: string[], cwd: string) {
  const r = Bun.spawnSync(cmd, { cwd, env: programEnv(cwd), stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Count hook and strace -f oracle of one `sysi run -s ud2 --hook count --json` under strace. */
/**
 * ours equals theirs for a Go program up to the exit race (count.test.ts: a thread killed by
 * exit_group at its ptrace syscall-entry stop: strace shows one call fewer than the hook, whose
 * counts equal the kernel's sys_enter tracepoint counts, count-perf.test.ts): never fewer calls,
 * the same errors, and at most one extra call per other thread.
 */
function expectGoCounts(ours: Counts, theirs: Counts, threads: number): void {
  let excess = 0;
  for (const [n, c] of Object.entries(ours)) {
    const t = theirs[n] ?? { calls: 0, errors: 0 };
    if (n === "exit_group") {
      // either side of the exit race (count.test's note): strace may show one call fewer, or a
      // phantom exit_group for a thread the first one killed; at most one per other thread
      expect({ [n]: c.calls >= 1 && Math.abs(c.calls - t.calls) < Math.max(threads, 1) }).toEqual({ [n]: true });
      continue;
    }
    expect({ [n]: c.calls >= t.calls }).toEqual({ [n]: true });
    expect({ [n]: c.errors }).toEqual({ [n]: t.errors });
    excess += c.calls - t.calls;
  }
  for (const n of Object.keys(theirs)) expect({ [n]: n in ours }).toEqual({ [n]: true });
  expect(excess).toBeLessThan(Math.max(threads, 1));
}

function countBoth(
  cmd: string[],
  cwd: string,
): { ours: Counts; theirs: Counts; total: number; out: string; threads: number } {
  const trace = join(cwd, "..", "strace.txt");
  const json = join(cwd, "..", "counts.json");
  const r = Bun.spawnSync(countUnderStraceArgv(CLI, "ud2", trace, json, cmd), {
    cwd,
    env: { ...programEnv(cwd), SYSI_CACHE_DIR: cache, SYSI_MARKER: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).not.toContain("sysi: error");
  expect(r.exitCode).toBe(0);
  const oracle = straceOracle(readFileSync(trace, "utf8"), { isRuntimeSignal: (l) => RUNTIME_SIGNAL.test(l) });
  const counts = JSON.parse(readFileSync(json, "utf8")) as {
    syscalls: { name: string; calls: number; errors: number }[];
  };
  const ours: Counts = {};
  for (const s of counts.syscalls) ours[s.name] = { calls: s.calls, errors: s.errors };
  const theirs: Counts = {};
  for (const [name, c] of Object.entries(oracle.byName)) theirs[name] = { calls: c.calls, errors: c.errors };
  const tids = new Set(
    readFileSync(trace, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split(/\s/)[0]),
  ).size;
  return { ours, theirs, total: oracle.total, out: r.stdout.toString(), threads: tids };
}

function workDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "sysi-run-static-"));
  Bun.spawnSync(["mkdir", join(dir, "w")]);
  return dir;
}

describe("sysi run on a statically linked program: a patched copy in the cache", () => {
  test.skipIf(Bun.which("go") === null)(
    "static Go (goroutines, os/exec, net/http): native output; the copy is cached and reused",
    async () => {
      const dir = workDir();
      const work = join(dir, "w");
      try {
        const go = goBinary("static");
        const want = native([go], work);
        expect(want.code).toBe(0);
        const env = { ...programEnv(work), SYSI_CACHE_DIR: cache };
        const first = await sysi(["run", "-v", "-s", "ud2", "--hook", "passthrough", "--", go], env, work);
        expect(first.code).toBe(0);
        expect(first.stdout).toBe(want.out);
        const copy = first.stderr.match(/runs as the patched copy (\S+)/)?.[1] ?? "";
        expect(copy.startsWith(join(cache, "patched"))).toBe(true);
        expect(copy.endsWith("/go-hello-static")).toBe(true); // the process keeps its name (comm)
        expect(first.stderr).toContain("(written now)");
        const second = await sysi(["run", "-v", "-s", "ud2", "--hook", "count", "--", go], env, work);
        expect(second.code).toBe(0);
        expect(second.stdout).toBe(want.out);
        expect(second.stderr).toContain(`runs as the patched copy ${copy}\n`); // reused: no "(written now)"
        expect(readdirSync(join(cache, "patched")).length).toBe(1); // one copy serves every hook
        // nothing runs before the runtime in the copy: only the dynamic child (sh) has such calls
        expect(second.stderr).toContain("not counted: the system calls the one process image made before");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  test.skipIf(!ptrace || Bun.which("go") === null)(
    "static Go: --hook count equals strace -f (the copy and its dynamic child)",
    () => {
      const dir = workDir();
      try {
        const { ours, theirs, total, threads } = countBoth([goBinary("static")], join(dir, "w"));
        expect(total).toBeGreaterThan(200);
        // known gap (docs/patch.md): strace counts the rt_sigreturn of a Go handler's frame for a
        // signal that arrives inside a ud2 trap frame (SIGURG, SIGCHLD); the hook does not
        delete ours.rt_sigreturn;
        delete theirs.rt_sigreturn;
        expectGoCounts(ours, theirs, threads);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  test.skipIf(Bun.which("go") === null)(
    "a Go program's .gopclntab function starts are its symbol table's (what makes a stripped one's sites certain)",
    () => {
      const elf = readElfFile(goBinary("static"));
      const starts = new Set(goFunctionStarts(elf));
      const funcs = elf.symbols().filter((s) => s.type === 2 && s.size > 0); // STT_FUNC, from the linker
      expect(funcs.length).toBeGreaterThan(1000);
      expect(funcs.filter((s) => !starts.has(s.value)).map((s) => s.name)).toEqual([]);
      const values = new Set(funcs.map((s) => s.value));
      expect([...starts].filter((v) => !values.has(v))).toEqual([]);
    },
    300_000,
  );

  test.skipIf(!ptrace || !existsSync(DOCKER))(
    `docker --version: native output, --hook count equals strace -f, the vDSO's getrandom included (${DOCKER})`,
    () => {
      const dir = workDir();
      try {
        const want = native([DOCKER, "--version"], join(dir, "w"));
        const { ours, theirs, total, out, threads } = countBoth([DOCKER, "--version"], join(dir, "w"));
        expect(out).toBe(want.out);
        expect(total).toBeGreaterThan(300);
        // Go 1.24 asks the vDSO for random bytes, whose getrandom falls back to a system call made
        // from the vDSO: the runtime catches it (static/vdso.c, SUD on the vDSO), so no exception
        expectGoCounts(ours, theirs, threads);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  test.skipIf(!ptrace || !existsSync(TERRAFORM))(
    `terraform version (stripped Go): native output, --hook count equals strace -f (${TERRAFORM})`,
    () => {
      const dir = workDir();
      try {
        const want = native([TERRAFORM, "version"], join(dir, "w"));
        const { ours, theirs, total, out, threads } = countBoth([TERRAFORM, "version"], join(dir, "w"));
        expect(out).toBe(want.out);
        expect(total).toBeGreaterThan(300);
        expectGoCounts(ours, theirs, threads);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  test.skipIf(Bun.which("strace") === null)(
    "without -s: the default chain (its strategies validated for static programs), threads keep their own counts",
    async () => {
      const dir = workDir();
      const work = join(dir, "w");
      try {
        const prog = join(dir, "churn");
        const src = join(import.meta.dir, "fixtures", "patch", "static-churn.c");
        if (Bun.spawnSync(["cc", "-static", "-O2", "-pthread", "-o", prog, src]).exitCode !== 0) return;
        const env = { ...programEnv(work), SYSI_CACHE_DIR: cache };
        const doctor = await sysi(["doctor"], env, work);
        const dflt = doctor.stdout.match(/default chain: (\S+)/)?.[1] ?? "";
        const want = dflt
          .split(",")
          .filter((n) => ["punning", "zpoline", "ud2"].includes(n))
          .join(",");
        expect(want).not.toBe("ud2"); // a chain with an entry strategy on this host
        const trace = join(dir, "strace.txt");
        expect(Bun.spawnSync(["strace", "-f", "-qq", "-o", trace, prog], { cwd: work }).exitCode).toBe(0);
        // the native run has no start marker: count strace's entry lines (unfinished ones too)
        const getppid = lines(readFileSync(trace, "utf8")).filter((l) => /^\d+\s+getppid\(/.test(l)).length;
        const counts = join(dir, "counts.json");
        const r = await sysi(["run", "-v", "--hook", "count", "--json", "-o", counts, "--", prog], env, work);
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(native([prog], work).out);
        expect(r.stderr).toContain(`chain ${want}`);
        const ours = JSON.parse(readFileSync(counts, "utf8")) as { syscalls: { name: string; calls: number }[] };
        expect(getppid).toBeGreaterThan(0);
        expect(ours.syscalls.find((c) => c.name === "getppid")?.calls).toBe(getppid);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  test("a hook library cannot be loaded into a static program: one line, exit 2", async () => {
    const dir = workDir();
    try {
      const prog = join(dir, "prog");
      const cc = Bun.spawnSync(["cc", "-static", "-O2", "-o", prog, "-x", "c", "-"], {
        stdin: new TextEncoder().encode("int main(void){return 0;}\n"),
        stderr: "pipe",
      });
      if (cc.exitCode !== 0) return; // no static libc here
      const hook = join(dir, "hook.so");
      writeFileSync(hook, "", { mode: 0o644 });
      const r = await sysi(["run", "--hook", hook, "--", prog], { SYSI_CACHE_DIR: cache });
      expect(r.code).toBe(2);
      expect(lines(r.stderr)[0]).toContain("is statically linked: it runs as a patched copy");
      expect(r.stderr).not.toContain("    at ");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
