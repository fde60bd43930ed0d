/**
 * `-e` expressions as strace reads them (strace(1), "Filtering"): `trace=SET` (or a bare SET),
 * SET a comma list of syscall names, numbers and classes (`%file`, `%desc`, `%network`/`%net`,
 * `%process`, `%signal`, `%memory`, `%ipc`, `%creds`), `!SET` for every call but those; and
 * `status=failed` / `status=successful` (the trace hook's lines by result). Several `-e` combine
 * as in strace: the last trace= wins, status= is kept. An empty set, an unknown name or class and
 * a number no syscall has are errors (one line each).
 */
import { SysiError } from "@sysi/core/errors";

export interface TraceFilter {
  /** Syscall numbers that reach the hook; undefined: all. */
  numbers?: number[];
  /** status=: only failed (or successful) calls get a trace line. */
  status?: "failed" | "successful";
}

const CLASS_ALIASES: Record<string, string> = { net: "network" };

function bad(message: string, suggestion: string): SysiError {
  return new SysiError("RUN_BAD_FILTER", message, { suggestions: [suggestion] });
}

async function parseSet(set: string, expr: string): Promise<number[]> {
  const { syscallNumber, syscallName, SYS_MAX } = await import("@sysi/core/syscalls");
  let body = set.trim();
  let negate = false;
  if (body.startsWith("!")) {
    negate = true;
    body = body.slice(1).trim();
  }
  const words = body.split(",").map((w) => w.trim());
  if (body === "" || words.some((w) => w === "")) {
    throw bad(`empty system call name in -e "${expr}"`, "name system calls or classes, e.g. -e trace=openat,%network");
  }
  const chosen = new Set<number>();
  for (const w of words) {
    if (w.startsWith("%")) {
      const { SYSCALL_CLASSES } = await import("@sysi/core/syscalls");
      const cls = CLASS_ALIASES[w.slice(1)] ?? w.slice(1);
      const names = SYSCALL_CLASSES[cls];
      if (names === undefined) {
        throw bad(
          `unknown system call class "${w}" in -e`,
          `classes: ${Object.keys(SYSCALL_CLASSES)
            .map((c) => `%${c}`)
            .join(", ")}`,
        );
      }
      for (const n of names) {
        const nr = syscallNumber(n);
        if (nr !== null) chosen.add(nr);
      }
      continue;
    }
    const nr = /^\d+$/.test(w) ? Number(w) : syscallNumber(w);
    if (nr === null || !Number.isInteger(nr) || syscallName(nr) === null) {
      throw bad(
        /^\d+$/.test(w) ? `no system call has number ${w} (-e)` : `unknown system call "${w}" in -e`,
        `use x86-64 names such as read,write,openat, numbers up to ${SYS_MAX}, or classes such as %file`,
      );
    }
    chosen.add(nr);
  }
  if (!negate) return [...chosen].sort((a, b) => a - b);
  const out: number[] = [];
  for (let nr = 0; nr <= SYS_MAX; nr++) if (syscallName(nr) !== null && !chosen.has(nr)) out.push(nr);
  return out;
}

/** Parse every `-e` given (in order). */
export async function parseTraceExprs(exprs: readonly string[]): Promise<TraceFilter> {
  const out: TraceFilter = {};
  for (const expr of exprs) {
    const eq = expr.indexOf("=");
    const key = eq === -1 ? "trace" : expr.slice(0, eq).trim();
    const value = eq === -1 ? expr : expr.slice(eq + 1);
    if (key === "trace" || key === "t") {
      out.numbers = await parseSet(value, expr);
    } else if (key === "status") {
      const v = value.trim();
      if (v !== "failed" && v !== "successful") {
        throw bad(`unsupported status "${v}" in -e`, "use -e status=failed or -e status=successful");
      }
      out.status = v;
    } else {
      throw bad(`unsupported -e qualifier "${key}"`, "use -e trace=SET or -e status=failed|successful");
    }
  }
  return out;
}

/** Short flags of `sysi run` that take a value (the rest of their word, or the next word). */
const VALUE_CHARS = new Set(["s", "o", "e"]);

/**
 * How many times -t was given before the command (strace: -t, -tt, -ttt), counting letters in
 * clusters such as `-tt` or `-vt`; 1 when only the long --timestamps was.
 */
export function timestampLevel(argv: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") break;
    if (a.startsWith("--")) {
      if (!a.includes("=") && ["--strategy", "--hook", "--output", "--filter", "--string-limit"].includes(a)) i++;
      continue;
    }
    if (!a.startsWith("-") || a === "-") break;
    for (let k = 1; k < a.length; k++) {
      const ch = a[k] as string;
      if (VALUE_CHARS.has(ch)) {
        if (k === a.length - 1) i++;
        break;
      }
      if (ch === "t") n++;
    }
  }
  return Math.min(Math.max(n, 1), 3);
}
