/**
 * `sysi run` needs the host facts on every start, and the probe (a child process mapping page 0,
 * touching the LDT, …) costs tens of ms. The facts cannot change without a reboot, a change of
 * user or a sysctl change, so they are cached per boot id + uid + mmap_min_addr + kernel.
 * `sysi doctor` always probes afresh.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type HostCheck, type HostReport, makeReport, probeHost } from "@sysi/core/host";
import { cacheDir, writeFileAtomic } from "@sysi/core/internal";

function read(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "?";
  }
}

function hostKey(): string {
  const parts = [
    read("/proc/sys/kernel/random/boot_id"),
    String(process.getuid?.() ?? "?"),
    read("/proc/sys/vm/mmap_min_addr"),
    read("/proc/sys/kernel/osrelease"),
    process.env.PATH ?? "",
  ];
  return Bun.hash(parts.join("\n")).toString(16);
}

export async function cachedProbeHost(): Promise<HostReport> {
  const path = join(cacheDir(), "host", `${hostKey()}.json`);
  try {
    const checks = JSON.parse(readFileSync(path, "utf8")) as HostCheck[];
    if (Array.isArray(checks) && checks.length > 0) return makeReport(checks, 0);
  } catch {
    // no cache yet, or unreadable: probe
  }
  const report = await probeHost();
  try {
    mkdirSync(join(cacheDir(), "host"), { recursive: true, mode: 0o755 });
    writeFileAtomic(path, JSON.stringify(report.checks));
  } catch {
    // a read-only cache only costs the probe next time
  }
  return report;
}
