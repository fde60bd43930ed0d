import { Args, Flags } from "@oclif/core";
import type { ScanResult, Site } from "@sysi/core/scan";
import { FileFailures, SysiCommand } from "../base-command.ts";
import { formatBytes, formatMs, hex, Progress, table } from "../render.ts";

/** The JSON form of one site: addresses as hex strings, no bytes, no ranges. */
export interface SiteJson {
  vaddr: string;
  offset: number;
  kind: Site["kind"];
  nr: number | null;
  function: string | null;
  uncertain: boolean;
  straddlesPage: boolean;
}

export default class Scan extends SysiCommand {
  static override summary = "List the system-call instructions (syscall, sysenter, int $0x80) of ELF files.";
  static override description =
    "Decodes the executable segments of each x86-64 ELF file from its function starts (symbols, .eh_frame) and " +
    "reports every system-call instruction with its syscall number when a preceding mov sets it. Sites found only " +
    "by sweeping gaps are marked uncertain. A FILE that cannot be read or is not x86-64 ELF64 (a directory, a " +
    "separate .debug file, a script) gets one error line on stderr and the scan goes on, as readelf and objdump do; " +
    "the exit status is then 2, after a summary line when several files were given.";
  static override examples = [
    "<%= config.bin %> scan /usr/lib/x86_64-linux-gnu/libc.so.6",
    "<%= config.bin %> scan --json /usr/bin/true /usr/bin/ls",
    "find /usr/lib -type f -name '*.so*' -print0 | xargs -0 <%= config.bin %> scan > sites.txt",
  ];
  static override strict = false;
  static override args = {
    file: Args.string({ description: "ELF file(s) to scan", required: true }),
  };
  static override flags = {
    json: Flags.boolean({
      description:
        'Print one JSON document {"files":[…],"errors":[…]} with every site instead of a summary; errors are JSON objects on stderr.',
    }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Scan);
    const files = argv as string[];
    // Lazy: the decoder (iced-x86 wasm) costs ~30 ms to load; `sysi --help` must not pay it.
    const { scanFile } = await import("@sysi/core/scan");
    const docs: ReturnType<typeof toJson>[] = [];
    const failed = new FileFailures(this.jsonRequested(), files.length);
    for (const path of files) {
      const progress = new Progress(`scanning ${path}`);
      let r: ScanResult;
      try {
        r = await scanFile(path, { onProgress: (done, total) => progress.update(done, total) });
      } catch (e) {
        failed.add(path, e);
        continue;
      } finally {
        progress.done();
      }
      if (flags.json) docs.push(toJson(path, r));
      else process.stdout.write(`${await summary(path, r)}\n`);
    }
    if (flags.json) this.printJson({ files: docs, errors: failed.errors });
    const status = failed.finish("scanned");
    if (status !== 0) this.exit(status);
  }
}

export function siteJson(s: Site): SiteJson {
  return {
    vaddr: hex(s.vaddr),
    offset: s.offset,
    kind: s.kind,
    nr: s.nr,
    function: s.function,
    uncertain: s.uncertain,
    straddlesPage: s.straddlesPage,
  };
}

function toJson(path: string, r: ScanResult) {
  return { path, buildId: r.buildId, sites: r.sites.map(siteJson), stats: r.stats };
}

async function summary(path: string, r: ScanResult): Promise<string> {
  const { syscallName } = await import("@sysi/core/syscalls");
  const k = r.stats.byKind;
  const straddling = r.sites.filter((s) => s.straddlesPage).length;
  const lines = [
    path,
    ...table([
      ["  build-id", r.buildId ?? "(none)"],
      ["  sites", `${r.sites.length} (syscall ${k.syscall}, sysenter ${k.sysenter}, int80 ${k.int80})`],
      ["  uncertain", String(r.stats.uncertain)],
      ["  straddling", `${straddling} (the 2 bytes cross a page boundary)`],
      ["  functions", String(r.stats.functions)],
      [
        "  time",
        `${formatMs(r.stats.ms)} (text ${formatBytes(r.stats.textBytes)}, decoded ${formatBytes(r.stats.decodedBytes)})`,
      ],
    ]),
  ];
  const counts = new Map<number | null, number>();
  for (const s of r.sites) counts.set(s.nr, (counts.get(s.nr) ?? 0) + 1);
  const top = [...counts.entries()]
    .filter((e): e is [number, number] => e[0] !== null)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 10);
  if (top.length > 0) {
    lines.push("  top syscall numbers:");
    const rows = top.map(([nr, n]) => [`    ${nr}`, syscallName(nr) ?? "?", `${n} site${n === 1 ? "" : "s"}`]);
    lines.push(...table(rows, [0]));
  }
  const unknown = counts.get(null) ?? 0;
  if (unknown > 0) lines.push(`  number unknown: ${unknown} site${unknown === 1 ? "" : "s"}`);
  return lines.join("\n");
}
