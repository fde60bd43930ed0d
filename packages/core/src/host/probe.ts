/**
 * What this machine allows: `probeHost()` runs every check `sysi doctor` prints.
 *
 * Reading /proc and /sys happens here; the risky probes (map page 0, write an LDT entry, turn
 * Syscall User Dispatch on and off, allocate a pkey) run in a child process (probe-child.ts) so
 * the caller's process stays clean. Nothing here changes a system setting.
 */
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { fileURLToPath } from "node:url";
import { describeErrno } from "./errno.ts";
import {
  type ChildProbe,
  FACT_IDS,
  HOST_CHECK_IDS,
  type HostCheck,
  type HostCheckName,
  type HostReport,
} from "./types.ts";

const CHILD_TIMEOUT_MS = 10_000;
const CAP_SYS_RAWIO = 17;
const CAP_SYS_PTRACE = 19;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** `Key:\tvalue` fields of /proc/self/status. */
function procStatus(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (readText("/proc/self/status") ?? "").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

function hasCap(status: Map<string, string>, bit: number): boolean | null {
  const eff = status.get("CapEff");
  if (eff === undefined || !/^[0-9a-f]+$/i.test(eff)) return null;
  return ((BigInt(`0x${eff}`) >> BigInt(bit)) & 1n) === 1n;
}

function mmapMinAddr(): number | null {
  const t = readText("/proc/sys/vm/mmap_min_addr");
  return t === null ? null : Number(t.trim());
}

interface ChildResult {
  probes: Map<string, ChildProbe>;
  /** Why the child stopped early (signal, exit code, timeout, spawn failure), or null. */
  died: string | null;
}

/** Run probe-child.ts with this same bun and collect its JSON lines. */
async function runChild(): Promise<ChildResult> {
  const script = fileURLToPath(new URL("./probe-child.ts", import.meta.url));
  const probes = new Map<string, ChildProbe>();
  let died: string | null = null;
  try {
    const proc = Bun.spawn([process.execPath, script], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), CHILD_TIMEOUT_MS);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    clearTimeout(timer);
    for (const line of out.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const p = JSON.parse(line) as ChildProbe;
        probes.set(p.id, p);
      } catch {
        // a partial line from a dying child: ignore
      }
    }
    if (proc.signalCode) died = `probe process killed by ${proc.signalCode}`;
    else if (proc.exitCode !== 0) {
      const first = err.split("\n").find((l) => l.trim() !== "") ?? "";
      died = `probe process exited with ${proc.exitCode}${first ? `: ${first.trim().slice(0, 160)}` : ""}`;
    }
  } catch (e) {
    died = `cannot run the probe process: ${e instanceof Error ? e.message : String(e)}`;
  }
  return { probes, died };
}

function notRun(child: ChildResult): string {
  return child.died ?? "probe did not report";
}

function page0Check(child: ChildResult, status: Map<string, string>): HostCheck {
  const p = child.probes.get("page0");
  const base = { id: "page0" as const, enables: [], rulesOut: [] };
  if (p?.ok) {
    return {
      ...base,
      ok: true,
      detail:
        "address 0 can be mapped; note that while page 0 is mapped, NULL reads no longer fault (no pkeys here to make it execute-only)",
    };
  }
  if (p === undefined) return { ...base, ok: false, detail: `not probed: ${notRun(child)}` };
  const min = mmapMinAddr();
  const rawio = hasCap(status, CAP_SYS_RAWIO);
  const why =
    p.info?.got !== undefined
      ? `the kernel placed the mapping at ${p.info.got} (MAP_FIXED_NOREPLACE unsupported)`
      : `mmap(0) failed: ${describeErrno(p.errno)}`;
  const minText = min === null ? "vm.mmap_min_addr unreadable" : `vm.mmap_min_addr=${min}`;
  const capText = rawio === null ? "CAP_SYS_RAWIO unknown" : rawio ? "has CAP_SYS_RAWIO" : "no CAP_SYS_RAWIO";
  return {
    ...base,
    ok: false,
    detail: `${why}; ${minText}, ${capText} (needs root/CAP_SYS_RAWIO or vm.mmap_min_addr=0)`,
  };
}

/** Refine page0's detail: pkeys (if they work) could make page 0 execute-only. */
function page0WithPkeys(page0: HostCheck, pkeys: HostCheck): HostCheck {
  if (!page0.ok || !pkeys.ok) return page0;
  return {
    ...page0,
    detail:
      "address 0 can be mapped; note that while page 0 is mapped, NULL reads no longer fault unless a pkey makes it execute-only (pkeys work here)",
  };
}

