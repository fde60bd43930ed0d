/**
 * zpoline's runtime state (issue 13): page 0, the entry pages and the site set exist only in a
 * process where zpoline patched a site, and the set is sized to the sites (no address-space-sized
 * bitmap). What that changes for a program: NULL pointer arguments fail with EFAULT as natively
 * unless zpoline mapped page 0 on a CPU without protection keys; mlockall(MCL_CURRENT |
 * MCL_FUTURE), an address-space limit (`ulimit -v 4000000`) and a core dump behave as natively
 * under every chain; as uid 65534 (no CAP_IPC_LOCK) under `ulimit -l 8192`, where the kernel
 * refuses mlockall when the process's mapped size exceeds RLIMIT_MEMLOCK, mlockall succeeds as
 * natively (sysi's mappings: the stats file's parts in use, no reservations). Oracles: the native
 * run, and /proc/self/maps.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const NATIVE = join(import.meta.dir, "../../../core/native");
const FIXTURES = join(import.meta.dir, "fixtures/page0");
const out = mkdtempSync(join(tmpdir(), "sysi-page0-"));
const cache = mkdtempSync(join(tmpdir(), "sysi-page0-cache-"));

const host = await probeHost();
const page0 = host.check("page0")?.ok === true ? null : "page 0 cannot be mapped here";
/** What a read of address 0 does where zpoline mapped page 0 (execute-only through a pkey, or readable). */
const zpolinePage0 = host.check("pkeys")?.ok === true ? "xonly" : "readable";

/** A memory cgroup (v1) of our own, so that a runaway mlockall is OOM-killed inside it. */
const CGROUP_ROOT = "/sys/fs/cgroup/memory";
const cgroup = join(CGROUP_ROOT, `sysi-page0-test-${process.pid}`);
const noCgroup =
  process.getuid?.() === 0 && existsSync(join(CGROUP_ROOT, "cgroup.procs"))
    ? null
    : "needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory";

const prog = (name: string) => join(out, "tests", name);

