/**
 * The body of `sysi run`, shared by the oclif command (commands/run.ts) and the start-up fast
 * path (run/fast-run.ts): prepare, start the plan server, run the program with signals
 * forwarded, print the summary, and return how the program ended (killed by signal n: status
 * 128+n, and both callers then die by n, dieLikeProgram). No @oclif/core here: the fast path
 * must not load it.
 */

import { closeSync, openSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { SysiError } from "@sysi/core/errors";
import { fileIdOf, openPrivateStatsFile, readStatsFd, type StatsSnapshot } from "@sysi/core/runtime";
import { writeStderr } from "../format-error.ts";
import type { ChainElement, RegistryConfig } from "../registry.ts";
import {
  exitError,
  exitGaps,
  exitNotice,
  parseUnpatchedFile,
  plannedGaps,
  startError,
  startNotice,
} from "./coverage.ts";
import { callerEnv, programEnv } from "./environment.ts";
import {
  commandError,
  commandEscape,
  commandNotice,
  environNotice,
  escapeError,
  escapeNotice,
  escapeReport,
  escapeSentence,
  int80Sites,
  parseExecEscapes,
  vdsoSites,
} from "./escapes.ts";
import { ensureExecHelper, makeWorkDir, planLaunch } from "./launch.ts";
import { readOrigin } from "./origin.ts";
import { startPlanServer } from "./plan-server.ts";
import { planOnDemand } from "./planning.ts";
import { elfToPlan, prepareRun, resolveProgram } from "./prepare.ts";
import { closeSink, openSink, writeSink } from "./sink.ts";
import { missedError, renderRunSummary, summaryJson } from "./summary.ts";
import { superviseSignals } from "./supervise.ts";
import { parseTraceExprs } from "./trace-filter.ts";

/** `sysi run`'s flags, parsed. */
export interface RunFlags {
  strategy?: string;
  hook: string;
  output?: string;
  json: boolean;
  /** -e expressions (strace syntax, trace-filter.ts), in order. */
  filter?: string[];
  /** -t: 1, -tt: 2, -ttt: 3 (trace hook). */
  timestamps?: boolean | number;
  /** -T: each call's duration (trace hook). */
  syscallTimes?: boolean;
  /** --string-limit N (strace -s). */
  stringLimit?: string;
  /** -w: the count hook times each call (SYSI_COUNT_TIME=1): the table's time columns. */
  wallClock?: boolean;
  verbose: boolean;
  /** Sites left unpatched are an error: before start (plans), at exit (run time). */
  strict: boolean;
  /** Plan every module again, ignoring cached plans. */
  replan?: boolean;
  /** Syscall User Dispatch catches what no patch reaches (sud.c, docs/complete.md). */
  complete?: boolean;
  /** Catch the vDSO's own calls (vdso.c): on in static programs anyway, asked for in dynamic ones. */
  vdso?: boolean;
}

/** How the program ended: the status `sysi run` exits with, and the signal that killed it. */
export interface RunOutcome {
  status: number;
  signal: NodeJS.Signals | null;
}

/**
 * Signals whose default action dumps core: a core of sysi's would be Bun's, not the program's,
 * so sysi exits with 128+n for these instead of dying by them.
 */
const CORE_SIGNALS = new Set([
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGSEGV",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGSYS",
]);

/**
 * After the program died by `signal` and sysi is done (summary written, work directory gone):
 * die by the same signal, so that sysi's caller sees what the program's would have (a shell
 * running a script stops at a command killed by SIGINT, not at one that exited 130). Returns
 * when the signal does not end sysi (blocked, pid 1 of a namespace, a core signal): the caller
 * then exits with 128+n.
 */
export function dieLikeProgram(signal: NodeJS.Signals | null): void {
  if (signal === null || CORE_SIGNALS.has(signal)) return;
  try {
    // a listener added and removed leaves the default action (for SIGPIPE too, which Bun ignores)
    process.on(signal, () => {});
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } catch {
    // SIGKILL takes no listener; kill() itself does not fail for our own pid
    if (signal === "SIGKILL") process.kill(process.pid, signal);
  }
}

/**
 * Run `cmd` instrumented; resolves to the exit status `sysi run` exits with. The program gets
 * the process state the caller gave sysi (origin.ts, through sysi-exec) and the caller's
 * environment less sysi's own variables (environment.ts); signals to sysi reach it
 * (supervise.ts); its exit status is returned whatever became of the statistics.
 */
export async function executeRun(cmd: string[], flags: RunFlags, config: RegistryConfig): Promise<RunOutcome> {
  const origin = readOrigin();
  if (cmd.length === 0) throw new SysiError("RUN_NO_COMMAND", "no command given (usage: sysi run [flags] -- CMD ARGS)");
  const word = cmd[0] as string;
  if (word.includes("/") && !isAbsolute(word) && !cwdExists()) {
    throw new SysiError("RUN_NOT_FOUND", `${word}: no such file (the working directory was removed)`);
  }
  const program = resolveProgram(word);
  if (flags.hook !== "trace" && (await parseTraceExprs(flags.filter ?? [])).status !== undefined) {
    throw new SysiError("RUN_BAD_FILTER", "-e status= selects trace lines: it needs --hook trace");
  }
  const sink = openSink(flags.output, origin);
  const work = makeWorkDir(tmpdir());
  const fds: number[] = [];
  let server: ReturnType<typeof startPlanServer> | undefined;
  try {
    const [prepared, helper] = await Promise.all([
      prepareRun({
        config,
        spec: flags.strategy,
        hook: flags.hook,
        filter: flags.filter,
        exe: elfToPlan(program),
        replan: flags.replan === true,
      }),
      ensureExecHelper(),
    ]);
    const ahead = plannedGaps(prepared.modules);
    const int80 = ahead.length > 0 ? int80Sites(prepared.modules) : new Map<string, number>();
    // the kernel runs a set-ID command (or a script's set-ID interpreter) without LD_PRELOAD
    const image = elfToPlan(program) ?? program;
    const command = await commandEscape(image);
    if (flags.strict) {
      const err = startError(prepared.chain.spec, ahead, int80) ?? commandError(image, command);
      if (err !== null) throw err;
    }
    // Reached by the program's processes as /proc/<sysi>/fd/N only: nothing they can delete.
    const statsFd = openPrivateStatsFile(work);
    fds.push(statsFd);
    const unpatchedFd = openPrivateFile(join(work, "unpatched"));
    fds.push(unpatchedFd);
    const sockPath = join(work, "plan.sock");
    server = startPlanServer(sockPath, (path) => planOnDemand(path, prepared));
    const caller = callerEnv();
    const env: Record<string, string> = { ...caller, ...prepared.env };
    env.SYSI_STATS_FILE = `/proc/${process.pid}/fd/${statsFd}`;
    env.SYSI_STATS_ID = fileIdOf(statsFd);
    env.SYSI_UNPATCHED_FILE = `/proc/${process.pid}/fd/${unpatchedFd}`;
    env.SYSI_UNPATCHED_ID = fileIdOf(unpatchedFd);
    env.SYSI_PLAN_SOCK = sockPath;
    // (no SYSI_WATCH_EXEC: every strategy's passthrough path sends execve/execveat to libsysi,
    // which gives each exec sysi's variables back and reports the ones that escape)
    if (flags.vdso === true) env.SYSI_VDSO = "1";
    if (flags.complete === true) {
      env.SYSI_COMPLETE = "1";
      env.SYSI_LAZY ??= lazyForm(prepared.chain.entries);
    }
    const trace = flags.hook === "trace";
    if (flags.hook === "count" && flags.wallClock === true) env.SYSI_COUNT_TIME = "1";
    // a static program runs as its patched copy (argv[0] stays the caller's word), unless it
    // is set-ID or has capabilities: a copy would run without them, so it runs as itself
    const runs = prepared.staticCopy !== null && command === null ? realpathSync(prepared.staticCopy.path) : program;
    // ... and names the original: /proc/self/exe's readlink, AT_EXECFN (static/exe.c)
    if (runs !== program) Object.assign(env, (await import("@sysi/core/patch")).staticCopyExeEnv(runs, program, word));
    // the kernel is given the caller's word as a shell would (AT_EXECFN, the trace's execve line):
    // `./prog` stays relative; a word without a slash is the path the PATH search found
    const launch = planLaunch(
      helper,
      runs === program && word.includes("/") ? word : runs,
      cmd,
      origin,
      trace ? sink.fd : null,
    );
    if (trace) {
      env.SYSI_TRACE_FD =
        launch.outputFd === null || sink.fd === null ? "-1" : `${launch.outputFd}:${fileIdOf(sink.fd)}`;
      if (flags.json) env.SYSI_TRACE_JSON = "1";
      if (env.SYSI_FILTER !== undefined) await guardTraceFd(env);
      Object.assign(env, await traceEnv(flags));
    }
    if (flags.verbose) {
      const mods = prepared.modules.map((m) => `${m.path}${m.hit ? "" : " (planned)"}`).join(", ");
      writeStderr(`sysi: chain ${prepared.chain.spec}; modules: ${mods || "none"}\n`);
      writeStderr(`sysi: setup ${JSON.stringify(prepared.timings)}\n`);
      if (prepared.staticCopy !== null) {
        const { path, hit } = prepared.staticCopy;
        writeStderr(`sysi: statically linked: runs as the patched copy ${path}${hit ? "" : " (written now)"}\n`);
      }
    }
    const notice = startNotice(prepared.chain.spec, ahead, int80);
    if (notice !== null) writeStderr(notice);
    const commandLine = commandNotice(image, command);
    if (commandLine !== null) writeStderr(commandLine);
    // stdio: the program's fds at their own numbers (Bun.spawn dup2s each into place)
    const stdio = launch.stdio as ["inherit", "inherit", "inherit"];
    const supervisor = superviseSignals(origin);
    let child: ReturnType<typeof Bun.spawn>;
    let exitCode: number;
    try {
      child = Bun.spawn(launch.argv, { env: programEnv(caller, env), stdio });
      supervisor.attach(child);
      exitCode = await child.exited;
    } finally {
      supervisor.stop();
    }
    const signal = child.signalCode;
    const status =
      typeof signal === "number"
        ? 128 + signal
        : signal
          ? 128 + ((constants.signals as Record<string, number>)[signal] ?? 0)
          : exitCode;
    const stats = readStats(statsFd);
    const report = readPrivateFile(unpatchedFd);
    const execs = parseExecEscapes(report);
    const escapes = escapeReport(
      command === null ? null : { path: image, kind: command },
      execs,
      int80,
      // a static program's patched copy starts the runtime at its first instruction
      Math.max(0, (stats?.processes ?? 0) - (runs === program ? 0 : 1)),
      // --complete's catch-all, or a static copy's runtime that armed SUD on the vDSO (its "vdso" slot)
      await vdsoSites(flags.complete === true || stats?.strategies.vdso !== undefined),
    );
    // the summary's text names the escaped execs: on stderr already, the notice would repeat it
    let escapesSaid = false;
    if (flags.hook === "count" && stats !== null) {
      escapesSaid = !flags.json && sink.fd === 2 && !sink.owned;
      const text = flags.json
        ? `${JSON.stringify(summaryJson(stats, prepared, escapes), null, 2)}\n`
        : renderRunSummary(stats, prepared, { escapes });
      writeSink(sink, text);
    } else if (flags.verbose && stats !== null) {
      writeStderr(renderRunSummary(stats, prepared, { syscalls: false, escapes }));
      escapesSaid = true;
    }
    const late = exitGaps(
      parseUnpatchedFile(report),
      prepared.modules.map((m) => m.path),
      stats,
    );
    const escaped = escapeSentence(execs);
    if (flags.strict) {
      const missed = stats === null ? null : missedError(stats);
      const err =
        exitError(late) ?? escapeError(escaped) ?? (missed === null ? null : new SysiError("RUN_MISSED", missed));
      if (err !== null) throw err;
    }
    const lateNotice = exitNotice(late);
    if (lateNotice !== null) writeStderr(lateNotice);
    const escapedNotice = escapeNotice(escaped);
    if (escapedNotice !== null && !escapesSaid) writeStderr(escapedNotice);
    const environ = environNotice(report);
    if (environ !== null) writeStderr(environ);
    return { status, signal: typeof signal === "string" ? signal : null };
  } finally {
    server?.stop();
    for (const fd of fds) closeSync(fd);
    closeSink(sink);
    rmSync(work, { recursive: true, force: true });
  }
}

function cwdExists(): boolean {
  try {
    process.cwd();
    return true;
  } catch {
    return false;
  }
}

/** An empty file only this process reaches (see openPrivateStatsFile): created, opened, unlinked. */
function openPrivateFile(path: string): number {
  try {
    return openSync(path, "wx+", 0o600);
  } finally {
    rmSync(path, { force: true });
  }
}

function readPrivateFile(fd: number): string {
  try {
    return readFileSync(fd, "utf8");
  } catch (e) {
    writeStderr(`sysi: warning: the unpatched-sites report is unreadable (${(e as Error).message})\n`);
    return "";
  }
}

/**
 * The statistics, or null when they are damaged: said in one line, and the program's exit
 * status stands (the program shares the mapping and may have written over it).
 */
function readStats(fd: number): StatsSnapshot | null {
  try {
    return readStatsFd(fd);
  } catch (e) {
    writeStderr(`sysi: warning: statistics damaged (${(e as Error).message}): no summary\n`);
    return null;
  }
}

/** The trace hook's options (trace-out.c): status filter, timestamps, durations, string limit, pid prefix. */
async function traceEnv(flags: RunFlags): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const { status } = await parseTraceExprs(flags.filter ?? []);
  if (status !== undefined) env.SYSI_TRACE_STATUS = status;
  const level = typeof flags.timestamps === "number" ? flags.timestamps : flags.timestamps ? 1 : 0;
  if (level > 0) {
    env.SYSI_TRACE_TIME = String(level);
    env.SYSI_TRACE_TZOFF = String(-new Date().getTimezoneOffset() * 60);
  }
  if (flags.syscallTimes) env.SYSI_TRACE_DURATION = "1";
  if (flags.stringLimit !== undefined) {
    if (!/^\d+$/.test(flags.stringLimit) || Number(flags.stringLimit) > 65536) {
      throw new SysiError(
        "RUN_BAD_OPTION",
        `--string-limit must be a number of bytes up to 65536, not "${flags.stringLimit}"`,
      );
    }
    env.SYSI_TRACE_STRLEN = String(Number(flags.stringLimit));
  }
  // the first process prints no [pid N] while it is alone, as strace -f: it is sysi's child
  env.SYSI_TRACE_PPID = String(process.pid);
  // strace notes a thread's switch to int $0x80 calls and back only on its stderr, not with -o
  if (flags.output === undefined) env.SYSI_TRACE_NOTES = "1";
  return env;
}

