/**
 * `sysi run --hook trace` against `strace -f` on 20 real commands (coreutils, sh, python3, git,
 * tar): the same program run under each, both traces parsed per process, `<unfinished ...>` and
 * `resumed` halves joined, addresses, pids and strace's column alignment normalised
 * (strace-lines.ts; the raw lines of both are first checked at strace's result column), then
 * matched as multisets. Reported: the fraction of sysi's lines that
 * strace printed identically (goal ≥ 95%), and every other line attributed to one of the
 * difference classes below, each with why. A line no class explains fails the test.
 *
 * Then `-e trace=%file`, `-e status=failed` and `-T` on 9 of them, under both: the same lines up
 * to the same classes (`-T`: every completed call carries a duration on both sides).
 *
 * strace traces the program natively and sysi instruments a separate run, so the classes are
 * what legitimately differs between the two runs plus the trace's known gaps (listed, not
 * hidden: each is a line that is not identical).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  alignedAsStrace,
  classify,
  compareTraces,
  type DiffClass,
  parseTrace,
  type TraceLine,
} from "./strace-lines.ts";

const SYSI = join(import.meta.dir, "../../bin/sysi");
const haveStrace = Bun.which("strace") !== null;
const work = mkdtempSync(join(tmpdir(), "sysi-strace-cmp-"));
const cwd = join(work, "cwd");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The expected differences, applied in this order to the lines still unmatched. */
export const CLASSES: DiffClass[] = [
  {
    name: "signal deliveries",
    why: "strace prints a `--- SIGCHLD {…} ---` line per signal delivered; sysi's hook sees system calls, not signals",
    only: { side: "strace", test: (t) => /^--- SIG[A-Z0-9]+ .* ---$/.test(t) },
  },
  {
    name: "rt_sigreturn",
    why: "a handler's rt_sigreturn per SIGCHLD delivered: two children that exit close together (faster without ptrace stops) get one SIGCHLD, as standard signals do not queue, so one run may print one line fewer",
    only: { side: "strace", test: (t) => t.startsWith("rt_sigreturn(") },
  },
  {
    name: "rt_sigreturn in sysi's run",
    why: "the same the other way round: the two runs are separate, so strace's run may be the one whose two children share a SIGCHLD",
    only: { side: "sysi", test: (t) => t.startsWith("rt_sigreturn(") },
  },
  {
    name: "malloc set-up before the runtime",
    why: "glibc's malloc seeds its tcache key (getrandom of 8 bytes) and takes its first brk at the first allocation; under sysi a preloaded library allocated before sysi's runtime started, so these calls come before the trace does",
    only: { side: "strace", test: (t) => /^getrandom\(".*", 8, GRND_NONBLOCK\) = 8$/.test(t) || /^brk\(/.test(t) },
  },
  {
    name: "envp count",
    why: "libsysi adds its variables (LD_PRELOAD, SYSI_*) to each exec's environment after the trace line is written (the program never sees them), so strace's `/* N vars */` counts more",
    rewrite: (t) => t.replace(/\/\* \d+ vars \*\//, "/* N vars */"),
  },
  {
    name: "parent pid",
    why: "the first process's parent is sysi in one run and strace in the other",
    rewrite: (t, proc) => (proc === 0 ? t.replace(/^getppid\(\) = \d+$/, "getppid() = PPID") : t),
  },

  {
    name: "struct or array not decoded",
    why: "structs the decoder has no table for (sysinfo, fstatfs) print as their address; their values (uptime, free memory and blocks) differ between the two runs anyway",
    rewrite: (t) =>
      t.replace(/\{(?:[^{}]|\{[^{}]*\})*\}/g, "0xADDR").replace(/\[(?:[^[\]"]|\[[^[\]]*\])*\](?=[,)])/g, "0xADDR"),
  },
];

const COMMANDS: { argv: string[]; why: string }[] = [
  { argv: ["cat", "in.txt"], why: "open, read, copy_file_range" },
  { argv: ["ls", "-la", "d"], why: "statx, getdents64, sockets (nss)" },
  { argv: ["sh", "-c", "ls d | wc -l"], why: "a pipeline: fork, execve, wait4, three processes" },
  { argv: ["head", "-n", "2", "in.txt"], why: "read, lseek" },
  { argv: ["wc", "-l", "in.txt"], why: "fadvise" },
  { argv: ["sort", "in.txt"], why: "signal handlers, sysinfo" },
  { argv: ["cp", "in.txt", "out.txt"], why: "copy" },
  { argv: ["mkdir", "-p", "m/n/o"], why: "mkdir" },
  { argv: ["rm", "-rf", "m"], why: "unlinkat, directory walk" },
  { argv: ["stat", "in.txt"], why: "statx, locale" },
  { argv: ["du", "-s", "d"], why: "fts walk" },
  { argv: ["echo", "hi"], why: "write" },
  { argv: ["seq", "1", "5"], why: "write" },
  { argv: ["date", "-u", "-d", "@0"], why: "time zone" },
  { argv: ["env", "-u", "X", "true"], why: "execve along PATH" },
  { argv: ["/usr/bin/python3", "-c", "import os; print(sorted(os.listdir('d')))"], why: "python start-up" },
  { argv: ["git", "--version"], why: "git" },
  { argv: ["git", "-C", "repo", "status", "--short"], why: "git in a repository" },
  { argv: ["tar", "cf", "new.tar", "d"], why: "tar writing" },
  { argv: ["tar", "tf", "t.tar"], why: "tar reading" },
];

/** A fresh working directory, the same for each run (what the first run changes, the second must not see). */
function setup(): void {
  rmSync(cwd, { recursive: true, force: true });
  mkdirSync(join(cwd, "d", "sub"), { recursive: true });
  writeFileSync(join(cwd, "in.txt"), "b\na\nc\n");
  writeFileSync(join(cwd, "d", "x"), "x");
  Bun.spawnSync(["tar", "cf", "t.tar", "d"], { cwd });
  Bun.spawnSync(["git", "init", "-q", "repo"], { cwd, env: ENV });
}

const ENV: Record<string, string> = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: work,
  LC_ALL: "C.UTF-8",
  TZ: "UTC",
  PYTHONHASHSEED: "0",
  GIT_CONFIG_NOSYSTEM: "1",
};

/** Run one command under strace -f and under sysi's trace hook; stdio the same for both. */
function traces(argv: string[], i: number, extra: string[] = []): { sysi: string; strace: string } {
  const st = join(work, `strace-${i}.txt`);
  const sy = join(work, `sysi-${i}.txt`);
  const out = join(work, `out-${i}`);
  setup();
  const a = Bun.spawnSync(
    ["sh", "-c", `exec "$@" >${out}.1 2>${out}.2 </dev/null`, "sh", "strace", "-f", ...extra, "-o", st, ...argv],
    { cwd, env: ENV },
  );
  setup();
  const b = Bun.spawnSync(
    [
      "sh",
      "-c",
      `exec "$@" >${out}.3 2>${out}.4 </dev/null`,
      "sh",
      SYSI,
      "run",
      "--hook",
      "trace",
      ...extra,
      "-o",
      sy,
      "--",
      ...argv,
    ],
    { cwd, env: { ...ENV, SYSI_CACHE_DIR: join(process.env.HOME ?? "/root", ".cache", "sysi") } },
  );
  if (a.exitCode !== b.exitCode)
    throw new Error(
      `${argv.join(" ")}: exit ${a.exitCode} under strace, ${b.exitCode} under sysi: ${readFileSync(`${out}.4`, "utf8")}`,
    );
  return { sysi: readFileSync(sy, "utf8"), strace: readFileSync(st, "utf8") };
}

interface Totals {
  sysiLines: number;
  straceLines: number;
  identical: number;
  before: number;
  byClass: Record<string, number>;
  unexplained: string[];
}

/** `-T`'s ` <0.000012>` on a line: checked present where strace prints one, then cut. */
const DURATION = / <\d+\.\d{6}>$/;

/**
 * Under `-e trace=` and `-e status=` the lines that tell processes and images apart (clone's
 * result, execve) may be filtered out, so filtered traces are matched by text alone, and the
 * lines before sysi's runtime are those the unfiltered comparison of the same command found.
 */
function compareAll(commands: readonly { argv: string[] }[], extra: string[] = []): Totals {
  const t: Totals = { sysiLines: 0, straceLines: 0, identical: 0, before: 0, byClass: {}, unexplained: [] };
  const timed = extra.includes("-T");
  const filtered = extra.includes("-e");
  for (const [i, c] of commands.entries()) {
    let before: Map<string, number> | null = null;
    if (filtered) {
      const full = traces(c.argv, i);
      const s = parseTrace(full.sysi, "sysi");
      before = new Map<string, number>();
      for (const l of classify(compareTraces(s, parseTrace(full.strace, "strace")), s, CLASSES).beforeLines)
        before.set(l.text, (before.get(l.text) ?? 0) + 1);
    }
    const raw = traces(c.argv, i, extra);
    let sysiText = raw.sysi;
    let straceText = raw.strace;
    // the result column on the raw lines, each with its own prefix (strace's: the rule's oracle)
    for (const [who, text] of [
      ["sysi", sysiText],
      ["strace", straceText],
    ] as const)
      for (const l of text.split("\n"))
        if (!alignedAsStrace(l)) t.unexplained.push(`${c.argv.join(" ")}: ${who} line not at strace's column: ${l}`);
    if (timed) {
      // every completed call carries a duration, in both (not `= ?`, exits, signals, unfinished halves)
      const cut = (text: string, who: string) =>
        text
          .split("\n")
          .map((l) => {
            const due = / = (?!\?)/.test(l) && !/<unfinished \.\.\.>$/.test(l);
            if (due && !DURATION.test(l))
              t.unexplained.push(`${c.argv.join(" ")}: ${who} line without -T duration: ${l}`);
            return l.replace(DURATION, "");
          })
          .join("\n");
      sysiText = cut(sysiText, "sysi");
      straceText = cut(straceText, "strace");
    }
    const flat = (l: TraceLine) => (filtered ? { ...l, proc: 0, image: 0 } : l);
    const s = parseTrace(sysiText, "sysi").map(flat);
    const strace = parseTrace(straceText, "strace").map(flat);
    const cmp = compareTraces(s, strace);
    const cls = classify(cmp, s, CLASSES);
    if (before !== null) {
      // the unfiltered run's before-runtime lines, as many of each text as it had
      const left = new Map(before);
      cls.straceOnly = cls.straceOnly.filter((l) => {
        const n = left.get(l.text) ?? 0;
        if (n > 0) left.set(l.text, n - 1);
        return n === 0;
      });
      cls.beforeRuntime =
        [...before.values()].reduce((a, b) => a + b, 0) - [...left.values()].reduce((a, b) => a + b, 0);
    }
    t.sysiLines += cmp.sysi;
    t.straceLines += cmp.strace;
    t.identical += cmp.identical;
    t.before += cls.beforeRuntime;
    for (const [k, v] of Object.entries(cls.byClass)) t.byClass[k] = (t.byClass[k] ?? 0) + v;
    for (const l of cls.sysiOnly) t.unexplained.push(`${c.argv.join(" ")}: sysi only: p${l.proc} ${l.text}`);
    for (const l of cls.straceOnly) t.unexplained.push(`${c.argv.join(" ")}: strace only: p${l.proc} ${l.text}`);
  }
  return t;
}

function summary(t: Totals, what: string): string {
  const used = CLASSES.filter((c) => (t.byClass[c.name] ?? 0) > 0);
  return [
    `${what}: identical ${t.identical} of sysi's ${t.sysiLines} lines (${((100 * t.identical) / t.sysiLines).toFixed(1)}%), strace ${t.straceLines}; strace's lines before sysi's runtime started (loader, libc start-up): ${t.before}`,
    ...used.map((c) => `  ${c.name}: ${t.byClass[c.name]} (${c.why})`),
  ].join("\n");
}

describe.skipIf(!haveStrace)(`sysi's trace against strace -f${haveStrace ? "" : " (skipped: no strace)"}`, () => {
  test(`${COMMANDS.length} commands: ≥ 95% of sysi's lines are strace's, every other line in an explained class`, () => {
    const t = compareAll(COMMANDS);
    console.log(summary(t, "no filter"));
    expect(t.unexplained).toEqual([]);
    expect(t.identical / t.sysiLines).toBeGreaterThanOrEqual(0.95);
  });

  // strace's filters on programs that make file calls, fail some, and fork (issue 17 done-when)
  const FILTERED = COMMANDS.filter((c) =>
    ["ls", "sh", "cp", "mkdir", "/usr/bin/python3", "git", "tar"].includes(c.argv[0] ?? ""),
  );
  for (const extra of [["-e", "trace=%file"], ["-e", "status=failed"], ["-T"]])
    test(`${extra.join(" ")}: the same lines as strace's on ${FILTERED.length} commands, up to the classes`, () => {
      const t = compareAll(FILTERED, extra);
      console.log(summary(t, extra.join(" ")));
      expect(t.unexplained).toEqual([]);
      expect(t.sysiLines).toBeGreaterThan(0);
    });
});