const noNobody =
  process.getuid?.() !== 0
    ? "needs root to switch to uid 65534"
    : Bun.which("setpriv") === null
      ? "needs setpriv (util-linux)"
      : null;

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", NATIVE, `OUT=${out}`, "tests"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building the hard cases failed: ${r.stderr.toString()}`);
  for (const name of ["mlockall", "coredump"]) {
    const c = Bun.spawnSync(["cc", "-O2", "-Wall", "-o", prog(name), join(FIXTURES, `${name}.c`)], { stderr: "pipe" });
    if (c.exitCode !== 0) throw new Error(`building ${name} failed: ${c.stderr.toString()}`);
  }
  if (noCgroup === null) {
    mkdirSync(cgroup);
    writeFileSync(join(cgroup, "memory.limit_in_bytes"), `${512 * 1024 * 1024}`);
  }
}, 120_000);
afterAll(() => {
  if (noCgroup === null && existsSync(cgroup)) rmdirSync(cgroup);
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string[], env: Record<string, string> = {}, cwd = out): Run {
  const r = Bun.spawnSync(cmd, {
    cwd,
    env: { ...process.env, SYSI_CACHE_DIR: cache, ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGKILL",
  });
  // killed by signal n: 128 + n, as `sysi run` reports it
  const signal = r.signalCode ? (constants.signals as Record<string, number>)[r.signalCode] : undefined;
  const code = r.exitCode ?? (signal === undefined ? null : 128 + signal);
  return { code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** `sysi run` argv: chain null = the default chain (no -s). */
function sysiRun(chain: string | null, hook: string, cmd: string[], extra: string[] = []): string[] {
  return ["bun", CLI, "run", ...(chain === null ? [] : ["-s", chain]), "--hook", hook, ...extra, "--", ...cmd];
}

interface Counts {
  strategies: Record<string, number>;
  sites: Record<string, { patched: number }>;
}

/** The program under the count hook: its run and the JSON summary. */
function counted(chain: string | null, cmd: string[], env: Record<string, string> = {}): { r: Run; counts: Counts } {
  const json = join(out, `counts-${process.pid}-${Date.now()}.json`);
  const r = run(sysiRun(chain, "count", cmd, ["--json", "-o", json]), env);
  const counts = JSON.parse(readFileSync(json, "utf8")) as Counts;
  rmSync(json, { force: true });
  return { r, counts };
}

/** Mappings of `cat /proc/self/maps` as [start, end) pairs. */
function maps(text: string): [bigint, bigint][] {
  return text
    .split("\n")
    .filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l))
    .map((l) => {
      const [a, b] = (l.split(" ")[0] as string).split("-") as [string, string];
      return [BigInt(`0x${a}`), BigInt(`0x${b}`)];
    });
}

const GIB = 1n << 30n;
const CHAINS: { label: string; chain: string | null; skip: string | null }[] = [
  { label: "-s zpoline", chain: "zpoline", skip: page0 },
  { label: "-s zpoline,ud2", chain: "zpoline,ud2", skip: page0 },
  { label: "the default chain", chain: null, skip: null },
  { label: "-s ud2", chain: "ud2", skip: null },
  { label: "-s punning,ud2", chain: "punning,ud2", skip: null },
];

describe("page 0 is mapped only in a process where zpoline patched a site", () => {
  const nullargs = () => prog("nullargs");
  const native = () => run([nullargs()], { NULL_ARGS_PAGE0: "unmapped" });

  test.skipIf(page0 !== null)(
    "-s ud2,zpoline (zpoline patches nothing): no page 0, NULL arguments fail with EFAULT as natively",
    () => {
      const { r, counts } = counted("ud2,zpoline", [nullargs()], { NULL_ARGS_PAGE0: "unmapped" });
      expect(counts.sites.zpoline?.patched).toBe(0);
      expect(r.stdout).toBe(native().stdout);
      expect(r.code).toBe(0);
      const m = run(sysiRun("ud2,zpoline", "passthrough", ["cat", "/proc/self/maps"]));
      expect(maps(m.stdout).filter(([a]) => a === 0n)).toEqual([]);
    },
  );

  test.skipIf(page0 !== null)(
    "-s punning,zpoline,ud2 on a C program: punning takes every site of libc and ld.so (their signal restorers too), zpoline none, so no page 0",
    () => {
      const { r, counts } = counted("punning,zpoline,ud2", [nullargs()], { NULL_ARGS_PAGE0: "unmapped" });
      expect(r.code).toBe(0);
      expect(counts.sites.zpoline?.patched ?? 0).toBe(0);
      expect(r.stdout).toBe(native().stdout);
    },
  );

  for (const chain of [null, "punning,zpoline,ud2"]) {
    const label = chain === null ? "the default chain" : `-s ${chain}`;
    test.skipIf(page0 !== null)(
      `${label}: NULL arguments fail with EFAULT as natively, unless zpoline took a site punning refused (then page 0 is ${zpolinePage0})`,
      () => {
        const want = native().stdout;
        const { r, counts } = counted(chain, [nullargs()], { NULL_ARGS_PAGE0: "unmapped" });
        expect(r.code).toBe(0);
        if ((counts.sites.zpoline?.patched ?? 0) === 0) {
          expect(r.stdout).toBe(want);
          return;
        }
        // the default chain takes zpoline only where a protection key makes page 0 execute-only
        expect(chain !== null || zpolinePage0 === "xonly").toBe(true);
        // zpoline mapped page 0: only what a read of address 0 does may differ, as on -s zpoline
        expect(run(sysiRun(chain, "passthrough", [nullargs()]), { NULL_ARGS_PAGE0: zpolinePage0 }).stdout).toBe(want);
        if (zpolinePage0 === "readable") expect(r.stdout).toContain("ok=0");
      },
    );
  }

  test.skipIf(page0 !== null)(
    `-s zpoline: page 0 mapped for its sites, ${zpolinePage0}: ${
      zpolinePage0 === "xonly"
        ? "NULL arguments still fail with EFAULT"
        : "NULL arguments that the kernel reads no longer fail with EFAULT (README, Security); writes to address 0 still do"
    }`,
    () => {
      const want = native().stdout;
      const { r, counts } = counted("zpoline", [nullargs()], { NULL_ARGS_PAGE0: zpolinePage0 });
      expect(counts.sites.zpoline?.patched).toBeGreaterThan(0);
      expect(r.stdout).toBe(want);
      const asNative = run(sysiRun("zpoline", "passthrough", [nullargs()]), { NULL_ARGS_PAGE0: "unmapped" }).stdout;
      const lines = (s: string) => s.split("\n").filter((l) => l !== "");
      const differing = lines(asNative).filter((l, i) => l !== lines(want)[i]);
      if (zpolinePage0 === "xonly") expect(differing).toEqual([]);
      else {
        expect(differing.length).toBeGreaterThan(0);
        expect(differing.every((l) => / reads address 0 /.test(l))).toBe(true);
      }
    },
  );
});

/**
 * Programs that rely on NULL reads faulting (issue 13's examples): a C handler that looks at
 * si_code and si_addr, Java's implicit null checks, Go's recoverable nil-dereference panic. Under
 * the default chain (zpoline only where a protection key makes page 0 execute-only) they behave as
 * natively on every host; with a protection key, also under -s zpoline,ud2 (the zpoline runtime
 * reports a page-0 data fault with the native si_code, SEGV_MAPERR, not SEGV_PKUERR).
 */
describe("programs that rely on NULL faults behave as natively", () => {
  const noGo = Bun.which("go") === null ? "needs go (scripts/setup.sh installs golang-go)" : null;
  const noJava = Bun.which("javac") === null || Bun.which("java") === null ? "needs a JDK (javac and java)" : null;
  const nullChains: { label: string; chain: string | null; skip: string | null }[] = [
    { label: "the default chain", chain: null, skip: null },
    {
      label: "-s zpoline,ud2",
      chain: "zpoline,ud2",
      skip:
        page0 ??
        (zpolinePage0 === "xonly" ? null : "no protection keys: page 0 is readable under zpoline (README, Security)"),
    },
  ];
  let goBin: string | null = null;
  let javaDir: string | null = null;
  beforeAll(() => {
    const c = Bun.spawnSync(["cc", "-O2", "-Wall", "-o", prog("nullsegv"), join(FIXTURES, "nullsegv.c")], {
      stderr: "pipe",
    });
    if (c.exitCode !== 0) throw new Error(`building nullsegv failed: ${c.stderr.toString()}`);
    if (noGo === null) {
      // a dynamically linked Go program (LD_PRELOAD needs ld.so): cgo with the external linker
      const env: Record<string, string | undefined> = { ...process.env, CGO_ENABLED: "1", GOFLAGS: "-buildvcs=false" };
      if (env.GOCACHE === undefined && env.HOME === undefined) env.GOCACHE = join(out, "gocache");
      const bin = prog("nilgo");
      const g = Bun.spawnSync(["go", "build", "-ldflags=-linkmode=external", "-o", bin, "."], {
        cwd: join(FIXTURES, "nilgo"),
        env,
        stderr: "pipe",
      });
      if (g.exitCode !== 0) throw new Error(`building nilgo failed: ${g.stderr.toString()}`);
      goBin = bin;
      // the same program without runtime/cgo (cgo.go's build tag), still linked by the external
      // linker: pure Go that owns %fs, which sysi run must refuse
      const p = Bun.spawnSync(
        ["go", "build", "-tags", "nocgo", "-ldflags=-linkmode=external", "-o", `${bin}-nocgo`, "."],
        {
          cwd: join(FIXTURES, "nilgo"),
          env,
          stderr: "pipe",
        },
      );
      if (p.exitCode !== 0) throw new Error(`building nilgo without cgo failed: ${p.stderr.toString()}`);
    }
    if (noJava === null) {
      javaDir = join(out, "java");
      mkdirSync(javaDir, { recursive: true });
      const j = Bun.spawnSync(["javac", "-d", javaDir, join(FIXTURES, "Npe.java")], { stderr: "pipe" });
      if (j.exitCode !== 0) throw new Error(`javac failed: ${j.stderr.toString()}`);
    }
  }, 300_000);

  const same = (chain: string | null, cmd: string[]) => {
    const native = run(cmd);
    const inst = run(sysiRun(chain, "passthrough", cmd));
    expect(inst.stdout).toBe(native.stdout);
    expect(inst.code).toBe(native.code);
    return native;
  };

  for (const c of nullChains) {
    test.skipIf(c.skip !== null)(`${c.label}: a C NULL read faults with the native si_code and si_addr`, () => {
      expect(same(c.chain, [prog("nullsegv")]).stdout).toBe("SIGSEGV si_code 1 si_addr 0x8\n");
    });
    test.skipIf(c.skip !== null || noGo !== null)(
      `${c.label}: a Go nil dereference is a recoverable panic${noGo ? ` (${noGo})` : ""}`,
      () => {
        expect(same(c.chain, [goBin as string]).stdout).toContain("recovered: runtime error: invalid memory address");
      },
      120_000,
    );
    test.skipIf(c.skip !== null || noJava !== null)(
      `${c.label}: Java's NullPointerExceptions are thrown and its sum is right${noJava ? ` (${noJava})` : ""}`,
      () => {
        expect(same(c.chain, ["java", "-cp", javaDir as string, "Npe"]).stdout).toBe("sum=30000000000 npes=100000\n");
      },
      120_000,
    );
  }
});

describe("a dynamically linked Go program without cgo", () => {
  const noGo = Bun.which("go") === null ? "needs go (scripts/setup.sh installs golang-go)" : null;
  // Go's runtime points %fs at its own per-M storage, where libsysi's thread-local state would
  // land in the middle of runtime.m (it crashed as "bad g in signal handler" once libsysi's TLS
  // grew by 8 bytes): sysi run says so and stops before starting it, under every chain
  test.skipIf(noGo !== null)(`is refused with one line and exit 2${noGo ? ` (${noGo})` : ""}`, () => {
    const bin = `${prog("nilgo")}-nocgo`;
    expect(existsSync(bin)).toBe(true);
    expect(run([bin]).stdout).toContain("recovered: runtime error: invalid memory address");
    for (const chain of [null, "ud2", "punning,ud2"]) {
      const r = run(sysiRun(chain, "passthrough", [bin]));
      expect({ chain, code: r.code, stdout: r.stdout }).toEqual({ chain, code: 2, stdout: "" });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("is a Go program without cgo linked against libc");
    }
  });
});

describe("zpoline's runtime state is sized to what it serves", () => {
  test.skipIf(page0 !== null)("-s zpoline: page 0 and the entry pages, and no mapping of 1 GiB or more", () => {
    const native = maps(run(["cat", "/proc/self/maps"]).stdout);
    const inst = maps(run(sysiRun("zpoline", "passthrough", ["cat", "/proc/self/maps"])).stdout);
    expect(inst.filter(([a, b]) => a === 0n && b === 4096n).length).toBe(1);
    expect(native.filter(([a, b]) => b - a >= GIB)).toEqual([]);
    expect(inst.filter(([a, b]) => b - a >= GIB)).toEqual([]);
  });

  for (const c of CHAINS) {
    test.skipIf(c.skip !== null || noCgroup !== null)(
      `${c.label}: mlockall(MCL_CURRENT | MCL_FUTURE) as natively, in a 512 MiB memory cgroup${
        noCgroup ? ` (${noCgroup})` : ""
      }`,
      () => {
        const inCgroup = (cmd: string[]) => ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...cmd];
        const native = run(inCgroup([prog("mlockall")]));
        const inst = run(inCgroup(sysiRun(c.chain, "passthrough", [prog("mlockall")])));
        expect(native.code).toBe(0);
        expect(inst.stdout).toBe(native.stdout);
        expect(inst.code).toBe(0);
      },
    );
  }

  /** A world-readable dir for uid 65534: the mlockall program, and its own home, cache and tmp. */
  let nobodyDir: string | null = null;
  const nobody = (): { dir: string; env: Record<string, string> } => {
    if (nobodyDir === null) {
      nobodyDir = mkdtempSync(join(out, "nobody-"));
      chmodSync(out, 0o755);
      chmodSync(nobodyDir, 0o755);
      copyFileSync(prog("mlockall"), join(nobodyDir, "mlockall"));
      chmodSync(join(nobodyDir, "mlockall"), 0o755);
      for (const d of ["home", "cache", "tmp"]) {
        mkdirSync(join(nobodyDir, d));
        chownSync(join(nobodyDir, d), 65534, 65534);
      }
    }
    const dir = nobodyDir;
    return { dir, env: { HOME: join(dir, "home"), SYSI_CACHE_DIR: join(dir, "cache"), TMPDIR: join(dir, "tmp") } };
  };
  for (const c of CHAINS.filter((c) => c.chain === null || c.chain === "ud2")) {
    test.skipIf(noNobody !== null)(
      `${c.label}: as uid 65534 under ulimit -l 8192, mlockall(MCL_CURRENT | MCL_FUTURE) as natively${
        noNobody ? ` (${noNobody})` : ""
      }`,
      () => {
        const { dir, env } = nobody();
        const asNobody = (cmd: string[]) => [
          ...["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
          ...["sh", "-c", 'ulimit -l 8192 && exec "$@"', "sh", ...cmd],
        ];
        const program = join(dir, "mlockall");
        const native = run(asNobody([program]), env, dir);
        const inst = run(asNobody(sysiRun(c.chain, "count", [program])), env, dir);
        expect(native.code).toBe(0);
        expect(native.stdout).toContain("mlockall(MCL_CURRENT | MCL_FUTURE) ok");
        expect({ code: inst.code, stdout: inst.stdout, mlockall: inst.stderr.includes("mlockall:") }).toEqual({
          code: native.code,
          stdout: native.stdout,
          mlockall: false,
        });
      },
    );
  }

  for (const c of CHAINS) {
    test.skipIf(c.skip !== null)(
      `${c.label}: under ulimit -v 4000000, output as natively and the chain serves the calls`,
      () => {
        const limited = (cmd: string[]) => ["sh", "-c", 'ulimit -v 4000000 && exec "$@"', "sh", ...cmd];
        const native = run(limited([prog("sysnr")]));
        const json = join(out, `ulimit-${Date.now()}.json`);
        const inst = run(limited(sysiRun(c.chain, "count", [prog("sysnr")], ["--json", "-o", json])));
        const counts = JSON.parse(readFileSync(json, "utf8")) as Counts;
        rmSync(json, { force: true });
        expect(inst.stdout).toBe(native.stdout);
        expect(inst.code).toBe(0);
        const first = c.chain === null ? Object.keys(counts.strategies)[0] : (c.chain.split(",")[0] as string);
        expect(counts.strategies[first as string]).toBeGreaterThan(0);
        if (c.chain?.startsWith("zpoline")) expect(counts.sites.zpoline?.patched).toBeGreaterThan(0);
      },
    );
  }

  const corePattern = readFileSync("/proc/sys/kernel/core_pattern", "utf8").trim();
  const noCoreFile = corePattern.startsWith("|") || corePattern.includes("/") ? `core_pattern is ${corePattern}` : null;
  for (const c of CHAINS) {
    test.skipIf(c.skip !== null)(
      `${c.label}: a crash dumps core as natively${noCoreFile ? ` (no core file: ${noCoreFile})` : ""}`,
      () => {
        const dump = (cmd: string[]) => {
          const dir = mkdtempSync(join(out, "core-"));
          const t0 = performance.now();
          try {
            const r = run(cmd, {}, dir);
            const core = readdirSync(dir).find((f) => f === "core" || f.startsWith("core."));
            return { r, core: core !== undefined, ms: performance.now() - t0 };
          } finally {
            // a dump still running after the timeout (a huge mapping walked page by page) is killed
            const pid = existsSync(join(dir, "pid")) ? Number(readFileSync(join(dir, "pid"), "utf8")) : 0;
            if (pid > 0) Bun.spawnSync(["kill", "-KILL", String(pid)], { stderr: "ignore" });
            rmSync(dir, { recursive: true, force: true });
          }
        };
        const native = dump([prog("coredump")]);
        const inst = dump(sysiRun(c.chain, "passthrough", [prog("coredump")]));
        expect(native.r.code).toBe(134); // SIGABRT
        expect(inst.r.stdout).toBe(native.r.stdout);
        expect(inst.r.code).toBe(134);
        if (noCoreFile === null) expect({ core: inst.core }).toEqual({ core: native.core });
        expect(inst.ms).toBeLessThan(60_000);
      },
    );
  }
});
