/**
 * The passthrough path (SYSI_FAST_PASSTHROUGH): with the built-in passthrough hook every
 * trampoline calls the stub copied into its own page (native/entry.S sysi_punning_sys), which
 * makes the system call itself except for the numbers the runtime must see. Oracles: the native
 * run's output, and `strace -f -i`, which gives the address after each `syscall` instruction;
 * the program's own /proc/self/maps says which addresses are trampoline pages (the memfd).
 * A call made inside a trampoline page is either at the stub (page offset in
 * [STUB_OFFSET, SLOT_OFFSET)) or at a trampoline's in-context point (below PAGE_USABLE); the
 * numbers the stub must leave to the runtime never come from the stub.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PAGE, PAGE_USABLE, SLOT_OFFSET, STUB_OFFSET } from "../src/pages.ts";
import { buildNative, LIBSYSI, modulesOf, PUNNING_SO, punningMember, runNative, which, writePlans } from "./harness.ts";

const NATIVE_OK = buildNative();
const PY = ["/usr/bin/python3", "/bin/python3"].find((p) => existsSync(p)) ?? null;
const STRACE = which("strace");

/** Signals (rt_sigaction, rt_sigprocmask, rt_sigreturn), threads (clone3), fork, file I/O. */
const SCRIPT = `
import os, signal, sys, threading
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
signal.pthread_sigmask(signal.SIG_SETMASK, old)
res = [0] * 4
def work(i):
    with open("/proc/self/stat") as f: f.read()
    res[i] = i * i
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
pid = os.fork()
if pid == 0:
    os.write(1, b"child\\n")
    os._exit(5)
print("signals", got, "threads", res, "child", os.waitpid(pid, 0)[1] >> 8, flush=True)
with open(sys.argv[1], "w") as f, open("/proc/self/maps") as m: f.write(m.read())
`;

/** Numbers the stub must hand to the runtime (sysi.h SYSI_FAST_PASSTHROUGH). */
const RUNTIME_ONLY = new Set(["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "clone", "fork", "vfork", "clone3"]);
/** Numbers a trampoline may make itself, at its in-context point. */
const IN_CONTEXT = new Set(["clone", "clone3", "vfork", "rt_sigreturn"]);

interface Call {
  name: string;
  ip: number;
}

/** `strace -f -i` lines: `pid [ip] name(` or `pid [ip] <... name resumed>`. */
function parseStrace(text: string): Call[] {
  const out: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^\d+\s+\[([0-9a-f]{16})\]\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()/.exec(line);
    if (m === null || m[2] !== undefined) continue; // a resumed call was counted when it started
    out.push({ name: m[3] as string, ip: Number.parseInt(m[1] as string, 16) });
  }
  return out;
}

function memfdRanges(maps: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const line of maps.split("\n")) {
    if (!line.includes("memfd:sysi-punning")) continue;
    const [a, b] = (line.split(/\s+/)[0] as string).split("-").map((x) => Number.parseInt(x, 16)) as [number, number];
    out.push({ start: a, end: b });
  }
  return out;
}

async function traced(hook: string): Promise<{ status: number | null; stdout: string; calls: Call[]; maps: string }> {
  const dir = mkdtempSync(join(tmpdir(), "sysi-punning-pt-"));
  await writePlans(modulesOf(PY as string), [punningMember()], join(dir, "plans"));
  const env = [
    `LD_PRELOAD=${LIBSYSI}`,
    `SYSI_PLAN_DIR=${join(dir, "plans")}`,
    `SYSI_RUNTIMES=${PUNNING_SO}#sysi_punning_ops`,
    `SYSI_HOOK=${hook}`,
  ].flatMap((e) => ["-E", e]);
  const log = join(dir, "strace.txt");
  const mapsFile = join(dir, "maps.txt");
  const r = spawnSync(STRACE as string, ["-f", "-i", "-qq", "-o", log, ...env, PY as string, "-c", SCRIPT, mapsFile], {
    encoding: "utf8",
    timeout: 90_000,
  });
  return {
    status: r.status,
    stdout: r.stdout,
    calls: parseStrace(readFileSync(log, "utf8")),
    maps: existsSync(mapsFile) ? readFileSync(mapsFile, "utf8") : "",
  };
}

describe.skipIf(!NATIVE_OK || PY === null || STRACE === null)(
  "passthrough: the stub in each trampoline page makes the call (needs cc, python3, strace)",
  () => {
    test("output as native; calls made at the page's stub, the runtime's numbers never", async () => {
      const nativeDir = mkdtempSync(join(tmpdir(), "sysi-punning-pt-native-"));
      const native = runNative([PY as string, "-c", SCRIPT, join(nativeDir, "maps.txt")]);
      expect(native.stdout).toBe("child\nsignals [10] threads [0, 1, 4, 9] child 5\n");
      const r = await traced("passthrough");
      expect(r.status).toBe(native.status);
      expect(r.stdout).toBe(native.stdout);
      const pages = memfdRanges(r.maps);
      expect(pages.length).toBeGreaterThan(0);
      const inPages = (ip: number) => pages.some((p) => ip >= p.start && ip < p.end);
      const atStub: Record<string, number> = {};
      const elsewhere: Record<string, number> = {};
      for (const c of r.calls) {
        if (!inPages(c.ip)) {
          elsewhere[c.name] = (elsewhere[c.name] ?? 0) + 1;
          continue;
        }
        const off = c.ip % PAGE;
        if (off > STUB_OFFSET && off <= SLOT_OFFSET) {
          atStub[c.name] = (atStub[c.name] ?? 0) + 1;
          expect(RUNTIME_ONLY.has(c.name)).toBe(false);
        } else {
          // a trampoline's own `syscall` (in-context), inside the trampoline area
          expect(off).toBeLessThanOrEqual(PAGE_USABLE);
          expect(IN_CONTEXT.has(c.name)).toBe(true);
        }
      }
      const total = Object.values(atStub).reduce((a, b) => a + b, 0);
      console.log(JSON.stringify({ atStub, elsewhere }));
      expect(total).toBeGreaterThan(50);
      for (const name of ["openat", "read", "write", "kill", "wait4", "mmap"])
        expect(atStub[name] ?? 0).toBeGreaterThan(0);
      // the runtime's numbers happened, through libsysi (not in a trampoline page at all) or in-context
      for (const name of ["rt_sigaction", "rt_sigprocmask"]) expect(elsewhere[name] ?? 0).toBeGreaterThan(0);
      expect((elsewhere.clone ?? 0) + (elsewhere.clone3 ?? 0)).toBeGreaterThan(0);
    }, 180_000);

    test("control: with the count hook no call is made at the stub", async () => {
      const r = await traced("count");
      expect(r.status).toBe(0);
      const pages = memfdRanges(r.maps);
      expect(pages.length).toBeGreaterThan(0);
      const stub = r.calls.filter(
        (c) => pages.some((p) => c.ip >= p.start && c.ip < p.end) && c.ip % PAGE > STUB_OFFSET,
      );
      expect(stub).toEqual([]);
    }, 180_000);
  },
);
