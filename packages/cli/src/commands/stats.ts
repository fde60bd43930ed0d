import { Args, Flags } from "@oclif/core";
import { readStatsFile } from "@sysi/core/runtime";
import { SysiCommand } from "../base-command.ts";
import { renderRunSummary, summaryJson } from "../run/summary.ts";

export default class Stats extends SysiCommand {
  static override summary = "Print the counts of a statistics file written by instrumented processes.";
  static override description =
    "For the launcher path (`sysi env --stats FILE`): every process started with that environment adds its counts to FILE.";
  static override examples = ["<%= config.bin %> stats /tmp/sysi-stats --json"];
  static override args = { file: Args.string({ description: "statistics file", required: true }) };
  static override flags = { json: Flags.boolean({ summary: "one JSON document" }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Stats);
    const stats = readStatsFile(args.file);
    const chain = { spec: Object.keys(stats.strategies).join(",") };
    if (flags.json) this.printJson(summaryJson(stats, { chain }));
    else process.stdout.write(renderRunSummary(stats, { chain }));
  }
}