/**
 * With -e, calls outside the filter never reach the trace hook; the hook must still see the
 * ones that could close or replace its descriptor (trace.c), so they join SYSI_FILTER and
 * SYSI_TRACE_ONLY keeps the lines to the calls the user asked for.
 */
async function guardTraceFd(env: Record<string, string>): Promise<void> {
  const { syscallNumber } = await import("@sysi/core/syscalls");
  // the fd guard's calls, and those before which the hook writes out its buffered lines (trace-out.c)
  const guarded = [
    ...["close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl"],
    ...["exit", "exit_group", "execve", "execveat", "fork", "vfork", "clone", "clone3", "kill", "tkill", "tgkill"],
  ].map((n) => syscallNumber(n));
  const asked = (env.SYSI_FILTER as string).split(",");
  env.SYSI_TRACE_ONLY = asked.join(",");
  env.SYSI_FILTER = [...new Set([...asked, ...guarded.filter((n) => n !== null).map(String)])].join(",");
}

/**
 * SYSI_LAZY for `--complete` (sud-lazy.c): the 2-byte form the catch-all patches its file-backed
 * sites with — the chain's ud2 variant (named, or the strategy's default: this host's cheapest
 * trap), whose path is cheaper than the catch-all's SIGSYS; "off" without ud2 in the chain.
 * zpoline's `call *%rax` is only on request (SYSI_LAZY=zpoline): nothing proves [rsp-8] dead
 * at a site found at run time.
 */
function lazyForm(chain: readonly ChainElement[]): string {
  const ud2 = chain.find((c) => c.entry.name === "ud2");
  if (ud2 === undefined) return "off";
  const variant = ud2.options.variant ?? ud2.entry.strategy.variants?.[0]?.name ?? "ud2";
  return `ud2:${variant}`;
}
