/**
 * The segmentation probe: runs native/probe.c (each experiment in a forked child, faults
 * contained) and turns the raw values it prints into rows and a summary. Nothing here knows an
 * answer in advance: every fact is computed from what the CPU and kernel did in this run.
 *
 * `runProbe(build)` builds and runs the probe (build: core's ensureRuntime, passed in by the
 * CLI so that this plugin carries no copy of core); `interpret(lines, cpu)` is the pure part.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** One line of the native probe, as printed (numbers are decimal strings). */
export type RawLine = { id: string; outcome: string } & Record<string, string | number>;

export type Outcome = "ok" | "fault" | "error" | "skipped" | "crash";

export interface ProbeRow {
  id: string;
  /** What the experiment does, one line. */
  experiment: string;
  outcome: Outcome;
  /** What happened, one line, built from the measured values. */
  result: string;
  /** Derived facts (see FACTS in docs/segmentation.md). */
  facts: Record<string, string | number | boolean>;
  /** The probe's raw line. */
  raw: RawLine;
}

export interface ProbeSummary {
  /** modify_ldt kept the L (64-bit) bit of an LDT code segment. */
  ldtLongModeKept: boolean | null;
  /** A far call into a 32-bit LDT segment works on a normal (above 4 GiB) stack. */
  ldt32NormalStack: "works" | "faults" | null;
  /** … and on a stack below 4 GiB. */
  ldt32LowStack: "works" | "faults" | null;
  /** Bytes the 2-byte `ff 18` pushes, and whether its return address is the low 32 bits only. */
  farCallPushes: number | null;
  farCallReturnTruncated: boolean | null;
  /** How `48 ff 18` reads its operand on this CPU, what it pushes, whether the return is whole. */
  rexwOperand: "m16:32" | "m16:64" | null;
  rexwPushes: number | null;
  rexwReturnFull: boolean | null;
  /** The page-0 pattern `33 00 …` for an even and an odd number. */
  page0Even: "works" | "faults" | null;
  page0Odd: "works" | "faults" | null;
  /** Every faulting page-0 call stopped at the far call with nothing pushed (a handler can redo it). */
  faultsRestartable: boolean | null;
}

export interface ProbeReport {
  cpu: { vendor: string; model: string; family: string };
  kernel: string;
  rows: ProbeRow[];
  summary: ProbeSummary;
}

const TITLES: Record<string, string> = {
  "ldt-lbit": "modify_ldt(0x11) of a 64-bit (L=1) code segment, read back",
  "ldt32-stack": "lcall *(%rax) into a 32-bit LDT code segment, normal stack",
  "ldt32-lowstack": "lcall *(%rax) into a 32-bit LDT code segment, stack below 4 GiB",
  "gdt-farcall": "lcall *(%rax) (ff 18) to selector 0x33, pointer 33 00 33 00 33 00 00 00 33 00",
  "rexw-farcall": "rex.W lcall *(%rax) (48 ff 18), the same pointer",
  "page0-even": "page 0 = 33 00 …, ff 18 with rax = 110 (even)",
  "page0-odd": "page 0 = 33 00 …, ff 18 with rax = 39 (odd)",
  "page0-rexw": "page 0 = 33 00 …, 48 ff 18 with rax = 110",
  "page0-600": "page 0 = 33 00 …, ff 18 with rax = 600 (no such syscall)",
  "page0-4090": "page 0 = 33 00 …, ff 18 with rax = 4090 (last 6-byte read inside page 0)",
  "page0-4092": "page 0 = 33 00 …, ff 18 with rax = 4092 (read crosses into page 1)",
  "page0-64k": "page 0 = 33 00 …, ff 18 with rax = 0x10000",
  "page0-minus1": "page 0 = 33 00 …, ff 18 with rax = -1",
  "page0-noncanonical": "page 0 = 33 00 …, ff 18 with rax = 0x8000000000000000",
};

