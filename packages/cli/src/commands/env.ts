import { resolve } from "node:path";
import { Flags } from "@oclif/core";
import { createStatsFile } from "@sysi/core/runtime";
import { SysiCommand } from "../base-command.ts";
import { elfToPlan, prepareRun, resolveProgram } from "../run/prepare.ts";

function shellQuote(s: string): string {
  return /^[\w@%+=:,./#-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export default class Env extends SysiCommand {
  static override summary = "Print the environment that instruments a program, for starting it without sysi.";
  static override description =
    `The launcher path: Bun's own start-up costs more than a warm \`sysi run\` should, so \`sysi env\` prepares everything once (runtimes built, the program's modules planned) and prints the variables; a program started with them is instrumented at native start-up cost.

Modules that were not planned ahead (programs it executes, libraries it dlopens) stay unpatched under this path unless planned before (\`sysi plan\` or an earlier \`sysi run\` fills the same cache); the stats file counts them as unplanned.

Everything started with these variables is instrumented, and \`sysi run\` ignores them: it drops sysi's variables (and libsysi in LD_PRELOAD) from its caller's environment and sets its own. Unset them when done (the names are printed).`;
  static override examples = [
    'eval "$(<%= config.bin %> env --stats /tmp/s -- ls)"; ls; <%= config.bin %> stats /tmp/s',
    "env $(<%= config.bin %> env --format env -- /bin/true) /bin/true",
  ];
  static override strict = false;
  static override flags = {
    strategy: Flags.string({ char: "s", summary: "strategy chain (default: best for this host)" }),
    hook: Flags.string({ summary: "passthrough | count | trace | path of a hook .so", default: "count" }),
    filter: Flags.string({ char: "e", summary: "only these system calls reach the hook" }),
    stats: Flags.string({ summary: "create this statistics file and name it in SYSI_STATS_FILE" }),
    format: Flags.string({
      options: ["sh", "env", "json"],
      default: "sh",
      summary: "sh: export lines; env: K=V words; json: as --json",
    }),
    json: Flags.boolean({
      summary: "one JSON document {env, chain, modules} (same as --format json); errors are JSON objects on stderr",
      exclusive: ["format"],
    }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Env);
    const cmd = argv as string[];
    const exe = cmd.length > 0 ? elfToPlan(resolveProgram(cmd[0] as string)) : null;
    const prepared = await prepareRun({
      config: this.config,
      spec: flags.strategy,
      hook: flags.hook,
      filter: flags.filter,
      exe,
    });
    const env = { ...prepared.env };
    if (flags.stats !== undefined) {
      const p = resolve(flags.stats);
      createStatsFile(p);
      env.SYSI_STATS_FILE = p;
    }
    if (flags.json || flags.format === "json") {
      this.printJson({ env, chain: prepared.chain.spec, modules: prepared.modules });
      return;
    }
    const lines = Object.entries(env).map(([k, v]) =>
      flags.format === "env" ? `${k}=${shellQuote(v)}` : `export ${k}=${shellQuote(v)}`,
    );
    process.stdout.write(`${lines.join(flags.format === "env" ? " " : "\n")}\n`);
  }
}