function modifyLdtCheck(child: ChildResult): HostCheck {
  const p = child.probes.get("modify_ldt");
  const base = { id: "modify_ldt" as const, enables: [], rulesOut: [] };
  if (p === undefined) return { ...base, ok: false, detail: `not probed: ${notRun(child)}` };
  if (!p.ok) {
    const hint = p.errno === -38 ? " (kernel built without CONFIG_MODIFY_LDT_SYSCALL)" : "";
    return { ...base, ok: false, detail: `${p.failed} failed: ${describeErrno(p.errno)}${hint}` };
  }
  const cleared = p.info?.lBitCleared === true;
  return {
    ...base,
    ok: true,
    detail: `read (func 0) and write (func 0x11) work; ${cleared ? "the kernel cleared the L bit: LDT code segments are 16/32-bit only" : "the L bit was kept (64-bit LDT code segment)"}`,
  };
}

function sudCheck(child: ChildResult): HostCheck {
  const p = child.probes.get("sud");
  const base = { id: "sud" as const, enables: [], rulesOut: [] };
  if (p === undefined) return { ...base, ok: false, detail: `not probed: ${notRun(child)}` };
  if (!p.ok) {
    const hint = p.errno === -22 ? " (kernel older than 5.11 or built without CONFIG_GENERIC_ENTRY)" : "";
    const effect = "; no catch-all for code without a plan (JIT, unplanned dlopen)";
    return { ...base, ok: false, detail: `${p.failed} failed: ${describeErrno(p.errno)}${hint}${effect}` };
  }
  return {
    ...base,
    ok: true,
    detail: "Syscall User Dispatch can be turned on and off (catch-all for unplanned code: JIT, dlopen)",
  };
}

function pkeysCheck(child: ChildResult, cpuFlags: Set<string>): HostCheck {
  const p = child.probes.get("pkeys");
  const base = { id: "pkeys" as const, enables: [], rulesOut: [] };
  if (p === undefined) return { ...base, ok: false, detail: `not probed: ${notRun(child)}` };
  if (!p.ok) {
    const cpu = cpuFlags.has("pku")
      ? cpuFlags.has("ospke")
        ? ""
        : "; CPU has pku but the OS did not enable it"
      : "; CPU has no pku";
    return { ...base, ok: false, detail: `pkey_alloc failed: ${describeErrno(p.errno)}${cpu}` };
  }
  return { ...base, ok: true, detail: `pkey_alloc/pkey_free work (got key ${p.info?.key})` };
}

function seccompCheck(child: ChildResult, status: Map<string, string>): HostCheck {
  const base = { id: "seccomp" as const, enables: [], rulesOut: [] };
  const mode = status.get("Seccomp");
  const filters = status.get("Seccomp_filters");
  const p = child.probes.get("seccomp");
  const childMode = p?.ok ? ` (PR_GET_SECCOMP in a child: ${p.info?.mode})` : "";
  if (mode === undefined)
    return { ...base, ok: true, detail: `Seccomp field absent from /proc/self/status${childMode}` };
  if (mode === "0") return { ...base, ok: true, detail: `no seccomp filter on this process${childMode}` };
  if (mode === "2") {
    return {
      ...base,
      ok: true,
      detail: `seccomp filter mode, ${filters ?? "?"} filter(s): some syscalls (modify_ldt, ptrace…) may be denied${childMode}`,
    };
  }
  return { ...base, ok: false, detail: `seccomp mode ${mode} (strict): only read/write/exit allowed` };
}

function ptraceCheck(status: Map<string, string>): HostCheck {
  const base = { id: "ptrace" as const, enables: [], rulesOut: [] };
  const scopeText = readText("/proc/sys/kernel/yama/ptrace_scope");
  const scope = scopeText === null ? null : Number(scopeText.trim());
  const tracer = status.get("TracerPid") ?? "0";
  const traced = tracer !== "0" ? `; this process is traced by pid ${tracer}` : "";
  const cap = hasCap(status, CAP_SYS_PTRACE);
  if (scope === null) return { ...base, ok: true, detail: `no Yama LSM (classic ptrace permissions)${traced}` };
  const meaning = ["classic permissions", "only descendants", "needs CAP_SYS_PTRACE", "ptrace disabled"][scope] ?? "?";
  const ok = scope < 2 || (scope === 2 && cap === true);
  return { ...base, ok, detail: `kernel.yama.ptrace_scope=${scope} (${meaning})${traced}` };
}

function kernelCheck(): HostCheck {
  return { id: "kernel", ok: true, detail: `Linux ${release()}`, enables: [], rulesOut: [] };
}

interface CpuInfo {
  vendor: string;
  family: string;
  model: string;
  name: string;
  flags: Set<string>;
}