/** The experiments, in the probe's order. */
export const EXPERIMENTS: readonly string[] = Object.keys(TITLES);

const M32 = 0xffffffffn;
const TRAPS: Record<string, string> = { "13": "#GP", "14": "#PF", "6": "#UD", "3": "#BP" };

function big(raw: RawLine, key: string): bigint {
  const v = raw[key];
  return v === undefined ? 0n : BigInt(v);
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Facts of a row whose target ran. */
function okFacts(raw: RawLine): Record<string, string | number | boolean> {
  const before = big(raw, "rsp_before");
  const after = big(raw, "rsp_after");
  const ret = big(raw, "ret");
  const p0 = big(raw, "pushed0");
  const p1 = big(raw, "pushed1");
  const width = Number(before - after);
  const which = Number(big(raw, "which"));
  const facts: Record<string, string | number | boolean> = {
    target: which === 1 ? "0x330033" : which === 2 ? "0x3300330033" : "ldt",
    targetCs: hex(big(raw, "cs")),
    pushedBytes: width,
  };
  if (which === 1) facts.operand = "m16:32";
  if (which === 2) facts.operand = "m16:64";
  if (width === 8) {
    facts.pushedEip = hex(p0 & M32);
    facts.pushedCs = hex(p0 >> 32n);
    facts.returnTruncated = (p0 & M32) === (ret & M32) && ret > M32;
    facts.returnFull = ret <= M32 && (p0 & M32) === ret;
  } else if (width === 16) {
    facts.pushedRip = hex(p0);
    facts.pushedCs = hex(p1);
    facts.returnTruncated = false;
    facts.returnFull = p0 === ret;
  }
  // the stack pointer the target ran on: upper half kept, or zeroed (a truncated stack)
  facts.rspUpperKept = after >> 32n === before >> 32n;
  return facts;
}

/** Facts of a row that faulted. */
function faultFacts(raw: RawLine): Record<string, string | number | boolean> {
  const trap = String(raw.trapno);
  const rip = big(raw, "rip");
  const rsp = big(raw, "rsp");
  const before = big(raw, "rsp_before");
  const site = big(raw, "site");
  return {
    exception: TRAPS[trap] ?? `vector ${trap}`,
    signal: Number(raw.signal),
    errorCode: hex(big(raw, "err")),
    siAddr: hex(big(raw, "si_addr")),
    atFarCall: rip === site,
    nothingPushed: rsp === before,
    restartable: rip === site && rsp === before,
    // the page-fault address against the 32-bit-truncated stack pointer (a push there)
    truncatedStackPush: trap === "14" && big(raw, "si_addr") < before && (before & M32) - big(raw, "si_addr") <= 16n,
  };
}

function resultLine(id: string, outcome: Outcome, f: Record<string, string | number | boolean>, raw: RawLine): string {
  if (id === "ldt-lbit") {
    return `returned ${raw.ret}; read back L=${raw.l} D=${raw.d}${raw.l === "0" && raw.ret === 0 ? " (L cleared silently)" : ""}`;
  }
  if (outcome === "ok") {
    const ret = f.returnFull
      ? "full return address"
      : f.returnTruncated
        ? `return address truncated to ${f.pushedEip}`
        : "return address not found";
    const op = f.operand === undefined ? "" : `read as ${f.operand}, `;
    return `reached ${f.target} (cs ${f.targetCs}), ${op}pushed ${f.pushedBytes} bytes, ${ret}`;
  }
  if (outcome === "fault") {
    const where = f.truncatedStackPush ? " (the push at the truncated stack pointer)" : "";
    const restart = f.restartable ? ", at the far call with nothing pushed" : "";
    return `${f.exception} error ${f.errorCode} address ${f.siAddr}${where}${restart}`;
  }
  if (outcome === "skipped") return `skipped: ${raw.reason}`;
  if (outcome === "crash") return `child killed by signal ${raw.signal}`;
  return `error: ${raw.error}`;
}

function rowOf(raw: RawLine): ProbeRow {
  const outcome = raw.outcome as Outcome;
  let facts: Record<string, string | number | boolean> = {};
  if (raw.id === "ldt-lbit" && outcome === "ok") {
    facts = { ret: Number(raw.ret), l: raw.l === "1", d: raw.d === "1", lCleared: raw.l === "0" };
  } else if (outcome === "ok") facts = okFacts(raw);
  else if (outcome === "fault") facts = faultFacts(raw);
  return {
    id: raw.id,
    experiment: TITLES[raw.id] ?? raw.id,
    outcome,
    result: resultLine(raw.id, outcome, facts, raw),
    facts,
    raw,
  };
}

const works = (r: ProbeRow | undefined): "works" | "faults" | null =>
  r === undefined || (r.outcome !== "ok" && r.outcome !== "fault") ? null : r.outcome === "ok" ? "works" : "faults";

/** The rows and summary from the probe's lines (pure). */
export function interpret(lines: readonly RawLine[], cpu: ProbeReport["cpu"], kernel: string): ProbeReport {
  const rows = lines.map(rowOf);
  const by = new Map(rows.map((r) => [r.id, r]));
  const ok = (id: string): ProbeRow | undefined => (by.get(id)?.outcome === "ok" ? by.get(id) : undefined);
  const lbit = ok("ldt-lbit");
  const gdt = ok("gdt-farcall");
  const rexw = ok("rexw-farcall");
  const page0Faults = rows.filter((r) => r.id.startsWith("page0-") && r.outcome === "fault");
  const summary: ProbeSummary = {
    ldtLongModeKept: lbit === undefined ? null : lbit.facts.l === true,
    ldt32NormalStack: works(by.get("ldt32-stack")),
    ldt32LowStack: works(by.get("ldt32-lowstack")),
    farCallPushes: gdt === undefined ? null : Number(gdt.facts.pushedBytes),
    farCallReturnTruncated: gdt === undefined ? null : gdt.facts.returnTruncated === true,
    rexwOperand: rexw === undefined ? null : ((rexw.facts.operand as "m16:32" | "m16:64" | undefined) ?? null),
    rexwPushes: rexw === undefined ? null : Number(rexw.facts.pushedBytes),
    rexwReturnFull: rexw === undefined ? null : rexw.facts.returnFull === true,
    page0Even: works(by.get("page0-even")),
    page0Odd: works(by.get("page0-odd")),
    faultsRestartable: page0Faults.length === 0 ? null : page0Faults.every((r) => r.facts.restartable === true),
  };
  return { cpu, kernel, rows, summary };
}

/** Parse the probe's stdout: one JSON object per line. */
export function parseLines(text: string): RawLine[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as RawLine);
}

/** This CPU, from /proc/cpuinfo. */
export function cpuInfo(text: string = readCpuinfo()): ProbeReport["cpu"] {
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "unknown";
  return { vendor: field("vendor_id"), model: field("model name"), family: field("cpu family") };
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}

/** Builds a native target of this plugin (core's ensureRuntime) and returns its path. */
export type NativeBuild = (nativeDir: string, target: string) => Promise<string>;

export const PROBE_BIN = "sysi-segprobe";
export const NATIVE_DIR = join(import.meta.dir, "..", "native");

/** Build and run the probe; `only` restricts the experiments. */
export async function runProbe(build: NativeBuild, only: readonly string[] = []): Promise<ProbeReport> {
  const bin = await build(NATIVE_DIR, PROBE_BIN);
  const p = Bun.spawnSync([bin, ...only], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0)
    throw new Error(`the segmentation probe exited with ${p.exitCode}: ${p.stderr.toString().trim()}`);
  const uname = Bun.spawnSync(["uname", "-r"], { stdout: "pipe" }).stdout.toString().trim();
  return interpret(parseLines(p.stdout.toString()), cpuInfo(), uname);
}
