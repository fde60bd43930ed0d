/**
 * One-line errors and stable exit codes for every way `sysi` can fail (see base-command.ts).
 * Free of @oclif/core so that bin/run.js and the `sysi run` fast path can use it without
 * loading oclif.
 */
import { writeSync } from "node:fs";
import { SysiError } from "@sysi/core/errors";

/**
 * Write to fd 2 directly. In Bun, the first touch of `process.stderr` (or `process.stdout`)
 * builds its stream and costs 15–20 ms, a third of a warm `sysi run`; a direct write also
 * cannot be lost by an exit right after it. Falls back to the stream if fd 2 refuses (EAGAIN
 * on a non-blocking pipe).
 */
export function writeStderr(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(2, buf, off);
  } catch {
    process.stderr.write(buf.subarray(off));
  }
}

export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

const SYSI_ERROR_NAMES = new Set(["SysiError", "ElfError", "FileError", "PlanError", "StrategyError", "BuildError"]);

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  stack?: unknown;
  suggestions?: unknown;
  oclif?: { exit?: unknown };
  parse?: unknown;
}

export type ErrorClass = "exit" | "sysi" | "cli" | "internal";

/** Which of the four kinds an error thrown from a command is. */
export function classifyError(err: unknown): ErrorClass {
  if (typeof err !== "object" || err === null) return "internal";
  const e = err as ErrorLike;
  if (e.code === "EEXIT" && e.oclif !== undefined) return "exit";
  if (err instanceof SysiError) return "sysi";
  if (typeof e.code === "string" && typeof e.name === "string" && SYSI_ERROR_NAMES.has(e.name)) return "sysi";
  if (e.oclif !== undefined && typeof e.oclif.exit === "number") return "cli";
  return "internal";
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI escape sequences
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** Collapse a (possibly multi-line, coloured) message into one line. */
export function oneLine(message: string): string {
  return message
    .replace(ANSI, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !/^see more help with/i.test(l))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * The JSON form of an error, for `--json` (one line on stderr in place of `sysi: error: …`;
 * stdout stays the report's, and under `sysi run` the program's). `code` is the SysiError's
 * stable code, USAGE for a command-line error, INTERNAL for a bug; `path` names the file of a
 * per-file error (scan, plan).
 */
export interface ErrorJson {
  error: { code: string; message: string; suggestions?: string[]; path?: string };
}

/**
 * Did the command line ask for JSON? `--json` before `--` (the program's own words follow it
 * under `sysi run`), or `--format json` / `--format=json` (`sysi env`).
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  const own = end === -1 ? argv : argv.slice(0, end);
  return own.some((a, i) => a === "--json" || a === "--format=json" || (a === "--format" && own[i + 1] === "json"));
}

/** The `{"error": …}` object for an error (null for oclif's ExitError, as formatError). */
export function errorJson(err: unknown, path?: string): ErrorJson | null {
  const kind = classifyError(err);
  if (kind === "exit") return null;
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorLike;
  const message = oneLine(typeof e.message === "string" && e.message !== "" ? e.message : String(err));
  const code =
    kind === "sysi" ? String(e.code) : kind === "cli" ? (typeof e.code === "string" ? e.code : "USAGE") : "INTERNAL";
  const out: ErrorJson["error"] = { code, message };
  const suggestions = kind === "sysi" ? suggestionsOf(e) : [];
  if (suggestions.length > 0) out.suggestions = suggestions;
  if (path !== undefined) out.path = path;
  return { error: out };
}

/**
 * The one stderr line (`sysi: error: …`, or its JSON object when `json`) and the exit code
 * for an error; null for oclif's ExitError.
 */
export function errorOutput(err: unknown, json: boolean, path?: string): { line: string; exit: number } | null {
  const out = formatError(err);
  if (out === null || !json) return out;
  return { line: JSON.stringify(errorJson(err, path)), exit: out.exit };
}

function suggestionsOf(e: ErrorLike): string[] {
  return Array.isArray(e.suggestions)
    ? e.suggestions.filter((s): s is string => typeof s === "string").map(oneLine)
    : [];
}

/** The single stderr line and the exit code for an error (null for oclif's ExitError). */
export function formatError(err: unknown): { line: string; exit: number } | null {
  const kind = classifyError(err);
  if (kind === "exit") return null;
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorLike;
  const message = oneLine(typeof e.message === "string" && e.message !== "" ? e.message : String(err));
  if (kind === "sysi") {
    const suggestions = suggestionsOf(e);
    const tail = suggestions.length > 0 ? ` (${suggestions.join("; ")})` : "";
    return { line: `sysi: error: ${message}${tail}`, exit: EXIT_USAGE };
  }
  if (kind === "cli") {
    const exit = e.oclif?.exit as number;
    return { line: `sysi: error: ${message}`, exit: exit === 0 || exit === 1 ? EXIT_USAGE : exit };
  }
  return { line: `sysi: internal error: ${message}`, exit: EXIT_INTERNAL };
}
