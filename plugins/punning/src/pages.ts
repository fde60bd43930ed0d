/**
 * Where trampolines may live, and how they are packed into pages.
 *
 * Addresses are link-time vaddrs of the module. For ET_DYN modules the load bias is unknown at plan
 * time, so a trampoline address is really "module base + offset": every jump between a site and its
 * trampoline is relative and bias-invariant, and the runtime adds the bias (aux[0] holds T - site).
 *
 * Zones (documented in docs/strategies/punning.md):
 * - Never inside the module's own image [min vaddr, max vaddr) plus a margin that covers the usual
 *   distance of the neighbouring mappings (other libraries are mapped next to each other, top-down,
 *   within a few tens of MB; we keep ZONE_MARGIN = 256 MiB clear on both sides).
 * - ET_DYN library: below the image [min - 2 GiB + slack, min - margin) or above it
 *   [max + margin, max + 2 GiB - slack).
 * - ET_DYN executable (DF_1_PIE): below only; above a PIE executable the kernel puts the brk heap.
 * - ET_EXEC (absolute): above the image from max + 1 GiB (room for the brk heap) up to 2 GiB away
 *   from the code, or below it (never under 1 MiB: page 0 and the mmap_min_addr area stay unmapped).
 *
 * Packing (E9Patch's physical page grouping): each virtual page holding trampolines is backed by a
 * physical page of a memfd; virtual pages whose trampolines sit at non-overlapping page offsets share
 * one physical page. The last SLOT_BYTES of every physical page hold the address of the runtime's
 * entry stub (trampolines reach it with `call *slot(%rip)`), so trampolines use [0, PAGE_USABLE).
 */
import type { ElfFile } from "@sysi/core/elf/types";

export const PAGE = 4096;
export const SLOT_BYTES = 16;
export const PAGE_USABLE = PAGE - SLOT_BYTES;
/** Offset of the entry-stub pointer inside each physical page. */
export const SLOT_OFFSET = PAGE - 8;
export const ZONE_MARGIN = 0x1000_0000;
const GiB = 0x4000_0000;
/** Keep trampolines this far inside the ±2 GiB reach so relocated rip-relative operands still fit. */
const REACH_SLACK = 0x0100_0000;
const ET_EXEC = 2;
const DF_1_PIE = 0x0800_0000;
const PT_LOAD = 1;

export interface Zone {
  start: number;
  end: number;
}

export interface ModuleLayout {
  minVaddr: number;
  maxVaddr: number;
  kind: "exec" | "pie" | "lib";
  zones: Zone[];
  /** Where free-target trampolines (tactics jmp/evict/short) start: a zone edge away from the image. */
  denseBase: number;
}

function pageDown(v: number): number {
  return Math.floor(v / PAGE) * PAGE;
}

function pageUp(v: number): number {
  return Math.ceil(v / PAGE) * PAGE;
}

/** Module image bounds and the zones trampolines may occupy. */
export function moduleLayout(elf: ElfFile): ModuleLayout {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memsz > 0);
  const minVaddr = pageDown(Math.min(...loads.map((s) => s.vaddr)));
  const maxVaddr = pageUp(Math.max(...loads.map((s) => s.vaddr + s.memsz)));
  if (elf.type === ET_EXEC) {
    const zones: Zone[] = [{ start: maxVaddr + GiB, end: maxVaddr + 2 * GiB - REACH_SLACK }];
    if (minVaddr - ZONE_MARGIN > 0x10_0000) zones.unshift({ start: 0x10_0000, end: minVaddr - ZONE_MARGIN });
    return { minVaddr, maxVaddr, kind: "exec", zones, denseBase: maxVaddr + GiB };
  }
  const pie = ((elf.dynamic?.flags1 ?? 0) & DF_1_PIE) !== 0;
  const below: Zone = { start: minVaddr - 2 * GiB + REACH_SLACK, end: minVaddr - ZONE_MARGIN };
  const zones = pie ? [below] : [below, { start: maxVaddr + ZONE_MARGIN, end: maxVaddr + 2 * GiB - REACH_SLACK }];
  return { minVaddr, maxVaddr, kind: pie ? "pie" : "lib", zones, denseBase: minVaddr - GiB };
}

