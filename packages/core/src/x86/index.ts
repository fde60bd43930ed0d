/** @sysi/core x86: syscall-site scanning and instruction queries (iced-x86 is loaded lazily). */
export { type Candidate, candidateKindAt, findCandidates, SITE_OPCODES } from "./candidates.ts";
export { createInsnReader, type InsnReader, stackMemOperand } from "./insn.ts";
export type { ReachStats } from "./reach.ts";
export { reachStats, type ScanOptions, scanElf, scanFile, type UncertainReason, uncertainReason } from "./scan.ts";
export type { ScanResult, ScanStats, Site, SiteKind } from "./types.ts";
