/**
 * The binary plan the runtime reads (sysi.h, SYSI PLAN FORMAT), byte for byte:
 *
 *   header (176) | strategies (8 each) | sites (24 each) | options (64 each) | tramps (32 each)
 *   | strings (NUL-terminated, offset 0 is "") | blob (trampoline code)
 *
 * Every table starts 8-byte aligned; all of it lies within file_size. Sites are sorted by vaddr;
 * every scanned site is listed (unpatched ones with noptions 0); a site's options are its
 * ACCEPTED decisions in chain order. The strategy table is the chain, in order.
 *
 * The header's checksum is XXH64 (seed 0) of every byte after it; module_size and module_hash
 * (XXH64 of the options' old bytes, in table order) tie the plan to one module file: the
 * runtime refuses a plan whose checksum, build-id, size or expected bytes do not match.
 */
import { PlanError } from "../errors.ts";
import { isRefusal, type SitePatch } from "../strategy.ts";
import type { PatchPlan } from "./types.ts";

export const PLAN_MAGIC = "SYSIPLN";
export const PLAN_VERSION = 2;
export const HEADER_SIZE = 176;
export const STRATEGY_SIZE = 8;
export const SITE_SIZE = 24;
export const OPTION_SIZE = 64;
export const TRAMP_SIZE = 32;
export const SITE_UNCERTAIN = 0x1;
export const SITE_STRADDLES = 0x2;
const BUILD_ID_MAX = 32;
/** The checksum covers the bytes from here to the end of the file. */
export const CHECKSUM_FROM = 24;

/** Header field offsets (sysi.h struct sysi_plan_header). */
export const PLAN_HEADER = {
  magic: 0,
  version: 8,
  headerSize: 12,
  checksum: 16,
  fileSize: 24,
  nstrategies: 32,
  nsites: 36,
  noptions: 40,
  ntrampolines: 44,
  strategiesOff: 48,
  sitesOff: 56,
  optionsOff: 64,
  trampsOff: 72,
  stringsOff: 80,
  stringsSize: 88,
  blobOff: 96,
  blobSize: 104,
  buildIdLen: 112,
  modulePath: 116,
  buildId: 120,
  chain: 152,
  reserved: 156,
  moduleSize: 160,
  moduleHash: 168,
} as const;
const H = PLAN_HEADER;

/** XXH64 (seed 0) of `bytes`: the plan checksum and module hash (sysi.h; libsysi's hash.c). */
export function xxh64(bytes: Uint8Array): bigint {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(bytes, 0n)));
}

/** The checksum a plan's header must hold: XXH64 of its bytes from CHECKSUM_FROM on. */
export function planChecksum(plan: Uint8Array): bigint {
  return xxh64(plan.subarray(CHECKSUM_FROM));
}

/** Write the checksum of `plan` into its header (after editing a plan in place, e.g. in tests). */
export function sealPlan(plan: Uint8Array): Uint8Array {
  new DataView(plan.buffer, plan.byteOffset, plan.byteLength).setBigUint64(H.checksum, planChecksum(plan), true);
  return plan;
}

/** module_hash: XXH64 of the concatenated old bytes of the options, in table order. */
export function moduleBytesHash(olds: readonly Uint8Array[]): bigint {
  let n = 0;
  for (const o of olds) n += o.length;
  const all = new Uint8Array(n);
  let at = 0;
  for (const o of olds) {
    all.set(o, at);
    at += o.length;
  }
  return xxh64(all);
}

export interface DecodedOption {
  strategy: string;
  strategyIndex: number;
  vaddr: number;
  old: Uint8Array;
  bytes: Uint8Array;
  aux: [bigint, bigint];
}

export interface DecodedSite {
  vaddr: number;
  nr: number | null;
  flags: number;
  options: DecodedOption[];
}

export interface DecodedTramp {
  vaddr: number | null;
  strategy: string;
  kind: string;
  code: Uint8Array;
}

export interface DecodedPlan {
  version: number;
  fileSize: number;
  /** The header's checksum (it matched: decodePlan checks it). */
  checksum: bigint;
  /** The module file's size in bytes when planned. */
  moduleSize: number;
  /** XXH64 of the options' old bytes in table order (moduleBytesHash). */
  moduleHash: bigint;
  modulePath: string;
  /** Lowercase hex of the stored build-id bytes (at most 32), or null. */
  buildId: string | null;
  /** The chain string, e.g. "zpoline,ud2". */
  chain: string;
  strategies: string[];
  sites: DecodedSite[];
  noptions: number;
  /** Every option in table order (the sites' options are slices of it). */
  options: DecodedOption[];
  trampolines: DecodedTramp[];
}

