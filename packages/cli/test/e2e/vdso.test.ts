/**
 * The vDSO's system-call sites (issue 12 item 4, nothing silently uninstrumented): the kernel maps
 * the vDSO sealed, so no strategy patches its `syscall`s, the fallbacks of its clock and getrandom
 * functions. `sysi run` names them in the count summary (and `escapes.vdso` in --json); under
 * --complete the catch-all sees calls made there and the line goes.
 *
 * Oracles: objdump -d of this process's vDSO image (the same image in every process of this
 * kernel) for the sites; `strace -f -c` for the calls: clock_gettime(CLOCK_PROCESS_CPUTIME_ID) has
 * no vDSO fast path, so libc's call falls back to the vDSO's syscall, which strace counts and the
 * hook does not see without --complete. libsysi catches them itself where the kernel has the
 * inclusive form of Syscall User Dispatch (vdso-dynamic.test.ts); SYSI_VDSO=0 turns that off, as
 * on an older kernel, which is what these tests look at.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { makeSysiHome, sysi } from "../helpers.ts";

const host = await probeHost();
const hasSud = host.check("sud")?.ok === true;

const dir = mkdtempSync(join(tmpdir(), "sysi-vdso-"));
const home = makeSysiHome();
const PROG = join(dir, "cputime");
const N = 300;
const hasStrace = Bun.which("strace") !== null;
const hasObjdump = Bun.which("objdump") !== null;

/** This process's [vdso], as a file (null: none mapped). */
function dumpVdso(): string | null {
  const line = readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .find((l) => l.endsWith("[vdso]"));
  const m = line === undefined ? null : /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
  if (m === null) return null;
  const start = Number.parseInt(m[1] as string, 16);
  const bytes = new Uint8Array(Number.parseInt(m[2] as string, 16) - start);
  const fd = openSync("/proc/self/mem", "r");
  readSync(fd, bytes, 0, bytes.length, start);
  closeSync(fd);
  const out = join(dir, "vdso.so");
  writeFileSync(out, bytes);
  return out;
}

beforeAll(() => {
  const src = join(dir, "cputime.c");
  writeFileSync(
    src,
    `#include <stdio.h>
#include <time.h>
int main(void) {
  struct timespec ts;
  long ok = 0;
  for (int i = 0; i < ${N}; i++) ok += clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0;
  printf("%ld\\n", ok);
  return 0;
}
`,
  );
  const r = Bun.spawnSync(["cc", "-O2", "-o", PROG, src], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cc: ${r.stderr.toString()}`);
}, 60_000);
afterAll(() => {
  home.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** libsysi's own vDSO catching off (vdso.c): the vDSO's calls bypass the hook, as before Linux 6.17. */
const OFF = { ...home.env, SYSI_VDSO: "0" };

async function run(extra: string[]) {
  const out = join(dir, `stats-${extra.join("") || "plain"}.json`);
  const r = await sysi(["run", ...extra, "--hook", "count", "--json", "-o", out, "--", PROG], OFF);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(`${N}\n`);
  return JSON.parse(readFileSync(out, "utf8")) as {
    escapes: { vdso: { sites: number; functions: string[]; caught: boolean } };
    syscalls: { name: string; calls: number }[];
  };
}

describe("the vDSO's system-call sites", () => {
  test.skipIf(!hasObjdump)(
    "the summary counts them as objdump -d does (needs objdump)",
    async () => {
      const image = dumpVdso();
      if (image === null) return; // no vDSO mapped (vdso=0): nothing to name
      const dis = Bun.spawnSync(["objdump", "-d", image], { stdout: "pipe" }).stdout.toString();
      const want = dis.split("\n").filter((l) => /\tsyscall\s*$/.test(l) || /\tsysenter\s*$/.test(l)).length;
      const j = await run([]);
      expect(j.escapes.vdso.sites).toBe(want);
      expect(j.escapes.vdso.caught).toBe(false);
      if (want > 0) expect(j.escapes.vdso.functions).toContain("clock_gettime");
      const text = await sysi(["run", "--hook", "count", "--", PROG], OFF);
      expect(text.stderr).toContain(`sysi: not instrumented: the vDSO's ${want} system-call site`);
    },
    120_000,
  );

  test.skipIf(!hasStrace)(
    "calls falling back there bypass the hook, and --complete counts them (needs strace)",
    async () => {
      const log = join(dir, "strace.txt");
      const s = Bun.spawnSync(["strace", "-f", "-qq", "-c", "-o", log, PROG], { stdout: "pipe" });
      expect(s.exitCode).toBe(0);
      const row = readFileSync(log, "utf8")
        .split("\n")
        .find((l) => / clock_gettime$/.test(l));
      const straceCalls = Number(row?.trim().split(/\s+/)[3] ?? Number.NaN);
      expect(straceCalls).toBeGreaterThanOrEqual(N);
      const calls = (j: Awaited<ReturnType<typeof run>>) =>
        j.syscalls.find((x) => x.name === "clock_gettime")?.calls ?? 0;
      // without --complete (and libsysi's own catching off) the hook never sees them: what the
      // summary line says
      expect(calls(await run([]))).toBe(0);
      if (!hasSud) return; // no Syscall User Dispatch on this kernel (doctor's probe): no --complete
      const c = await run(["--complete"]);
      expect(c.escapes.vdso.caught).toBe(true);
      expect(calls(c)).toBe(straceCalls);
    },
    120_000,
  );
});
