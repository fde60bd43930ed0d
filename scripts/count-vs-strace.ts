/**
 * The count hook against strace -f for any command (the oracle of the count e2e tests):
 *
 *   bun scripts/count-vs-strace.ts CHAIN -- CMD ARGS…
 *
 * Runs `strace -f -qq -o TRACE sysi run -s CHAIN --hook count --json -o COUNTS -- CMD…` with
 * SYSI_MARKER=1, reads the expected counts from the trace (packages/core/src/runtime/
 * strace-oracle.ts: the syscalls made after each image's runtime started, without the
 * runtime's own) and prints one line: EQUAL, or DIFF with each syscall whose calls/errors
 * differ (ours vs strace) and the kept trace's path. Exits 0 when equal, 1 when not, 2 on a
 * usage error.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countUnderStraceArgv, straceOracle } from "../packages/core/src/runtime/strace-oracle.ts";

const args = process.argv.slice(2);
const sep = args.indexOf("--");
const chain = args[0];
const cmd = sep < 0 ? [] : args.slice(sep + 1);
if (sep !== 1 || chain === undefined || cmd.length === 0) {
  console.error("usage: bun scripts/count-vs-strace.ts CHAIN -- CMD [ARGS…]");
  process.exit(2);
}
if (Bun.which("strace") === null) {
  console.error("count-vs-strace: strace is not installed");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "sysi-count-vs-strace-"));
const trace = join(dir, "strace.txt");
const out = join(dir, "counts.json");
const cli = join(import.meta.dir, "../packages/cli/bin/run.js");
const r = Bun.spawnSync(countUnderStraceArgv(cli, chain, trace, out, cmd), {
  env: { ...process.env, SYSI_MARKER: "1" },
  stdout: "inherit",
  stderr: "inherit",
});
let counts: { syscalls: { name: string; calls: number; errors: number }[] };
try {
  counts = JSON.parse(readFileSync(out, "utf8"));
} catch {
  console.error(`count-vs-strace: no counts from sysi run (exit ${r.exitCode}); strace log in ${trace}`);
  process.exit(1);
}
const oracle = straceOracle(readFileSync(trace, "utf8"));
const ours = new Map(counts.syscalls.map((s) => [s.name, `${s.calls}/${s.errors}`]));
const theirs = new Map(Object.entries(oracle.byName).map(([n, c]) => [n, `${c.calls}/${c.errors}`]));
const names = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
const diffs = names
  .filter((n) => ours.get(n) !== theirs.get(n))
  .map((n) => `${n}: ours ${ours.get(n) ?? "-"}, strace ${theirs.get(n) ?? "-"}`);
const what = `-s ${chain}, exit ${r.exitCode}, ${oracle.total} calls`;
if (diffs.length === 0) {
  console.log(`EQUAL (${what})`);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
console.log(`DIFF (${what}): ${diffs.join("; ")}; strace log kept in ${trace}`);
process.exit(1);
