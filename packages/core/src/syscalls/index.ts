/**
 * x86-64 Linux syscall numbers, generated from the kernel headers (table.ts; regenerate with
 * `bun scripts/gen-syscalls.ts`). Use names (`SYS.clone3`), never bare numbers.
 */
import { SYSCALL_HEADERS_VERSION, SYSCALL_MAX, SYSCALL_NUMBERS, SYSCALL_X32_NAMES } from "./table.ts";

export { SYSCALL_CLASSES } from "./classes.ts";

export type SyscallName = keyof typeof SYSCALL_NUMBERS;

/** Syscall name → number, e.g. `SYS.clone3 === 435`. */
export const SYS: Readonly<typeof SYSCALL_NUMBERS> = SYSCALL_NUMBERS;

/** Largest syscall number the table knows. */
export const SYS_MAX: number = SYSCALL_MAX;

/** Version of the kernel headers the table was generated from, e.g. "6.1.187". */
export const SYS_HEADERS_VERSION: string = SYSCALL_HEADERS_VERSION;

const NAMES: (string | null)[] = new Array(SYSCALL_MAX + 1).fill(null);
for (const [name, nr] of Object.entries(SYSCALL_NUMBERS)) NAMES[nr] = name;
const BY_NAME = new Map<string, number>(Object.entries(SYSCALL_NUMBERS));

/** Name of syscall `nr` (x86-64), or null when the number is unassigned or out of range. */
export function syscallName(nr: number): string | null {
  if (!Number.isInteger(nr) || nr < 0 || nr > SYSCALL_MAX) return null;
  return NAMES[nr] ?? null;
}

/** Number of the syscall called `name` (an optional `SYS_`/`__NR_` prefix is accepted), or null. */
export function syscallNumber(name: string): number | null {
  const bare = name.startsWith("__NR_") ? name.slice(5) : name.startsWith("SYS_") ? name.slice(4) : name;
  return BY_NAME.get(bare) ?? null;
}

/** The x32 syscall bit (__X32_SYSCALL_BIT): numbers with it set are x32 calls. */
export const X32_SYSCALL_BIT = 0x40000000;

/**
 * Name of the x32 call `nr` (X32_SYSCALL_BIT + n) as strace 6.1 names it: the x32 name (`getpid`,
 * `rt_sigaction` for n = 512), the 64-bit name with "#64" for a 64-bit-only n (`rt_sigaction#64`),
 * or null (no x32 number, or one strace has no name for).
 */
export function syscallX32Name(nr: number): string | null {
  if (!Number.isInteger(nr) || nr < X32_SYSCALL_BIT) return null;
  return SYSCALL_X32_NAMES[nr - X32_SYSCALL_BIT] ?? null;
}
