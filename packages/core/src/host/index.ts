export { describeErrno } from "./errno.ts";
export { makeReport, probeHost } from "./probe.ts";
export type { ChildProbe, HostCheck, HostCheckName, HostReport } from "./types.ts";
export { FACT_IDS, HOST_CHECK_IDS } from "./types.ts";
