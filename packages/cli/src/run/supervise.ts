/**
 * Signals sent to `sysi run` reach the program as if they had been sent to it, the process a
 * shell would have started in sysi's place:
 *
 *   - INT, TERM, HUP, QUIT, USR1, USR2, WINCH, CONT, ALRM are forwarded to the program, unless
 *     the signal came to the whole foreground process group from the terminal or the shell's
 *     job control (^C, ^\, a resize, a hangup, `fg`): the program, in the same group, got it
 *     already. That is assumed for INT, QUIT, WINCH, HUP and CONT while sysi and the program are
 *     the terminal's foreground group; `kill -INT <sysi pid>` from another terminal is then not
 *     forwarded (Bun does not show the sender's siginfo).
 *   - TSTP (^Z, or `kill -TSTP <sysi pid>`, forwarded then): once the program has stopped,
 *     sysi stops itself with TSTP, so the shell sees the job stopped; it goes on at CONT.
 *   - A signal the caller left ignored is not caught: the program ignores it too.
 *   - SIGPIPE sent to sysi is not forwarded: Bun ignores it for its own writes (a summary to a
 *     closed pipe), and a listener, once removed, would leave the default action instead.
 *   - SIGKILL cannot be caught: sysi-exec set PR_SET_PDEATHSIG, so the kernel kills the program
 *     with sysi. Other signals kill sysi with their default action, and so the program.
 */
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { type Origin, sigBit } from "./origin.ts";

const FORWARDED = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGCONT",
  "SIGALRM",
] as const;

/** Signals the terminal or job control send to the whole foreground process group. */
const GROUP_SENT = new Set<string>(["SIGINT", "SIGQUIT", "SIGWINCH", "SIGHUP", "SIGCONT", "SIGTSTP"]);

interface ProcStat {
  state: string;
  pgrp: number;
  ttyNr: number;
  tpgid: number;
}

/** Fields of /proc/PID/stat (after the command name, which may hold spaces), or null. */
function procStat(pid: number | "self"): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: f[0] ?? "", pgrp: Number(f[2]), ttyNr: Number(f[4]), tpgid: Number(f[5]) };
  } catch {
    return null;
  }
}

/** Are sysi and the program the terminal's foreground process group (so both get its signals)? */
function sharedForeground(child: number): boolean {
  const me = procStat("self");
  const it = procStat(child);
  return me !== null && it !== null && me.ttyNr !== 0 && me.tpgid === me.pgrp && it.pgrp === me.pgrp;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Child {
  pid: number;
  kill(signal: NodeJS.Signals): void;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | number | null;
}

export interface Supervisor {
  /** The program is started: forward to it, and the signals that came before, in order. */
  attach(child: Child): void;
  /** Stop catching the signals. */
  stop(): void;
}

/**
 * Catch the signals to forward (see the file comment) now, before the program starts: once it
 * runs, a signal may come at any time, and one that found no handler would kill sysi.
 */
export function superviseSignals(origin: Origin): Supervisor {
  const number = constants.signals as Record<string, number>;
  const caught = (s: string) => (origin.ignored & sigBit(number[s] ?? 64)) === 0n;
  let child: Child | null = null;
  const early: NodeJS.Signals[] = [];
  const done = () => child !== null && (child.exitCode !== null || child.signalCode !== null);
  const installed: [NodeJS.Signals, () => void][] = [];

  const forward = (sig: NodeJS.Signals) => {
    if (child === null) early.push(sig);
    else if (!done() && !(GROUP_SENT.has(sig) && sharedForeground(child.pid))) child.kill(sig);
  };
  for (const sig of FORWARDED) if (caught(sig)) installed.push([sig, () => forward(sig)]);

  if (caught("SIGTSTP")) {
    let stopping = false;
    const onTstp = async () => {
      if (child === null) {
        early.push("SIGTSTP");
        return;
      }
      if (stopping || done()) return;
      stopping = true;
      try {
        if (!sharedForeground(child.pid)) child.kill("SIGTSTP");
        // Stop only once the program has (it may catch TSTP, and a stopped sysi hands the
        // terminal back to the shell); a program that does not stop keeps sysi running.
        for (let i = 0; i < 200 && !done(); i++) {
          if (procStat(child.pid)?.state === "T") {
            process.off("SIGTSTP", onTstp);
            process.kill(process.pid, "SIGTSTP");
            process.on("SIGTSTP", onTstp);
            break;
          }
          await sleep(5);
        }
      } finally {
        stopping = false;
      }
    };
    installed.push(["SIGTSTP", onTstp]);
  }

  for (const [s, h] of installed) process.on(s, h);
  return {
    attach(c) {
      child = c;
      for (const sig of early.splice(0)) {
        if (sig === "SIGTSTP") process.emit("SIGTSTP", "SIGTSTP");
        else forward(sig);
      }
    },
    stop() {
      for (const [s, h] of installed) process.off(s, h);
    },
  };
}
