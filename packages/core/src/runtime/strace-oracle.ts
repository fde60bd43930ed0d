/**
 * An outside oracle for hook counts: per-syscall call/error counts from `strace -f -qq -o FILE`
 * output, restricted to what an instrumented run's hook should have seen.
 *
 * Rules (sysi.h RUNTIME ENVIRONMENT, SYSI_MARKER):
 *   - a process image starts counting after its start marker (SYSI_MARKER_NR with first argument
 *     SYSI_MARKER_START, shown by strace as `syscall_0x5157(0, …)`); a successful execve stops
 *     counting until the new image's marker;
 *   - the runtime's own work after that (patching after dlopen, the master signal handler's own
 *     calls) is bracketed per thread by markers with first argument SYSI_MARKER_WORK_BEGIN (1)
 *     and SYSI_MARKER_WORK_END (2): the thread's lines between them are not counted, except in
 *     a program signal handler that runs inside the bracket (until its rt_sigreturn); a marker
 *     with first argument SYSI_MARKER_WORK_DROP (4) in such a handler's frame ends the bracket
 *     for good (a deferred signal released by the runtime: its frame returns to the program);
 *   - a child counts from its first line when its parent was counting at the clone/fork/vfork
 *     that created it;
 *   - trap strategies run the emulated call inside a runtime signal frame (`--- SIGILL …`
 *     etc. from a patched site): in such a frame only the first syscall is the program's, later
 *     ones are the runtime's own work, and the rt_sigreturn closing the frame is the runtime's
 *     (or a marker with first argument SYSI_MARKER_TRAP_END (3) closes it: the handler resumed
 *     the program itself);
 *   - a frame is pushed for a program signal only when the process installed a handler for it
 *     (from its rt_sigaction lines): ignored/default signals run no handler;
 *   - a marker with first argument SYSI_MARKER_FAULT (5) after a signal line (with only markers
 *     and bracketed runtime work between: a static program's master takes the thread's state
 *     block first; or a whole frame of a signal delivered with it, whose handler ran first) says that signal was a fault the runtime resolved (punning maps a trampoline page on first use): its
 *     frame is the runtime's, none of its calls nor its rt_sigreturn are the program's;
 *   - `= ? ERESTART…` lines are not counted when the kernel restarts the call (a
 *     `restart_syscall(<... resuming interrupted NAME ...>)` counts as NAME); when the signal
 *     that interrupted it runs a program handler (the next line of that thread delivers a signal
 *     with a handler installed), the call fails with EINTR instead and counts as an error: for
 *     ERESTARTNOHAND and ERESTART_RESTARTBLOCK always, for ERESTARTSYS unless that handler has
 *     SA_RESTART (from the rt_sigaction lines); ERESTARTNOINTR always restarts; when the thread
 *     is killed by that signal, the call counts without an error (it never returned);
 *   - rt_sigreturn is never an error: strace prints the rax of the context it restores (strace
 *     -c of a native run counts a -errno one as an error; sysi's count does not: README);
 *   - a signal the runtime deferred (it came while the thread ran sysi's code) is queued again
 *     and its first frame says SYSI_MARKER_FAULT (as above: the frame is the runtime's); the
 *     program's handler runs in the frame of the signal queued again.
 */

export interface OracleCount {
  calls: number;
  errors: number;
}

export interface StraceOracleOptions {
  /** Marker syscall number (default SYSI_MARKER_NR 0x5157). */
  markerNr?: number;
  /** Does this `--- SIG… {…} ---` line come from a runtime trap? Default: SIGILL/SIGTRAP/SIGSEGV raised by the CPU. */
  isRuntimeSignal?: (line: string) => boolean;
}

export interface OracleResult {
  /** Counts by syscall name as strace prints it (unknown numbers as `syscall_0x…`). */
  byName: Record<string, OracleCount>;
  total: number;
  /** Pids that counted anything. */
  pids: number[];
}

