/**
 * The red-zone analysis (the same rules as the zpoline planner's, plugins/zpoline/src/plan.ts):
 * `lcall *(%rax)` pushes its 8-byte frame at [rsp-8], inside the function's red zone, so a site
 * is patched only where that slot is provably dead. Intra-function and conservative: any
 * rsp-based access below rsp, or with a frame pointer an rbp-based access deeper than the
 * frame, makes the whole function's sites refused. Not tracked: copies of rsp in other
 * registers, index registers based on rsp, stack pointers passed in from callers.
 */
import type { InsnInfo } from "@sysi/core/strategy";

/** Immediate of `sub $imm,%rsp` (48 83 ec ib / 48 81 ec id), or null. */
export function subRspImm(bytes: Uint8Array): number | null {
  if (bytes.length >= 4 && bytes[0] === 0x48 && bytes[1] === 0x83 && bytes[2] === 0xec) {
    return ((bytes[3] as number) << 24) >> 24; // sign-extended imm8
  }
  if (bytes.length >= 7 && bytes[0] === 0x48 && bytes[1] === 0x81 && bytes[2] === 0xec) {
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getInt32(3, true);
  }
  return null;
}

/** `mov %rsp,%rbp` (48 89 e5) or its other encoding (48 8b ec). */
export function isMovRspRbp(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 3 &&
    bytes[0] === 0x48 &&
    ((bytes[1] === 0x89 && bytes[2] === 0xe5) || (bytes[1] === 0x8b && bytes[2] === 0xec))
  );
}

/** Why the red zone of a function may be live, or null when [rsp-8] is dead at every syscall. */
export function redZoneUse(insns: readonly InsnInfo[]): string | null {
  let framePointer = false;
  let allocated = 0;
  let pushesAfterFrame = 0;
  let deepestRbp = 0;
  let deepestAt = 0;
  for (const insn of insns) {
    // Step (1): an rsp-based operand below rsp reads, writes or takes the address of the red zone.
    if (insn.memBase === "rsp" && insn.memDisp !== undefined && insn.memDisp < 0) {
      return `${insn.mnemonic} ${insn.memDisp}(%rsp) at 0x${insn.vaddr.toString(16)}`;
    }
    // Step (2): rbp is a frame pointer only after `mov %rsp,%rbp`.
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
  // Step (4): with a frame pointer, an access deeper than the allocation lies in the red zone.
  if (framePointer && -deepestRbp > allocated + 8 * pushesAfterFrame) {
    return `${deepestRbp}(%rbp) at 0x${deepestAt.toString(16)} below a ${allocated + 8 * pushesAfterFrame}-byte frame`;
  }
  return null;
}
