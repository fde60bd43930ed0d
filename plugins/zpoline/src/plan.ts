/**
 * The zpoline planner: a pure function from a decoded site to the 2-byte `call *%rax` patch or
 * a refusal with a stable reason code.
 *
 * The red zone. `call *%rax` pushes the return address at [rsp-8], inside the function's red
 * zone (the 128 bytes below rsp that a leaf function may use without moving rsp; this is the
 * open issue #9 of the original zpoline). The old value is gone before the runtime runs, so
 * the planner patches only where [rsp-8] is provably dead at the syscall: the runtime's entry
 * steps over the remaining 120 bytes itself. The analysis is intra-function and conservative:
 * it looks at every instruction of the enclosing function, not just at the path to the site.
 * Not tracked (documented limitations): copies of rsp in registers other than rbp, memory
 * operands with an index register based on rsp, and stack pointers passed in from callers.
 */

import type { Site } from "@sysi/core/scan";
import type { InsnInfo, PlanResult, SiteContext } from "@sysi/core/strategy";
import { callRax, isMovRspRbp, isSyscallBytes, subRspImm } from "./encode.ts";

/** Stable refusal codes. */
export const REFUSALS = {
  notSyscall: "not-syscall",
  uncertain: "uncertain-site",
  unexpectedBytes: "unexpected-bytes",
  unknownFunction: "red-zone-unknown-function",
  redZone: "red-zone-in-use",
} as const;

/** Why the red zone of a function may be live, or null when [rsp-8] is dead at every syscall. */
export function redZoneUse(insns: readonly InsnInfo[]): string | null {
  let framePointer = false;
  let allocated = 0;
  let pushesAfterFrame = 0;
  let deepestRbp = 0;
  let deepestAt = 0;
  for (const insn of insns) {
    // Step (1): an rsp-based operand below rsp (loads, stores and `lea` alike) reads, writes
    // or takes the address of the red zone.
    if (insn.memBase === "rsp" && insn.memDisp !== undefined && insn.memDisp < 0) {
      return `${insn.mnemonic} ${insn.memDisp}(%rsp) at 0x${insn.vaddr.toString(16)}`;
    }
    // Step (2): rbp is a frame pointer only after `mov %rsp,%rbp`; what the function allocates
    // below it is `sub $imm,%rsp` plus the registers it pushes after setting rbp.
    if (isMovRspRbp(insn.bytes)) {
      framePointer = true;
      continue;
    }
    const imm = subRspImm(insn.bytes);
    if (imm !== null && imm > allocated) allocated = imm;
    if (framePointer && insn.mnemonic === "push") pushesAfterFrame++;
    // Step (3): the deepest rbp-based access below rbp.
    if (insn.memBase === "rbp" && insn.memDisp !== undefined && insn.memDisp < deepestRbp) {
      deepestRbp = insn.memDisp;
      deepestAt = insn.vaddr;
    }
  }
  // Step (4): with a frame pointer, an access deeper than the allocation lies in the red zone
  // (a leaf function keeping its locals below rsp, the usual -O0 shape).
  if (framePointer && -deepestRbp > allocated + 8 * pushesAfterFrame) {
    return `${deepestRbp}(%rbp) at 0x${deepestAt.toString(16)} below a ${allocated + 8 * pushesAfterFrame}-byte frame`;
  }
  return null;
}

export function planSite(site: Site, ctx: Pick<SiteContext, "functionInsns">): PlanResult {
  // Step (1): only `syscall` enters the kernel through rax = nr; sysenter and int 0x80 use the
  // 32-bit conventions.
  if (site.kind !== "syscall") return { reason: REFUSALS.notSyscall, detail: site.kind };
  // Step (2): never patch bytes that may not be an instruction.
  if (site.uncertain) return { reason: REFUSALS.uncertain };
  if (!isSyscallBytes(site.bytes)) {
    return { reason: REFUSALS.unexpectedBytes, detail: `expected 0f 05 at 0x${site.vaddr.toString(16)}` };
  }
  // Step (3): the return address goes to [rsp-8]: patch only where that slot is dead.
  const insns = ctx.functionInsns(site.vaddr);
  if (insns === null || insns.length === 0) return { reason: REFUSALS.unknownFunction };
  const use = redZoneUse(insns);
  if (use !== null) return { reason: REFUSALS.redZone, detail: use };
  // Step (4): the patch covers exactly the site's 2 bytes: 0f 05 → ff d0.
  return { patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: callRax() }, tactic: "call-rax" };
}
