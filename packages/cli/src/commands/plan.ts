import { readFileSync } from "node:fs";
import { Args, Flags } from "@oclif/core";
import type { DecodedPlan, PlanJson } from "@sysi/core/plan";
import { FileFailures, SysiCommand } from "../base-command.ts";
import { chainEntries, defaultChain, loadRegistry, resolveChain } from "../registry.ts";
import { formatMs, hex, table } from "../render.ts";

const TOP_REASONS = 5;

export default class Plan extends SysiCommand {
  static override summary = "Plan how each system-call site of ELF files would be patched.";
  static override description =
    "Scans each file and asks every strategy of the chain about every site (first acceptance wins; later ones stay " +
    "as fallbacks). Plans are cached per module and chain, so a second run is instant. Prints per file the sites, " +
    "the sites each strategy took, the most common refusal reasons and the tactics used. A FILE that is itself a " +
    "binary plan (.plan) is decoded and summarised instead. punning's default tactics (pun, succ, neigh) are sound: " +
    "every instruction they overwrite starts a jump to a trampoline that runs it. The tactics jmp, punx, short and " +
    "evict (-s punning:tactics=jmp,...) are UNSAFE: they overwrite instructions that jump tables, computed gotos, " +
    ".cold parts, landing pads or a signal handler's resume address may still enter; the plan counts their sites " +
    "as unsafe-tactic-sites. A FILE that cannot be read or planned gets one error line on stderr and the others are " +
    "planned, as readelf does; the exit status is then 2, after a summary line when several files were given.";
  static override examples = [
    "<%= config.bin %> plan /usr/lib/x86_64-linux-gnu/libc.so.6",
    "<%= config.bin %> plan -s zpoline,ud2 --json /usr/bin/ls",
    "<%= config.bin %> plan -s ud2 -o libc.plan /usr/lib/x86_64-linux-gnu/libc.so.6",
  ];
  static override strict = false;
  static override args = {
    file: Args.string({ description: "ELF file(s) to plan", required: true }),
  };
  static override flags = {
    strategy: Flags.string({
      char: "s",
      aliases: ["strategies"],
      summary: "strategy chain tried per site in order, e.g. punning,zpoline,ud2 (default: best for this host)",
    }),
    json: Flags.boolean({
      description:
        'Print one JSON document {"plans":[…],"errors":[…]} with every site and decision; errors are JSON objects on stderr.',
    }),
    output: Flags.string({ char: "o", description: "Also write the binary plan of the (single) FILE here." }),
    force: Flags.boolean({ description: "Replan even when the cache has a valid plan." }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Plan);
    const files = argv as string[];
    if (flags.output !== undefined && files.length !== 1) this.error("-o needs exactly one FILE", { exit: 2 });

    const binary = await import("@sysi/core/plan");
    const isPlanFile = (p: string) => {
      try {
        return readFileSync(p).subarray(0, 8).toString("latin1") === `${binary.PLAN_MAGIC}\0`;
      } catch {
        return false;
      }
    };
    // A binary plan is decoded and summarised (not with -o: that plans one ELF file).
    const planFiles = new Set(flags.output === undefined ? files.filter(isPlanFile) : []);
    const planner = planFiles.size < files.length ? await this.planner(flags.strategy) : null;

    const docs: unknown[] = [];
    const failed = new FileFailures(this.jsonRequested(), files.length);
    for (const file of files) {
      try {
        if (planFiles.has(file)) {
          const d = binary.decodePlan(new Uint8Array(readFileSync(file)));
          if (flags.json) docs.push(decodedJson(file, d));
          else process.stdout.write(`${decodedSummary(file, d)}\n`);
          continue;
        }
        const { cache, chain, host, spec, writeFileAtomic } = planner as Planner;
        const r = await cache.getOrPlan(file, chain, host, { force: flags.force });
        if (flags.output !== undefined) writeFileAtomic(flags.output, readFileSync(r.planPath));
        if (flags.json) docs.push(r.json);
        else {
          const how = r.hit ? "cached" : `planned in ${formatMs(r.ms)}`;
          process.stdout.write(`${summary(file, spec, r.json, how, r.planPath)}\n`);
        }
      } catch (e) {
        failed.add(file, e);
      }
    }
    if (flags.json) this.printJson({ plans: docs, errors: failed.errors });
    const status = failed.finish("planned");
    if (status !== 0) this.exit(status);
  }

