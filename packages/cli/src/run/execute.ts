/**
 * The body of `sysi run`, shared by the oclif command (commands/run.ts) and the start-up fast
 * path (run/fast-run.ts): prepare, start the plan server, run the program with signals
 * forwarded, print the summary, and return the exit status (killed by signal n → 128+n).
 * No @oclif/core here: the fast path must not load it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SysiError } from "@sysi/core/errors";
import { createStatsFile, readStatsFile } from "@sysi/core/runtime/stats-file";
import { writeStderr } from "../format-error.ts";
import type { RegistryConfig } from "../registry.ts";
import {
  exitError,
  exitGaps,
  exitNotice,
  parseUnpatchedFile,
  plannedGaps,
  startError,
  startNotice,
} from "./coverage.ts";
import { checkOutput, writeOutput } from "./output-file.ts";
import { startPlanServer } from "./plan-server.ts";
import { planOnDemand } from "./planning.ts";
import { elfToPlan, prepareRun, resolveProgram } from "./prepare.ts";
import { renderRunSummary, summaryJson } from "./summary.ts";

const FORWARDED = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT"] as const;

/** `sysi run`'s flags, parsed. */
export interface RunFlags {
  strategy?: string;
  hook: string;
  output?: string;
  json: boolean;
  filter?: string;
  verbose: boolean;
  /** Sites left unpatched are an error: before start (plans), at exit (run time). */
  strict: boolean;
}

/** Run `cmd` instrumented; resolves to the exit status `sysi run` exits with. */
export async function executeRun(cmd: string[], flags: RunFlags, config: RegistryConfig): Promise<number> {
  if (cmd.length === 0) throw new SysiError("RUN_NO_COMMAND", "no command given (usage: sysi run [flags] -- CMD ARGS)");
  const program = resolveProgram(cmd[0] as string);
  if (flags.output !== undefined) checkOutput(flags.output);
  const work = mkdtempSync(join(tmpdir(), "sysi-run-"));
  let server: ReturnType<typeof startPlanServer> | undefined;
  try {
    const prepared = await prepareRun({
      config,
      spec: flags.strategy,
      hook: flags.hook,
      filter: flags.filter,
      exe: elfToPlan(program),
    });
    const ahead = plannedGaps(prepared.modules);
    if (flags.strict) {
      const err = startError(prepared.chain.spec, ahead);
      if (err !== null) throw err;
    }
    const statsPath = join(work, "stats");
    createStatsFile(statsPath);
    const unpatchedPath = join(work, "unpatched");
    writeFileSync(unpatchedPath, "");
    const sockPath = join(work, "plan.sock");
    server = startPlanServer(sockPath, (path) => planOnDemand(path, prepared));
    const env: Record<string, string | undefined> = { ...process.env, ...prepared.env };
    env.SYSI_STATS_FILE = statsPath;
    env.SYSI_PLAN_SOCK = sockPath;
    env.SYSI_UNPATCHED_FILE = unpatchedPath;
    if (flags.hook === "trace") {
      if (flags.output !== undefined) env.SYSI_TRACE_FILE = resolve(flags.output);
      if (flags.json) env.SYSI_TRACE_JSON = "1";
    }
    if (flags.verbose) {
      const mods = prepared.modules.map((m) => `${m.path}${m.hit ? "" : " (planned)"}`).join(", ");
      writeStderr(`sysi: chain ${prepared.chain.spec}; modules: ${mods || "none"}\n`);
      writeStderr(`sysi: setup ${JSON.stringify(prepared.timings)}\n`);
    }
    const notice = startNotice(prepared.chain.spec, ahead);
    if (notice !== null) writeStderr(notice);
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
      if (flags.output !== undefined) writeOutput(flags.output, text);
      else writeStderr(text);
    } else if (flags.verbose) {
      writeStderr(renderRunSummary(stats, prepared, { syscalls: false }));
    }
    const late = exitGaps(
      parseUnpatchedFile(readFileSync(unpatchedPath, "utf8")),
      prepared.modules.map((m) => m.path),
      stats,
    );
    if (flags.strict) {
      const err = exitError(late);
      if (err !== null) throw err;
    }
    const lateNotice = exitNotice(late);
    if (lateNotice !== null) writeStderr(lateNotice);
    const signal = child.signalCode;
    return signal ? 128 + ((constants.signals as Record<string, number>)[signal] ?? 0) : exitCode;
  } finally {
    server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
