/**
 * planSite: E9Patch's tactics in order, each refusal a value with a stable reason code.
 *
 *   (a) jmp    e9 rel32 over the site + following whole instructions (>= 5 bytes), displaced
 *   (b) pun    e9 with free low byte(s); the upper bytes are the following instruction's bytes
 *   (c) short  eb rel8 from the site to dead padding nearby that holds the e9 rel32
 *   (d) evict  e9 rel32 at the previous instruction(s), which move into the trampoline too
 *
 * The trampoline space (pages.ts) is per module: trampolines of one module never overlap, and
 * punned ones share physical pages. Options: `-s punning:tactics=pun,jmp` changes the order or set.
 */
import type { PlanResult, Refusal, SiteContext } from "@sysi/core/strategy";
import type { Site } from "@sysi/core/x86/types";
import { spaceFor } from "./pages.ts";
import type { TacticName, TacticResult } from "./tactics/common.ts";
import { tacticEvict } from "./tactics/evict.ts";
import { tacticJmp } from "./tactics/jmp.ts";
import { tacticPun } from "./tactics/pun.ts";
import { tacticShort } from "./tactics/short.ts";
import { neighbours } from "./tactics/window.ts";

export const DEFAULT_TACTICS: readonly TacticName[] = ["jmp", "pun", "short", "evict"];

const TACTICS = { jmp: tacticJmp, pun: tacticPun, short: tacticShort, evict: tacticEvict };

export function parseTactics(opt: string | undefined): TacticName[] {
  if (opt === undefined || opt === "") return [...DEFAULT_TACTICS];
  const out: TacticName[] = [];
  for (const t of opt.split(/[,+]/)) {
    if (!(t in TACTICS)) throw new Error(`punning: unknown tactic "${t}" (known: ${DEFAULT_TACTICS.join(", ")})`);
    out.push(t as TacticName);
  }
  return out;
}

/** Strategy.checkOptions: the only option is `tactics=` (a `+`/`,` list of tactic names). */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  for (const [key, value] of Object.entries(options)) {
    if (key !== "tactics") {
      const given = key === "variant" ? value : `${key}=${value}`;
      return `unknown option "${given}" (the only option is tactics=, e.g. punning:tactics=jmp+pun)`;
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
  if (insn === null || insn.length !== site.length) return { ok: false, reason: "site-not-decodable" };
  const space = spaceFor(ctx.elf);
  const nb = neighbours(ctx, site.vaddr, site.length);
  const tried: string[] = [];
  let last: TacticResult = { ok: false, reason: "no-tactic" };
  for (const name of parseTactics(ctx.options.tactics)) {
    const r = TACTICS[name](site.vaddr, site.length, ctx, nb, space);
    if (r.ok) {
      space.record(r.patch, r.t, r.length, r.movable);
      return r;
    }
    tried.push(`${name}: ${r.reason}`);
    last = r;
  }
  return { ok: false, reason: last.ok ? "no-tactic" : last.reason, detail: tried.join("; ") };
}

export function planSite(site: Site, ctx: SiteContext): PlanResult {
  const r = planSiteDetailed(site, ctx);
  if (r.ok) return r.patch;
  const refusal: Refusal = { reason: r.reason };
  if (r.detail !== undefined) refusal.detail = r.detail;
  return refusal;
}
