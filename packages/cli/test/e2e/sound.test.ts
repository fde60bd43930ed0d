/**
 * Sound punning (issue 11) through the real `sysi run`: in each program of
 * packages/core/native/tests/sound an instruction right next to an inline `syscall` is entered
 * by a route a planner cannot see from function starts and direct branches (a jump table, a
 * computed goto, a .cold part, a landing pad, DT_FINI, a signal handler's RIP, a function
 * pointer). Instrumented, each program must print and exit exactly as natively, under every
 * chain. The last block shows that the tests can fail: the displacing tactics break them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const SOUND = join(import.meta.dir, "../../../core/native/tests/sound");
const out = mkdtempSync(join(tmpdir(), "sysi-sound-"));
// A binary and its stripped copy share a build-id, which keys the plan cache: separate caches,
// so that a stripped binary is planned without its unstripped twin's symbols.
const caches = {
  plain: mkdtempSync(join(tmpdir(), "sysi-sound-cache-")),
  stripped: mkdtempSync(join(tmpdir(), "sysi-sound-cache-stripped-")),
};

interface Binary {
  /** The program (its source's name), e.g. "jump-table". */
  program: string;
  /** The file in `out`, e.g. "jump-table-g++-stripped". */
  file: string;
  stripped: boolean;
}

// The Makefile's outputs: C sources by gcc and g++, C++ sources by g++; each also stripped.
const BINARIES: Binary[] = readdirSync(SOUND)
  .filter((f) => f.endsWith(".c") || f.endsWith(".cc"))
  .sort()
  .flatMap((src) => {
    const program = src.replace(/\.cc?$/, "");
    const compilers = src.endsWith(".cc") ? ["g++"] : ["gcc", "g++"];
    return compilers.flatMap((cc) =>
      [false, true].map((stripped) => ({ program, file: `${program}-${cc}${stripped ? "-stripped" : ""}`, stripped })),
    );
  });

/** Arguments per program (computed-goto: the issue's `prog x`, which jumps straight to label b). */
const ARGS: Record<string, string[]> = { "computed-goto": ["x"] };

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", SOUND, `OUT=${out}`], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the sound-punning programs failed: ${r.stderr.toString()}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(caches.plain, { recursive: true, force: true });
  rmSync(caches.stripped, { recursive: true, force: true });
});

const host = await probeHost();
const page0 = host.check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
const CHAINS: { spec: string | null; skip: string | null }[] = [
  { spec: null, skip: null }, // the default chain
  { spec: "punning,ud2", skip: null },
  { spec: "zpoline,ud2", skip: page0 },
  { spec: "ud2", skip: null },
];

/** The tactics that overwrite instructions next to the site; explicit opt-ins only. */
const UNSAFE = "punning:tactics=jmp+evict+short";

function run(cmd: string[], env: Record<string, string> = {}) {
  // a hang fails the test instead of the whole run
  const r = Bun.spawnSync(cmd, {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function native(b: Binary) {
  return run([join(out, b.file), ...(ARGS[b.program] ?? [])]);
}

function sysi(b: Binary, chain: string | null) {
  const prog = join(out, b.file);
  const strategies = chain === null ? [] : ["-s", chain];
  return run(["bun", CLI, "run", ...strategies, "--hook", "passthrough", "--", prog, ...(ARGS[b.program] ?? [])], {
    SYSI_CACHE_DIR: b.stripped ? caches.stripped : caches.plain,
  });
}

expect(new Set(BINARIES.map((b) => b.program)).size).toBeGreaterThanOrEqual(7);

for (const chain of CHAINS) {
  const name = chain.spec === null ? "the default chain" : `-s ${chain.spec}`;
  describe(`sound-punning programs under sysi run ${name}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const b of BINARIES) {
      test.skipIf(chain.skip !== null)(`${b.file} prints and exits as natively`, () => {
        const want = native(b);
        const got = sysi(b, chain.spec);
        expect(got.stderr).toBe(want.stderr);
        expect(got.stdout).toBe(want.stdout);
        expect(got.code).toBe(want.code);
      });
    }
  });
}

/**
 * Where the displacing tactics overwrite an entered instruction. nop-entry's entries are
 * hand-written asm without CFI: only their symbols name them, so it breaks once stripped.
 */
const breaks = (b: Binary) => b.program !== "nop-entry" || b.stripped;

describe(`the unsafe displacing tactics break these programs (the tests can fail): -s ${UNSAFE},ud2`, () => {
  for (const b of BINARIES.filter(breaks)) {
    test(`${b.file}: a site is patched with a displacing tactic, and the program goes wrong`, () => {
      const plan = run(["bun", CLI, "plan", "--json", "-s", UNSAFE, join(out, b.file)], {
        SYSI_CACHE_DIR: b.stripped ? caches.stripped : caches.plain,
      });
      expect(plan.code).toBe(0);
      const doc = JSON.parse(plan.stdout) as {
        plans: { sites: { decisions: { ok: boolean; tactic?: string }[] }[] }[];
      };
      const tactics = doc.plans.flatMap((p) => p.sites.flatMap((s) => s.decisions.filter((d) => d.ok)));
      expect(tactics.some((d) => d.tactic === "jmp" || d.tactic === "evict" || d.tactic === "short")).toBe(true);

      const want = native(b);
      const got = sysi(b, `${UNSAFE},ud2`);
      // a crash, a wrong line or a wrong status: anything but the native behaviour
      expect({ code: got.code, stdout: got.stdout }).not.toEqual({ code: want.code, stdout: want.stdout });
    });
  }
});
