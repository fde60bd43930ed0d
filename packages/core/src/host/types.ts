import type { HostCheckId, HostFacts } from "../strategy.ts";

/** Every check `probeHost()` runs, in the order `sysi doctor` prints them. */
export const HOST_CHECK_IDS = [
  "page0",
  "modify_ldt",
  "sud",
  "pkeys",
  "ptrace",
  "seccomp",
  "kernel",
  "cpu",
  "cc",
  "mmapMinAddr",
  "pti",
] as const;

export type HostCheckName = (typeof HOST_CHECK_IDS)[number];

export interface HostCheck {
  id: HostCheckName;
  /** The feature is available (informational checks: the fact could be read). */
  ok: boolean;
  /** One line: what was found, and why when it failed. */
  detail: string;
  /**
   * Strategy names this check makes possible when ok, and rules out when not. Core knows no
   * strategy: the probe leaves both empty, and `sysi doctor` fills them from what the installed
   * strategies declare (`requires`, and `cc` for every strategy with a native runtime).
   */
  enables: string[];
  rulesOut: string[];
}

export interface HostReport {
  checks: HostCheck[];
  /** Time the probes took, in milliseconds. */
  ms: number;
  /** The subset the planners use (`HostFacts.checks` keyed by HostCheckId). */
  facts(): HostFacts;
  check(id: HostCheckName): HostCheck | undefined;
}

/** Check ids that are also HostCheckIds of the strategy contract. */
export const FACT_IDS: readonly HostCheckId[] = ["page0", "modify_ldt", "sud", "pkeys", "ptrace", "seccomp", "cc"];

/** What the probe child reports for each risky probe (one JSON line per probe). */
export interface ChildProbe {
  id: "page0" | "modify_ldt" | "sud" | "pkeys" | "seccomp";
  ok: boolean;
  /** Negative errno of the failing call, or 0. */
  errno: number;
  /** The call that failed, e.g. "mmap", "modify_ldt(0x11)". */
  failed?: string;
  /** Probe-specific facts. */
  info?: Record<string, number | string | boolean>;
}
