/** Linux errno values the host probes can meet (asm-generic/errno-base.h, errno.h). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM (operation not permitted)",
  12: "ENOMEM (out of memory)",
  13: "EACCES (permission denied)",
  14: "EFAULT (bad address)",
  17: "EEXIST (something is already mapped there)",
  22: "EINVAL (invalid argument)",
  28: "ENOSPC (none left)",
  38: "ENOSYS (not implemented)",
  95: "EOPNOTSUPP (not supported)",
};

/** `-1` or `1` → "EPERM (operation not permitted)"; unknown values as "errno N". */
export function describeErrno(errno: number): string {
  const n = Math.abs(errno);
  if (n === 0) return "unexpected result";
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}
