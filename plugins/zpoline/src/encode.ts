/**
 * Byte builders of the zpoline strategy. Every hand-encoded sequence carries its disassembly.
 */

/** `syscall` — the instruction zpoline replaces. */
export const SYSCALL_BYTES: readonly number[] = [0x0f, 0x05]; // 0f 05  syscall

/** `call *%rax` — %rax holds the syscall number, so the call lands in page 0 at offset nr. */
export const CALL_RAX_BYTES: readonly number[] = [0xff, 0xd0]; // ff d0  call *%rax

/** The 2-byte patch written over a `syscall`. */
export function callRax(): Uint8Array {
  return Uint8Array.from(CALL_RAX_BYTES);
}

/** Whether `bytes` starts with `syscall` (0f 05). */
export function isSyscallBytes(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === SYSCALL_BYTES[0] && bytes[1] === SYSCALL_BYTES[1];
}

/**
 * Immediate of a `sub $imm,%rsp` (a stack allocation), or null when `bytes` is another
 * instruction. Forms: 48 83 ec ib  sub $imm8,%rsp;  48 81 ec id  sub $imm32,%rsp.
 */
export function subRspImm(bytes: Uint8Array): number | null {
  if (bytes.length >= 4 && bytes[0] === 0x48 && bytes[1] === 0x83 && bytes[2] === 0xec) {
    return ((bytes[3] as number) << 24) >> 24; // sign-extended imm8
  }
  if (bytes.length >= 7 && bytes[0] === 0x48 && bytes[1] === 0x81 && bytes[2] === 0xec) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    return v.getInt32(3, true);
  }
  return null;
}

/** Whether `bytes` is `mov %rsp,%rbp` (48 89 e5) or its other encoding (48 8b ec). */
export function isMovRspRbp(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 3 &&
    bytes[0] === 0x48 &&
    ((bytes[1] === 0x89 && bytes[2] === 0xe5) || (bytes[1] === 0x8b && bytes[2] === 0xec))
  );
}
