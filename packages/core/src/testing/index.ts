/**
 * @sysi/core/testing — the checks every strategy must pass, for strategy authors (bundled or
 * out of tree). Each check returns findings; an empty `problems` list means it passed, so a
 * test file is a few `expect(...problems).toEqual([])` lines (see the scaffold's
 * test/testkit.test.ts, written by `sysi strategy new`).
 *
 *   planChecks  — plan real modules (libc, ld.so, bun) with the strategy alone: every taken
 *                 patch's old bytes equal the file's bytes there, and its new bytes decode
 *                 (objdump, an outside decoder) to whole instructions ending exactly at the
 *                 patch's end, with no system-call instruction left in them and, when the
 *                 author says what they should be, to exactly those instructions;
 *   runChecks   — through the real `sysi run` with the strategy's chain: real programs and the
 *                 hard-case programs of DESIGN §6 (clone, vfork, signals, sigreturn, own
 *                 traps, …) print what they print natively and exit the same; every site the
 *                 plans give this strategy is patched by it at run time or falls through to
 *                 the next option, per site; the count hook's numbers equal those strace -f
 *                 sees in the same run.
 *
 * Host-dependent checks say why they were skipped (`skipped`), never pass silently.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planFile } from "../plan/cache.ts";
import { straceOracle } from "../runtime/strace-oracle.ts";
import type { HostFacts, Strategy, TakenSite } from "../strategy.ts";
import { isRefusal } from "../strategy.ts";

export {
  countUnderStraceArgv,
  type OracleCount,
  type OracleResult,
  type StraceOracleOptions,
  straceOracle,
} from "../runtime/strace-oracle.ts";
export type { TakenSite } from "../strategy.ts";

/** The modules planChecks plans by default: libc, the dynamic loader, and bun itself. */
export function defaultModules(): string[] {
  return ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", process.execPath].filter((p) =>
    existsSync(p),
  );
}

export interface PlanCheckOptions {
  /** Modules to plan (default: defaultModules()). */
  modules?: readonly string[];
  /** Chain options for the strategy (`-s name:variant` gives { variant }). */
  options?: Record<string, string>;
  /** Host facts the planner sees (default: every check passes). */
  host?: HostFacts;
  /**
   * What a taken site's new bytes must disassemble to, as objdump prints the instructions
   * (e.g. ["int3", "nop"], ["call *%rax"]); null: only the generic checks.
   */
  expectInsns?: (taken: TakenSite) => readonly string[] | null;
}

export interface PlanCheckReport {
  path: string;
  sites: number;
  taken: number;
  refused: Record<string, number>;
  problems: string[];
}

const ALL_CHECKS: HostFacts = {
  checks: { page0: true, modify_ldt: true, sud: true, pkeys: true, ptrace: true, seccomp: true, cc: true },
};

