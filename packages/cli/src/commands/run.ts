import {
  accessSync,
  constants as constants_fs,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { constants, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Args, Flags } from "@oclif/core";
import { SysiError } from "@sysi/core/errors";
import { createStatsFile, readStatsFile } from "@sysi/core/runtime/stats-file";
import { SysiCommand } from "../base-command.ts";
import { startPlanServer } from "../run/plan-server.ts";
import { planOnDemand } from "../run/planning.ts";
import { elfToPlan, prepareRun, resolveProgram } from "../run/prepare.ts";
import { renderRunSummary, summaryJson } from "../run/summary.ts";

const FORWARDED = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT"] as const;

export default class Run extends SysiCommand {
  static override summary = "Run a program with every system call going through a hook.";
  static override description =
    `Plans the program's modules (cached), preloads the sysi runtime and the chain's strategy runtimes, and runs the program with its stdio, signals and exit status passed through (killed by signal n → exit 128+n). Programs it executes and libraries it dlopens are planned on demand.

The default chain is the best this host allows: punning (when installed), then zpoline (only where page 0 can be mapped), then ud2, which always applies. Strategies refuse sites they cannot patch safely (the next one takes them); see \`sysi plan\` for why.

Security: zpoline maps page 0 executable in the program. While it is mapped, NULL function-pointer calls are still caught (the entry checks the return address), but NULL *reads* no longer fault (this CPU has no protection keys to make page 0 execute-only), which hides bugs that Go's nil checks or JVM-style implicit null checks rely on. sysi never changes vm.mmap_min_addr or any other system setting.`;
  static override examples = [
    "<%= config.bin %> run -- ls -la /usr/lib",
    "<%= config.bin %> run -s zpoline,ud2 --hook trace -o trace.txt -- python3 -c 'print(1)'",
    "<%= config.bin %> run --hook count --json -o counts.json -- git status",
    "<%= config.bin %> run -e openat,read --hook trace -- cat /etc/hostname",
  ];
  static override strict = false;
  static override args = {
    command: Args.string({ description: "program to run, then its arguments (after --)", required: true }),
  };
  static override flags = {
    strategy: Flags.string({
      char: "s",
      summary: "strategy chain tried per site in order, e.g. punning,zpoline,ud2 (default: best for this host)",
    }),
    hook: Flags.string({
      summary: "passthrough | count | trace | path of a hook .so (see sysi.h)",
      default: "count",
    }),
    output: Flags.string({ char: "o", summary: "write the count summary or trace here instead of stderr" }),
    json: Flags.boolean({ summary: "count: JSON summary; trace: JSON lines" }),
    filter: Flags.string({ char: "e", summary: "only these system calls reach the hook, e.g. read,write,openat" }),
    verbose: Flags.boolean({ char: "v", summary: "print planning and runtime details to stderr" }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Run);
    const cmd = argv as string[];
    if (cmd.length === 0)
      throw new SysiError("RUN_NO_COMMAND", "no command given (usage: sysi run [flags] -- CMD ARGS)");
    const program = resolveProgram(cmd[0] as string);
    if (flags.output !== undefined) checkWritable(flags.output);
    const work = mkdtempSync(join(tmpdir(), "sysi-run-"));
    let server: ReturnType<typeof startPlanServer> | undefined;
    try {
      const prepared = await prepareRun({
        config: this.config,
        spec: flags.strategy,
        hook: flags.hook,
        filter: flags.filter,
        exe: elfToPlan(program),
      });
      const statsPath = join(work, "stats");
      createStatsFile(statsPath);
      const sockPath = join(work, "plan.sock");
      server = startPlanServer(sockPath, (path) => planOnDemand(path, prepared));
      const env: Record<string, string | undefined> = { ...process.env, ...prepared.env };
      env.SYSI_STATS_FILE = statsPath;
      env.SYSI_PLAN_SOCK = sockPath;
      if (flags.hook === "trace") {
        if (flags.output !== undefined) env.SYSI_TRACE_FILE = resolve(flags.output);
        if (flags.json) env.SYSI_TRACE_JSON = "1";
      }
      if (flags.verbose) {
        const mods = prepared.modules.map((m) => `${m.path}${m.hit ? "" : " (planned)"}`).join(", ");
        process.stderr.write(`sysi: chain ${prepared.chain.spec}; modules: ${mods || "none"}\n`);
        process.stderr.write(`sysi: setup ${JSON.stringify(prepared.timings)}\n`);
      }
      const child = Bun.spawn(cmd, { env, stdio: ["inherit", "inherit", "inherit"], argv0: cmd[0] });
      const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
      const handlers = FORWARDED.map((s) => [s, forward(s)] as const);
      for (const [s, h] of handlers) process.on(s, h);
      // The terminal sends SIGINT to the whole process group: the program decides what to do.
      const onInt = () => {};
      process.on("SIGINT", onInt);
      const exitCode = await child.exited;
      for (const [s, h] of handlers) process.off(s, h);
      process.off("SIGINT", onInt);
      const stats = readStatsFile(statsPath);
      if (flags.hook === "count") {
        const text = flags.json
          ? `${JSON.stringify(summaryJson(stats, prepared), null, 2)}\n`
          : renderRunSummary(stats, prepared);
        if (flags.output !== undefined) writeAtomic(flags.output, text);
        else process.stderr.write(text);
      } else if (flags.verbose) {
        process.stderr.write(renderRunSummary(stats, prepared, { syscalls: false }));
      }
      const signal = child.signalCode;
      const status = signal ? 128 + ((constants.signals as Record<string, number>)[signal] ?? 0) : exitCode;
      server.stop();
      server = undefined;
      rmSync(work, { recursive: true, force: true });
      this.exit(status);
    } finally {
      server?.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }
}

/** Fail before the program runs, not after, when the output cannot be written. */
function checkWritable(path: string): void {
  const target = resolve(path);
  try {
    if (statSync(target).isDirectory()) throw new SysiError("RUN_OUTPUT", `cannot write ${path}: is a directory`);
  } catch (e) {
    if (e instanceof SysiError) throw e;
  }
  try {
    accessSync(dirname(target), constants_fs.W_OK);
  } catch (e) {
    throw new SysiError("RUN_OUTPUT", `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function writeAtomic(path: string, text: string): void {
  // A device or FIFO (e.g. /dev/stderr, /dev/null) is written in place: renaming over it would
  // replace the node itself.
  let special = false;
  try {
    special = !statSync(path).isFile();
  } catch {
    // does not exist yet: a regular file
  }
  const tmp = special ? path : join(dirname(path), `.${Date.now()}-${process.pid}.sysi-tmp`);
  try {
    writeFileSync(tmp, text);
    if (!special) renameSync(tmp, path);
  } catch (e) {
    if (!special) rmSync(tmp, { force: true });
    throw new SysiError("RUN_OUTPUT", `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
