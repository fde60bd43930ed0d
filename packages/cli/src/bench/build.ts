/**
 * The benchmark's C programs — getppid (the measured loop), spawn (the startup timer) and the
 * self-answering hook — built from the sources the CLI package ships (packages/cli/bench/) with
 * the system C compiler, on first use, into the cache as the runtimes are (native-build.ts):
 * `<cacheDir>/bench/<hash>/`, where the hash covers the sources, the ud2 plugin's resume.S that
 * getppid links, the sysi.h headers, the compiler's `--version` line and the flags. A build goes
 * to a temp dir renamed into place (the first rename wins), and what is found there is used only
 * when trusted (trust.ts): getppid and spawn are run and the hook is loaded.
 *
 * Everything is found through package resolution (@sysi/core, @sysi/ud2, the CLI's own root),
 * so an installed `sysi bench` works as well as one in a checkout.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BuildError, FileError, isSysiError } from "@sysi/core/errors";
import { cacheLocation, checkTrustedFile, openCacheDir } from "@sysi/core/internal";
import { cachedCompilerId } from "@sysi/core/runtime";
import { sysiCoreApi } from "../registry.ts";

export interface BenchPaths {
  /** The bench's C sources: getppid.c, spawn.c, bench.h, hooks/self-answer.c (the CLI's bench/). */
  bench: string;
  /** Directory with sysi.h (@sysi/core's native/include). */
  includeDir: string;
  /** @sysi/core's native/: libsysi's sources and Makefile. */
  coreNative: string;
  /** @sysi/ud2's native/resume.S: the trap return the sig-*-direct floors of getppid use. */
  trapResume: string;
  /** The CLI's bin/run.js (the startup rows run it). */
  cliBin: string;
}

const SOURCES = ["getppid.c", "spawn.c", "bench.h", join("hooks", "self-answer.c")];

const packageDir = (name: string) => dirname(fileURLToPath(import.meta.resolve(`${name}/package.json`)));

/** Locate what `sysi bench` needs: the CLI's bench/ sources, core's runtime, ud2's resume.S. */
export function benchPaths(cliRoot = resolve(import.meta.dir, "..", "..")): BenchPaths {
  const bench = join(cliRoot, "bench");
  const missing = SOURCES.filter((f) => !existsSync(join(bench, f)));
  if (missing.length > 0) {
    throw new FileError("BENCH_NO_SOURCES", `benchmark sources missing in ${bench}: ${missing.join(", ")}`, {
      suggestions: ["reinstall sysi: its package ships bench/"],
    });
  }
  let trapResume: string;
  try {
    trapResume = join(packageDir("@sysi/ud2"), "native", "resume.S");
  } catch {
    trapResume = "";
  }
  if (!existsSync(trapResume)) {
    throw new FileError("BENCH_NO_SOURCES", "the ud2 plugin's native/resume.S (linked into bench/getppid) not found", {
      suggestions: ["reinstall sysi: it depends on @sysi/ud2"],
    });
  }
  return {
    bench,
    includeDir: sysiCoreApi().includeDir,
    coreNative: join(packageDir("@sysi/core"), "native"),
    trapResume,
    cliBin: join(cliRoot, "bin", "run.js"),
  };
}

export interface BenchBinaries {
  /** The measured program (normal dynamically linked PIE, -O2 -mno-red-zone). */
  getppid: string;
  /** posix_spawn + waitpid startup timer. */
  spawn: string;
  /** The self-answering hook .so (public hook ABI). */
  selfAnswer: string;
}

const WARN = ["-Wall", "-Wextra", "-Werror"];

/** The three compiler command lines (without cc and `-o OUT`), by output file name. */
function builds(paths: BenchPaths): [keyof BenchBinaries, string, string[]][] {
  const b = paths.bench;
  return [
    ["getppid", "getppid", ["-O2", "-mno-red-zone", "-fPIE", "-pie", ...WARN, join(b, "getppid.c"), paths.trapResume]],
    ["spawn", "spawn", ["-O2", ...WARN, join(b, "spawn.c")]],
    [
      "selfAnswer",
      "libsysi-bench-self-answer.so",
      [
        "-O2",
        "-fPIC",
        "-shared",
        "-mgeneral-regs-only",
        "-ffreestanding",
        "-fno-tree-loop-distribute-patterns",
        ...WARN,
        `-I${paths.includeDir}`,
        `-I${b}`,
        join(b, "hooks", "self-answer.c"),
      ],
    ],
  ];
}

