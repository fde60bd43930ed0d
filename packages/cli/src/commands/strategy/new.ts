import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Args } from "@oclif/core";
import { SysiError } from "@sysi/core/errors";
import { SysiCommand } from "../../base-command.ts";
import { sysiCoreApi } from "../../registry.ts";
import { scaffoldFiles } from "../../scaffold.ts";

export default class StrategyNew extends SysiCommand {
  static override summary = "Create a new strategy plugin: planner, native runtime, tests, README, package.json.";
  static override description =
    "Writes a working trap strategy (syscall → int3; nop, emulated in a SIGTRAP handler) that passes the sysi " +
    "testkit as generated: link it with `sysi plugins link DIR`, then `bun test` in DIR. " +
    "See docs/writing-a-strategy.md.";
  static override examples = [
    "<%= config.bin %> strategy new mytrap",
    "<%= config.bin %> strategy new mytrap ~/src/sysi-strategy-mytrap",
  ];
  static override args = {
    name: Args.string({ description: "strategy name: lowercase letters, digits and '-'", required: true }),
    dir: Args.string({
      description: "directory to create (default: ./sysi-strategy-NAME); must not exist or be empty",
    }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(StrategyNew);
    const name = args.name;
    if (!/^[a-z][a-z0-9-]*$/.test(name) || name.endsWith("-") || name.length > 31)
      throw new SysiError(
        "STRATEGY_NAME",
        `invalid strategy name "${name}": lowercase letters, digits and '-', starting with a letter, at most 31 characters`,
      );
    const dir = resolve(args.dir ?? `sysi-strategy-${name}`);
    if (existsSync(dir) && readdirSync(dir).length > 0)
      throw new SysiError("FILE_EXISTS", `${dir} exists and is not empty`);
    const files = scaffoldFiles({ name, coreVersion: sysiCoreApi().version });
    // Everything goes into a temporary sibling first, renamed into place: never half a plugin.
    const parent = dirname(dir);
    if (!existsSync(parent)) throw new SysiError("FILE_NOT_FOUND", `${parent} does not exist`);
    const tmp = join(parent, `.sysi-strategy-new-${process.pid}-${Date.now()}`);
    try {
      for (const [rel, text] of Object.entries(files)) {
        const path = join(tmp, rel);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text, { flag: "wx" });
      }
      if (existsSync(dir)) rmdirSync(dir);
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    process.stdout.write(
      [
        `created ${dir} (strategy ${name}):`,
        ...Object.keys(files)
          .sort()
          .map((f) => `  ${f}`),
        "next:",
        `  sysi plugins link ${dir}`,
        `  cd ${dir} && bun install && bun test --timeout=600000`,
        `  sysi run -s ${name},ud2 -- ls`,
        "",
      ].join("\n"),
    );
  }
}
