#!/usr/bin/env bun
import { errorOutput, oneLine, wantsJson, writeStderr } from "../src/format-error.ts";

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
    writeStderr(`${line}\n`);
  };
}

const argv = process.argv.slice(2);

// `sysi run` without oclif when oclif would do nothing but run it (run/fast-run.ts): loading
// @oclif/core and discovering plugins is most of a warm `sysi run`'s start-up.
if (argv[0] === "run") {
  const { fastRun } = await import("../src/run/fast-run.ts");
  const status = await fastRun(argv.slice(1), `${import.meta.dir}/..`);
  if (status !== null) process.exit(status);
}

// oclif's --version names the Node version Bun emulates (process.version); say which Bun runs sysi.
if (argv.length === 1 && argv[0] === "--version") {
  const { readFileSync } = await import("node:fs");
  const pj = JSON.parse(readFileSync(`${import.meta.dir}/../package.json`, "utf8"));
  process.stdout.write(
    `${pj.name}/${pj.version} ${process.platform}-${process.arch} bun-${Bun.version} (node-compat ${process.version})\n`,
  );
  process.exit(0);
}

const { flush, run, settings } = await import("@oclif/core");

// Bun runs the TypeScript commands directly: no ts-node/tsx lookup, no lib->src rewriting.
settings.enableAutoTranspile = false;

// Errors that escape a command's own catch (command not found, a broken plugin, a failing hook)
// get the same one-line treatment as errors inside commands: `sysi: error: …`, no stack.
try {
  await run(argv, import.meta.url);
  await flush();
} catch (err) {
  const out = errorOutput(err, wantsJson(argv));
  if (out === null) {
    await flush();
    process.exit(err?.oclif?.exit ?? 0);
  }
  writeStderr(`${out.line}\n`);
  if (process.env.DEBUG && err instanceof Error && err.stack) writeStderr(`${err.stack}\n`);
  process.exit(out.exit);
}
