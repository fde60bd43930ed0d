/**
 * The int3trap planner: a pure function from a decoded site to a 2-byte patch or a refusal with a
 * stable reason code. No I/O, no globals.
 */
import type { PlanResult, Site, SiteContext } from "@sysi/core/strategy";

// Calls the kernel must make in the site's own context (a new stack, the parent's stack, the
// signal frame): a signal handler cannot make them, so the next strategy takes those sites.
const SYS_rt_sigreturn = 15;
const SYS_clone = 56;
const SYS_vfork = 58;
const SYS_clone3 = 435;
const IN_CONTEXT = new Set([SYS_rt_sigreturn, SYS_clone, SYS_vfork, SYS_clone3]);

// A debugger starts a program with vfork, PTRACE_TRACEME in the child, exec: once traced, the
// child's next trap stops it for a tracer that sleeps in vfork until the exec (both hang).
// ud2's runtime defers the TRACEME to the child's exec or kill-family call; leave those calls,
// and ptrace itself, to it (or another strategy that makes no trap there).
const SYS_ptrace = 101;
const SYS_execve = 59;
const SYS_execveat = 322;
const SYS_kill = 62;
const SYS_tkill = 200;
const SYS_tgkill = 234;
const TRACEME_PATH = new Set([SYS_ptrace, SYS_execve, SYS_execveat, SYS_kill, SYS_tkill, SYS_tgkill]);

/** int3; nop — #BP → SIGTRAP with RIP = site + 1. */
export const TRAP = Uint8Array.of(0xcc, 0x90);

/** Strategy.checkOptions: this strategy takes no options. */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  const given = Object.entries(options).map(([k, v]) => (k === "variant" ? v : `${k}=${v}`));
  return given.length === 0 ? null : `takes no options (got "${given.join(":")}")`;
}

export function planSite(site: Site, _ctx: Pick<SiteContext, "options">): PlanResult {
  // Step (1): only the 64-bit `syscall` (0f 05) is emulated.
  if (site.kind !== "syscall") return { reason: "not-syscall", detail: site.kind };
  if (site.bytes[0] !== 0x0f || site.bytes[1] !== 0x05)
    return { reason: "unexpected-bytes", detail: `expected 0f 05 at 0x${site.vaddr.toString(16)}` };
  // Step (2): the number must be known, and a call the handler can complete.
  if (site.nr === null) return { reason: "unknown-number" };
  if (IN_CONTEXT.has(site.nr)) return { reason: "in-context-call", detail: `syscall ${site.nr}` };
  if (TRACEME_PATH.has(site.nr)) return { reason: "traceme-path", detail: `syscall ${site.nr}` };
  // Step (3): the patch covers exactly the site's 2 bytes: 0f 05 → cc 90.
  return { patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: TRAP.slice() }, tactic: "int3" };
}
