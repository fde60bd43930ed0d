/**
 * The JSON form of a PatchPlan (`sysi plan --json`, `<modkey>.json` in the plan cache): stable
 * key order, addresses as "0x…" strings, bytes as lowercase hex.
 */
import { isRefusal } from "../strategy.ts";
import { syscallName } from "../syscalls/index.ts";
import type { PatchPlan, PlanStats } from "./types.ts";

export interface PlanJsonDecision {
  strategy: string;
  ok: boolean;
  reason?: string;
  detail?: string;
  tactic?: string;
  /** Patch start, when it differs from the site address. */
  at?: string;
  /** New bytes (hex), for accepted decisions. */
  bytes?: string;
  /** Old bytes (hex), for accepted decisions. */
  old?: string;
  aux?: [string, string];
  trampolines?: number;
}

export interface PlanJsonSite {
  vaddr: string;
  kind: string;
  nr: number | null;
  name: string | null;
  function: string | null;
  uncertain: boolean;
  taken: string | null;
  decisions: PlanJsonDecision[];
}

export interface PlanJsonStrategyStats {
  taken: number;
  refused: number;
  refusals: Record<string, number>;
  tactics: Record<string, number>;
  trampolines: number;
  /** Distinct 4 KiB pages the strategy's fixed-address trampolines touch (punning's virtual pages). */
  trampolinePages: number;
  /** Bytes of trampoline code (an upper bound on the physical memory they need). */
  trampolineBytes: number;
  /** Numbers the strategy reported at the end of the module (e.g. virtual-pages, physical-pages). */
  reported: Record<string, number>;
}

export interface PlanJson {
  format: "sysi-plan";
  version: number;
  module: { path: string; buildId: string | null; key: string; size: number };
  chain: string[];
  stats: {
    sites: number;
    patched: number;
    unpatched: number;
    byStrategy: PlanStats["byStrategy"];
    refusals: PlanStats["refusals"];
    tactics: PlanStats["tactics"];
    reported: Record<string, Record<string, number>>;
    strategies: Record<string, PlanJsonStrategyStats>;
  };
  sites: PlanJsonSite[];
}

const hx = (n: number): string => `0x${n.toString(16)}`;
const hexBytes = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k] as T;
  return out;
}

/** Build the JSON document for one plan (a plain object; JSON.stringify it). */
export function planToJson(plan: PatchPlan): PlanJson {
  const strategies: Record<string, PlanJsonStrategyStats> = {};
  for (const name of plan.chain) {
    const refusals = sortedRecord(plan.stats.refusals[name] ?? {});
    strategies[name] = {
      taken: plan.stats.byStrategy[name] ?? 0,
      refused: Object.values(refusals).reduce((a, b) => a + b, 0),
      refusals,
      tactics: sortedRecord(plan.stats.tactics[name] ?? {}),
      trampolines: 0,
      trampolinePages: 0,
      trampolineBytes: 0,
      reported: sortedRecord(plan.stats.reported?.[name] ?? {}),
    };
  }
  const pages = new Map<string, Set<number>>();
  for (const t of plan.trampolines) {
    const s = strategies[t.strategy];
    if (s === undefined) continue;
    s.trampolines++;
    s.trampolineBytes += t.code.length;
    if (t.vaddr !== null && t.code.length > 0) {
      const set = pages.get(t.strategy) ?? new Set<number>();
      for (let p = Math.floor(t.vaddr / 4096); p <= Math.floor((t.vaddr + t.code.length - 1) / 4096); p++) set.add(p);
      pages.set(t.strategy, set);
    }
  }
  for (const [name, set] of pages) {
    const s = strategies[name];
    if (s !== undefined) s.trampolinePages = set.size;
  }

  const sites = [...plan.sites]
    .sort((a, b) => a.site.vaddr - b.site.vaddr)
    .map((ps): PlanJsonSite => {
      const decisions = ps.decisions.map((d): PlanJsonDecision => {
        if (isRefusal(d.result)) {
          const out: PlanJsonDecision = { strategy: d.strategy, ok: false, reason: d.result.reason };
          if (d.result.detail !== undefined) out.detail = d.result.detail;
          return out;
        }
        const r = d.result;
        const out: PlanJsonDecision = { strategy: d.strategy, ok: true };
        if (r.tactic !== undefined) out.tactic = r.tactic;
        if (r.patch.vaddr !== ps.site.vaddr) out.at = hx(r.patch.vaddr);
        out.bytes = hexBytes(r.patch.bytes);
        out.old = hexBytes(r.patch.old);
        if (r.aux !== undefined) out.aux = [`0x${r.aux[0].toString(16)}`, `0x${r.aux[1].toString(16)}`];
        if (r.trampolines !== undefined && r.trampolines.length > 0) out.trampolines = r.trampolines.length;
        return out;
      });
      return {
        vaddr: hx(ps.site.vaddr),
        kind: ps.site.kind,
        nr: ps.site.nr,
        name: ps.site.nr === null ? null : syscallName(ps.site.nr),
        function: ps.site.function,
        uncertain: ps.site.uncertain,
        taken: ps.taken,
        decisions,
      };
    });

  return {
    format: "sysi-plan",
    version: plan.version,
    module: { ...plan.module },
    chain: [...plan.chain],
    stats: {
      sites: plan.stats.sites,
      patched: plan.stats.patched,
      unpatched: plan.stats.unpatched,
      byStrategy: { ...plan.stats.byStrategy },
      refusals: Object.fromEntries(Object.entries(plan.stats.refusals).map(([k, v]) => [k, sortedRecord(v)])),
      tactics: Object.fromEntries(Object.entries(plan.stats.tactics).map(([k, v]) => [k, sortedRecord(v)])),
      reported: Object.fromEntries(Object.entries(plan.stats.reported ?? {}).map(([k, v]) => [k, sortedRecord(v)])),
      strategies,
    },
    sites,
  };
}