function cpuInfo(): CpuInfo | null {
  const text = readText("/proc/cpuinfo");
  if (text === null) return null;
  const first = text.split("\n\n")[0] ?? "";
  const f = new Map<string, string>();
  for (const line of first.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) f.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return {
    vendor: f.get("vendor_id") ?? "?",
    family: f.get("cpu family") ?? "?",
    model: f.get("model") ?? "?",
    name: f.get("model name") ?? "?",
    flags: new Set((f.get("flags") ?? "").split(/\s+/).filter((x) => x !== "")),
  };
}

const RELEVANT_CPU_FLAGS = ["pcid", "pku", "ospke", "user_shstk"];

function cpuCheck(cpu: CpuInfo | null): HostCheck {
  const base = { id: "cpu" as const, enables: [], rulesOut: [] };
  if (cpu === null) return { ...base, ok: false, detail: "/proc/cpuinfo unreadable" };
  const flags = RELEVANT_CPU_FLAGS.map((x) => `${x}${cpu.flags.has(x) ? "+" : "-"}`).join(" ");
  return { ...base, ok: true, detail: `${cpu.vendor} family ${cpu.family} model ${cpu.model} (${cpu.name}); ${flags}` };
}

async function ccCheck(): Promise<HostCheck> {
  const base = { id: "cc" as const, enables: [], rulesOut: [] };
  try {
    const proc = Bun.spawn(["cc", "--version"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    const out = await new Response(proc.stdout).text();
    const code = await proc.exited;
    const first = out.split("\n")[0]?.trim() ?? "";
    if (code !== 0 || first === "") return { ...base, ok: false, detail: `cc --version exited with ${code}` };
    return { ...base, ok: true, detail: `${first} (builds strategy runtimes)` };
  } catch {
    return { ...base, ok: false, detail: "cc not found on PATH: strategy runtimes cannot be built" };
  }
}

function mmapMinAddrCheck(status: Map<string, string>): HostCheck {
  const base = { id: "mmapMinAddr" as const, enables: [], rulesOut: [] };
  const min = mmapMinAddr();
  if (min === null) return { ...base, ok: false, detail: "/proc/sys/vm/mmap_min_addr unreadable" };
  const rawio = hasCap(status, CAP_SYS_RAWIO);
  const note =
    min === 0
      ? "any process may map page 0"
      : rawio
        ? "this process may go below it (CAP_SYS_RAWIO)"
        : "page 0 needs CAP_SYS_RAWIO";
  return { ...base, ok: true, detail: `vm.mmap_min_addr=${min}: ${note}` };
}

function ptiCheck(): HostCheck {
  const base = { id: "pti" as const, enables: [], rulesOut: [] };
  const t = readText("/sys/devices/system/cpu/vulnerabilities/meltdown");
  if (t === null) return { ...base, ok: false, detail: "/sys/devices/system/cpu/vulnerabilities/meltdown unreadable" };
  const s = t.trim();
  const pti = /PTI/.test(s);
  return {
    ...base,
    ok: true,
    detail: `meltdown: ${s}${pti ? " (page-table isolation on: every kernel entry costs more)" : " (no page-table isolation)"}`,
  };
}

export function makeReport(checks: HostCheck[], ms: number): HostReport {
  const byId = new Map(checks.map((c) => [c.id, c]));
  return {
    checks,
    ms,
    check: (id: HostCheckName) => byId.get(id),
    facts: () => ({
      checks: Object.fromEntries(FACT_IDS.filter((id) => byId.has(id)).map((id) => [id, byId.get(id)?.ok === true])),
    }),
  };
}

/** Probe the host. Never throws for a failed check; each check says what it found. */
export async function probeHost(): Promise<HostReport> {
  const t0 = performance.now();
  const status = procStatus();
  const cpu = cpuInfo();
  const [child, cc] = await Promise.all([runChild(), ccCheck()]);
  const pkeys = pkeysCheck(child, cpu?.flags ?? new Set());
  const byId: Record<HostCheckName, HostCheck> = {
    page0: page0WithPkeys(page0Check(child, status), pkeys),
    modify_ldt: modifyLdtCheck(child),
    sud: sudCheck(child),
    pkeys,
    ptrace: ptraceCheck(status),
    seccomp: seccompCheck(child, status),
    kernel: kernelCheck(),
    cpu: cpuCheck(cpu),
    cc,
    mmapMinAddr: mmapMinAddrCheck(status),
    pti: ptiCheck(),
  };
  return makeReport(
    HOST_CHECK_IDS.map((id) => byId[id]),
    performance.now() - t0,
  );
}