const align8 = (n: number): number => (n + 7) & ~7;

class StringTable {
  private readonly offsets = new Map<string, number>();
  private readonly parts: Uint8Array[] = [];
  size = 0;
  constructor() {
    this.add("");
  }
  add(s: string): number {
    const known = this.offsets.get(s);
    if (known !== undefined) return known;
    const bytes = new TextEncoder().encode(`${s}\0`);
    const off = this.size;
    this.offsets.set(s, off);
    this.parts.push(bytes);
    this.size += bytes.length;
    return off;
  }
  writeTo(out: Uint8Array, at: number): void {
    let p = at;
    for (const b of this.parts) {
      out.set(b, p);
      p += b.length;
    }
  }
}

function hexToBytes(hex: string): Uint8Array {
  const clean = hex.length % 2 === 0 ? hex : `0${hex}`;
  return Uint8Array.from(Buffer.from(clean, "hex"));
}

/** The chain string stored in the header: the strategy names joined with ",". */
export function chainString(plan: Pick<PatchPlan, "chain">): string {
  return plan.chain.join(",");
}

/** Serialise a plan into the sysi.h binary form. */
export function encodePlan(plan: PatchPlan): Uint8Array {
  const strings = new StringTable();
  const stratIndex = new Map<string, number>();
  plan.chain.forEach((n, i) => {
    stratIndex.set(n, i);
  });
  const stratNames = plan.chain.map((n) => strings.add(n));
  const modulePath = strings.add(plan.module.path);
  const chain = strings.add(chainString(plan));

  const sites = [...plan.sites].sort((a, b) => a.site.vaddr - b.site.vaddr);
  const options: { strategy: number; patch: SitePatch }[] = [];
  const siteRows: { vaddr: number; nr: number; flags: number; first: number; count: number }[] = [];
  for (const ps of sites) {
    const first = options.length;
    for (const d of ps.decisions) {
      if (isRefusal(d.result)) continue;
      const idx = stratIndex.get(d.strategy);
      if (idx === undefined) throw new PlanError("PLAN_INVALID", `decision by ${d.strategy}, not in the chain`);
      options.push({ strategy: idx, patch: d.result });
    }
    const flags = (ps.site.uncertain ? SITE_UNCERTAIN : 0) | (ps.site.straddlesPage ? SITE_STRADDLES : 0);
    siteRows.push({ vaddr: ps.site.vaddr, nr: ps.site.nr ?? -1, flags, first, count: options.length - first });
  }

  const blobParts: { off: number; code: Uint8Array }[] = [];
  let blobSize = 0;
  const trampRows = plan.trampolines.map((t) => {
    const idx = stratIndex.get(t.strategy);
    if (idx === undefined) throw new PlanError("PLAN_INVALID", `trampoline by ${t.strategy}, not in the chain`);
    const off = blobSize;
    blobParts.push({ off, code: t.code });
    blobSize = align8(blobSize + t.code.length);
    return { vaddr: t.vaddr ?? 0, off, size: t.code.length, strategy: idx, kind: strings.add(t.kind) };
  });

  const strategiesOff = align8(HEADER_SIZE);
  const sitesOff = align8(strategiesOff + plan.chain.length * STRATEGY_SIZE);
  const optionsOff = align8(sitesOff + siteRows.length * SITE_SIZE);
  const trampsOff = align8(optionsOff + options.length * OPTION_SIZE);
  const stringsOff = align8(trampsOff + trampRows.length * TRAMP_SIZE);
  const blobOff = align8(stringsOff + strings.size);
  const fileSize = align8(blobOff + blobSize);

  const out = new Uint8Array(fileSize);
  const dv = new DataView(out.buffer);
  const u32 = (o: number, v: number) => dv.setUint32(o, v, true);
  const u64 = (o: number, v: number | bigint) => dv.setBigUint64(o, BigInt.asUintN(64, BigInt(v)), true);

  out.set(new TextEncoder().encode(`${PLAN_MAGIC}\0`), H.magic);
  u32(H.version, PLAN_VERSION);
  u32(H.headerSize, HEADER_SIZE);
  u64(H.fileSize, fileSize);
  u32(H.nstrategies, plan.chain.length);
  u32(H.nsites, siteRows.length);
  u32(H.noptions, options.length);
  u32(H.ntrampolines, trampRows.length);
  u64(H.strategiesOff, strategiesOff);
  u64(H.sitesOff, sitesOff);
  u64(H.optionsOff, optionsOff);
  u64(H.trampsOff, trampsOff);
  u64(H.stringsOff, stringsOff);
  u64(H.stringsSize, strings.size);
  u64(H.blobOff, blobOff);
  u64(H.blobSize, blobSize);
  const buildId = plan.module.buildId ? hexToBytes(plan.module.buildId).subarray(0, BUILD_ID_MAX) : new Uint8Array(0);
  u32(H.buildIdLen, buildId.length);
  u32(H.modulePath, modulePath);
  out.set(buildId, H.buildId);
  u32(H.chain, chain);
  u32(H.reserved, 0);
  u64(H.moduleSize, plan.module.size);

  stratNames.forEach((name, i) => {
    u32(strategiesOff + i * STRATEGY_SIZE, name);
  });
  siteRows.forEach((s, i) => {
    const o = sitesOff + i * SITE_SIZE;
    u64(o, s.vaddr);
    dv.setInt32(o + 8, s.nr, true);
    u32(o + 12, s.flags);
    u32(o + 16, s.first);
    u32(o + 20, s.count);
  });
  options.forEach((opt, i) => {
    const o = optionsOff + i * OPTION_SIZE;
    const p = opt.patch.patch;
    u32(o, opt.strategy);
    out[o + 4] = p.bytes.length;
    u64(o + 8, p.vaddr);
    out.set(p.old, o + 16);
    out.set(p.bytes, o + 32);
    u64(o + 48, opt.patch.aux?.[0] ?? 0n);
    u64(o + 56, opt.patch.aux?.[1] ?? 0n);
  });
  trampRows.forEach((t, i) => {
    const o = trampsOff + i * TRAMP_SIZE;
    u64(o, t.vaddr);
    u64(o + 8, t.off);
    u64(o + 16, t.size);
    u32(o + 24, t.strategy);
    u32(o + 28, t.kind);
  });
  strings.writeTo(out, stringsOff);
  for (const b of blobParts) out.set(b.code, blobOff + b.off);
  // The old bytes as stored (the first len bytes of each option's old_bytes), as the runtime reads them.
  const olds = options.map((opt, i) => {
    const o = optionsOff + i * OPTION_SIZE;
    return out.subarray(o + 16, o + 16 + opt.patch.patch.bytes.length);
  });
  u64(H.moduleHash, moduleBytesHash(olds));
  return sealPlan(out);
}

