/**
 * Byte builders of the segmentation strategy. Every hand-encoded sequence carries its disassembly.
 */

/** `syscall` — the instruction the strategy replaces. */
export const SYSCALL_BYTES: readonly number[] = [0x0f, 0x05]; // 0f 05  syscall

/** `lcall *(%rax)` — a far call through the m16:32 pointer at address rax (page 0). */
export const LCALL_RAX_BYTES: readonly number[] = [0xff, 0x18]; // ff 18  lcall *(%rax)

/** The 2-byte patch written over a `syscall`. */
export function lcallRax(): Uint8Array {
  return Uint8Array.from(LCALL_RAX_BYTES);
}

/** Whether `bytes` starts with `syscall` (0f 05). */
export function isSyscallBytes(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === SYSCALL_BYTES[0] && bytes[1] === SYSCALL_BYTES[1];
}

/** The selector page 0 puts at every even offset + 4: the GDT's 64-bit user code segment. */
export const USER_CS = 0x33;
/** The far pointer's offset (where the runtime's entry lives): 0x00330033. */
export const ENTRY = 0x00330033;

/**
 * The page-0 byte pattern: `33 00` repeated. The 6 bytes read at an even offset n are
 * 33 00 33 00 | 33 00: offset 0x00330033, selector 0x0033.
 */
export function page0Pattern(size = 4096): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i % 2 === 0 ? USER_CS : 0));
}

/** The m16:32 far pointer read at `nr` in `page` (null when the 6 bytes leave the page). */
export function farPointerAt(page: Uint8Array, nr: number): { selector: number; offset: number } | null {
  if (nr < 0 || nr + 6 > page.length) return null;
  const b = (i: number) => page[nr + i] as number;
  return { offset: (b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0, selector: b(4) | (b(5) << 8) };
}
