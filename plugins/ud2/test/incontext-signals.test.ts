/**
 * In-context calls under timer signals (issue 12): under ud2 an in-context call (vfork, clone3)
 * is hooked in its trap and made by the site's gadget after the trap frame's rt_sigreturn; a
 * signal deferred during the trap arrives exactly at the gadget, and the program's handler sees
 * RIP at the site. The count hook must count each call once (before signal.c's struct redo the
 * handler's return went to the site, which trapped and hooked the call again: 2213 vforks counted
 * for 2000 made), and the handler must see RIP in the program's own code.
 * Oracles: the program's own count of calls made, checked against `strace -f -c` of the native
 * run (vfork's calls less its errors: strace also counts the kernel's restarts of a vfork a
 * signal interrupted, as ERESTARTNOINTR errors; clone3's calls), and the native run's output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../../..");
const CLI = join(ROOT, "packages/cli/bin/run.js");
const WORK = mkdtempSync(join(tmpdir(), "sysi-ud2-incontext-"));
const PROG = join(WORK, "incontext-signals");
/** The chains checked: each ud2 trap, punning (its trampolines' relocated instructions and
 * in-context syscall, plugins/punning/native/init.c pn_context) and the default chain. */
const CHAINS: { name: string; args: string[] }[] = [
  ...["ud2", "int3", "hlt", "int4"].map((v) => ({ name: `-s ud2:${v}`, args: ["-s", `ud2:${v}`] })),
  { name: "-s punning,ud2", args: ["-s", "punning,ud2"] },
  { name: "the default chain", args: [] },
];
const hasStrace = Bun.which("strace") !== null;

beforeAll(() => {
  const src = join(import.meta.dir, "native/incontext-signals.c");
  const r = Bun.spawnSync(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", PROG, src, "-lpthread"], {
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`cc incontext-signals failed:\n${r.stderr.toString()}`);
}, 60_000);
afterAll(() => rmSync(WORK, { recursive: true, force: true }));

/** "vfork 2000\nthreads 300\n…": the counts the program printed. */
function made(out: string): { vfork: number; clone3: number } {
  const n = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(out)?.[1] ?? Number.NaN);
  return { vfork: n("vfork"), clone3: n("threads") };
}

test.skipIf(!hasStrace)("the program's counts are strace's (needs strace)", () => {
  const log = join(WORK, "strace.txt");
  // fewer calls and a slower timer than below: every signal stops a traced process, and at
  // 50 us strace -f livelocks (one CI run: killed after 385 s)
  const r = Bun.spawnSync(["strace", "-f", "-qq", "-c", "-o", log, PROG, "400", "60", "2000"], {
    stdout: "pipe",
    timeout: 100_000,
  });
  expect(r.exitCode).toBe(0);
  const rows: Record<string, { calls: number; errors: number }> = {};
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)$/.exec(line);
    if (m !== null) rows[m[3] as string] = { calls: Number(m[1]), errors: Number(m[2] ?? 0) };
  }
  const want = made(r.stdout.toString());
  expect(want.vfork).toBeGreaterThan(0);
  expect((rows.vfork?.calls ?? 0) - (rows.vfork?.errors ?? 0)).toBe(want.vfork);
  expect(rows.clone3?.calls).toBe(want.clone3);
});

describe("each in-context call is hooked once while timer signals arrive", () => {
  for (const chain of CHAINS) {
    test(chain.name, () => {
      const native = Bun.spawnSync([PROG], { stdout: "pipe" });
      expect(native.stdout.toString()).toContain("handler RIPs outside the program's code: 0\n");
      const json = join(WORK, `counts-${chain.args.join("") || "default"}.json`);
      const inst = Bun.spawnSync(
        ["bun", CLI, "run", ...chain.args, "--hook", "count", "--json", "-o", json, "--", PROG],
        {
          env: { ...process.env, SYSI_CACHE_DIR: join(WORK, "cache") },
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      expect(inst.exitCode).toBe(0);
      // the same calls made, the handler ran, and every RIP it saw was the program's
      expect(inst.stdout.toString()).toBe(native.stdout.toString());
      const counts = JSON.parse(readFileSync(json, "utf8")) as { syscalls: { name: string; calls: number }[] };
      const hooked = (name: string) => counts.syscalls.find((s) => s.name === name)?.calls ?? 0;
      expect({ vfork: hooked("vfork"), clone3: hooked("clone3") }).toEqual(made(native.stdout.toString()));
      expect(counts.syscalls.find((s) => s.name === "rt_sigreturn")?.calls ?? 0).toBeGreaterThan(0);
    });
  }
});
