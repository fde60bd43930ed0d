import { Flags } from "@oclif/core";
import type { HostCheckId, HostFacts } from "@sysi/core/strategy";
import { SysiCommand } from "../base-command.ts";
import {
  defaultChain,
  defaultChainLeftOut,
  type LoadFailure,
  loadRegistry,
  pluginSource,
  type StrategyEntry,
} from "../registry.ts";
import { mark } from "../render.ts";
import { cachedProbeHost } from "../run/host-cache.ts";

/** One strategy as `sysi strategies --json` reports it. */
export interface StrategyReport {
  name: string;
  /** bundled (ships with the CLI), installed (`sysi plugins install`), linked, or workspace. */
  source: ReturnType<typeof pluginSource>;
  plugin: { name: string; version: string; root: string };
  summary: string;
  planVersion: string;
  /** The `sysi.core` range the plugin declares (null: none). */
  core: string | null;
  variants: { name: string; summary: string }[];
  options: { key: string; summary: string; values?: string }[];
  requires: HostCheckId[];
  /** Every check of `requires` passes on this host: it can plan sites here. */
  supported: boolean;
  /** Checks of `requires` that do not pass here. */
  missing: HostCheckId[];
  defaultChain: { rank: number; needs: HostCheckId[]; inChain: boolean; leftOut: string | null } | null;
}

export function strategyReport(e: StrategyEntry, facts: HostFacts, chain: readonly string[]): StrategyReport {
  const missing = e.strategy.requires.filter((id) => facts.checks[id] !== true);
  const place = e.strategy.defaultChain;
  const left = place === undefined ? undefined : defaultChainLeftOut([e], facts)[0];
  return {
    name: e.name,
    source: pluginSource(e.plugin.type),
    plugin: { name: e.plugin.name, version: e.plugin.version, root: e.plugin.root },
    summary: e.strategy.summary,
    planVersion: e.strategy.planVersion,
    core: e.coreRange ?? null,
    variants: (e.strategy.variants ?? []).map((v) => ({ name: v.name, summary: v.summary })),
    options: (e.strategy.options ?? []).map((o) => ({
      key: o.key,
      summary: o.summary,
      ...(o.values === undefined ? {} : { values: o.values }),
    })),
    requires: [...e.strategy.requires],
    supported: missing.length === 0,
    missing,
    defaultChain:
      place === undefined
        ? null
        : {
            rank: place.rank,
            needs: [...(place.needs ?? [])],
            inChain: chain.includes(e.name),
            leftOut: left?.why ?? null,
          },
  };
}

function failureReport(f: LoadFailure) {
  return {
    plugin: { name: f.plugin.name, version: f.plugin.version, root: f.plugin.root },
    source: pluginSource(f.plugin.type),
    kind: f.kind,
    error: f.error,
  };
}

export default class Strategies extends SysiCommand {
  static override summary = "List every strategy: where it comes from, its variants and options, what it needs.";
  static override description =
    "Bundled, installed and linked strategy plugins, each with its version, summary, variants, options, the host " +
    "checks it requires and whether this host passes them, and its place in the default chain. A plugin that fails " +
    "to load is listed with its one-line reason.";
  static override examples = ["<%= config.bin %> strategies", "<%= config.bin %> strategies --json"];
  static override flags = {
    json: Flags.boolean({ description: "Print the list as one JSON document." }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Strategies);
    const [host, registry] = await Promise.all([cachedProbeHost(), loadRegistry(this.config)]);
    const facts = host.facts();
    let chain: string[] = [];
    try {
      chain = defaultChain(registry.entries, facts).entries.map((c) => c.entry.name);
    } catch {
      // no default chain on this host: every strategy reports inChain false
    }
    const strategies = registry.entries.map((e) => strategyReport(e, facts, chain));
    const failures = registry.failures.map(failureReport);
    if (flags.json) {
      this.printJson({ strategies, failures, defaultChain: chain.join(",") || null });
      return;
    }
    const lines: string[] = [];
    for (const s of strategies) {
      const where = `${s.plugin.name}@${s.plugin.version}, ${s.source}${s.core === null ? "" : `, core ${s.core}`}`;
      lines.push(`${mark(s.supported)} ${s.name} (${where})`, `    ${s.summary}`);
      for (const v of s.variants) lines.push(`    variant ${s.name}:${v.name} — ${v.summary}`);
      for (const o of s.options)
        lines.push(`    option ${s.name}:${o.key}=… — ${o.summary}${o.values === undefined ? "" : ` (${o.values})`}`);
      const req = s.requires.length === 0 ? "nothing" : s.requires.join(", ");
      lines.push(`    requires ${req}${s.supported ? "" : `: ${s.missing.join(", ")} not available here`}`);
      const d = s.defaultChain;
      if (d === null) lines.push("    default chain: only when named with -s");
      else if (d.inChain) lines.push(`    default chain: yes (rank ${d.rank})`);
      else lines.push(`    default chain: left out here (rank ${d.rank}): ${d.leftOut ?? "not usable"}`);
    }
    if (strategies.length === 0) lines.push("(no strategy installed)");
    for (const f of failures)
      lines.push(
        `${mark(false)} ${f.plugin.name}@${f.plugin.version} (${f.source}): ${f.kind === "load" ? "failed to load: " : ""}${f.error}`,
      );
    lines.push("", `default chain here: ${chain.join(",") || "none"}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}
