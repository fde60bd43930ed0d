/**
 * Byte builders for the ud2 strategy. Every sequence carries its disassembly.
 * The variant code is stored in the plan option's aux[0]; plugins/ud2/native/ud2.h defines the
 * same numbers (SYSI_UD2_VARIANT_*).
 */

export type Ud2Variant = "ud2" | "int3" | "hlt" | "int4";

export const VARIANTS: readonly Ud2Variant[] = ["ud2", "int3", "hlt", "int4"];

/** aux[0] values, as in native/ud2.h. */
export const VARIANT_CODE: Record<Ud2Variant, bigint> = { ud2: 0n, int3: 1n, hlt: 2n, int4: 3n };

/** The signal each variant's trap raises (what the runtime claims). */
export const VARIANT_SIGNAL: Record<Ud2Variant, string> = {
  ud2: "SIGILL",
  int3: "SIGTRAP",
  hlt: "SIGSEGV",
  int4: "SIGSEGV",
};

/** The 2 bytes written over a `syscall`/`sysenter`. */
export function trapBytes(variant: Ud2Variant): Uint8Array {
  switch (variant) {
    case "ud2":
      return Uint8Array.of(0x0f, 0x0b); // ud2              (#UD → SIGILL, RIP = site)
    case "int3":
      return Uint8Array.of(0xcc, 0x90); // int3; nop        (#BP → SIGTRAP, RIP = site + 1)
    case "hlt":
      return Uint8Array.of(0xf4, 0x90); // hlt; nop         (#GP in user mode → SIGSEGV, RIP = site)
    case "int4":
      // int $4: the overflow vector, a DPL-3 gate on Linux x86-64, so user mode may raise it:
      // #OF → SIGSEGV (SI_KERNEL, trapno 4), RIP = site + 2. A SIGSEGV trap without hlt's #GP
      // path (no UMIP instruction decode; a hypervisor may intercept #GP but not #OF).
      return Uint8Array.of(0xcd, 0x04); // int $0x4
  }
}

/**
 * The gadget the runtime builds per site for in-context calls (documentation and tests; the
 * runtime writes the same 16 bytes in native/sites.c):
 *   0f 05                     syscall
 *   ff 25 00 00 00 00         jmp *0x0(%rip)
 *   <8 bytes>                 .quad site + 2
 */
export function gadgetBytes(site: bigint): Uint8Array {
  const g = new Uint8Array(16);
  g.set([0x0f, 0x05, 0xff, 0x25, 0, 0, 0, 0]);
  new DataView(g.buffer).setBigUint64(8, site + 2n, true);
  return g;
}
