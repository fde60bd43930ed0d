/**
 * `sysi run` on a static program runs a patched copy from the cache, yet the program must see
 * its own file as natively (docs/patch.md, "`sysi run` on a static program"; static/exe.c):
 * readlink/readlinkat of /proc/self/exe, /proc/thread-self/exe and /proc/<pid>/exe (whole and
 * truncated into 5 bytes), Go's os.Executable(), AT_EXECFN, in the process `sysi run` starts and
 * in a child that re-executes /proc/self/exe; sysi's variables that carry this stay out of its
 * environment and /proc/self/environ. Oracles: the native run's output, and strace -f's lines
 * of the native run for the trace hook's.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lines, sysi } from "../helpers.ts";

const FIXTURES = join(import.meta.dir, "fixtures", "static-exe");
const dir = mkdtempSync(join(tmpdir(), "sysi-run-static-exe-"));
const cache = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The C fixture, gcc -static; null when this host has no static libc. */
function buildC(): string | null {
  const out = join(dir, "exe-c");
  const r = Bun.spawnSync(["cc", "-static", "-O2", "-o", `${out}.tmp`, join(FIXTURES, "exe.c")], { stderr: "pipe" });
  if (r.exitCode !== 0) return null;
  renameSync(`${out}.tmp`, out);
  return out;
}

/** The Go fixture, CGO_ENABLED=0 (static); null without a Go toolchain. */
function buildGo(): string | null {
  if (Bun.which("go") === null) return null;
  const out = join(dir, "exe-go");
  const env: Record<string, string> = { ...(process.env as Record<string, string>), CGO_ENABLED: "0" };
  if (env.GOCACHE === undefined && env.HOME === undefined) env.GOCACHE = join(dir, "gocache");
  const build = (extra: string[]) =>
    Bun.spawnSync(["go", "build", "-trimpath", ...extra, "-o", `${out}.tmp`, "."], {
      cwd: join(FIXTURES, "go"),
      env,
      stderr: "pipe",
    });
  let r = build([]);
  // Go 1.23+ refuses the fixture's pull of runtime.argv unless told (Debian 12's 1.19 does not)
  if (r.exitCode !== 0 && r.stderr.toString().includes("linkname")) r = build(["-ldflags=-checklinkname=0"]);
  if (r.exitCode !== 0) throw new Error(`go build failed: ${r.stderr.toString().trim()}`);
  renameSync(`${out}.tmp`, out);
  return out;
}

const progC = buildC();
const progGo = buildGo();
/** The caller's environment of both runs: SYSI_CACHE_DIR is the caller's (the program sees it). */
const ENV = { ...(process.env as Record<string, string>), SYSI_CACHE_DIR: cache };

/** The native run of ./NAME ARGS in dir (AT_EXECFN: "./NAME", as a shell gives it). */
function native(name: string, args: string[]): string {
  const r = Bun.spawnSync([`./${name}`, ...args], { cwd: dir, env: ENV, stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString();
}

async function underSysi(name: string, args: string[], flags: string[]): Promise<string> {
  // --strict: the re-executed copy is no escape (it carries the runtime: escape.c knows sysi's note)
  const r = await sysi(["run", "--strict", ...flags, "--", `./${name}`, ...args], { SYSI_CACHE_DIR: cache }, dir);
  expect(r.stderr).not.toContain("sysi: error");
  expect(r.stderr).not.toContain("not instrumented");
  expect(r.code).toBe(0);
  return r.stdout;
}

/** The native output names the original, never the cache: else the comparison proves nothing. */
function checkOracle(out: string, prog: string): void {
  expect(out).toContain(`"${prog}"`);
  expect(out).toContain('"/tmp/"'); // 5 bytes of the original's path
  expect(out).toContain(`AT_EXECFN: ./${prog.split("/").at(-1)}`);
  expect(out).toContain("AT_EXECFN: /proc/self/exe"); // the re-executed child's
}

const CHAINS = ["punning,ud2", "ud2"];

describe("sysi run on a static program: /proc/self/exe and AT_EXECFN name the original", () => {
  for (const chain of CHAINS) {
    test.skipIf(progC === null)(
      `static C (gcc -static), -s ${chain} --hook count: readlink, readlinkat, AT_EXECFN, a re-exec of /proc/self/exe = native`,
      async () => {
        const want = native("exe-c", ["again"]);
        checkOracle(want, progC as string);
        const got = await underSysi("exe-c", ["again"], ["-s", chain, "--hook", "count", "-o", join(dir, "c.txt")]);
        expect(got).toBe(want);
        // sysi's variables (SYSI_EXE, SYSI_EXE_COPY, SYSI_EXECFN among them) are not the program's
        for (const l of lines(got).filter((l) => l.includes("environ:"))) expect(l).not.toContain("SYSI_EXE");
        // the count hook saw the calls (the summary is the native run's: no extra readlink)
        expect(readFileSync(join(dir, "c.txt"), "utf8")).toMatch(/\breadlink\b/);
      },
      300_000,
    );

    test.skipIf(progGo === null)(
      `static Go (CGO_ENABLED=0), -s ${chain} --hook count: os.Executable, readlinkat, AT_EXECFN, a re-exec = native`,
      async () => {
        const want = native("exe-go", ["again"]);
        checkOracle(want, progGo as string);
        expect(want).toContain(`os.Executable: "${progGo}"`);
        const got = await underSysi("exe-go", ["again"], ["-s", chain, "--hook", "count", "-o", join(dir, "g.txt")]);
        expect(got).toBe(want);
        for (const l of lines(got).filter((l) => l.includes("environ:"))) expect(l).not.toContain("SYSI_EXE");
      },
      300_000,
    );
  }

  test.skipIf(progC === null || Bun.which("strace") === null)(
    "--hook trace: the readlink lines are strace -f's of the native run (the original's path, the 5-byte truncation)",
    async () => {
      const filter = "trace=readlink,readlinkat";
      const st = join(dir, "strace.txt");
      const r = Bun.spawnSync(["strace", "-f", "-qq", "-s", "256", "-e", filter, "-o", st, "./exe-c", "again"], {
        cwd: dir,
        env: ENV,
        stdout: "pipe",
      });
      expect(r.exitCode).toBe(0);
      const got = await underSysi(
        "exe-c",
        ["again"],
        ["-s", "punning,ud2", "--hook", "trace", "--string-limit", "256", "-e", filter, "-o", join(dir, "t.txt")],
      );
      expect(got).toBe(r.stdout.toString());
      // pids differ between the runs (the prefix, and /proc/<pid>/exe); the alignment too
      const norm = (text: string, prefix: RegExp) =>
        lines(text)
          .filter((l) => /readlink/.test(l))
          .map((l) =>
            l
              .replace(prefix, "")
              .replace(/\/proc\/\d+\//g, "/proc/N/")
              .replace(/\s+/g, " "),
          )
          .sort();
      const theirs = norm(readFileSync(st, "utf8"), /^\d+\s+/);
      expect(theirs.length).toBe(14); // 7 in each of 2 processes: glibc's start-up reads /proc/self/exe too
      expect(theirs.join("\n")).toContain(`"${progC}"`);
      expect(norm(readFileSync(join(dir, "t.txt"), "utf8"), /^\[pid\s+\d+\]\s+/)).toEqual(theirs);
    },
    300_000,
  );
});