/** Decoded instructions of each patch: objdump over all of them at once, 32 bytes apart. */
function disassemblePatches(patches: readonly Uint8Array[]): { offset: number; len: number; text: string }[][] {
  const SLOT = 32;
  const buf = new Uint8Array(patches.length * SLOT).fill(0x90);
  for (const [i, p] of patches.entries()) buf.set(p, i * SLOT);
  const dir = mkdtempSync(join(tmpdir(), "sysi-testkit-"));
  try {
    const file = join(dir, "patches.bin");
    writeFileSync(file, buf);
    const r = Bun.spawnSync(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "-w", file], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`objdump failed: ${r.stderr.toString().trim()}`);
    const out: { offset: number; len: number; text: string }[][] = patches.map(() => []);
    for (const line of r.stdout.toString().split("\n")) {
      const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$/.exec(line);
      if (m === null) continue;
      const at = Number.parseInt(m[1] as string, 16);
      const slot = Math.floor(at / SLOT);
      const offset = at - slot * SLOT;
      const patch = patches[slot];
      if (patch === undefined || offset >= patch.length) continue;
      const len = (m[2] as string).split(" ").filter((b) => b !== "").length;
      out[slot]?.push({ offset, len, text: (m[3] as string).replace(/\s+/g, " ").trim() });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Plan each module with the strategy alone and check every patch it takes. */
export async function planChecks(strategy: Strategy, opts: PlanCheckOptions = {}): Promise<PlanCheckReport[]> {
  if (Bun.which("objdump") === null) throw new Error("planChecks needs objdump (binutils) to decode the patches");
  const reports: PlanCheckReport[] = [];
  for (const path of opts.modules ?? defaultModules()) {
    const { plan } = await planFile(path, [{ strategy, options: { ...opts.options } }], opts.host ?? ALL_CHECKS);
    const file = readFileSync(path);
    const problems: string[] = [];
    const refused: Record<string, number> = {};
    const taken: TakenSite[] = [];
    for (const ps of plan.sites) {
      const d = ps.decisions[0];
      if (d === undefined) continue;
      if (isRefusal(d.result)) refused[d.result.reason] = (refused[d.result.reason] ?? 0) + 1;
      else if (ps.taken === strategy.name) taken.push({ site: ps.site, patch: d.result });
    }
    const at = (v: number) => `${path} 0x${v.toString(16)}`;
    // Old bytes: read from the file through the program headers ourselves.
    const elfOffset = fileOffsets(file);
    for (const t of taken) {
      const { vaddr, old } = t.patch.patch;
      const off = elfOffset(vaddr, old.length);
      if (off === null) problems.push(`${at(vaddr)}: patch is not inside a file-backed segment`);
      else if (!Buffer.from(old).equals(file.subarray(off, off + old.length)))
        problems.push(
          `${at(vaddr)}: old bytes ${Buffer.from(old).toString("hex")} but the file has ${file.subarray(off, off + old.length).toString("hex")}`,
        );
    }
    const decoded = disassemblePatches(taken.map((t) => t.patch.patch.bytes));
    taken.forEach((t, i) => {
      const insns = decoded[i] ?? [];
      const { vaddr, bytes } = t.patch.patch;
      const last = insns.at(-1);
      if (insns.some((x) => x.text.includes("(bad)")))
        problems.push(`${at(vaddr)}: ${Buffer.from(bytes).toString("hex")} does not decode`);
      else if (last === undefined || last.offset + last.len !== bytes.length)
        problems.push(
          `${at(vaddr)}: ${Buffer.from(bytes).toString("hex")} ends inside an instruction (${insns.map((x) => x.text).join("; ")})`,
        );
      if (insns.some((x) => /^(syscall|sysenter)\b/.test(x.text)))
        problems.push(`${at(vaddr)}: the patch still holds a system-call instruction`);
      const want = opts.expectInsns?.(t) ?? null;
      const got = insns.map((x) => x.text);
      if (want !== null && JSON.stringify(got) !== JSON.stringify(want))
        problems.push(`${at(vaddr)}: decodes to ${JSON.stringify(got)}, the strategy claims ${JSON.stringify(want)}`);
    });
    reports.push({ path, sites: plan.sites.length, taken: taken.length, refused, problems });
  }
  return reports;
}

/** vaddr → file offset through the PT_LOAD headers of an ELF64 file (null outside them). */
function fileOffsets(file: Buffer): (vaddr: number, len: number) => number | null {
  const phoff = Number(file.readBigUInt64LE(0x20));
  const phentsize = file.readUInt16LE(0x36);
  const phnum = file.readUInt16LE(0x38);
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (file.readUInt32LE(p) !== 1) continue;
    loads.push({
      offset: Number(file.readBigUInt64LE(p + 8)),
      vaddr: Number(file.readBigUInt64LE(p + 16)),
      filesz: Number(file.readBigUInt64LE(p + 32)),
    });
  }
  return (vaddr, len) => {
    const l = loads.find((s) => vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.filesz);
    return l === undefined ? null : l.offset + (vaddr - l.vaddr);
  };
}

export interface RunCheckOptions {
  /** The sysi command line to start (e.g. ["sysi"] or ["bun", ".../bin/run.js"]). */
  cli: readonly string[];
  /** The chain to run, e.g. "mystrategy,ud2". */
  chain: string;
  /** The strategy under test (its name in the chain and in the run's statistics). */
  strategy: string;
  /** Extra environment for sysi (e.g. SYSI_DATA_DIR where the plugin is linked, SYSI_CACHE_DIR). */
  env?: Record<string, string>;
  /** Real programs to compare with their native run (default: realPrograms()). */
  programs?: readonly (readonly string[])[];
  /** Include the hard-case programs (default true; skipped with a reason when they cannot be built). */
  hard?: boolean;
  /** Compare counts with strace -f (default true; skipped with a reason without strace). */
  strace?: boolean;
}

export interface RunCheck {
  name: string;
  problems: string[];
  /** Why the check did not run, if it did not. */
  skipped?: string;
}

/** Real programs whose output does not depend on time or on the process id. */
export function realPrograms(): string[][] {
  return [
    ["/bin/ls", "-la", "/usr/lib"],
    ["/bin/sh", "-c", "echo one; printf 'a\\nb\\n' | wc -l; cat /etc/hostname >/dev/null; exit 3"],
    ["/usr/bin/sort", "/etc/passwd"],
  ];
}

function spawn(argv: readonly string[], env: Record<string, string | undefined>, cwd?: string) {
  const r = Bun.spawnSync([...argv], {
    env: { ...process.env, ...env },
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGKILL",
  });
  return { code: r.exitCode ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Stderr without sysi's own lines (the coverage notes `sysi: …`). */
function programStderr(stderr: string): string {
  return stderr
    .split("\n")
    .filter((l) => !l.startsWith("sysi: "))
    .join("\n");
}

function compareToNative(name: string, argv: readonly string[], o: RunCheckOptions, env: Record<string, string> = {}) {
  const problems: string[] = [];
  const native = spawn(argv, env);
  const inst = spawn([...o.cli, "run", "-s", o.chain, "--hook", "passthrough", "--", ...argv], { ...o.env, ...env });
  if (inst.stderr.includes("sysi: error")) problems.push(`${name}: ${inst.stderr.trim().split("\n")[0]}`);
  if (inst.stdout !== native.stdout) problems.push(`${name}: stdout differs from the native run`);
  if (programStderr(inst.stderr) !== native.stderr) problems.push(`${name}: stderr differs from the native run`);
  if (inst.code !== native.code) problems.push(`${name}: exit status ${inst.code}, natively ${native.code}`);
  return problems;
}

/** The hard-case programs shipped with @sysi/core, built into `out` (null when they cannot be). */
function buildHardCases(out: string): { programs: string[]; why?: string } {
  const native = join(import.meta.dir, "..", "..", "native");
  const dir = join(native, "tests", "hard");
  if (!existsSync(dir)) return { programs: [], why: `this @sysi/core has no hard-case sources (${dir})` };
  const r = Bun.spawnSync(["make", "-s", "-C", native, `OUT=${out}`, "hard"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return { programs: [], why: `building the hard cases failed: ${r.stderr.toString().trim()}` };
  const programs = [...new Bun.Glob("*.c").scanSync(dir)]
    .map((f) => join(out, "tests", f.slice(0, -2)))
    .filter((p) => existsSync(p))
    .sort();
  return { programs };
}

/**
 * What a hard-case program must be told to expect (as hard.test.ts does): without zpoline in
 * the chain page 0 stays unmapped, so NULL reads fault and NULL pointer arguments get EFAULT.
 */
function hardEnv(chain: string): Record<string, string> {
  const zpoline = chain.split(",").some((s) => s.split(":")[0] === "zpoline");
  return zpoline ? {} : { OWN_TRAPS_PAGE0: "unmapped", NULL_ARGS_PAGE0: "unmapped" };
}

interface CountJson {
  syscalls: { name: string; calls: number; errors: number }[];
  /** Run-time site statistics per strategy. */
  sites?: Record<string, { patched: number; fellThrough: number; mismatched: number }>;
}

/** Run the strategy's chain through sysi on real and hard-case programs. */
export async function runChecks(o: RunCheckOptions): Promise<RunCheck[]> {
  const checks: RunCheck[] = [];
  const work = mkdtempSync(join(tmpdir(), "sysi-testkit-run-"));
  try {
    for (const argv of o.programs ?? realPrograms())
      checks.push({ name: `as natively: ${argv.join(" ")}`, problems: compareToNative(argv.join(" "), argv, o) });

    if (o.hard !== false) {
      const hard = buildHardCases(work);
      if (hard.why !== undefined) checks.push({ name: "hard cases", problems: [], skipped: hard.why });
      const env = hardEnv(o.chain);
      for (const prog of hard.programs) {
        const name = prog.split("/").at(-1) as string;
        checks.push({ name: `hard case ${name}`, problems: compareToNative(name, [prog], o, env) });
      }
    }

    checks.push(fallbackCheck(o, work));

    if (o.strace !== false) {
      if (Bun.which("strace") === null)
        checks.push({ name: "counts vs strace -f", problems: [], skipped: "no strace" });
      else
        for (const argv of [
          ["/bin/ls", "-la", "/usr/lib"],
          ["/bin/sh", "-c", "ls / | wc -l; cat /etc/passwd >/dev/null"],
        ])
          checks.push(straceCheck(o, work, argv));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return checks;
}

/**
 * Per-site fallback: the plans of the program's modules say which sites this strategy takes
 * and which it refuses (the next option's); at run time the count hook's statistics must show
 * exactly those: this strategy patched what it took minus what fell through, and the next
 * strategies patched the rest of what the plans gave them plus what fell through.
 */
function fallbackCheck(o: RunCheckOptions, work: string): RunCheck {
  const name = "per-site fallback: run-time patches match the plans";
  const out = join(work, "fallback.json");
  const run = spawn(
    [...o.cli, "run", "-v", "-s", o.chain, "--hook", "count", "--json", "-o", out, "--", "/bin/ls", "/"],
    o.env ?? {},
  );
  if (run.code !== 0) return { name, problems: [`sysi run failed (${run.code}): ${run.stderr.trim().split("\n")[0]}`] };
  // The modules planned ahead, from `sysi run -v` ("sysi: chain C; modules: A, B (planned), …").
  const line = run.stderr.split("\n").find((l) => l.startsWith("sysi: chain ") && l.includes("; modules: "));
  const modules = (line?.split("; modules: ")[1] ?? "").split(", ").map((m) => m.replace(/ \(planned\)$/, ""));
  const plan = spawn([...o.cli, "plan", "-s", o.chain, "--json", ...modules], o.env ?? {});
  if (plan.code !== 0)
    return { name, problems: [`sysi plan failed (${plan.code}): ${plan.stderr.trim().split("\n")[0]}`] };
  const planned: Record<string, number> = {};
  for (const doc of (JSON.parse(plan.stdout) as { plans: { stats?: { byStrategy?: Record<string, number> } }[] }).plans)
    for (const [s, n] of Object.entries(doc.stats?.byStrategy ?? {})) planned[s] = (planned[s] ?? 0) + n;
  const sites = (JSON.parse(readFileSync(out, "utf8")) as CountJson).sites ?? {};
  const mine = sites[o.strategy];
  if (mine === undefined) return { name, problems: [`no run-time statistics for ${o.strategy}`] };
  const problems: string[] = [];
  const fell = mine.fellThrough + mine.mismatched;
  if (mine.patched + fell !== (planned[o.strategy] ?? 0))
    problems.push(
      `${o.strategy}: patched ${mine.patched} + fell through ${fell} at run time, the plans give it ${planned[o.strategy] ?? 0}`,
    );
  const others = Object.entries(sites).filter(([s]) => s !== o.strategy);
  const othersPatched = others.reduce((n, [, s]) => n + s.patched, 0);
  const othersPlanned = others.reduce((n, [s]) => n + (planned[s] ?? 0), 0);
  if (othersPatched !== othersPlanned + fell)
    problems.push(
      `the next options patched ${othersPatched} sites, the plans give them ${othersPlanned} and ${fell} fell through`,
    );
  if ((planned[o.strategy] ?? 0) === 0) problems.push(`the plans give ${o.strategy} no site of /bin/ls's modules`);
  return { name, problems };
}

/** The count hook's numbers against strace -f of the same run (strace-oracle.ts). */
function straceCheck(o: RunCheckOptions, work: string, argv: readonly string[]): RunCheck {
  const name = `counts vs strace -f: ${argv.join(" ")}`;
  const trace = join(work, "trace.txt");
  const out = join(work, "count.json");
  const r = spawn(
    [
      "strace",
      "-f",
      "-qq",
      "-o",
      trace,
      ...o.cli,
      "run",
      "-s",
      o.chain,
      "--hook",
      "count",
      "--json",
      "-o",
      out,
      "--",
      ...argv,
    ],
    { ...o.env, SYSI_MARKER: "1" },
    work,
  );
  if (r.code !== 0 && !existsSync(out))
    return { name, problems: [`sysi run under strace failed (${r.code}): ${r.stderr.trim().split("\n")[0]}`] };
  const oracle = straceOracle(readFileSync(trace, "utf8"));
  const counts = JSON.parse(readFileSync(out, "utf8")) as CountJson;
  const problems: string[] = [];
  const ours = new Map(counts.syscalls.map((s) => [s.name, s]));
  const names = new Set([...ours.keys(), ...Object.keys(oracle.byName)]);
  for (const n of [...names].sort()) {
    const a = ours.get(n);
    const b = oracle.byName[n];
    if ((a?.calls ?? 0) !== (b?.calls ?? 0) || (a?.errors ?? 0) !== (b?.errors ?? 0))
      problems.push(
        `${n}: hook counted ${a?.calls ?? 0} calls (${a?.errors ?? 0} errors), strace saw ${b?.calls ?? 0} (${b?.errors ?? 0})`,
      );
  }
  return { name, problems };
}
