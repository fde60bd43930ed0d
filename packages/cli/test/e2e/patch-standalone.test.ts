/**
 * `sysi patch --standalone` (issue 15, Deliver 1: the runtime in new PT_LOAD segments). Without it
 * OUT names libsysi and the strategy runtimes by absolute paths in the patching user's cache, so
 * it stops with ld.so's "cannot open shared object file" for another user, or once the cache is
 * gone (checked below: the contrast). With it OUT carries them: a stub run from OUT's
 * DT_PREINIT_ARRAY writes them into memfds and dlopen()s libsysi.
 *
 * Oracles: the programs' native output, strace -f with SYSI_MARKER=1 (the count hook's counts
 * equal strace's from the runtime's start on), readelf, the native /proc/self/fd and
 * /proc/self/environ, a second patch's bytes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { createStatsFile, readStatsFile } from "@sysi/core/runtime";
import { straceOracle } from "@sysi/core/testing";
import { hasStack, lines, makeSysiHome, sysi } from "../helpers.ts";

const home = makeSysiHome();
const dir = join(home.dir, "work");
const hasStrace = Bun.which("strace") !== null;
const root = process.getuid?.() === 0;
const page0 = (await probeHost()).check("page0")?.ok === true;
const REPO = join(import.meta.dir, "..", "..", "..", "..");
const PY_ENV = "import os; print(sorted(os.environ.items())); print(open('/proc/self/environ','rb').read())";
const PY_PPID = "import os\nfor _ in range(777): os.getppid()\nprint('ok')";

function run(argv: string[], env: Record<string, string> = {}, pre: string[] = []) {
  const r = Bun.spawnSync([...pre, ...argv], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

type Counts = Record<string, { calls: number; errors: number }>;

/** argv under strace -f with the count hook's statistics file: output, counts and strace's. */
function countedRun(argv: string[], tag: string) {
  const stats = join(dir, `stats.${tag}`);
  const trace = join(dir, `strace.${tag}`);
  createStatsFile(stats);
  const r = run(["strace", "-f", "-qq", "-o", trace, ...argv], { SYSI_STATS_FILE: stats, SYSI_MARKER: "1" });
  const ours: Counts = {};
  for (const s of readStatsFile(stats).syscalls) ours[s.name ?? `nr${s.nr}`] = { calls: s.calls, errors: s.errors };
  const theirs: Counts = {};
  const oracle = straceOracle(readFileSync(trace, "utf8"));
  for (const [n, c] of Object.entries(oracle.byName)) theirs[n] = { calls: c.calls, errors: c.errors };
  return { ...r, ours, theirs, total: oracle.total };
}

async function patch(args: string[], env: Record<string, string> = home.env) {
  return sysi(["patch", ...args], env);
}

