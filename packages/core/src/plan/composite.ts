/**
 * Composite planning: every site is offered to every strategy of the chain, in chain order.
 *
 * - Every answer is recorded (`decisions`); the first acceptance that survives the checks below
 *   is `taken`. Later acceptances stay in the plan as fallbacks: the runtime takes the first
 *   option whose strategy initialised.
 * - Uncertain sites are refused by the composite itself ("uncertain-site") for every strategy.
 * - A strategy whose `requires` host checks do not pass refuses every site with
 *   `host-<check>-unavailable` (its planner is never called).
 * - An accepted patch is refused by the composite when it is malformed ("invalid-patch"), does
 *   not cover the site ("patch-misses-site"), overlaps bytes an earlier site's taken patch
 *   changes ("overlaps-previous-patch"), or its `old` bytes differ from the file
 *   ("old-bytes-mismatch").
 * - A planner that throws is recorded as a refusal "planner-error" (with the message).
 * - Each strategy plans the module through its own ModulePlanner (Strategy.planModule, created
 *   here per module, so per-module state is never shared between modules or plans); a
 *   strategy whose planModule throws refuses every site of the module with "planner-error".
 *
 * Pure: no I/O (the instruction reader decodes the in-memory ELF).
 */
import type { ElfFile } from "../elf/types.ts";
import type {
  FinishResult,
  HostFacts,
  ModulePlanner,
  PlanResult,
  Refusal,
  SiteContext,
  SitePatch,
  Strategy,
  TakenSite,
} from "../strategy.ts";
import { isRefusal, modulePlanner } from "../strategy.ts";
import { createInsnReader, type InsnReader } from "../x86/insn.ts";
import type { ScanResult, Site } from "../x86/types.ts";
import type { PatchPlan, PlannedSite, PlanStats, SiteDecision } from "./types.ts";

import { PLAN_FORMAT_VERSION } from "./version.ts";

export { COMPOSITE_VERSION, PLAN_FORMAT_VERSION } from "./version.ts";

export interface ChainEntry {
  strategy: Strategy;
  options: Record<string, string>;
  /**
   * Hash of the planner's own source when it may change without its planVersion (a linked
   * plugin under development): part of the plan-cache key (cache.ts chainKey).
   */
  sourceHash?: string;
}

export interface PlanModuleOptions {
  /** Instruction reader to use (not freed); default: a fresh createInsnReader(elf), freed at the end. */
  reader?: InsnReader;
  /** Module key (module-key.ts); default: the build-id, else "". */
  key?: string;
  /** Module path recorded in the plan; default: elf.path ?? scan.path ?? "". */
  path?: string;
}

type InsnReaderFactory = (elf: ElfFile) => InsnReader;
let readerFactory: InsnReaderFactory = createInsnReader;

/** Replace the default instruction reader factory (tests); null restores createInsnReader. */
export function setInsnReaderFactory(f: InsnReaderFactory | null): void {
  readerFactory = f ?? createInsnReader;
}

