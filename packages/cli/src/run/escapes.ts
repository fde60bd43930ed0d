/**
 * What a `sysi run` does not instrument beyond unpatched sites (coverage.ts), and why:
 *
 *   - programs the runtime never enters: an exec whose new image will not load libsysi (libsysi's
 *     escape.c inspects every execve/execveat before the kernel sees it and reports it in
 *     SYSI_UNPATCHED_FILE as "exec KIND TID PATH"; "execfail TID" cancels the thread's last one
 *     when the call came back) or must not (a dynamically linked Go program without cgo, which
 *     escape.c execs without libsysi and sysi's variables), and the command itself when the
 *     kernel runs it set-ID or with file capabilities (known before start). The environment is no reason: libsysi gives
 *     sysi's variables and LD_PRELOAD back to every exec it sees (native/env.c), so a child
 *     started with `env -i`, a replaced LD_PRELOAD or sysi's variables removed is instrumented;
 *   - `int $0x80` sites: the 32-bit system-call ABI, which no strategy instruments (counted
 *     among the refused sites of the modules planned ahead);
 *   - the system calls each process image makes before the runtime starts (the dynamic loader's,
 *     constructors that run before libsysi's): the kernel keeps no count of them that sysi can
 *     read without tracing the program, so they are named, not counted;
 *   - the vDSO's `syscall` sites (the fallbacks of its clock and getrandom functions): the kernel
 *     maps the vDSO sealed (mprotect refuses), so no strategy patches them; a call that falls
 *     back there bypasses the hook unless --complete's catch-all is on. The vDSO is the same
 *     image in every process of this kernel, so sysi scans its own.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { constants } from "node:os";
import { parseElf } from "@sysi/core/elf";
import { SysiError } from "@sysi/core/errors";
import { decodePlan } from "@sysi/core/internal";
import { scanElf } from "@sysi/core/scan";

/** Why an exec's image runs uninstrumented (escape.c). */
export type ExecEscapeKind = "setid" | "caps" | "static" | "foreign" | "go";

export const EXEC_ESCAPE_KINDS: readonly ExecEscapeKind[] = ["setid", "caps", "static", "foreign", "go"];

/** What each kind means, as the notice says it (after "N execs of/with …"). */
const WHY: Record<ExecEscapeKind, [one: string, many: string, why: string]> = {
  setid: [
    "exec of a set-user-ID or set-group-ID program",
    "execs of set-user-ID or set-group-ID programs",
    "the kernel's secure mode: the dynamic loader ignores LD_PRELOAD",
  ],
  caps: [
    "exec of a program with file capabilities",
    "execs of programs with file capabilities",
    "the kernel's secure mode: the dynamic loader ignores LD_PRELOAD",
  ],
  static: [
    "exec of a statically linked program",
    "execs of statically linked programs",
    "no dynamic loader reads LD_PRELOAD",
  ],
  foreign: ["exec of a non-x86-64 program", "execs of non-x86-64 programs", "libsysi cannot be loaded into it"],
  // escape.c execs it without libsysi and sysi's variables, so its children run natively too
  go: [
    "exec of a dynamically linked Go program without cgo",
    "execs of dynamically linked Go programs without cgo",
    "Go's runtime takes over %fs, where libsysi keeps its per-thread state, so it ran without libsysi, and so did its children",
  ],
};

/** One program that ran uninstrumented, `count` times. */
export interface ExecEscape {
  kind: ExecEscapeKind;
  path: string;
  count: number;
}

/**
 * The exec lines of a SYSI_UNPATCHED_FILE (other lines are coverage.ts's), with each thread's
 * failed execs cancelled, merged per kind and path. Malformed lines are ignored.
 */