/** Patch `prog` into dir/<tag>/<its name> (git looks at its own name). */
async function patched(prog: string, tag: string, opts: string[]): Promise<string> {
  const d = join(dir, tag);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  const out = join(d, prog.split("/").pop() as string);
  const r = await patch([...opts, prog, "-o", out]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return out;
}

const pieSrc = join(import.meta.dir, "fixtures", "patch", "sites.c");
const programs: { name: string; path: string; args: string[] }[] = [
  { name: "ls", path: "/bin/ls", args: ["-la", "/usr/share/doc/coreutils"] },
  { name: "python3", path: "/usr/bin/python3", args: ["-c", "import json, ssl; print(json.dumps({'a': 1}))"] },
  { name: "git", path: "/usr/bin/git", args: ["-C", REPO, "log", "-1", "--format=%H %s", "--", "README.md"] },
];

beforeAll(() => {
  mkdirSync(dir);
  chmodSync(home.dir, 0o755);
  chmodSync(dir, 0o755);
  // a program with system-call sites of its own, threads and a fork: PIE and non-PIE
  for (const [name, flags] of [
    ["sites-pie", ["-fPIE", "-pie"]],
    ["sites-nopie", ["-fno-pie", "-no-pie"]],
  ] as const) {
    const out = join(dir, name);
    const r = run(["cc", "-O2", "-pthread", ...flags, "-o", out, pieSrc]);
    if (r.code !== 0) throw new Error(r.err);
    programs.push({ name, path: out, args: ["x", "no-bad-nr"] }); // as patch.test.ts
  }
});
afterAll(() => home.cleanup());

describe("sysi patch --standalone: output as native, counts as strace -f", () => {
  for (const { chain, skip } of [
    { chain: "punning,ud2", skip: null as string | null },
    { chain: "zpoline,ud2", skip: page0 ? null : "page 0 cannot be mapped here" },
  ]) {
    test.skipIf(!hasStrace || skip !== null)(
      `ls, python3, git and a program with its own sites (PIE, non-PIE) under -s ${chain} --hook count${skip ? ` (${skip})` : hasStrace ? "" : " (needs strace)"}`,
      async () => {
        for (const p of programs) {
          const out = await patched(p.path, `${p.name}.${chain}`, ["--standalone", "-s", chain, "--hook", "count"]);
          // no runtime by path: no DT_NEEDED naming libsysi
          const dyn = run(["readelf", "-d", out]).out;
          expect(dyn).toContain("(PREINIT_ARRAY)");
          expect(dyn).not.toMatch(/NEEDED.*libsysi/);
          const native = run([p.path, ...p.args]);
          expect(native.code).toBe(0);
          const r = countedRun([out, ...p.args], `${p.name}.${chain}`);
          expect(r.out).toBe(native.out);
          expect(r.err).toBe(native.err);
          expect(r.code).toBe(native.code);
          expect(r.total).toBeGreaterThan(10);
          expect(r.ours).toEqual(r.theirs);
        }
      },
    );
  }
});

describe("sysi patch --standalone: OUT needs nothing from the patching user", () => {
  test.skipIf(!root)(
    `patched as root, run as uid 65534 with an empty HOME and the cache removed: still counted${root ? "" : " (needs root)"}`,
    async () => {
      const cache = join(home.dir, "cache-own");
      const env = { ...home.env, SYSI_CACHE_DIR: cache };
      const d = join(dir, "nobody");
      mkdirSync(d, { mode: 0o755 });
      const plain = join(d, "ls.plain");
      const standalone = join(d, "ls");
      for (const [out, extra] of [
        [plain, []],
        [standalone, ["--standalone"]],
      ] as const) {
        const r = await patch([...extra, "-s", "punning,ud2", "--hook", "count", "/bin/ls", "-o", out], env);
        expect(r.code).toBe(0);
      }
      rmSync(cache, { recursive: true, force: true });
      const empty = join(d, "home");
      mkdirSync(empty, { mode: 0o777 });
      chmodSync(empty, 0o777);
      const stats = join(d, "stats");
      createStatsFile(stats);
      chmodSync(stats, 0o666);
      const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
      const env2 = { HOME: empty, XDG_CACHE_HOME: empty, SYSI_STATS_FILE: stats };
      // the contrast: the runtime by path in a cache that is gone
      const before = run([plain, "/"], env2, nobody);
      expect(before.code).toBe(127);
      expect(before.err).toContain("cannot open shared object file");
      const native = run(["/bin/ls", "/"], env2, nobody);
      const r = run([standalone, "/"], env2, nobody);
      expect(r.err).toBe(native.err);
      expect(r.out).toBe(native.out);
      expect(r.code).toBe(0);
      const counted = readStatsFile(stats).syscalls;
      expect(counted.find((s) => s.name === "getdents64")?.calls).toBeGreaterThan(0);
      expect(counted.find((s) => s.name === "write")?.calls).toBeGreaterThan(0);
    },
  );

  test("no descriptor of the stub's left in the program; its environment as natively", async () => {
    const ls = await patched("/bin/ls", "fd", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    const fds = run([ls, "/proc/self/fd"]);
    expect(fds.code).toBe(0);
    expect(fds.out).toBe(run(["/bin/ls", "/proc/self/fd"]).out);
    expect(lines(fds.out)).toEqual(["0", "1", "2", "3"]);
    const py = await patched("/usr/bin/python3", "env", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    const env = { LANG: "C", SOME_VAR: "x y" };
    const mine = run([py, "-c", PY_ENV], env);
    expect(mine.code).toBe(0);
    expect(mine.out).toBe(run(["/usr/bin/python3", "-c", PY_ENV], env).out);
    expect(mine.out).toContain("SOME_VAR");
    expect(mine.out).not.toContain("SYSI_");
    // libc initialised with the program's arguments: without the stub's call of libc's
    // initialisers this printed " (none)" (program_invocation_name and environ NULL)
    const src = join(dir, "pin.c");
    writeFileSync(
      src,
      `#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) { printf("%s %s\\n", program_invocation_short_name, getenv("PIN") ? getenv("PIN") : "(none)"); return 0; }
`,
    );
    const pin = join(dir, "pin");
    expect(run(["cc", "-O2", "-o", pin, src]).code).toBe(0);
    const pinOut = await patched(pin, "pin.out", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    expect(run([pin], { PIN: "x" }).out).toBe("pin x\n");
    expect(run([pinOut], { PIN: "x" }).out).toBe("pin x\n");
  });

  test("a hook library is carried too: it answers after the .so and the cache are gone", async () => {
    const so = join(dir, "test-hook.so");
    const inc = join(REPO, "packages", "core", "native", "include");
    const src = join(REPO, "packages", "core", "native", "tests", "hooks", "test-hook.c");
    expect(run(["cc", "-O2", "-shared", "-fPIC", `-I${inc}`, "-o", so, src]).code).toBe(0);
    const cache = join(home.dir, "cache-hook");
    const out = join(dir, "hook", "python3");
    mkdirSync(join(dir, "hook"));
    const r = await patch(["--standalone", "-s", "punning,ud2", "--hook", so, "/usr/bin/python3", "-o", out], {
      ...home.env,
      SYSI_CACHE_DIR: cache,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    rmSync(so);
    rmSync(cache, { recursive: true, force: true });
    // the hook (test-hook.c) answers the unknown call 100000 with 7000 + its sysi_hook_init calls
    const prog = "import ctypes; print(ctypes.CDLL(None).syscall(100000))";
    expect(run(["/usr/bin/python3", "-c", prog]).out).toBe("-1\n");
    const mine = run([out, "-c", prog]);
    expect(mine.err).toBe("");
    expect(mine.out).toBe("7001\n");
  });

  test("patched twice: identical bytes", async () => {
    const a = await patched("/bin/ls", "det.a", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    const b = await patched("/bin/ls", "det.b", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    expect(Buffer.from(readFileSync(a)).equals(readFileSync(b))).toBe(true);
  });

  test("under sysi run: sysi run's libsysi runs, the embedded one is never loaded, each call counted once", async () => {
    const py = await patched("/usr/bin/python3", "run", ["--standalone", "-s", "punning,ud2", "--hook", "count"]);
    const stats = join(dir, "stats.under-run.json");
    const r = await sysi(
      ["run", "-s", "punning,ud2", "--hook", "count", "--json", "-o", stats, "--", py, "-c", PY_PPID],
      home.env,
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ok\n");
    const doc = JSON.parse(readFileSync(stats, "utf8"));
    const getppid = (doc.syscalls as { name: string; calls: number }[]).find((s) => s.name === "getppid");
    expect(getppid?.calls).toBe(777);
    // and directly: the embedded runtime counts them
    const own = join(dir, "stats.direct");
    createStatsFile(own);
    const d = run([py, "-c", PY_PPID], { SYSI_STATS_FILE: own });
    expect(d.out).toBe("ok\n");
    expect(readStatsFile(own).syscalls.find((s) => s.name === "getppid")?.calls).toBe(777);
  });
});

describe("sysi patch --standalone: what is refused", () => {
  const refused = async (input: string, match: RegExp) => {
    const out = join(dir, `refused.${input.split("/").pop()}`);
    const r = await patch(["--standalone", "-s", "punning,ud2", input, "-o", out]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr).length).toBe(1);
    expect(r.stderr).toMatch(match);
    expect(hasStack(r.stderr)).toBe(false);
    expect(existsSync(out)).toBe(false);
  };

  test("a static program (standalone already), a library, a program with its own DT_PREINIT_ARRAY", async () => {
    const src = join(dir, "pre.c");
    writeFileSync(
      src,
      `#include <stdio.h>
static void early(int c, char **v, char **e) { (void)c; (void)v; (void)e; }
__attribute__((section(".preinit_array"), used)) static void (*pre)(int, char **, char **) = early;
int main(void) { puts("hi"); return 0; }
`,
    );
    const pre = join(dir, "pre");
    expect(run(["cc", "-O2", "-o", pre, src]).code).toBe(0);
    await refused(pre, /^sysi: error: .*DT_PREINIT_ARRAY/);
    await refused("/usr/lib/x86_64-linux-gnu/libz.so.1", /^sysi: error: .*--standalone is for executables/);
    const st = join(dir, "static");
    writeFileSync(join(dir, "static.c"), "int main(void) { return 0; }\n");
    if (run(["cc", "-static", "-O2", "-o", st, join(dir, "static.c")]).code === 0) {
      await refused(st, /^sysi: error: .*standalone already/);
    }
  });
});
