/**
 * The ud2 planner: a pure function from a decoded site to a 2-byte trap patch or a refusal.
 */

import type { Site } from "@sysi/core/scan";
import type { PlanResult, SiteContext } from "@sysi/core/strategy";
import { trapBytes, type Ud2Variant, VARIANT_CODE, VARIANTS } from "./encode.ts";

const SYSCALL = [0x0f, 0x05] as const;
const SYSENTER = [0x0f, 0x34] as const;

function isVariant(v: string): v is Ud2Variant {
  return (VARIANTS as readonly string[]).includes(v);
}

/** Strategy.checkOptions: the only option is the trap variant (`-s ud2:int3`). */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  for (const [key, value] of Object.entries(options)) {
    if (key !== "variant")
      return `unknown option "${key}=${value}" (the only option is the trap: ud2:int3, ud2:hlt, ud2:int4)`;
    if (!isVariant(value)) return `unknown trap "${value}" (use ud2, int3, hlt or int4)`;
  }
  return null;
}

/**
 * `fallback` is the variant when the chain element names none: the strategy passes this host's
 * default trap (trap-choice.ts), which its planVersion names so that plans keyed without a
 * variant change when it does.
 */
export function planSite(site: Site, ctx: Pick<SiteContext, "options">, fallback: Ud2Variant = "ud2"): PlanResult {
  // Step (1): the variant from `-s ud2:<variant>`, else the fallback.
  const variant = ctx.options.variant ?? fallback;
  if (!isVariant(variant)) return { reason: "unknown-variant", detail: `"${variant}" (use ud2, int3, hlt or int4)` };
  // Step (2): only the 2-byte 64-bit system-call instructions are emulated.
  if (site.kind === "int80") return { reason: "int80-not-supported", detail: "the 32-bit ABI is not emulated" };
  const b0 = site.bytes[0];
  const b1 = site.bytes[1];
  const expect = site.kind === "syscall" ? SYSCALL : SYSENTER;
  if (site.bytes.length < 2 || b0 !== expect[0] || b1 !== expect[1]) {
    return { reason: "unexpected-bytes", detail: `expected ${site.kind} at 0x${site.vaddr.toString(16)}` };
  }
  // Step (3): the patch covers exactly the site's 2 bytes; aux[0] tells the runtime the variant.
  return {
    patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: trapBytes(variant) },
    aux: [VARIANT_CODE[variant], 0n],
    tactic: variant,
  };
}