export function parseExecEscapes(text: string): ExecEscape[] {
  const last = new Map<string, { kind: ExecEscapeKind; path: string }[]>();
  for (const line of text.split("\n")) {
    const ex = /^exec (\w+) (\d+) (.+)$/.exec(line);
    if (ex !== null && (EXEC_ESCAPE_KINDS as readonly string[]).includes(ex[1] as string)) {
      const list = last.get(ex[2] as string) ?? [];
      list.push({ kind: ex[1] as ExecEscapeKind, path: ex[3] as string });
      last.set(ex[2] as string, list);
      continue;
    }
    const fail = /^execfail (\d+)$/.exec(line);
    if (fail !== null) last.get(fail[1] as string)?.pop();
  }
  const by = new Map<string, ExecEscape>();
  for (const list of last.values()) {
    for (const e of list) {
      const key = `${e.kind}\0${e.path}`;
      const g = by.get(key) ?? { ...e, count: 0 };
      g.count++;
      by.set(key, g);
    }
  }
  return [...by.values()].sort(
    (a, b) =>
      EXEC_ESCAPE_KINDS.indexOf(a.kind) - EXEC_ESCAPE_KINDS.indexOf(b.kind) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

const NAMED = 4;

function list(items: string[]): string {
  const shown = items.slice(0, NAMED);
  if (items.length > NAMED) shown.push(`${items.length - NAMED} more`);
  return shown.length <= 1 ? (shown[0] ?? "") : `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}`;
}

/** The exit sentence for the escaped execs, or null when every exec loaded the runtime. */
export function escapeSentence(escapes: readonly ExecEscape[]): string | null {
  if (escapes.length === 0) return null;
  const parts: string[] = [];
  for (const kind of EXEC_ESCAPE_KINDS) {
    const of = escapes.filter((e) => e.kind === kind);
    if (of.length === 0) continue;
    const n = of.reduce((s, e) => s + e.count, 0);
    const [one, many, why] = WHY[kind];
    const where = list(of.map((e) => (e.count === 1 ? e.path : `${e.path} ${e.count}`)));
    parts.push(`${n} ${n === 1 ? one : many} (${where}; ${why})`);
  }
  return `not instrumented during the run: ${parts.join("; ")}: their system calls were not seen`;
}

/** The line `sysi run` prints at exit, or null. */
export function escapeNotice(sentence: string | null): string | null {
  return sentence === null ? null : `sysi: ${sentence}\n`;
}

/** --strict at exit: a program of the run ran uninstrumented. */
export function escapeError(sentence: string | null): SysiError | null {
  return sentence === null ? null : new SysiError("RUN_ESCAPED", `--strict: ${sentence}`);
}

/**
 * The "environ ERRNO" lines of a SYSI_UNPATCHED_FILE (native/env.c): process images whose
 * /proc/PID/environ still shows sysi's variables because the kernel refused prctl(PR_SET_MM)
 * (a seccomp filter; a kernel without CONFIG_CHECKPOINT_RESTORE and no CAP_SYS_RESOURCE). Their
 * environ and getenv are the program's all the same. The line `sysi run` prints at exit, or null.
 */
export function environNotice(text: string): string | null {
  const names = new Map<number, string>();
  for (const [name, n] of Object.entries(constants.errno)) if (!names.has(n)) names.set(n, name);
  const by = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^environ (\d+)$/.exec(line);
    if (m === null) continue;
    const e = names.get(Number(m[1])) ?? `errno ${m[1]}`;
    by.set(e, (by.get(e) ?? 0) + 1);
  }
  if (by.size === 0) return null;
  const n = [...by.values()].reduce((a, b) => a + b, 0);
  const why = [...by].map(([e, k]) => (by.size === 1 ? e : `${e} ${k}`)).join(", ");
  return `sysi: note: /proc/PID/environ of ${n} process image${n === 1 ? "" : "s"} still shows sysi's variables (the kernel refused prctl PR_SET_MM: ${why}); environ and getenv in ${n === 1 ? "it" : "them"} do not\n`;
}

/** The ids and flags that decide the kernel's secure mode for an exec by this process. */
export interface ExecCreds {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  noNewPrivs: boolean;
}

export function currentCreds(): ExecCreds {
  let noNewPrivs = false;
  try {
    noNewPrivs = /^NoNewPrivs:\s*1$/m.test(readFileSync("/proc/self/status", "utf8"));
  } catch {
    // no /proc: assume the default
  }
  return {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
    noNewPrivs,
  };
}

/** Is `path` on a mount with nosuid (its longest mount point in /proc/self/mountinfo)? */
function onNosuidMount(path: string): boolean {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return false;
  }
  let best = "";
  let nosuid = false;
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const point = (f[4] ?? "").replace(/\\040/g, " ");
    if (f.length < 6 || !(path === point || path.startsWith(point === "/" ? "/" : `${point}/`))) continue;
    if (point.length >= best.length) {
      best = point;
      nosuid = (f[5] ?? "").split(",").includes("nosuid");
    }
  }
  return nosuid;
}

