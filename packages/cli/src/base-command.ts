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
 * Under `--json` (before `--`; `sysi env --format json` too) that line is the JSON object
 * `{"error":{"code":…,"message":…}}` instead, with the same exit code; stdout stays the report's.
 * `this.exit(n)` still works (oclif's ExitError passes through untouched).
 */
import { Command } from "@oclif/core";
import { type ErrorJson, errorJson, errorOutput, wantsJson } from "./format-error.ts";

export {
  classifyError,
  type ErrorClass,
  type ErrorJson,
  EXIT_INTERNAL,
  EXIT_USAGE,
  errorJson,
  errorOutput,
  formatError,
  oneLine,
  wantsJson,
} from "./format-error.ts";

export abstract class SysiCommand extends Command {
  /** Write one JSON document (and a newline) to stdout. */
  protected printJson(obj: unknown): void {
    process.stdout.write(`${JSON.stringify(obj, jsonReplacer, 2)}\n`);
  }

  /** Did the command line ask for JSON output (and so JSON errors)? */
  protected jsonRequested(): boolean {
    return wantsJson(this.argv);
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    const out = errorOutput(err, this.jsonRequested());
    if (out === null) throw err;
    process.stderr.write(`${out.line}\n`);
    if (process.env.DEBUG && typeof err?.stack === "string") process.stderr.write(`${err.stack}\n`);
    this.exit(out.exit);
  }
}

/** One failed file of a many-file command, for its JSON document. */
export interface FileErrorJson {
  path: string;
  error: ErrorJson["error"];
}

/**
 * The files a many-file command (scan, plan) could not handle, reported as readelf and
 * objdump do: one line per file on stderr as it fails (`sysi: error: …`, its JSON object under
 * --json), then go on; at the end a summary line (several files, text mode) and exit status 2
 * (70 when one of the failures was a bug in sysi).
 */
export class FileFailures {
  readonly errors: FileErrorJson[] = [];
  private status = 0;

  constructor(
    private readonly json: boolean,
    private readonly total: number,
  ) {}

  add(path: string, err: unknown): void {
    const out = errorOutput(err, this.json, path);
    if (out === null) throw err;
    process.stderr.write(`${out.line}\n`);
    if (process.env.DEBUG && err instanceof Error && typeof err.stack === "string")
      process.stderr.write(`${err.stack}\n`);
    const { path: _, ...error } = (errorJson(err, path) as ErrorJson).error;
    this.errors.push({ path, error });
    this.status = Math.max(this.status, out.exit);
  }

  /** Print the summary line when due; the exit status (0 when every file went through). */
  finish(done: string): number {
    const n = this.errors.length;
    if (n > 0 && this.total > 1 && !this.json)
      process.stderr.write(`sysi: ${n} of ${this.total} files failed, ${this.total - n} ${done}\n`);
    return this.status;
  }
}

/** BigInt → number when safe, else a decimal string; typed arrays → hex strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return value;
}
