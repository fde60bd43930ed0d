/** Synthetic modules, sites and strategies for plan tests (no ELF reader or decoder needed). */
import type { ElfFile, ElfSegment } from "../../src/elf/types.ts";
import type { PlanResult, SiteContext, Strategy } from "../../src/strategy.ts";
import type { InsnReader } from "../../src/x86/insn.ts";
import type { ScanResult, Site } from "../../src/x86/types.ts";

export const TEXT_VADDR = 0x401000;
export const TEXT_OFFSET = 0x1000;

/** A fake ElfFile whose one executable segment holds `text` at TEXT_VADDR. */
export function fakeElf(
  text: Uint8Array,
  buildId: string | null = "00112233445566778899aabbccddeeff00112233",
): ElfFile {
  const bytes = new Uint8Array(TEXT_OFFSET + text.length);
  bytes.set(text, TEXT_OFFSET);
  const seg: ElfSegment = {
    index: 0,
    type: 1,
    flags: 5,
    offset: TEXT_OFFSET,
    vaddr: TEXT_VADDR,
    filesz: text.length,
    memsz: text.length,
    align: 0x1000,
  };
  const inSeg = (v: number, n: number) => v >= TEXT_VADDR && v + n <= TEXT_VADDR + text.length;
  return {
    path: "/fake/module.so",
    bytes,
    type: 3,
    entry: TEXT_VADDR,
    segments: [seg],
    sections: [],
    interpreter: null,
    dynamic: null,
    buildId,
    warnings: [],
    execSegments: () => [seg],
    bytesAt: (v, n) =>
      inSeg(v, n) ? bytes.subarray(v - TEXT_VADDR + TEXT_OFFSET, v - TEXT_VADDR + TEXT_OFFSET + n) : null,
    vaddrToOffset: (v) => (inSeg(v, 0) ? v - TEXT_VADDR + TEXT_OFFSET : null),
    symbols: () => [],
    functions: () => [{ start: TEXT_VADDR, end: TEXT_VADDR + text.length, name: "f", source: "symbol" }],
    dataInText: () => [],
  };
}

/** Text with `mov $nr,%eax; syscall` groups (7 bytes each) for each nr. Returns sites too. */
export function fakeModule(nrs: (number | null)[], opts: { uncertain?: number[]; buildId?: string | null } = {}) {
  const parts: number[] = [];
  const sites: Site[] = [];
  for (const [i, nr] of nrs.entries()) {
    const n = nr ?? 0;
    parts.push(0xb8, n & 0xff, (n >> 8) & 0xff, 0, 0); // mov $n,%eax
    const vaddr = TEXT_VADDR + parts.length;
    parts.push(0x0f, 0x05); // syscall
    sites.push({
      vaddr,
      offset: vaddr - TEXT_VADDR + TEXT_OFFSET,
      kind: "syscall",
      length: 2,
      bytes: new Uint8Array([0x0f, 0x05]),
      nr,
      function: "f",
      functionRange: { start: TEXT_VADDR, end: TEXT_VADDR + nrs.length * 7 },
      uncertain: opts.uncertain?.includes(i) ?? false,
      straddlesPage: false,
    });
  }
  parts.push(0xc3);
  const elf = fakeElf(Uint8Array.from(parts), opts.buildId === undefined ? undefined : opts.buildId);
  const scan: ScanResult = {
    path: elf.path,
    buildId: elf.buildId,
    sites,
    stats: {
      textBytes: parts.length,
      decodedBytes: parts.length,
      functions: 1,
      byKind: { syscall: sites.length, sysenter: 0, int80: 0 },
      uncertain: 0,
      ms: 0,
    },
  };
  return { elf, scan, sites };
}

export const nullReader: InsnReader = {
  decodeAt: () => null,
  functionInsns: () => null,
  isKnownTarget: () => false,
  free: () => {},
};

/** A strategy with a custom planner; `calls` records every site it was asked about. */
export function fakeStrategy(
  name: string,
  plan: (site: Site, ctx: SiteContext) => PlanResult,
  extra: Partial<Strategy> = {},
): Strategy & { calls: number[] } {
  const calls: number[] = [];
  return {
    name,
    summary: `fake ${name}`,
    requires: [],
    planVersion: "1",
    planSite(site, ctx) {
      calls.push(site.vaddr);
      return plan(site, ctx);
    },
    runtime: { nativeDir: "/nonexistent", lib: `lib${name}.so`, entry: `sysi_${name}_entry` },
    calls,
    ...extra,
  };
}

/** Patch the 2-byte site with `b0 b1`. */
export function twoByte(site: Site, b0: number, b1: number, tactic?: string): PlanResult {
  return {
    patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: new Uint8Array([b0, b1]) },
    ...(tactic === undefined ? {} : { tactic }),
  };
}
