/**
 * mlockall under punning's lazy trampoline pages (issue 13). The runtime reserves the address
 * range around each trampoline page PROT_NONE and maps a page on its first use (plugins/punning
 * native/lazy.c); the kernel counts those reservations against RLIMIT_MEMLOCK in mlockall when
 * the caller lacks CAP_IPC_LOCK. Every stub sends mlockall to the runtime, which first maps the
 * waiting pages and ends the reservations (init.c before_mlockall), so the pages stay lazy until
 * then, also for an unprivileged user, and mlockall behaves as natively: as uid 65534 under
 * `ulimit -l 8192`, and for a root program that drops CAP_IPC_LOCK (capset, no exec) first.
 * Oracle: the native run of mlock-lazy.c (mlockall's result, the anonymous PROT_NONE size after
 * it); the reservations before the call, from /proc/self/maps, show the pages were still lazy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "../../bin/run.js");
const SRC = join(import.meta.dir, "fixtures/mlock-lazy/mlock-lazy.c");
const dir = mkdtempSync(join(tmpdir(), "sysi-mlock-lazy-"));
const PROG = join(dir, "mlock-lazy");

const notRoot = process.getuid?.() !== 0 ? "needs root (capset; switching to uid 65534)" : null;
const noSetpriv = Bun.which("setpriv") === null ? "needs setpriv (util-linux)" : null;
const noCc = Bun.which("cc") === null ? "needs cc" : null;
const skip = notRoot ?? noCc;
/** A lazy page's reservation is one 64 MiB-aligned block cut to its hole: a whole one at least. */
const RESERVED_KB = 64 * 1024;

beforeAll(() => {
  if (skip !== null) return;
  const r = Bun.spawnSync(["cc", "-O2", "-o", PROG, SRC], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cc mlock-lazy.c: ${r.stderr.toString()}`);
  chmodSync(dir, 0o755);
  for (const d of ["home", "cache", "tmp"]) {
    mkdirSync(join(dir, d));
    chownSync(join(dir, d), 65534, 65534);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  before: number;
  mlockall: string;
  after: number;
  stderr: string;
}

function run(cmd: string[], env: Record<string, string> = {}): Result {
  const r = Bun.spawnSync(cmd, {
    cwd: dir,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGKILL",
  });
  const out = r.stdout.toString();
  const num = (key: string) => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(out)?.[1] ?? Number.NaN);
  return {
    code: r.exitCode,
    before: num("reserved-before"),
    mlockall: /^mlockall (.*)$/m.exec(out)?.[1] ?? `(no line; stdout ${JSON.stringify(out)})`,
    after: num("reserved-after"),
    stderr: r.stderr.toString(),
  };
}

const sysi = (chain: string | null, hook: string, cmd: string[]) => [
  ...["bun", CLI, "run", ...(chain === null ? [] : ["-s", chain]), "--hook", hook, "--"],
  ...cmd,
];
const withMemlock = (cmd: string[]) => ["sh", "-c", 'ulimit -l 8192 && exec "$@"', "sh", ...cmd];
const asNobody = (cmd: string[]) => [
  ...["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
  ...withMemlock(cmd),
];
const nobodyEnv = () => ({ HOME: join(dir, "home"), SYSI_CACHE_DIR: join(dir, "cache"), TMPDIR: join(dir, "tmp") });

/** The instrumented run: pages still lazy before mlockall, then the native result and no reservation left. */
function expectAsNative(inst: Result, native: Result): void {
  expect(native.code).toBe(0);
  expect(native.mlockall).toBe("ok");
  expect({ code: inst.code, lazy: inst.before >= RESERVED_KB, mlockall: inst.mlockall, after: inst.after }).toEqual({
    code: native.code,
    lazy: true,
    mlockall: native.mlockall,
    after: native.after,
  });
}

const CASES = [
  { chain: null, hook: "passthrough" },
  { chain: null, hook: "count" },
  { chain: "punning,ud2", hook: "passthrough" },
  { chain: "punning,ud2", hook: "trace" },
];

describe("mlockall with punning's lazy trampoline pages", () => {
  for (const c of CASES) {
    const label = `${c.chain === null ? "default chain" : `-s ${c.chain}`} --hook ${c.hook}`;
    test.skipIf(skip !== null || noSetpriv !== null)(
      `${label}: as uid 65534 under ulimit -l 8192, the pages lazy until mlockall(MCL_CURRENT | MCL_FUTURE), which succeeds as natively${
        (skip ?? noSetpriv) ? ` (${skip ?? noSetpriv})` : ""
      }`,
      () => {
        const native = run(asNobody([PROG]), nobodyEnv());
        const inst = run(asNobody(sysi(c.chain, c.hook, [PROG])), nobodyEnv());
        expectAsNative(inst, native);
      },
    );
    test.skipIf(skip !== null)(
      `${label}: a root program that drops CAP_IPC_LOCK (capset) then calls mlockall gets the native result${
        skip ? ` (${skip})` : ""
      }`,
      () => {
        const native = run(withMemlock([PROG, "dropcap"]));
        const inst = run(withMemlock(sysi(c.chain, c.hook, [PROG, "dropcap"])));
        expectAsNative(inst, native);
      },
    );
  }
});
