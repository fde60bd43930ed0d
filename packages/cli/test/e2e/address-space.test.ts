/**
 * An address-space limit (RLIMIT_AS) under punning (issue 13): the runtime maps trampoline pages on
 * first use inside PROT_NONE ranges it reserves (plugins/punning/native/lazy.c), and every mapping
 * counts against RLIMIT_AS. So with a finite limit at start it maps every page at once, and a
 * program that lowers its own limit (setrlimit, prlimit64 on itself, from any thread) gets every
 * reservation released before the call. Oracle: the native run of fixtures/address-space/maxmap.c,
 * the largest anonymous mapping the process can make, rounded down to 64 MiB.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "../../bin/run.js");
const out = mkdtempSync(join(tmpdir(), "sysi-address-space-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-address-space-cache-"));
const maxmap = join(out, "maxmap");
const LIMIT_KIB = "4000000";

beforeAll(() => {
  const src = join(import.meta.dir, "fixtures/address-space/maxmap.c");
  const c = Bun.spawnSync(["cc", "-O2", "-Wall", "-pthread", "-o", maxmap, src], { stderr: "pipe" });
  if (c.exitCode !== 0) throw new Error(`building maxmap failed: ${c.stderr.toString()}`);
}, 60_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

function run(cmd: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = Bun.spawnSync(cmd, {
    env: { ...process.env, SYSI_CACHE_DIR: cache },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** `sh -c 'ulimit -v KIB && exec …'`, or the command as it is */
const limited = (kib: string | null, cmd: string[]) =>
  kib === null ? cmd : ["sh", "-c", `ulimit -v ${kib} && exec "$@"`, "sh", ...cmd];

const CHAINS = [
  { label: "-s punning,ud2", args: ["-s", "punning,ud2"] },
  { label: "the default chain", args: [] as string[] },
  // the other ways a call leaves a trampoline: the passthrough stub, the entry's fast hook call
  { label: "-s punning,ud2 --hook passthrough", args: ["-s", "punning,ud2", "--hook", "passthrough"] },
  { label: "-s punning,ud2 --hook trace", args: ["-s", "punning,ud2", "--hook", "trace"] },
];
const CASES = [
  { label: "under ulimit -v 4000000", ulimit: LIMIT_KIB, argv: [] as string[] },
  { label: "after setrlimit(RLIMIT_AS, 4000000 KiB)", ulimit: null, argv: ["setrlimit", LIMIT_KIB] },
  { label: "after prlimit64(getpid(), RLIMIT_AS, 4000000 KiB)", ulimit: null, argv: ["prlimit", LIMIT_KIB] },
  { label: "after prlimit64 from a second thread", ulimit: null, argv: ["thread", LIMIT_KIB] },
  { label: "without a limit", ulimit: null, argv: [] as string[] },
];

describe("the largest mapping a program can make is the native one", () => {
  for (const k of CASES) {
    for (const c of CHAINS) {
      test(`${c.label}: ${k.label}`, () => {
        const native = run(limited(k.ulimit, [maxmap, ...k.argv]));
        expect(native.code).toBe(0);
        expect(native.stdout).toMatch(/^largest mapping: \d+ MiB\n$/);
        const inst = run(limited(k.ulimit, ["bun", CLI, "run", ...c.args, "-o", "/dev/null", "--", maxmap, ...k.argv]));
        expect({ stdout: inst.stdout, code: inst.code }).toEqual({ stdout: native.stdout, code: 0 });
      }, 120_000);
    }
  }
});
