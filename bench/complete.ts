/**
 * The cost of `sysi run --complete` (docs/complete.md), in one run, interleaved rounds, medians:
 * ns per getppid from a patched libc site, from generated code (an anonymous page no patch
 * reaches) and from a site in a file-backed mapping no plan reaches (bench/complete.c `file`),
 * natively, under `sysi run` and under `sysi run --complete` (hook as given, default
 * passthrough). Ratios are to the native call of the same mode in the same run.
 *
 * The file-backed site's rows are the catch-all and what lazy patching makes of it:
 *   catch-all       SYSI_LAZY=off: every call is a SIGSYS (what JIT code always pays)
 *   lazily patched  the default: the catch-all's first call patches the site with the chain's
 *                   ud2 variant (sud-lazy.c), the rest take that trap
 *   lazypoline      lazypoline's design, as sysi builds it: SUD + lazy rewrite to zpoline's
 *                   `call *%rax` (-s zpoline,ud2, SYSI_LAZY=zpoline); needs page 0 (skipped
 *                   with the reason otherwise). This is sysi's own path with zpoline, not
 *                   lazypoline's code.
 * and, for comparison, the libc site planned with zpoline under --complete (same page 0 need).
 *
 *   bun bench/complete.ts [--hook passthrough|count] [--rounds 5] [--n 200000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    hook: { type: "string", default: "passthrough" },
    rounds: { type: "string", default: "5" },
    n: { type: "string", default: "200000" },
  },
});
const dir = mkdtempSync(join(tmpdir(), "sysi-bench-complete-"));
const prog = join(dir, "complete");
const cli = join(import.meta.dir, "../packages/cli/bin/run.js");
const hook = values.hook as string;

interface Row {
  name: string;
  mode: "libc" | "jit" | "file";
  pre: string[];
  env?: Record<string, string>;
  page0?: boolean;
}

const run = ["bun", cli, "run", "--hook", hook];
const complete = [...run, "--complete"];
const ROWS: Row[] = [
  { name: "native libc", mode: "libc", pre: [] },
  { name: "run libc", mode: "libc", pre: [...run, "--"] },
  { name: "complete libc", mode: "libc", pre: [...complete, "--"] },
  { name: "complete libc, zpoline", mode: "libc", pre: [...complete, "-s", "zpoline,ud2", "--"], page0: true },
  { name: "native jit", mode: "jit", pre: [] },
  // without --complete the generated code's calls bypass sysi: that row is native again
  { name: "run jit", mode: "jit", pre: [...run, "--"] },
  { name: "complete jit (catch-all)", mode: "jit", pre: [...complete, "--"] },
  { name: "native file", mode: "file", pre: [] },
  { name: "complete file, catch-all", mode: "file", pre: [...complete, "--"], env: { SYSI_LAZY: "off" } },
  { name: "complete file, lazily patched", mode: "file", pre: [...complete, "--"] },
  {
    name: "complete file, lazypoline's design",
    mode: "file",
    pre: [...complete, "-s", "zpoline,ud2", "--"],
    env: { SYSI_LAZY: "zpoline" },
    page0: true,
  },
];

try {
  const cc = Bun.spawnSync(["cc", "-O2", "-o", prog, join(import.meta.dir, "complete.c")], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cc failed: ${cc.stderr}`);
  const probe = Bun.spawnSync([prog, "page0"], { stdout: "pipe" }).stdout.toString().trim();
  const page0 = probe === "page0 ok" ? null : `page 0 cannot be mapped here (${probe.replace(/^page0 /, "")})`;
  const rows = ROWS.filter((r) => {
    if (r.page0 && page0 !== null) console.log(`skipped: ${r.name}: ${page0}`);
    return !(r.page0 && page0 !== null);
  });
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const row of rows) {
      const p = Bun.spawnSync([...row.pre, prog, row.mode, values.n as string, join(dir, `code-${r}`)], {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, ...row.env },
      });
      const m = /^\w+ ([\d.]+)$/m.exec(p.stdout.toString());
      if (p.exitCode !== 0 || m === null) throw new Error(`${row.name}: ${p.stderr}`);
      samples[row.name] = [...(samples[row.name] ?? []), Number(m[1])];
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
  console.log(`hook ${hook}, ${values.rounds} rounds of ${values.n} calls, medians (ns per call, ratio to native)`);
  for (const row of rows) {
    const v = median(samples[row.name] ?? []);
    const base = median(samples[`native ${row.mode}`] ?? []);
    console.log(`${row.name.padEnd(36)} ${v.toFixed(1).padStart(8)} ns  ${(v / base).toFixed(2)}x`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
