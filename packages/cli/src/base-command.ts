/**
 * The base of every sysi command: one-line errors and stable exit codes.
 *
 * - a SysiError (or anything shaped like one: `name` ending in "Error" from @sysi/core and a
 *   string `code`) → `sysi: error: <message> (<suggestions>)`, exit 2;
 * - an oclif parse error (unknown flag, missing argument, bad option) or `this.error()` →
 *   `sysi: error: <message>`, exit 2 (or the exit code the error carries);
 * - anything else → `sysi: internal error: <message>`, exit 70 (EX_SOFTWARE).
 *
 * Always exactly one stderr line; the stack only when the DEBUG environment variable is set.
 * `this.exit(n)` still works (oclif's ExitError passes through untouched).
 */
import { Command } from "@oclif/core";
import { SysiError } from "@sysi/core/errors";

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

/** The single stderr line and the exit code for an error (null for oclif's ExitError). */
export function formatError(err: unknown): { line: string; exit: number } | null {
  const kind = classifyError(err);
  if (kind === "exit") return null;
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorLike;
  const message = oneLine(typeof e.message === "string" && e.message !== "" ? e.message : String(err));
  if (kind === "sysi") {
    const suggestions = Array.isArray(e.suggestions)
      ? e.suggestions.filter((s): s is string => typeof s === "string").map(oneLine)
      : [];
    const tail = suggestions.length > 0 ? ` (${suggestions.join("; ")})` : "";
    return { line: `sysi: error: ${message}${tail}`, exit: EXIT_USAGE };
  }
  if (kind === "cli") {
    const exit = e.oclif?.exit as number;
    return { line: `sysi: error: ${message}`, exit: exit === 0 || exit === 1 ? EXIT_USAGE : exit };
  }
  return { line: `sysi: internal error: ${message}`, exit: EXIT_INTERNAL };
}

export abstract class SysiCommand extends Command {
  /** Write one JSON document (and a newline) to stdout. */
  protected printJson(obj: unknown): void {
    process.stdout.write(`${JSON.stringify(obj, jsonReplacer, 2)}\n`);
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    const out = formatError(err);
    if (out === null) throw err;
    process.stderr.write(`${out.line}\n`);
    if (process.env.DEBUG && typeof err?.stack === "string") process.stderr.write(`${err.stack}\n`);
    this.exit(out.exit);
  }
}

/** BigInt → number when safe, else a decimal string; typed arrays → hex strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return value;
}
