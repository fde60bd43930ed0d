/**
 * Builds the benchmark's C programs (bench/getppid.c, bench/spawn.c, bench/hooks/self-answer.c)
 * with the system C compiler into a directory the caller owns (a temp dir per run).
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { BuildError, FileError } from "@sysi/core/errors";

export interface BenchPaths {
  /** The monorepo root (holds bench/, scripts/, packages/). */
  root: string;
  bench: string;
  /** Directory with sysi.h. */
  includeDir: string;
  /** packages/core/native: libsysi's sources and Makefile. */
  coreNative: string;
  /** plugins/ud2/native/resume.S: the trap return the sig-*-direct floors of getppid use. */
  trapResume: string;
  /** scripts/plan-dir.ts */
  planDir: string;
  /** packages/cli/bin/run.js */
  cliBin: string;
}

/** Locate the source checkout `sysi bench` needs (bench/ is not shipped in a package). */
export function benchPaths(root = resolve(import.meta.dir, "../../../..")): BenchPaths {
  const bench = join(root, "bench");
  if (!existsSync(join(bench, "getppid.c"))) {
    throw new FileError("BENCH_NO_SOURCES", `benchmark sources not found in ${bench}`, {
      suggestions: ["run sysi bench from a source checkout of sysi"],
    });
  }
  const coreNative = join(root, "packages", "core", "native");
  return {
    root,
    bench,
    includeDir: join(coreNative, "include"),
    coreNative,
    trapResume: join(root, "plugins", "ud2", "native", "resume.S"),
    planDir: join(root, "scripts", "plan-dir.ts"),
    cliBin: join(root, "packages", "cli", "bin", "run.js"),
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

/** cc through tinyexec (a long-running command: its ~50 ms import does not matter here). */
async function cc(args: string[], out: string): Promise<void> {
  const { x, NonZeroExitError } = await import("tinyexec");
  try {
    await x("cc", [...args, "-o", out], { throwOnError: true, nodeOptions: { stdio: ["ignore", "pipe", "pipe"] } });
  } catch (e) {
    const err = e instanceof NonZeroExitError ? (e.output?.stderr ?? "") : e instanceof Error ? e.message : String(e);
    const line = err.split("\n").find((l) => l.includes("error")) ?? err.split("\n")[0] ?? "";
    throw new BuildError("BENCH_BUILD", `cc failed for ${out}: ${line.trim()}`);
  }
}

/** Compile the three benchmark artifacts into `dir` (in parallel). */
export async function buildBench(paths: BenchPaths, dir: string): Promise<BenchBinaries> {
  const b = paths.bench;
  const bins: BenchBinaries = {
    getppid: join(dir, "getppid"),
    spawn: join(dir, "spawn"),
    selfAnswer: join(dir, "libsysi-bench-self-answer.so"),
  };
  await Promise.all([
    cc(["-O2", "-mno-red-zone", "-fPIE", "-pie", ...WARN, join(b, "getppid.c"), paths.trapResume], bins.getppid),
    cc(["-O2", ...WARN, join(b, "spawn.c")], bins.spawn),
    cc(
      [
        "-O2",
        "-fPIC",
        "-shared",
        "-mgeneral-regs-only",
        "-ffreestanding",
        "-fno-tree-loop-distribute-patterns",
        ...WARN,
        `-I${paths.includeDir}`,
        `-I${dirname(join(b, "bench.h"))}`,
        join(b, "hooks", "self-answer.c"),
      ],
      bins.selfAnswer,
    ),
  ]);
  return bins;
}