/** The file capabilities of `path` grant something (permitted or effective), via getxattr. */
async function hasFileCaps(path: string): Promise<boolean> {
  const { dlopen, FFIType, ptr } = await import("bun:ffi");
  const libc = dlopen("libc.so.6", {
    getxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  });
  try {
    const cap = new Uint32Array(6); // vfs_cap_data: magic_etc, {permitted, inheritable} x2, rootid
    const n = Number(
      libc.symbols.getxattr(ptr(Buffer.from(`${path}\0`)), ptr(Buffer.from("security.capability\0")), ptr(cap), 24n),
    );
    if (n < 12) return false;
    const magic = cap[0] as number;
    return (magic & 1) !== 0 || cap[1] !== 0 || (magic >>> 24 >= 2 && n >= 20 && cap[3] !== 0);
  } finally {
    libc.close();
  }
}

/**
 * Does the kernel run `path` in secure mode when this process execs it (escape.c's rule: set-ID
 * to ids other than the real ones, or file capabilities for a non-root caller; neither under
 * no_new_privs or on a nosuid mount)? The kind, or null.
 */
export async function commandEscape(path: string, creds = currentCreds()): Promise<"setid" | "caps" | null> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return null;
  }
  const ignore = creds.noNewPrivs || onNosuidMount(path);
  const mode = Number(st.mode);
  const euid = !ignore && mode & 0o4000 ? Number(st.uid) : creds.euid;
  const egid = !ignore && mode & 0o2000 && mode & 0o010 ? Number(st.gid) : creds.egid;
  if (euid !== creds.uid || egid !== creds.gid) return "setid";
  if (!ignore && creds.uid !== 0 && (await hasFileCaps(path))) return "caps";
  return null;
}

function commandSentence(path: string, kind: "setid" | "caps"): string {
  const what = kind === "setid" ? "is set-user-ID or set-group-ID for this user" : "has file capabilities";
  return `${path} ${what}: the kernel runs it in secure mode, where the dynamic loader ignores LD_PRELOAD, so it runs uninstrumented`;
}

/** The line before start for a command that runs uninstrumented, or null. */
export function commandNotice(path: string, kind: "setid" | "caps" | null): string | null {
  return kind === null ? null : `sysi: ${commandSentence(path, kind)}\n`;
}

/** --strict before start: the command itself runs uninstrumented. */
export function commandError(path: string, kind: "setid" | "caps" | null): SysiError | null {
  if (kind === null) return null;
  return new SysiError("RUN_ESCAPED", `--strict: ${commandSentence(path, kind)}`, {
    suggestions: ["run sysi as the user the program runs as (e.g. as root for a set-user-ID root program)"],
  });
}

/** int $0x80 sites (cd 80) among the refused sites of each module planned ahead. */
export function int80Sites(modules: readonly { path: string; planPath: string }[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of modules) {
    const plan = decodePlan(new Uint8Array(readFileSync(m.planPath)));
    const refused = plan.sites.filter((s) => s.options.length === 0).map((s) => s.vaddr);
    if (refused.length === 0) continue;
    const n = refused.filter((v) => bytesAt(m.path, v, 2)?.every((b, i) => b === [0xcd, 0x80][i])).length;
    if (n > 0) out.set(m.path, n);
  }
  return out;
}

/** `n` bytes of the ELF file at virtual address `vaddr` (through its PT_LOAD segments), or null. */
function bytesAt(path: string, vaddr: number, n: number): number[] | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const eh = Buffer.alloc(64);
    if (readSync(fd, eh, 0, 64, 0) < 64 || eh.readUInt32BE(0) !== 0x7f454c46) return null;
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phentsize < 56 || phnum > 4096) return null;
    const ph = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, ph, 0, ph.length, phoff) < ph.length) return null;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (ph.readUInt32LE(o) !== 1) continue; // PT_LOAD
      const off = Number(ph.readBigUInt64LE(o + 8));
      const va = Number(ph.readBigUInt64LE(o + 16));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      if (vaddr < va || vaddr + n > va + filesz) continue;
      const out = Buffer.alloc(n);
      return readSync(fd, out, 0, n, off + (vaddr - va)) === n ? [...out] : null;
    }
    return null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The summary's account of what was not instrumented (JSON `escapes`). */