/** The build's cache key: compiler, command lines (paths left out) and every input's bytes. */
function buildHash(paths: BenchPaths, compiler: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(`sysi-bench\0cc\0${compiler}\0`);
  for (const [, out, args] of builds(paths)) h.update(`${out}\0${args.filter((a) => a.startsWith("-")).join(" ")}\0`);
  const headers = readdirSync(paths.includeDir)
    .filter((f) => f.endsWith(".h"))
    .sort()
    .map((f) => join(paths.includeDir, f));
  for (const file of [...SOURCES.map((f) => join(paths.bench, f)), paths.trapResume, ...headers]) {
    const data = readFileSync(file);
    h.update(`${file.slice(file.lastIndexOf("/") + 1)}\0${data.length}\0`);
    h.update(data);
  }
  return h.digest("hex").slice(0, 16);
}

/** cc through tinyexec (a long-running command: its ~50 ms import does not matter here). */
async function cc(compiler: string, args: string[], out: string): Promise<void> {
  const { x, NonZeroExitError } = await import("tinyexec");
  try {
    await x(compiler, [...args, "-o", out], {
      throwOnError: true,
      nodeOptions: { stdio: ["ignore", "pipe", "pipe"] },
    });
  } catch (e) {
    const err = e instanceof NonZeroExitError ? (e.output?.stderr ?? "") : e instanceof Error ? e.message : String(e);
    const line = err.split("\n").find((l) => l.includes("error")) ?? err.split("\n")[0] ?? "";
    throw new BuildError("BENCH_BUILD", `cc failed for ${out}: ${line.trim()}`);
  }
}

export interface BuildBenchOptions {
  /** Cache root (default: the sysi cache, SYSI_CACHE_DIR and so on). */
  cacheDir?: string;
  /** C compiler (default: $CC or "cc"). */
  cc?: string;
}

/**
 * The three benchmark artifacts, built on first use into `<cache>/bench/<hash>/` (in parallel).
 * BuildError BENCH_CC_MISSING (one line) when there is no C compiler.
 */
export async function buildBench(paths: BenchPaths, opts: BuildBenchOptions = {}): Promise<BenchBinaries> {
  const compiler = opts.cc ?? process.env.CC ?? "cc";
  const base = openCacheDir(opts.cacheDir === undefined ? cacheLocation() : { path: opts.cacheDir, from: null });
  let id: string;
  try {
    id = await cachedCompilerId(compiler, base);
  } catch (e) {
    if (isSysiError(e) && e.code === "BUILD_CC_MISSING")
      throw new BuildError(
        "BENCH_CC_MISSING",
        `C compiler "${compiler}" not found (sysi bench compiles its programs with it)`,
        {
          suggestions: ["apt-get install gcc", "or set CC"],
        },
      );
    throw e;
  }
  const final = join(base, "bench", buildHash(paths, id));
  const plan = builds(paths);
  const bins = Object.fromEntries(plan.map(([key, out]) => [key, join(final, out)])) as unknown as BenchBinaries;
  const trusted = () => {
    for (const [key] of plan) checkTrustedFile("bench program", bins[key], base);
  };
  if (plan.every(([key]) => existsSync(bins[key]))) {
    trusted();
    return bins;
  }
  mkdirSync(dirname(final), { recursive: true, mode: 0o755 });
  const tmp = `${final}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(tmp, { mode: 0o755 });
  try {
    await Promise.all(plan.map(([, out, args]) => cc(compiler, args, join(tmp, out))));
    // whatever the umask: trust.ts refuses group/other-writable code
    for (const [, out] of plan) chmodSync(join(tmp, out), 0o755);
    chmodSync(tmp, 0o755);
    try {
      renameSync(tmp, final);
    } catch (e) {
      // another sysi bench renamed first (ENOTEMPTY/EEXIST): use theirs
      if (!plan.every(([key]) => existsSync(bins[key])))
        throw new BuildError("BENCH_BUILD", `cannot install the bench programs into ${final}: ${String(e)}`);
    }
    trusted();
    return bins;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