function corrupt(what: string): PlanError {
  return new PlanError("PLAN_CORRUPT", `corrupt plan: ${what}`);
}

/** Parse and validate a binary plan; every offset and count is checked (PlanError PLAN_CORRUPT). */
export function decodePlan(input: Uint8Array): DecodedPlan {
  // A plain Uint8Array view, so that slice() copies even when given a Buffer.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const len = bytes.byteLength;
  if (len < HEADER_SIZE) throw corrupt(`${len} bytes, shorter than the header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number): number => {
    const v = dv.getBigUint64(o, true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
  };
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== `${PLAN_MAGIC}\0`) throw corrupt("bad magic");
  const version = u32(H.version);
  if (version !== PLAN_VERSION) {
    throw new PlanError("PLAN_VERSION", `plan format version ${version}, expected ${PLAN_VERSION}`);
  }
  if (u32(H.headerSize) !== HEADER_SIZE) throw corrupt(`header_size ${u32(H.headerSize)}`);
  const fileSize = u64(H.fileSize);
  if (fileSize !== len) throw corrupt(`file_size ${fileSize} but ${len} bytes`);
  const checksum = dv.getBigUint64(H.checksum, true);
  if (planChecksum(bytes) !== checksum) throw corrupt("checksum mismatch");
  if (u32(H.reserved) !== 0) throw corrupt("reserved header field not 0");
  const moduleSize = u64(H.moduleSize);
  if (!Number.isFinite(moduleSize)) throw corrupt("module_size out of range");
  const moduleHash = dv.getBigUint64(H.moduleHash, true);

  const table = (what: string, offField: number, count: number, size: number): number => {
    const off = u64(offField);
    if (off % 8 !== 0) throw corrupt(`${what} table not 8-byte aligned`);
    if (off < HEADER_SIZE || off > len || count * size > len - off) throw corrupt(`${what} table out of range`);
    return off;
  };
  const nstrategies = u32(H.nstrategies);
  const nsites = u32(H.nsites);
  const noptions = u32(H.noptions);
  const ntramps = u32(H.ntrampolines);
  const strategiesOff = table("strategy", H.strategiesOff, nstrategies, STRATEGY_SIZE);
  const sitesOff = table("site", H.sitesOff, nsites, SITE_SIZE);
  const optionsOff = table("option", H.optionsOff, noptions, OPTION_SIZE);
  const trampsOff = table("trampoline", H.trampsOff, ntramps, TRAMP_SIZE);
  const stringsSize = u64(H.stringsSize);
  const stringsOff = table("string", H.stringsOff, stringsSize, 1);
  const blobSize = u64(H.blobSize);
  const blobOff = table("blob", H.blobOff, blobSize, 1);

  const decoder = new TextDecoder("utf-8", { fatal: false });
  const str = (off: number, what: string): string => {
    if (off >= stringsSize) throw corrupt(`${what} string offset ${off} out of range`);
    const start = stringsOff + off;
    const end = bytes.indexOf(0, start);
    if (end < 0 || end >= stringsOff + stringsSize) throw corrupt(`${what} string not terminated`);
    return decoder.decode(bytes.subarray(start, end));
  };

  const buildIdLen = u32(H.buildIdLen);
  if (buildIdLen > BUILD_ID_MAX) throw corrupt(`build_id_len ${buildIdLen}`);
  const buildId =
    buildIdLen === 0 ? null : Buffer.from(bytes.subarray(H.buildId, H.buildId + buildIdLen)).toString("hex");
  const modulePath = str(u32(H.modulePath), "module path");
  const chain = str(u32(H.chain), "chain");

  const strategies: string[] = [];
  for (let i = 0; i < nstrategies; i++) strategies.push(str(u32(strategiesOff + i * STRATEGY_SIZE), "strategy"));

  const options: DecodedOption[] = [];
  for (let i = 0; i < noptions; i++) {
    const o = optionsOff + i * OPTION_SIZE;
    const strategyIndex = u32(o);
    if (strategyIndex >= nstrategies) throw corrupt(`option ${i} names strategy ${strategyIndex}`);
    const n = bytes[o + 4] as number;
    if (n < 1 || n > 16) throw corrupt(`option ${i} has length ${n}`);
    const vaddr = u64(o + 8);
    if (!Number.isFinite(vaddr)) throw corrupt(`option ${i} address out of range`);
    options.push({
      strategy: strategies[strategyIndex] as string,
      strategyIndex,
      vaddr,
      old: bytes.slice(o + 16, o + 16 + n),
      bytes: bytes.slice(o + 32, o + 32 + n),
      aux: [dv.getBigUint64(o + 48, true), dv.getBigUint64(o + 56, true)],
    });
  }

  const sites: DecodedSite[] = [];
  let prev = -1;
  for (let i = 0; i < nsites; i++) {
    const o = sitesOff + i * SITE_SIZE;
    const vaddr = u64(o);
    if (!Number.isFinite(vaddr) || vaddr <= prev) throw corrupt(`site ${i} not sorted by address`);
    prev = vaddr;
    const nr = dv.getInt32(o + 8, true);
    const first = u32(o + 16);
    const count = u32(o + 20);
    if (first > noptions || count > noptions - first) throw corrupt(`site ${i} options out of range`);
    sites.push({ vaddr, nr: nr < 0 ? null : nr, flags: u32(o + 12), options: options.slice(first, first + count) });
  }

  const trampolines: DecodedTramp[] = [];
  for (let i = 0; i < ntramps; i++) {
    const o = trampsOff + i * TRAMP_SIZE;
    const vaddr = u64(o);
    const off = u64(o + 8);
    const size = u64(o + 16);
    const strategyIndex = u32(o + 24);
    if (!Number.isFinite(vaddr)) throw corrupt(`trampoline ${i} address out of range`);
    if (off > blobSize || size > blobSize - off) throw corrupt(`trampoline ${i} code out of the blob`);
    if (strategyIndex >= nstrategies) throw corrupt(`trampoline ${i} names strategy ${strategyIndex}`);
    trampolines.push({
      vaddr: vaddr === 0 ? null : vaddr,
      strategy: strategies[strategyIndex] as string,
      kind: str(u32(o + 28), "trampoline kind"),
      code: bytes.slice(blobOff + off, blobOff + off + size),
    });
  }

  if (moduleBytesHash(options.map((o) => o.old)) !== moduleHash)
    throw corrupt("module_hash does not match the old bytes");
  return {
    version,
    fileSize,
    checksum,
    moduleSize,
    moduleHash,
    modulePath,
    buildId,
    chain,
    strategies,
    sites,
    noptions,
    options,
    trampolines,
  };
}
