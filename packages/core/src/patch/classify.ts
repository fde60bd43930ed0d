/**
 * What kind of ELF file `sysi patch` was given. The ELF type alone does not say it: a PIE
 * executable and a shared library are both ET_DYN, and PT_INTERP does not separate them either
 * (glibc's libc.so.6 has one, so that `./libc.so.6` prints its version; ld.so has none). Two
 * marks are the linker's own, written for executables and never for a library (`-shared`):
 *
 *   - DF_1_PIE in DT_FLAGS_1 (GNU ld since 2.33, gold, lld, mold); glibc's dlopen reads it to
 *     refuse executables, so a loadable library cannot carry it;
 *   - DT_DEBUG, the slot ld.so fills with its r_debug for debuggers, in the main program only
 *     (every linker adds it to executables, older ones included; no library on this system has
 *     one, every program with a PT_INTERP does: 1105 files checked).
 *
 *   ET_EXEC                        executable (PT_INTERP: dynamic; none: static)
 *   ET_DYN with DF_1_PIE           PIE executable (no PT_INTERP: static-pie)
 *   ET_DYN with DT_DEBUG           PIE executable from an older linker (no PT_INTERP: static-pie)
 *   ET_DYN, neither                shared library (libc.so.6 and ld.so included; DT_SONAME or not)
 */
import { type ElfFile, ET_DYN, ET_EXEC, PT_DYNAMIC, PT_INTERP } from "../elf/types.ts";

export const DF_1_PIE = 0x0800_0000;

export type ElfKind = "executable" | "pie" | "static" | "static-pie" | "shared-library" | "other";

const DT_DEBUG = 21n;

/** Does the dynamic section hold a DT_DEBUG entry (before DT_NULL)? */
function hasDtDebug(elf: ElfFile): boolean {
  const dyn = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (dyn === undefined) return false;
  const b = elf.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const end = Math.min(dyn.offset + dyn.filesz, b.length);
  for (let o = dyn.offset; o + 16 <= end; o += 16) {
    const tag = dv.getBigUint64(o, true);
    if (tag === 0n) return false;
    if (tag === DT_DEBUG) return true;
  }
  return false;
}

export function classifyElf(elf: ElfFile): ElfKind {
  const interp = elf.segments.some((s) => s.type === PT_INTERP);
  const dynamic = elf.segments.some((s) => s.type === PT_DYNAMIC);
  if (elf.type === ET_EXEC) return interp ? "executable" : "static";
  if (elf.type !== ET_DYN) return "other";
  if (((elf.dynamic?.flags1 ?? 0) & DF_1_PIE) !== 0 || hasDtDebug(elf)) return interp ? "pie" : "static-pie";
  return dynamic ? "shared-library" : "other";
}
