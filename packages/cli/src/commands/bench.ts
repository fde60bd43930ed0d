import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Flags } from "@oclif/core";
import { SysiCommand } from "../base-command.ts";
import { runBench } from "../bench/index.ts";
import { renderBench } from "../bench/report.ts";
import { renderBenchSvg } from "../bench/svg.ts";

/** --svg FILE: null when its directory exists and is writable and FILE is no directory, else why. */
function svgPathError(file: string): string | null {
  const dir = dirname(resolve(file));
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(dir);
  } catch {
    return `--svg ${file}: no such directory ${dir}`;
  }
  if (!st.isDirectory()) return `--svg ${file}: ${dir} is not a directory`;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return `--svg ${file}: cannot write in ${dir}`;
  }
  if (existsSync(file) && statSync(file).isDirectory()) return `--svg ${file}: is a directory`;
  return null;
}

export default class Bench extends SysiCommand {
  static override summary = "Measure ns per system call under each strategy, and the startup cost of sysi run.";
  static override description =
    `Runs bench/getppid (a loop over getppid: an inline syscall instruction, and libc's syscall()) natively, under every installed strategy (zpoline, punning, ud2, ud2:int3, ud2:hlt, ud2:int4) with the passthrough, count and a self-answering hook (no syscall: the instrumentation cost alone, also at syscall numbers 39, 229 and 232), an indirect-call floor, each trap's kernel floors (its signal round trip through rt_sigreturn, and resumed without it: the least a trap strategy can cost here) and strace -f. All configurations are interleaved: round 1 of every one, then round 2, and so on. Each row shows the median over the rounds and the best ~1 ms block (the cost in a quiet window of the machine: interference only slows a loop down), and the headline checks the issues' goals on both (and says when a trap's goal is out of reach on this machine). Then times /bin/true natively, under sysi run (cold and warm cache) and through the launcher path (sysi env).

Configurations whose strategy, runtime or host feature is missing are listed as skipped with the reason; one that crashes, returns a wrong result or leaves its site unpatched is listed as failed. Needs a C compiler: the bench programs (shipped as C sources in the CLI package's bench/) are built on first use into the sysi cache.`;
  static override examples = [
    "<%= config.bin %> bench",
    "<%= config.bin %> bench --rounds 7 --json > bench.json",
    "<%= config.bin %> bench -s zpoline,ud2:int3",
    "<%= config.bin %> bench --only startup",
    "<%= config.bin %> bench --svg docs/bench.svg",
  ];
  static override flags = {
    rounds: Flags.integer({ summary: "rounds of every configuration (default 5; tiny mode 1)", min: 1, max: 100 }),
    json: Flags.boolean({ summary: "print the whole result as one JSON document" }),
    strategy: Flags.string({
      char: "s",
      summary: "strategies to measure, each on its own: names or specs, e.g. zpoline,ud2:int3 (default: all)",
      description: "Native rows and the floor always run (every ratio needs them). Same as naming them in --only.",
    }),
    only: Flags.string({
      summary: "comma list of groups to run: strace, startup, or strategy names or specs as with -s",
      description: "Native rows and the floor always run (every ratio needs them).",
    }),
    "target-ms": Flags.integer({
      summary: "one repetition takes about this many ms (default 75)",
      min: 1,
      max: 10_000,
    }),
    reps: Flags.integer({ summary: "timed repetitions per process (default 5)", min: 1, max: 64 }),
    tiny: Flags.boolean({
      summary: "a quick smoke run: 1 round, ~2 ms repetitions, a few startup runs (numbers are noise)",
    }),
    verbose: Flags.boolean({ char: "v", summary: "print each step to stderr" }),
    svg: Flags.string({
      summary: "also write a chart of the rows to FILE (SVG: ns per call, log scale, native and floors marked)",
      helpValue: "FILE",
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Bench);
    // a chart that cannot be written is found out before minutes of measuring, not after
    const svgError = flags.svg === undefined ? null : svgPathError(flags.svg);
    if (svgError !== null) this.error(svgError, { exit: 2 });
    const groups = [flags.strategy, flags.only].filter((g): g is string => g !== undefined);
    const only =
      groups.length === 0
        ? undefined
        : groups
            .join(",")
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "");
    const tty = process.stderr.isTTY === true;
    let shown = false;
    const progress = (line: string) => {
      if (flags.verbose) process.stderr.write(`sysi bench: ${line}\n`);
      else if (tty) {
        process.stderr.write(`\r\u001b[K${line.slice(0, 100)}`);
        shown = true;
      }
    };
    const result = await runBench({
      config: this.config,
      rounds: flags.rounds,
      targetMs: flags["target-ms"],
      reps: flags.reps,
      only,
      tiny: flags.tiny,
      progress,
    }).finally(() => {
      if (shown) process.stderr.write("\r\u001b[K");
    });
    if (flags.svg !== undefined) {
      const { writeFileAtomic } = await import("@sysi/core/internal");
      writeFileAtomic(flags.svg, renderBenchSvg(result));
    }
    if (flags.json) this.printJson(result);
    else process.stdout.write(renderBench(result));
  }
}