function refusal(reason: string, detail?: string): Refusal {
  return detail === undefined ? { reason } : { reason, detail };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Host checks a strategy requires that are not known to pass (first one names the refusal). */
export function missingHostChecks(strategy: Strategy, host: HostFacts): string[] {
  return strategy.requires.filter((id) => host.checks[id] !== true);
}

/** Structural checks on a SitePatch, and the file-bytes check. Null when the patch is usable. */
function checkPatch(elf: ElfFile, site: Site, p: SitePatch, taken: Set<number>): Refusal | null {
  const patch = p.patch;
  if (
    patch === undefined ||
    !(patch.bytes instanceof Uint8Array) ||
    !(patch.old instanceof Uint8Array) ||
    patch.bytes.length === 0 ||
    patch.bytes.length > 16 ||
    patch.bytes.length !== patch.old.length ||
    !Number.isSafeInteger(patch.vaddr) ||
    patch.vaddr < 0
  ) {
    return refusal("invalid-patch", "patch must have 1..16 new bytes, as many old bytes, and an address");
  }
  const start = patch.vaddr;
  const end = start + patch.bytes.length;
  if (start > site.vaddr || end < site.vaddr + site.length) {
    return refusal("patch-misses-site", `patch 0x${start.toString(16)}+${patch.bytes.length}`);
  }
  for (let a = start; a < end; a++) {
    if (taken.has(a)) return refusal("overlaps-previous-patch", `byte 0x${a.toString(16)} already patched`);
  }
  const file = elf.bytesAt(start, patch.old.length);
  if (file === null) return refusal("old-bytes-mismatch", "patch range is not file-backed");
  for (let i = 0; i < file.length; i++) {
    if (file[i] !== patch.old[i])
      return refusal("old-bytes-mismatch", `file has ${hex(file)}, patch expects ${hex(patch.old)}`);
  }
  return null;
}

function isFailedPlanner(p: ModulePlanner | Refusal | null): p is Refusal {
  return p !== null && typeof (p as Refusal).reason === "string";
}

/**
 * Hand the sites a finished strategy gives back (FinishResult.giveBack, contract 1.3) to their
 * fallbacks: the giver's decision becomes the refusal it names, the fallback takes the site (and
 * gets it in its own finish, which runs later: fallbacks come later in the chain). A site without
 * a fallback, not taken by the giver, or named twice is ignored.
 */
function giveBack(ret: unknown, giver: number, takenBy: TakenSite[][], planned: PlannedSite[], stats: PlanStats): void {
  if (ret === null || typeof ret !== "object" || !("giveBack" in ret)) return;
  const list = (ret as FinishResult).giveBack;
  if (!Array.isArray(list) || list.length === 0) return;
  const mine = takenBy[giver] ?? [];
  const byVaddr = new Map(mine.map((t) => [t.site.vaddr, t]));
  const names = new Map<string, number>();
  const gone = new Set<TakenSite>();
  for (const g of list) {
    const t = byVaddr.get(g?.vaddr);
    if (t === undefined || t.fallback === undefined || gone.has(t) || typeof g.reason !== "string") continue;
    const ps = planned.find((p) => p.site === t.site);
    const d = ps?.decisions.find((x) => !isRefusal(x.result) && x.result === t.patch);
    const fb = ps?.decisions.find((x) => x.strategy === t.fallback);
    if (ps === undefined || d === undefined || fb === undefined || isRefusal(fb.result)) continue;
    if (names.size === 0) for (const [i, x] of ps.decisions.entries()) names.set(x.strategy, i);
    d.result = refusal(g.reason, typeof g.detail === "string" ? g.detail : undefined);
    bump(stats.refusals, d.strategy, g.reason);
    ps.taken = fb.strategy;
    takenBy[names.get(fb.strategy) ?? -1]?.push({ site: t.site, patch: fb.result });
    gone.add(t);
  }
  if (gone.size > 0) takenBy[giver] = mine.filter((t) => !gone.has(t));
}

function numericFields(v: unknown): Record<string, number> | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === "number" && Number.isFinite(x)) out[k] = x;
  return Object.keys(out).length > 0 ? out : null;
}

function bump(table: Record<string, Record<string, number>>, strategy: string, key: string): void {
  const row = table[strategy] ?? {};
  row[key] = (row[key] ?? 0) + 1;
  table[strategy] = row;
}

/** Plan one module with a strategy chain. */
export function planModule(
  elf: ElfFile,
  scan: ScanResult,
  chain: ChainEntry[],
  host: HostFacts,
  opts: PlanModuleOptions = {},
): PatchPlan {
  let reader = opts.reader;
  let owned = false;
  if (reader === undefined) {
    reader = readerFactory(elf);
    owned = true;
  }
  try {
    return planWith(elf, scan, chain, host, reader, opts);
  } finally {
    if (owned) reader.free();
  }
}