/** [t, t+len) lies inside one zone and inside one page's usable part. */
export function targetAllowed(layout: ModuleLayout, t: number, len: number): boolean {
  const off = t % PAGE;
  if (off + len > PAGE_USABLE) return false;
  for (const z of layout.zones) if (t >= z.start && t + len <= z.end) return true;
  return false;
}

/** Occupied [start, end) intervals of one physical page, kept sorted. */
class PhysPage {
  readonly used: [number, number][] = [];
  free(off: number, len: number): boolean {
    for (const [a, b] of this.used) if (off < b && a < off + len) return false;
    return true;
  }
  take(off: number, len: number): void {
    this.used.push([off, off + len]);
    this.used.sort((x, y) => x[0] - y[0]);
  }
  /** First offset >= 0 where len bytes fit, or -1. */
  firstFit(len: number): number {
    let cur = 0;
    for (const [a, b] of this.used) {
      if (a - cur >= len) return cur;
      cur = Math.max(cur, b);
    }
    return PAGE_USABLE - cur >= len ? cur : -1;
  }
}

export interface Placement {
  /** Trampoline address (link-time). */
  t: number;
  /** Module-local physical page index. */
  phys: number;
}

/** Per-module trampoline space: virtual pages, their physical pages, and the dense cursor. */
export class TrampolineSpace {
  readonly layout: ModuleLayout;
  readonly phys: PhysPage[] = [];
  /** virtual page number → physical page index */
  readonly vpages = new Map<number, number>();
  private denseNext: number;

  constructor(layout: ModuleLayout) {
    this.layout = layout;
    this.denseNext = layout.denseBase;
  }

  /**
   * Cost of placing len bytes at t (fixed target): 0 = fits an existing virtual page, 1 = new
   * virtual page on an existing physical page, 2 = new physical page; -1 = impossible.
   */
  cost(t: number, len: number): number {
    if (!targetAllowed(this.layout, t, len)) return -1;
    const vp = Math.floor(t / PAGE);
    const off = t - vp * PAGE;
    const p = this.vpages.get(vp);
    if (p !== undefined) return (this.phys[p] as PhysPage).free(off, len) ? 0 : -1;
    for (const pp of this.phys) if (pp.free(off, len)) return 1;
    return 2;
  }

  /** Reserve len bytes at the fixed address t (cost(t, len) must be >= 0). */
  placeAt(t: number, len: number): Placement {
    const vp = Math.floor(t / PAGE);
    const off = t - vp * PAGE;
    let p = this.vpages.get(vp);
    if (p === undefined) {
      p = this.phys.findIndex((pp) => pp.free(off, len));
      if (p < 0) {
        p = this.phys.length;
        this.phys.push(new PhysPage());
      }
      this.vpages.set(vp, p);
    }
    (this.phys[p] as PhysPage).take(off, len);
    return { t, phys: p };
  }

  /**
   * Place len bytes anywhere `ok(t)` accepts: first in a free gap of an existing virtual page, else
   * on a new dense virtual page (which reuses a physical page with room at that offset when possible).
   */
  placeFree(len: number, ok: (t: number) => boolean): Placement | null {
    for (const [vp, p] of this.vpages) {
      const off = (this.phys[p] as PhysPage).firstFit(len);
      if (off < 0) continue;
      const t = vp * PAGE + off;
      if (targetAllowed(this.layout, t, len) && ok(t)) return this.placeAt(t, len);
    }
    for (let tries = 0; tries < 64; tries++) {
      const vp = Math.floor(this.denseNext / PAGE);
      this.denseNext = (vp + 1) * PAGE;
      if (this.vpages.has(vp)) continue;
      const t = vp * PAGE;
      if (!targetAllowed(this.layout, t, len) || !ok(t)) return null;
      return this.placeAt(t, len);
    }
    return null;
  }
}

const spaces = new WeakMap<ElfFile, TrampolineSpace>();

/** The module's trampoline space (one per ElfFile object, created on first use). */
export function spaceFor(elf: ElfFile): TrampolineSpace {
  let s = spaces.get(elf);
  if (s === undefined) {
    s = new TrampolineSpace(moduleLayout(elf));
    spaces.set(elf, s);
  }
  return s;
}

/** Forget a module's space (tests re-plan the same ElfFile). */
export function resetSpace(elf: ElfFile): void {
  spaces.delete(elf);
}
