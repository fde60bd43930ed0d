/**
 * `sysi segmentation probe [--json]`: what this CPU and kernel do with far calls (the
 * segmentation plugin's experiments, each in a child process). The experiments and their
 * reading live in the plugin (@sysi/segmentation/probe); this command finds the plugin in the
 * registry (workspace, installed or linked) and runs its probe with core's native build.
 */

import { join } from "node:path";
import { Flags } from "@oclif/core";
import { StrategyError } from "@sysi/core/errors";
import { ensureRuntime } from "@sysi/core/runtime";
import { SysiCommand } from "../../base-command.ts";
import { loadRegistry } from "../../registry.ts";

interface ProbeRow {
  id: string;
  experiment: string;
  result: string;
}
interface ProbeModule {
  runProbe(
    build: (dir: string, target: string) => Promise<string>,
  ): Promise<{ cpu: { vendor: string; model: string }; kernel: string; rows: ProbeRow[] }>;
}

export default class SegmentationProbe extends SysiCommand {
  static override summary = "Measure what this CPU and kernel do with far calls (the segmentation experiments).";
  static override description =
    "Runs each experiment of the segmentation plugin in a child process (a fault ends only the child): the L bit " +
    "modify_ldt leaves, far calls into a 32-bit LDT segment on a normal stack and on one below 4 GiB, what a far " +
    "call pushes, the page-0 pattern 33 00 for even and odd numbers, the REX.W form 48 ff 18 and out-of-range rax. " +
    "Every row is measured now; see docs/segmentation.md.";
  static override examples = ["<%= config.bin %> segmentation probe", "<%= config.bin %> segmentation probe --json"];
  static override flags = {
    json: Flags.boolean({ description: "Print the report as one JSON document." }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SegmentationProbe);
    const registry = await loadRegistry(this.config);
    const entry = registry.entries.find((e) => e.name === "segmentation");
    if (entry === undefined) {
      throw new StrategyError("STRATEGY_UNKNOWN", "the segmentation plugin is not installed", {
        suggestions: ["sysi plugins install @sysi/segmentation"],
      });
    }
    const mod = (await import(join(entry.plugin.root, "src", "probe.ts"))) as ProbeModule;
    const report = await mod.runProbe((dir, target) => ensureRuntime(dir, target));
    if (flags.json) {
      this.printJson(report);
      return;
    }
    const width = Math.max(...report.rows.map((r) => r.experiment.length));
    const lines = [`cpu: ${report.cpu.vendor} ${report.cpu.model}; kernel ${report.kernel}`, ""];
    for (const r of report.rows) lines.push(`${r.experiment.padEnd(width)}  ${r.result}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}
