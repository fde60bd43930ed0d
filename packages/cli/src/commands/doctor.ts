import { Flags } from "@oclif/core";
import type { HostReport } from "@sysi/core/host";
import { SysiCommand } from "../base-command.ts";
import { defaultChain, defaultChainLeftOut, loadRegistry, type Registry } from "../registry.ts";
import { formatMs, mark, table } from "../render.ts";

export default class Doctor extends SysiCommand {
  static override summary = "Check what this host allows and which strategies are usable.";
  static override description =
    "Probes page 0, modify_ldt, Syscall User Dispatch, pkeys, ptrace, seccomp, the kernel, CPU, C compiler and PTI, " +
    "and lists the installed strategies. The risky probes run in a child process; nothing on the system is changed. " +
    "Always exits 0: failed checks are information, not errors.";
  static override examples = ["<%= config.bin %> doctor", "<%= config.bin %> doctor --json"];
  static override flags = {
    json: Flags.boolean({ description: "Print the whole report as one JSON document." }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor);
    const { probeHost } = await import("@sysi/core/host");
    const [host, registry] = await Promise.all([probeHost(), loadRegistry(this.config)]);
    const chain = chainOrReason(registry, host);
    // what each check means for the installed strategies, from their own declarations
    for (const c of host.checks) {
      const needing = registry.entries
        .filter((e) => (e.strategy.requires as string[]).includes(c.id) || (c.id === "cc" && e.strategy.runtime))
        .map((e) => e.name);
      c.enables = c.id === "cc" ? [] : needing;
      c.rulesOut = needing;
    }
    if (flags.json) {
      this.printJson({
        checks: host.checks,
        facts: host.facts(),
        ms: Math.round(host.ms),
        strategies: registry.entries.map((e) => ({
          name: e.name,
          summary: e.strategy.summary,
          requires: e.strategy.requires,
          usable: e.strategy.requires.every((id) => host.facts().checks[id] === true),
          plugin: e.plugin,
        })),
        failures: registry.failures,
        defaultChain: chain.spec,
        defaultChainError: chain.error,
        defaultChainLeftOut: defaultChainLeftOut(registry.entries, host.facts()),
      });
      return;
    }
    const lines: string[] = [];
    for (const c of host.checks) {
      lines.push(`${mark(c.ok)} ${c.id.padEnd(12)} ${c.detail}`);
      const effect = c.ok ? c.enables : c.rulesOut;
      if (effect.length > 0) lines.push(`  ${"".padEnd(12)} ${c.ok ? "enables" : "rules out"}: ${effect.join(", ")}`);
    }
    lines.push("", "strategies:");
    const rows = registry.entries.map((e) => {
      const missing = e.strategy.requires.filter((id) => host.facts().checks[id] !== true);
      return [
        `  ${mark(missing.length === 0)} ${e.name}`,
        `${e.plugin.name}@${e.plugin.version} (${e.plugin.type})`,
        missing.length === 0 ? e.strategy.summary : `needs ${missing.join(", ")}`,
      ];
    });
    lines.push(...(rows.length > 0 ? table(rows) : ["  (none installed)"]));
    for (const f of registry.failures) lines.push(`  ${mark(false)} ${f.plugin.name}@${f.plugin.version}: ${f.error}`);
    lines.push("", `default chain: ${chain.spec ?? `none (${chain.error})`}`);
    for (const l of defaultChainLeftOut(registry.entries, host.facts()))
      lines.push(`  ${l.name} left out: ${l.why} (name it with -s to use it anyway)`);
    lines.push(`probed in ${formatMs(host.ms)}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}

function chainOrReason(registry: Registry, host: HostReport): { spec: string | null; error: string | null } {
  try {
    return { spec: defaultChain(registry.entries, host.facts()).spec, error: null };
  } catch (e) {
    return { spec: null, error: e instanceof Error ? e.message : String(e) };
  }
}
