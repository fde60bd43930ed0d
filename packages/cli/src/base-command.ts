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
import { formatError } from "./format-error.ts";

export { classifyError, type ErrorClass, EXIT_INTERNAL, EXIT_USAGE, formatError, oneLine } from "./format-error.ts";

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
