import { Args, Flags } from "@oclif/core";
import { SysiCommand } from "../base-command.ts";
import { dieLikeProgram, executeRun } from "../run/execute.ts";
import { commandWords, RUN_HOOK_DEFAULT } from "../run/fast-run.ts";
import { timestampLevel } from "../run/trace-filter.ts";

export default class Run extends SysiCommand {
  static override summary = "Run a program with every system call going through a hook.";
  static override description =
    `Plans the program's modules (cached), preloads the sysi runtime and the chain's strategy runtimes, and runs the program with its exit status passed through (killed by signal n: sysi dies by signal n too, or exits 128+n for the signals that dump core). Programs it executes and libraries it dlopens are planned on demand.

The program gets what a shell would give it in sysi's place: every fd the caller left open (closed ones stay closed), ignored signals and the signal mask, the working directory (even a removed one), resource limits, and the environment in the caller's order less sysi's own variables (SYSI_* of the runtime and libsysi in LD_PRELOAD never come from the caller, e.g. left by \`eval "$(sysi env …)"\`, and the program never sees the ones sysi sets: libsysi hides them and gives them back to each exec, so a child started with env -i or another LD_PRELOAD is instrumented too). Signals sent to sysi (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, CONT, ALRM) are forwarded to the program unless the terminal sent them to both; TSTP stops the program, then sysi. If sysi dies, the program is killed with it. The statistics cannot be deleted by the program; damaged ones are reported and the exit status kept.

Output (-o): the count summary or trace goes to sysi's own stderr by default (never the program's fd 2 of the moment), to stdout with \`-o -\`, or to FILE, opened before the program starts for every hook: created, or truncated (a FIFO or device is written in place); the summary is written at exit, the trace as it goes. The trace's fd is hidden from the program: close-all loops do not end it.

The default chain is the best this host allows: punning (when installed), then zpoline (only where page 0 can be mapped and protection keys make it execute-only), then ud2, which always applies (\`ud2:int3\`, \`ud2:hlt\` or \`ud2:int4\` pick its cheaper traps: int3 → SIGTRAP, hlt → SIGSEGV, int $4 → SIGSEGV). Strategies refuse sites they cannot patch safely (the next one takes them); see \`sysi plan\` for why.

Coverage: a site no strategy of the chain patches is not instrumented, and its system calls bypass the hook (\`-s zpoline\` alone refuses sites whose red zone a call would overwrite, e.g. a few in libc and ld.so). \`sysi run\` then says, in one line on stderr before the program starts, how many sites in which modules the plans leave unpatched, and at exit what was left unpatched during the run (modules loaded later, sites whose strategies all failed at run time, modules without a plan); it says nothing when every site was patched. With --strict each of these is an error (exit 2): the first before the program starts, the second after it exits.

Security: zpoline maps page 0 executable in a program where it patches a site. While it is mapped, NULL function-pointer calls are still caught (the entry checks the return address), but on a CPU without protection keys NULL *reads* no longer fault and NULL pointer arguments to system calls no longer fail with EFAULT (the kernel reads page 0: chdir(NULL) gives ENAMETOOLONG, write(fd, NULL, n) writes page 0's bytes), which breaks Go's nil checks and the JVM's implicit null checks: that is why the default chain leaves zpoline out there (name it with -s to use it anyway). With protection keys (\`sysi doctor\` says whether this host has them) the kernel maps page 0 execute-only: NULL reads fault (reported with the native si_code SEGV_MAPERR) and NULL arguments fail with EFAULT. sysi never changes vm.mmap_min_addr or any other system setting.`;
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
      default: RUN_HOOK_DEFAULT,
    }),
    output: Flags.string({
      char: "o",
      summary: "write the count summary or trace here instead of stderr (- for stdout); truncated at start",
    }),
    json: Flags.boolean({ summary: "count: JSON summary; trace: JSON lines" }),
    filter: Flags.string({
      char: "e",
      summary:
        "as strace -e: trace=SET (names, numbers, %file %desc %network %process %signal %memory %ipc %creds, !SET), status=failed|successful; repeatable",
      multiple: true,
      multipleNonGreedy: true,
    }),
    timestamps: Flags.boolean({
      char: "t",
      summary: "trace: time of day on each line (-tt: with microseconds, -ttt: epoch seconds)",
    }),
    "syscall-times": Flags.boolean({ char: "T", summary: "trace: time spent in each call, <seconds>" }),
    "summary-wall-clock": Flags.boolean({
      char: "w",
      summary:
        "count: measure each call's wall-clock time for the table's time columns (as strace -c -w; costs two clock reads per call, so off by default)",
    }),
    "string-limit": Flags.string({ summary: "trace: bytes of each string and buffer printed (strace -s), default 32" }),
    verbose: Flags.boolean({ char: "v", summary: "print planning and runtime details to stderr" }),
    strict: Flags.boolean({
      summary:
        "fail (exit 2) when system-call sites stay unpatched: before start if the plans leave any, at exit if some fell through at run time",
    }),
    complete: Flags.boolean({
      summary:
        "catch every system call no patch reaches (JIT code, refused sites) with Syscall User Dispatch; the summary counts them as catch-all (docs/complete.md)",
    }),
    vdso: Flags.boolean({
      summary:
        "catch the system calls the vDSO makes itself (clock_gettime of a CPU-time clock, getrandom's reseeding) with Syscall User Dispatch, Linux 6.17+: +20-35 ns on every call; on by default in statically linked programs (docs/patch.md)",
    }),
    replan: Flags.boolean({
      summary: "plan every module again instead of using cached plans (e.g. after editing a planner)",
    }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Run);
    const outcome = await executeRun(
      commandWords(this.argv, argv as string[]),
      {
        ...flags,
        timestamps: flags.timestamps ? timestampLevel(this.argv) : 0,
        syscallTimes: flags["syscall-times"],
        wallClock: flags["summary-wall-clock"],
        stringLimit: flags["string-limit"],
      },
      this.config,
    );
    dieLikeProgram(outcome.signal);
    this.exit(outcome.status);
  }
}
