#!/usr/bin/env bun
import { flush, run, settings } from "@oclif/core";
import { formatError, oneLine } from "../src/base-command.ts";

// Bun runs the TypeScript commands directly: no ts-node/tsx lookup, no lib->src rewriting.
settings.enableAutoTranspile = false;

// oclif reports a plugin command that fails to load as a multi-line process warning, on every
// invocation. Keep it to one `sysi: warning:` line per distinct message (the full text with DEBUG).
if (!process.env.DEBUG) {
  const seen = new Set();
  process.emitWarning = (warning, ...rest) => {
    const detail = typeof rest[0] === "object" && rest[0] !== null ? rest[0] : undefined;
    const text = detail?.message ?? (warning instanceof Error ? warning.message : String(warning));
    const line = `sysi: warning: ${oneLine(text.split("\n")[0] ?? "")}`;
    if (seen.has(line)) return;
    seen.add(line);
    process.stderr.write(`${line}\n`);
  };
}

// Errors that escape a command's own catch (command not found, a broken plugin, a failing hook)
// get the same one-line treatment as errors inside commands: `sysi: error: …`, no stack.
try {
  await run(process.argv.slice(2), import.meta.url);
  await flush();
} catch (err) {
  const out = formatError(err);
  if (out === null) {
    await flush();
    process.exit(err?.oclif?.exit ?? 0);
  }
  process.stderr.write(`${out.line}\n`);
  if (process.env.DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(out.exit);
}