  /** The chain (given, or the best for this host), the host's facts and the plan cache. */
  private async planner(strategy: string | undefined): Promise<Planner> {
    const [{ probeHost }, { PlanCache, writeFileAtomic }, registry] = await Promise.all([
      import("@sysi/core/host"),
      import("@sysi/core/plan"),
      loadRegistry(this.config),
    ]);
    const host = (await probeHost()).facts();
    const resolved =
      strategy === undefined ? defaultChain(registry.entries, host) : await resolveChain(this.config, strategy);
    const chain = chainEntries(resolved);
    return { cache: new PlanCache(), chain, host, spec: resolved.spec, writeFileAtomic };
  }
}

interface Planner {
  cache: import("@sysi/core/plan").PlanCache;
  chain: Parameters<import("@sysi/core/plan").PlanCache["getOrPlan"]>[1];
  host: Parameters<import("@sysi/core/plan").PlanCache["getOrPlan"]>[2];
  spec: string;
  writeFileAtomic: typeof import("@sysi/core/plan").writeFileAtomic;
}

function counts(rec: Record<string, number>, top = Number.POSITIVE_INFINITY): string {
  const rows = Object.entries(rec)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = rows.slice(0, top).map(([k, n]) => `${k} ${n}`);
  if (rows.length > top) shown.push(`… ${rows.length - top} more`);
  return shown.join(", ");
}

export function summary(file: string, spec: string, j: PlanJson, how: string, planPath: string): string {
  const lines = [`${file}  (${how}; chain ${spec}; key ${j.module.key})`];
  const s = j.stats;
  lines.push(`  sites ${s.sites}: patched ${s.patched}, unpatched ${s.unpatched}`);
  const rows: string[][] = [];
  for (const name of j.chain) {
    const st = s.strategies[name];
    if (st === undefined) continue;
    const parts: string[] = [];
    if (st.trampolines > 0)
      parts.push(`${st.trampolines} trampolines (${st.trampolinePages} pages, ${st.trampolineBytes} bytes)`);
    for (const [k, v] of Object.entries(st.reported ?? {})) parts.push(`${k} ${v}`);
    const extra = parts.length > 0 ? `; ${parts.join(", ")}` : "";
    rows.push([
      `  ${name}`,
      `took ${st.taken}`,
      `refused ${st.refused}${st.refused > 0 ? ` (${counts(st.refusals, TOP_REASONS)})` : ""}`,
      Object.keys(st.tactics).length > 0 ? `tactics: ${counts(st.tactics)}${extra}` : extra.replace(/^; /, ""),
    ]);
  }
  lines.push(...table(rows).map((l) => l.trimEnd()));
  lines.push(`  plan ${planPath}`);
  return lines.join("\n");
}

function decodedJson(file: string, d: DecodedPlan): unknown {
  return {
    file,
    module: d.modulePath,
    buildId: d.buildId,
    moduleSize: d.moduleSize,
    chain: d.chain,
    sites: d.sites.map((s) => ({
      vaddr: hex(s.vaddr),
      nr: s.nr,
      flags: s.flags,
      options: s.options.map((o) => ({
        strategy: o.strategy,
        vaddr: hex(o.vaddr),
        old: Buffer.from(o.old).toString("hex"),
        bytes: Buffer.from(o.bytes).toString("hex"),
        aux: o.aux.map((a) => hex(a)),
      })),
    })),
    trampolines: d.trampolines.map((t) => ({
      vaddr: t.vaddr === null ? null : hex(t.vaddr),
      strategy: t.strategy,
      kind: t.kind,
      size: t.code.length,
    })),
  };
}

function decodedSummary(file: string, d: DecodedPlan): string {
  const first: Record<string, number> = {};
  let unpatched = 0;
  for (const s of d.sites) {
    const o = s.options[0];
    if (o === undefined) unpatched++;
    else first[o.strategy] = (first[o.strategy] ?? 0) + 1;
  }
  return [
    `${file}  (binary plan v${d.version}, ${d.fileSize} bytes)`,
    `  module ${d.modulePath} (${d.buildId ? `build-id ${d.buildId}, ` : ""}${d.moduleSize} bytes)`,
    `  chain ${d.chain}`,
    `  sites ${d.sites.length}: first option ${counts(first) || "none"}; no option ${unpatched}`,
    `  options ${d.noptions}, trampolines ${d.trampolines.length}`,
  ].join("\n");
}
