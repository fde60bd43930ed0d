/**
 * The segmentation planner: a pure function from a decoded site to the 2-byte `lcall *(%rax)`
 * patch or a refusal with a stable reason code.
 *
 * What works (docs/segmentation.md, `sysi segmentation probe`): page 0 holds `33 00 …`, so for
 * an even rax in 0..4090 the far call reads selector 0x33 (the GDT's 64-bit user code segment)
 * and offset 0x00330033, where the runtime's entry is; an odd rax reads selector 0x3300 and
 * faults (#GP), as does anything beyond page 0. A site is taken when its number is known here
 * and even (variant `even`, the default), or, with variant `any`, also when it is unknown: odd
 * numbers there cost a SIGSEGV each (the fault path performs them; nothing is lost either way).
 */

import type { Site } from "@sysi/core/scan";
import type { PlanResult, SiteContext } from "@sysi/core/strategy";
import { isSyscallBytes, lcallRax } from "./encode.ts";
import { redZoneUse } from "./red-zone.ts";

/** Stable refusal codes. */
export const REFUSALS = {
  notSyscall: "not-syscall",
  uncertain: "uncertain-site",
  unexpectedBytes: "unexpected-bytes",
  unknownNumber: "number-unknown",
  oddNumber: "odd-number",
  outsidePage0: "number-outside-page0",
  inContext: "in-context-call",
  unknownFunction: "red-zone-unknown-function",
  redZone: "red-zone-in-use",
} as const;

/** Largest even number whose 6-byte far pointer lies inside page 0. */
export const MAX_NR = 4090;
/** Even numbers whose call needs the site's own stack context (clone, vfork): refused. */
const IN_CONTEXT: Record<number, string> = { 56: "clone", 58: "vfork" };

export const VARIANTS = ["even", "any"] as const;
export type Variant = (typeof VARIANTS)[number];

/** aux[1] flag: the number was unknown here (the runtime gives the site a gadget, seg.h). */
export const AUX_ANY = 1n;

export function planSite(site: Site, ctx: Pick<SiteContext, "functionInsns">, variant: Variant = "even"): PlanResult {
  // Step (1): only `syscall` takes its number in rax.
  if (site.kind !== "syscall") return { reason: REFUSALS.notSyscall, detail: site.kind };
  if (site.uncertain) return { reason: REFUSALS.uncertain };
  if (!isSyscallBytes(site.bytes)) {
    return { reason: REFUSALS.unexpectedBytes, detail: `expected 0f 05 at 0x${site.vaddr.toString(16)}` };
  }
  // Step (2): the number decides where the far pointer is read: even and inside page 0.
  const nr = site.nr;
  if (nr === null && variant !== "any") {
    return { reason: REFUSALS.unknownNumber, detail: "the number is not known here (variant any takes it)" };
  }
  if (nr !== null) {
    if (nr % 2 !== 0) return { reason: REFUSALS.oddNumber, detail: `nr ${nr}: page 0 serves even numbers only` };
    if (nr < 0 || nr > MAX_NR) return { reason: REFUSALS.outsidePage0, detail: `nr ${nr}` };
    const name = IN_CONTEXT[nr];
    if (name !== undefined) return { reason: REFUSALS.inContext, detail: name };
  }
  // Step (3): the far call's 8-byte frame goes to [rsp-8]: patch only where that slot is dead.
  const insns = ctx.functionInsns(site.vaddr);
  if (insns === null || insns.length === 0) return { reason: REFUSALS.unknownFunction };
  const use = redZoneUse(insns);
  if (use !== null) return { reason: REFUSALS.redZone, detail: use };
  // Step (4): 0f 05 → ff 18; aux[1] says whether the runtime needs a gadget (unknown number).
  return {
    patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: lcallRax() },
    aux: [0n, nr === null ? AUX_ANY : 0n],
    tactic: nr === null ? "lcall-any" : "lcall-even",
  };
}

/** Strategy.checkOptions: `-s segmentation`, `-s segmentation:even`, `-s segmentation:any`. */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  for (const [k, v] of Object.entries(options)) {
    if (k !== "variant") return `unknown option "${k}" (takes a variant: ${VARIANTS.join(", ")})`;
    if (!(VARIANTS as readonly string[]).includes(v)) return `unknown variant "${v}" (known: ${VARIANTS.join(", ")})`;
  }
  return null;
}

/** The variant chosen by the chain options. */
export function variantOf(options: Readonly<Record<string, string>>): Variant {
  return options.variant === "any" ? "any" : "even";
}
