/**
 * Starting the program for `sysi run`: through sysi-exec (native/exec.c), which gives it the
 * caller's process state (origin.ts) and ties its life to sysi's, and a work directory that a
 * killed sysi cannot leak for long.
 */
import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureRuntime } from "@sysi/core/runtime";
import { execSpec, hiddenFd, nofileHard, type Origin } from "./origin.ts";

/** The CLI's own native code: sysi-exec. */
const NATIVE_DIR = join(import.meta.dir, "..", "..", "native");

/** sysi-exec, built on demand into the native cache like the runtimes. */
export function ensureExecHelper(): Promise<string> {
  return ensureRuntime(NATIVE_DIR, "sysi-exec");
}

const RUN_DIR = /^sysi-run-(\d+)-/;

/**
 * A new work directory `sysi-run-<pid>-XXXXXX` in `root` (it holds the plan server's socket;
 * the statistics live in unlinked files, see stats-file.ts openPrivateStatsFile). Work
 * directories of runs whose process is gone (killed with SIGKILL, which no cleanup survives)
 * and that belong to this user are removed first.
 */
export function makeWorkDir(root: string): string {
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    // unreadable: nothing to sweep
  }
  const uid = process.getuid?.() ?? -1;
  for (const name of names) {
    const pid = Number(RUN_DIR.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    const path = join(root, name);
    try {
      const st = lstatSync(path);
      if (st.isDirectory() && st.uid === uid) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return mkdtempSync(join(root, `sysi-run-${process.pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

export interface Launch {
  /** sysi-exec's argv: SPEC, the program's path, its argv[0] and arguments. */
  argv: string[];
  /** Bun.spawn's stdio: the program's fds at their numbers, sysi's output at a free slot. */
  stdio: (number | "inherit" | "ignore")[];
  /** Where sysi's output fd is in the program (SYSI_TRACE_FD), or null. */
  outputFd: number | null;
}

/**
 * How to start `program` (argv `cmd`) with the caller's state `origin`, handing it sysi's
 * output descriptor `output` (sysi's fd number, or null) under a hidden number.
 */
export function planLaunch(
  helper: string,
  program: string,
  cmd: string[],
  given: Origin,
  output: number | null,
): Launch {
  // An fd at or above the hard RLIMIT_NOFILE (opened before a lower limit was set) cannot be
  // placed in a new process: Bun.spawn, like dup2, refuses the number. It is not passed.
  const hard = nofileHard();
  const origin = { ...given, fds: given.fds.filter((fd) => hard === "inf" || fd < hard) };
  const top = Math.max(2, ...origin.fds);
  const slot = top + 1;
  const stdio: (number | "inherit" | "ignore")[] = [];
  for (let fd = 0; fd <= (output === null ? top : slot); fd++) {
    if (origin.fds.includes(fd)) stdio.push(fd <= 2 ? "inherit" : fd);
    else stdio.push("ignore");
  }
  let move: { from: number; to: number } | undefined;
  if (output !== null) {
    stdio[slot] = output;
    move = { from: slot, to: hiddenFd(origin.nofile, hard, [...origin.fds, slot]) };
  }
  return {
    argv: [helper, execSpec(origin, process.pid, move), program, ...cmd],
    stdio,
    outputFd: move?.to ?? null,
  };
}