const DEFAULT_RUNTIME_SIGNAL = /^--- SIG(ILL|TRAP|SEGV) \{si_signo=SIG\w+, si_code=(ILL_ILLOPN|SI_KERNEL)\b/;
const CLONES = new Set(["clone", "clone3", "fork", "vfork"]);

interface Frame {
  runtime: boolean;
  syscalls: number;
  /** The thread was inside a runtime-work bracket when the signal came. */
  work: boolean;
  /**
   * PidState.signalled when this frame's signal came: a signal delivered with it in one return to
   * user space (the kernel stacks both frames; this one's handler runs first), whose FAULT marker
   * may still come after this frame closes.
   */
  outer?: Frame | null;
}

interface PidState {
  counting: boolean;
  /** Inside a SYSI_MARKER_WORK_BEGIN … END bracket (the runtime's own syscalls). */
  work: boolean;
  frames: Frame[];
  /** A call strace printed as `<unfinished ...>`: its result comes on a `<... resumed>` line. */
  unfinished: { name: string; counted: boolean; line: string } | null;
  /** Signals with a handler installed (shared by CLONE_SIGHAND threads, copied by fork, reset by exec). */
  handled: Set<string>;
  /** Of those, the ones installed with SA_RESTART (shared and copied like `handled`). */
  restart: Set<string>;
  /** A call that just returned `? ERESTART…`: it counts (as EINTR) if a handler runs next. */
  interrupted: { name: string; kind: string; counts: boolean } | null;
  /** The line before was a signal: the frame it pushed, or null (none); else undefined. */
  signalled?: Frame | null;
}

interface Parsed {
  pid: number;
  rest: string;
}

const LINE = /^(\d+) +(.*)$/;
const CALL = /^([a-z_][a-z0-9_]*)\((.*)$/;
const RESULT_AT_END = /\) += (-?\d+|\?|0x[0-9a-f]+)(?: ([A-Z][A-Z0-9_]*))?(?: \(.*\))?(?: <unavailable>)?$/;
const SIGACTION = /^rt_sigaction\((SIG\w+), \{sa_handler=(\w+)/;
const SA_RESTART = /\bsa_flags=[^}]*\bSA_RESTART\b/;
const SIGNAL = /^--- (SIG\w+) /;
/** The marker's first argument as strace prints it: `0`, `0x1`, … */
const MARKER_ARG = /^[a-z_0-9]+\((0x[0-9a-f]+|\d+)/;
const WORK_BEGIN = 1;
const WORK_DROP = 4;
const WORK_END = 2;
const TRAP_END = 3;
const FAULT = 5;

/** The result part of a finished line (the last `) = …`, not one inside a string argument). */
function result(rest: string): RegExpExecArray | null {
  return RESULT_AT_END.exec(rest);
}
const RESUMED = /^<\.\.\. ([a-z_][a-z0-9_]*) resumed>/;

/** Count the syscalls of an instrumented run from `strace -f -qq -o FILE` text. */
export function straceOracle(text: string, options: StraceOracleOptions = {}): OracleResult {
  const marker = `syscall_0x${(options.markerNr ?? 0x5157).toString(16)}`;
  const isRuntimeSignal = options.isRuntimeSignal ?? ((l: string) => DEFAULT_RUNTIME_SIGNAL.test(l));
  const byName: Record<string, OracleCount> = {};
  const counted = new Set<number>();
  const states = new Map<number, PidState>();
  const pending = new Map<number, Parsed[]>();
  let root: number | null = null;
  let total = 0;

  const resumed = (st: PidState, rest: string) => {
    const m = RESUMED.exec(rest);
    const u = st.unfinished;
    st.unfinished = null;
    if (m === null || u === null || m[1] !== u.name) return;
    const r = result(rest);
    if (r === null) return;
    forked(st, u.name, r[1] as string, u.line);
    if (u.name === "execve" && r[1] === "0") execed(st);
    const c = byName[u.name];
    if (!u.counted || c === undefined) return;
    if (r[1] === "?" && r[2]?.startsWith("ERESTART")) {
      c.calls--;
      total--;
      const top = st.frames[st.frames.length - 1];
      if (top?.runtime) top.syscalls--; // the kernel repeats the call in the same frame
      st.interrupted = { name: u.name, kind: r[2], counts: true };
    } else if (r[1] === "-1" && u.name !== "rt_sigreturn") c.errors++;
  };

  /** A successful execve: a new image, not counting until its marker, handlers reset. */
  const execed = (st: PidState) => {
    st.counting = false;
    st.work = false;
    st.frames = [];
    st.handled = new Set();
    st.restart = new Set();
  };

  /** A clone-family call returned `result` in the parent: the child inherits counting and frames. */
  const forked = (st: PidState, name: string, result: string, line: string) => {
    if (!CLONES.has(name) || !/^[1-9]\d*$/.test(result)) return;
    const child = Number(result);
    const shared = /CLONE_SIGHAND/.test(line);
    const handledSet = shared ? st.handled : new Set(st.handled);
    const restartSet = shared ? st.restart : new Set(st.restart);
    if (!states.has(child)) start(child, st.counting, st.frames, handledSet, st.work, restartSet);
  };

  const add = (name: string, error: boolean, pid: number) => {
    const c = byName[name] ?? { calls: 0, errors: 0 };
    c.calls++;
    if (error) c.errors++;
    byName[name] = c;
    total++;
    counted.add(pid);
  };

  const start = (
    pid: number,
    counting: boolean,
    frames: Frame[],
    handled: Set<string>,
    work = false,
    restart: Set<string> = new Set(),
  ) => {
    const st: PidState = {
      counting,
      work,
      frames: frames.map((f) => ({ ...f })),
      unfinished: null,
      handled,
      restart,
      interrupted: null,
    };
    states.set(pid, st);
    for (const p of pending.get(pid) ?? []) handle(p, st);
    pending.delete(pid);
  };

  const handle = (p: Parsed, st: PidState) => {
    const { pid, rest } = p;
    const top = st.frames[st.frames.length - 1];
    const interrupted = st.interrupted;
    const signalled = st.signalled;
    st.interrupted = null;
    if (rest.startsWith("---")) {
      const runtime = isRuntimeSignal(rest);
      const sig = SIGNAL.exec(rest)?.[1] ?? "";
      if (interrupted !== null && !runtime && st.handled.has(sig) && interrupted.counts) {
        // the handler runs: the interrupted call returns EINTR to the program, unless restarted
        const k = interrupted.kind;
        if (k === "ERESTARTNOHAND" || k === "ERESTART_RESTARTBLOCK" || (k === "ERESTARTSYS" && !st.restart.has(sig))) {
          add(interrupted.name, true, pid);
          if (top?.runtime) top.syscalls++;
        }
      }
      if (runtime || st.handled.has(sig)) {
        const frame: Frame = { runtime, syscalls: 0, work: st.work };
        if (signalled !== undefined) frame.outer = signalled;
        st.frames.push(frame);
        st.signalled = frame;
        st.work = false; // a handler runs the program's code (or a trap's program call)
      } else {
        st.interrupted = interrupted; // no handler: restarted, or the signal kills
        st.signalled = null;
      }
      return;
    }
    if (rest.startsWith("<...")) {
      resumed(st, rest);
      return;
    }
    if (rest.startsWith("+++")) {
      // killed inside the call: it was made and never returned (no error to see)
      if (interrupted?.counts && rest.startsWith("+++ killed by")) add(interrupted.name, false, pid);
      return;
    }
    const m = CALL.exec(rest);
    if (m === null) return;
    let name = m[1] as string;
    if (name === marker) {
      const arg = Number(MARKER_ARG.exec(rest)?.[1] ?? 0);
      if (arg === WORK_BEGIN) st.work = st.counting;
      else if (arg === WORK_END) st.work = false;
      else if (arg === WORK_DROP) {
        // a deferred signal released: the work it interrupted is over, its frame returns to
        // the program's code (signal.c)
        if (top !== undefined) top.work = false;
        st.work = false;
      } else if (arg === FAULT) {
        // the signal just delivered was the runtime's fault: no call in its frame counts
        st.signalled = undefined;
        if (signalled === null) st.frames.push({ runtime: true, syscalls: 1, work: st.work });
        else if (signalled !== undefined) {
          signalled.runtime = true;
          signalled.syscalls = 1;
        }
      } else if (arg === TRAP_END) {
        // a trap handler resumed the program without rt_sigreturn: its frame ends here
        if (top?.runtime) {
          st.frames.pop();
          st.work = top.work;
        }
      } else st.counting = true;
      return;
    }
    if (st.work) {
      if (rest.endsWith("<unfinished ...>")) st.unfinished = { name, counted: false, line: rest };
      return; // the runtime's own syscall
    }
    st.signalled = undefined; // a call in the program's context: no FAULT marker for that signal
    const sa = SIGACTION.exec(rest);
    if (sa !== null) {
      const sig = sa[1] as string;
      if (sa[2] === "SIG_DFL" || sa[2] === "SIG_IGN") {
        st.handled.delete(sig);
        st.restart.delete(sig);
      } else {
        st.handled.add(sig);
        if (SA_RESTART.test(rest)) st.restart.add(sig);
        else st.restart.delete(sig);
      }
    }
    const r = result(rest);
    const unfinished = rest.endsWith("<unfinished ...>");
    if (r === null && !unfinished) return;
    if (r !== null && r[1] === "?" && r[2]?.startsWith("ERESTART")) {
      st.interrupted = { name, kind: r[2], counts: st.counting && !(top?.runtime && top.syscalls > 0) };
      return;
    }
    if (name === "rt_sigreturn" && top !== undefined) {
      st.frames.pop();
      st.work = top.work;
      // a frame stacked on a signal whose handler has not run yet: that one is next, and its
      // FAULT marker (if it is the runtime's fault) still applies
      if (top.outer !== undefined) st.signalled = top.outer;
      if (top.runtime) return;
      // a program handler's frame closes: its rt_sigreturn is the program's, and never the
      // first call of a trap frame it was nested in (a signal deferred inside a trap, signal.c)
      if (st.counting) add(name, false, pid);
      return;
    }
    if (name === "restart_syscall") {
      const res = /resuming interrupted (\w+)/.exec(rest);
      if (res) name = res[1] as string;
    }
    if (name === "execve" && r !== null && r[1] === "0") {
      if (st.counting && !(top?.runtime && top.syscalls++ > 0)) add(name, false, pid);
      execed(st);
      return;
    }
    if (r !== null) forked(st, name, r[1] as string, rest);
    const counts = st.counting && !(top?.runtime && top.syscalls++ > 0); // else: the runtime's own work
    // rt_sigreturn "fails" in strace's eyes when the context it restores holds a -errno rax
    if (counts) add(name, r !== null && r[1] === "-1" && name !== "rt_sigreturn", pid);
    if (unfinished) st.unfinished = { name, counted: counts, line: rest };
  };

  for (const line of text.split("\n")) {
    const lm = LINE.exec(line);
    if (lm === null) continue;
    const p: Parsed = { pid: Number(lm[1]), rest: lm[2] as string };
    if (root === null) {
      root = p.pid;
      states.set(root, {
        counting: false,
        work: false,
        frames: [],
        unfinished: null,
        handled: new Set(),
        restart: new Set(),
        interrupted: null,
      });
    }
    const st = states.get(p.pid);
    if (st === undefined) {
      const list = pending.get(p.pid) ?? [];
      list.push(p);
      pending.set(p.pid, list);
      continue;
    }
    handle(p, st);
  }
  for (const pid of [...pending.keys()]) start(pid, false, [], new Set());
  return { byName, total, pids: [...counted].sort((a, b) => a - b) };
}

/**
 * The command line whose trace this oracle reads: CMD under `sysi run -s CHAIN --hook count
 * --json -o OUT` (cli: the CLI's bin/run.js), inside `strace -f -qq -o TRACE`. Run it with
 * SYSI_MARKER=1 in the environment.
 */
export function countUnderStraceArgv(
  cli: string,
  chain: string,
  trace: string,
  out: string,
  cmd: readonly string[],
): string[] {
  return [
    "strace",
    "-f",
    "-qq",
    "-o",
    trace,
    "bun",
    cli,
    "run",
    "-s",
    chain,
    "--hook",
    "count",
    "--json",
    "-o",
    out,
    "--",
    ...cmd,
  ];
}
