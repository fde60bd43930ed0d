// Wall time of `sysi scan --json FILE` against `objdump -d FILE > /dev/null`.
//   bun bench/scan-vs-objdump.ts [FILE] [--runs N]      (default FILE: the bun executable)
// Falls back to an in-process scanFile() when the CLI's scan command is missing, and says so.
// The in-process scan time (ELF read + scan, module already loaded) is printed as well.
import { existsSync, openSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { scanFile } from "../packages/core/src/x86/scan.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = join(ROOT, "packages/cli/bin/run.js");
const HAS_CLI_SCAN = existsSync(CLI) && existsSync(join(ROOT, "packages/cli/src/commands/scan.ts"));

function parseArgs(argv: string[]): { file: string; runs: number } {
  let file: string | null = null;
  let runs = 3;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs") runs = Math.max(1, Number(argv[++i]));
    else file = argv[i] as string;
  }
  return { file: realpathSync(file ?? Bun.which("bun") ?? process.execPath), runs };
}

async function timeCommand(cmd: string[]): Promise<number> {
  const devnull = openSync("/dev/null", "w");
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: devnull, stderr: "pipe" });
  const code = await p.exited;
  const ms = performance.now() - t0;
  if (code !== 0)
    throw new Error(`${cmd.join(" ")} exited ${code}: ${(await new Response(p.stderr).text()).slice(0, 400)}`);
  return ms;
}

const best = (xs: number[]) => Math.min(...xs);
const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

const { file, runs } = parseArgs(process.argv.slice(2));
const size = Bun.file(file).size;
console.log(`file      ${file} (${(size / 2 ** 20).toFixed(1)} MiB)`);

const ours: number[] = [];
const label = HAS_CLI_SCAN
  ? `sysi scan --json (bun ${CLI})`
  : "scanFile() in-process (the CLI has no scan command yet)";
for (let i = 0; i < runs; i++) {
  if (HAS_CLI_SCAN) ours.push(await timeCommand(["bun", CLI, "scan", "--json", file]));
  else {
    const t0 = performance.now();
    await scanFile(file);
    ours.push(performance.now() - t0);
  }
}
console.log(`ours      ${label}: best ${fmt(best(ours))} of ${runs} [${ours.map(fmt).join(", ")}]`);

const inProc: number[] = [];
let sites = 0;
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const r = await scanFile(file);
  inProc.push(performance.now() - t0);
  sites = r.sites.length;
}
console.log(`in-proc   scanFile(): best ${fmt(best(inProc))} of ${runs}, ${sites} sites`);

const od = await timeCommand(["objdump", "-d", file]);
console.log(`objdump   objdump -d > /dev/null: ${fmt(od)} (1 run)`);
console.log(
  `ratio     objdump / ours = ${(od / best(ours)).toFixed(1)}x (in-process: ${(od / best(inProc)).toFixed(1)}x)`,
);