function planWith(
  elf: ElfFile,
  scan: ScanResult,
  chain: ChainEntry[],
  host: HostFacts,
  reader: InsnReader,
  opts: PlanModuleOptions,
): PatchPlan {
  const functions = elf.functions();
  const names = chain.map((c) => c.strategy.name);
  const contexts: SiteContext[] = chain.map((c) => ({
    elf,
    functions,
    decodeAt: (v: number) => reader.decodeAt(v),
    functionInsns: (v: number) => reader.functionInsns(v),
    isKnownTarget: (v: number) => reader.isKnownTarget(v),
    host,
    options: Object.freeze({ ...c.options }),
  }));
  const hostRefusal: (Refusal | null)[] = chain.map((c) => {
    const missing = missingHostChecks(c.strategy, host);
    return missing.length === 0 ? null : refusal(`host-${missing[0]}-unavailable`);
  });
  // One planner per strategy for this module; a strategy the host rules out gets none.
  const planners: (ModulePlanner | Refusal | null)[] = chain.map((c, i) => {
    if (hostRefusal[i] !== null) return null;
    try {
      return modulePlanner(c.strategy, contexts[i] as SiteContext);
    } catch (e) {
      return refusal("planner-error", e instanceof Error ? e.message.split("\n")[0] : String(e));
    }
  });

  const stats: PlanStats = { sites: 0, patched: 0, unpatched: 0, byStrategy: {}, refusals: {}, tactics: {} };
  for (const n of names) {
    stats.byStrategy[n] = 0;
    stats.refusals[n] = {};
    stats.tactics[n] = {};
  }

  const sites = [...scan.sites].sort((a, b) => a.vaddr - b.vaddr);
  const takenBytes = new Set<number>();
  const takenBy: TakenSite[][] = chain.map(() => []);
  const planned: PlannedSite[] = [];

  for (const site of sites) {
    const decisions: SiteDecision[] = [];
    let taken: string | null = null;
    let takenPatch: SitePatch | null = null;
    for (let i = 0; i < chain.length; i++) {
      const entry = chain[i] as ChainEntry;
      const name = entry.strategy.name;
      let result: PlanResult;
      if (site.uncertain) {
        result = refusal("uncertain-site");
      } else if (hostRefusal[i]) {
        result = hostRefusal[i] as Refusal;
      } else if (isFailedPlanner(planners[i] ?? null)) {
        result = planners[i] as Refusal;
      } else {
        try {
          // Each strategy gets its own copy of the site: a planner that scribbles on
          // site.bytes must not change what the next strategy (or the plan) sees.
          const planner = planners[i] as ModulePlanner;
          result = planner.planSite({ ...site, bytes: new Uint8Array(site.bytes) }, contexts[i] as SiteContext);
        } catch (e) {
          result = refusal("planner-error", e instanceof Error ? e.message.split("\n")[0] : String(e));
        }
        if (result === null || typeof result !== "object") {
          result = refusal("planner-error", "planSite returned no result");
        } else if (!isRefusal(result)) {
          result = checkPatch(elf, site, result, takenBytes) ?? result;
        }
      }
      decisions.push({ strategy: name, result });
      if (isRefusal(result)) {
        bump(stats.refusals, name, result.reason);
      } else if (taken === null) {
        taken = name;
        takenPatch = result;
        takenBy[i]?.push({ site, patch: result });
      }
    }
    // The fallback of the taken site (contract 1.3): the next strategy whose patch lies inside
    // the taken one's range, so that it overlaps nothing else taken, now or later.
    if (takenPatch !== null) {
      const t = takenPatch.patch;
      const k = decisions.findIndex((d) => d.strategy === taken);
      const fb = decisions.slice(k + 1).find((d) => {
        if (isRefusal(d.result)) return false;
        const p = d.result.patch;
        return p.vaddr >= t.vaddr && p.vaddr + p.bytes.length <= t.vaddr + t.bytes.length;
      });
      const mine = takenBy[k]?.at(-1);
      if (fb !== undefined && mine !== undefined) mine.fallback = fb.strategy;
    }
    if (takenPatch !== null) {
      const p = takenPatch.patch;
      for (let a = p.vaddr; a < p.vaddr + p.bytes.length; a++) takenBytes.add(a);
    }
    planned.push({ site, taken, decisions });
  }

  for (let i = 0; i < chain.length; i++) {
    const s = (chain[i] as ChainEntry).strategy;
    const planner = planners[i];
    if (planner === null || planner === undefined || isFailedPlanner(planner) || planner.finish === undefined) continue;
    // Numbers it returns are shown by `sysi plan` (punning: page counts).
    const ret: unknown = planner.finish(contexts[i] as SiteContext, takenBy[i] ?? []);
    giveBack(ret, i, takenBy, planned, stats);
    const nums = numericFields(ret);
    if (nums !== null) {
      stats.reported ??= {};
      stats.reported[s.name] = nums;
    }
  }

  // Stats and trampolines after finish (it may add trampolines or change tactics).
  const trampolines: PatchPlan["trampolines"] = [];
  for (const ps of planned) {
    stats.sites++;
    if (ps.taken === null) stats.unpatched++;
    else {
      stats.patched++;
      stats.byStrategy[ps.taken] = (stats.byStrategy[ps.taken] ?? 0) + 1;
    }
    for (const d of ps.decisions) {
      if (isRefusal(d.result)) continue;
      if (d.strategy === ps.taken && d.result.tactic !== undefined) bump(stats.tactics, d.strategy, d.result.tactic);
      for (const t of d.result.trampolines ?? []) trampolines.push({ ...t, strategy: d.strategy });
    }
  }

  return {
    version: PLAN_FORMAT_VERSION,
    module: {
      path: opts.path ?? elf.path ?? scan.path ?? "",
      buildId: elf.buildId,
      key: opts.key ?? elf.buildId ?? "",
      size: elf.bytes.length,
    },
    chain: names,
    sites: planned,
    trampolines,
    stats,
  };
}
