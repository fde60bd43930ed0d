/**
 * planSite: the sound tactics in order, each refusal a value with a stable reason code.
 *
 * Sound (the default, tactics/sound.ts): every instruction start a patch touches keeps its bytes
 * or begins a jump to a trampoline that runs that instruction (E9Patch's invariant), so no
 * control-flow knowledge is needed:
 *   (1) pun    e9 WW (or 48 e9) at the site; the rel32's upper bytes are the next bytes, unchanged
 *   (2) succ   the successor is evicted to a trampoline of its own; the site's rel32 shares its bytes
 *   (3) neigh  a preceding instruction (>= 5 bytes) is evicted; the site short-jumps into its bytes
 *
 * Unsafe opt-ins (`-s punning:tactics=…`): they overwrite instruction starts with filler and trust
 * `isKnownTarget` (function starts, direct branches) that nothing else enters them. Jump tables,
 * computed gotos, .cold parts, landing pads and signal-handler resume addresses break them.
 *   jmp    e9 rel32 over the site + following whole instructions (>= 5 bytes), displaced
 *   punx   pun that also displaces 1-2 byte followers
 *   short  eb rel8 from the site to padding nearby that holds the e9 rel32
 *   evict  e9 rel32 at the previous instruction(s), which move into the trampoline too
 *
 * The trampoline space (pages.ts) is per module: trampolines of one module never overlap, and
 * they share physical pages.
 */

import type { Site } from "@sysi/core/scan";
import type { PlanResult, Refusal, SiteContext } from "@sysi/core/strategy";
import { spaceFor, type TrampolineSpace } from "./pages.ts";
import type { TacticName, TacticResult } from "./tactics/common.ts";
import { tacticEvict } from "./tactics/evict.ts";
import { tacticJmp } from "./tactics/jmp.ts";
import { tacticPun } from "./tactics/pun.ts";
import { tacticShort } from "./tactics/short.ts";
import { type Proposal, type ProposalResult, tacticNeigh, tacticPunSound, tacticSucc } from "./tactics/sound.ts";
import { type Neighbours, neighbours } from "./tactics/window.ts";

export const DEFAULT_TACTICS: readonly TacticName[] = ["pun", "succ", "neigh"];
/** Tactics that rely on knowing every branch target: only when named. */
export const UNSAFE_TACTICS: readonly TacticName[] = ["jmp", "punx", "short", "evict"];

type Unsafe = (site: number, ctx: SiteContext, nb: Neighbours, space: TrampolineSpace) => TacticResult;
type Sound = (site: number, ctx: SiteContext, nb: Neighbours, space: TrampolineSpace) => ProposalResult;

const TACTICS: Record<TacticName, { sound: Sound } | { unsafe: Unsafe }> = {
  pun: { sound: (s, ctx, _nb, space) => tacticPunSound(s, ctx, space) },
  succ: { sound: (s, ctx, nb, space) => tacticSucc(s, ctx, nb, space) },
  neigh: { sound: (s, ctx, nb, space) => tacticNeigh(s, ctx, nb, space) },
  jmp: { unsafe: (s, ctx, nb, space) => tacticJmp(s, 2, ctx, nb, space) },
  punx: { unsafe: (s, ctx, nb, space) => tacticPun(s, 2, ctx, nb, space) },
  short: { unsafe: (s, ctx, nb, space) => tacticShort(s, 2, ctx, nb, space) },
  evict: { unsafe: (s, ctx, nb, space) => tacticEvict(s, 2, ctx, nb, space) },
};

export function parseTactics(opt: string | undefined): TacticName[] {
  if (opt === undefined || opt === "") return [...DEFAULT_TACTICS];
  const out: TacticName[] = [];
  for (const t of opt.split(/[,+]/)) {
    if (!(t in TACTICS))
      throw new Error(
        `punning: unknown tactic "${t}" (sound: ${DEFAULT_TACTICS.join(", ")}; unsafe: ${UNSAFE_TACTICS.join(", ")})`,
      );
    out.push(t as TacticName);
  }
  return out;
}

/** Strategy.checkOptions: the only option is `tactics=` (a `+`/`,` list of tactic names). */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  for (const [key, value] of Object.entries(options)) {
    if (key !== "tactics") {
      const given = key === "variant" ? value : `${key}=${value}`;
      return `unknown option "${given}" (the only option is tactics=, e.g. punning:tactics=pun+succ)`;
    }
    try {
      parseTactics(value);
    } catch (e) {
      return (e as Error).message.replace(/^punning: /, "");
    }
  }
  return null;
}

/** Plan one site; the full result of the winning tactic, or the refusal of every tactic. */
export function planSiteDetailed(site: Site, ctx: SiteContext): TacticResult {
  if (site.kind !== "syscall" && site.kind !== "sysenter") return { ok: false, reason: "unsupported-kind" };
  if (site.uncertain) return { ok: false, reason: "uncertain-site" };
  const insn = ctx.decodeAt(site.vaddr);
  if (insn === null || insn.length !== site.length || site.length !== 2)
    return { ok: false, reason: "site-not-decodable" };
  const space = spaceFor(ctx.elf);
  const nb = neighbours(ctx, site.vaddr, site.length);
  const tried: string[] = [];
  let last: TacticResult = { ok: false, reason: "no-tactic" };
  // Sound tactics propose; the first whose spans all fit the physical pages in use wins, else the
  // one opening the fewest new pages (the earliest on a tie). An unsafe tactic takes the site at
  // once, as it always did.
  let pick: Proposal | null = null;
  for (const name of parseTactics(ctx.options.tactics)) {
    const tactic = TACTICS[name];
    if ("unsafe" in tactic) {
      if (pick !== null) break;
      const r = tactic.unsafe(site.vaddr, ctx, nb, space);
      if (r.ok) {
        space.record(r.patch, r.t, r.length, r.movable);
        return r;
      }
      tried.push(`${name}: ${r.reason}`);
      last = r;
      continue;
    }
    const r = tactic.sound(site.vaddr, ctx, nb, space);
    if (!r.ok) {
      tried.push(`${name}: ${r.reason}`);
      last = r;
      continue;
    }
    if (pick === null || r.opens < pick.opens) pick = r;
    if (pick.opens === 0) break;
  }
  if (pick !== null) return pick.commit();
  return { ok: false, reason: last.ok ? "no-tactic" : last.reason, detail: tried.join("; ") };
}

export function planSite(site: Site, ctx: SiteContext): PlanResult {
  const r = planSiteDetailed(site, ctx);
  if (r.ok) return r.patch;
  const refusal: Refusal = { reason: r.reason };
  if (r.detail !== undefined) refusal.detail = r.detail;
  return refusal;
}