export interface EscapeReport {
  /** The command itself ran in secure mode (known before start). */
  command: { path: string; kind: "setid" | "caps" } | null;
  /** Execs whose image did not load the runtime, by kind. */
  execs: Record<ExecEscapeKind, { path: string; count: number }[]>;
  /** int $0x80 sites per module planned ahead (they are among its refused sites). */
  int80: { path: string; sites: number }[];
  /** System calls before the runtime started in each process image: not counted. */
  beforeRuntime: { images: number; calls: null; reason: string };
  /** The vDSO's syscall sites (none patched; caught by --complete's catch-all when on). */
  vdso: VdsoSites;
}

export interface VdsoSites {
  sites: number;
  /** The vDSO functions holding them. */
  functions: string[];
  /** --complete: the catch-all sees calls made there. */
  caught: boolean;
}

/**
 * The `syscall` sites of this kernel's vDSO, from sysi's own (the same image in every process):
 * [vdso] in /proc/self/maps, read through /proc/self/mem. Zero sites when it cannot be read.
 */
export async function vdsoSites(caught: boolean): Promise<VdsoSites> {
  const none = { sites: 0, functions: [], caught };
  try {
    const line = readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .find((l) => l.endsWith("[vdso]"));
    const m = line === undefined ? null : /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m === null) return none;
    const start = Number.parseInt(m[1] as string, 16);
    const bytes = new Uint8Array(Number.parseInt(m[2] as string, 16) - start);
    const fd = openSync("/proc/self/mem", "r");
    try {
      if (readSync(fd, bytes, 0, bytes.length, start) !== bytes.length) return none;
    } finally {
      closeSync(fd);
    }
    const scan = await scanElf(parseElf(bytes, "[vdso]"));
    const sites = scan.sites.filter((x) => x.kind === "syscall" || x.kind === "sysenter");
    const named = sites.map((x) => x.function).filter((f): f is string => typeof f === "string");
    const functions = [...new Set(named.map((f) => f.replace(/^__vdso_/, "")))];
    return { sites: sites.length, functions, caught };
  } catch {
    return none;
  }
}

/** The count summary's line for the vDSO's sites (null: none, or --complete catches them). */
export function vdsoLine(v: VdsoSites): string | null {
  if (v.sites === 0 || v.caught) return null;
  const where = v.functions.length > 0 ? ` (in ${v.functions.join(", ")})` : "";
  return `sysi: not instrumented: the vDSO's ${v.sites} system-call site${v.sites === 1 ? "" : "s"}${where}: the kernel maps the vDSO sealed, so no strategy patches it; a call that falls back to the kernel there bypasses the hook (--vdso or --complete catches it)`;
}

export const BEFORE_RUNTIME_REASON =
  "the kernel keeps no per-process count of system calls that sysi can read without tracing the program (ptrace, perf)";

export function escapeReport(
  command: EscapeReport["command"],
  execs: readonly ExecEscape[],
  int80: ReadonlyMap<string, number>,
  images: number,
  vdso: VdsoSites = { sites: 0, functions: [], caught: false },
): EscapeReport {
  const byKind = Object.fromEntries(EXEC_ESCAPE_KINDS.map((k) => [k, [] as { path: string; count: number }[]]));
  for (const e of execs) byKind[e.kind]?.push({ path: e.path, count: e.count });
  return {
    command,
    execs: byKind as EscapeReport["execs"],
    int80: [...int80].map(([path, sites]) => ({ path, sites })),
    beforeRuntime: { images, calls: null, reason: BEFORE_RUNTIME_REASON },
    vdso,
  };
}

/** The count summary's line for the calls before the runtime started. */
export function beforeRuntimeLine(images: number): string {
  const where = images === 1 ? "the one process image" : `each of the ${images} process images`;
  return `sysi: not counted: the system calls ${where} made before the runtime started (the dynamic loader's, constructors that ran before libsysi's): ${BEFORE_RUNTIME_REASON}`;
}
