import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfError, SysiError } from "@sysi/core/errors";
import { EXIT_INTERNAL, EXIT_USAGE, formatError, oneLine } from "../src/base-command.ts";
import { hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";

describe("formatError", () => {
  it("prints a SysiError as one line with its suggestions, exit 2", () => {
    const e = new SysiError("X_BAD", "bad input", { suggestions: ["try this", "or that"] });
    expect(formatError(e)).toEqual({ line: "sysi: error: bad input (try this; or that)", exit: EXIT_USAGE });
    expect(formatError(new ElfError("ELF_NOT_ELF", "not an ELF file"))?.line).toBe("sysi: error: not an ELF file");
  });

  it("recognises a SysiError from another copy of core by name and code", () => {
    const e = Object.assign(new Error("from a plugin"), { name: "StrategyError", code: "STRATEGY_X" });
    expect(formatError(e)).toEqual({ line: "sysi: error: from a plugin", exit: EXIT_USAGE });
  });

  it("collapses a multi-line oclif parse error into one line", () => {
    const e = Object.assign(new Error("Nonexistent flag: --x\nSee more help with --help"), { oclif: { exit: 2 } });
    expect(formatError(e)).toEqual({ line: "sysi: error: Nonexistent flag: --x", exit: 2 });
  });

  it("treats anything else as an internal error, exit 70", () => {
    expect(formatError(new TypeError("x is undefined"))).toEqual({
      line: "sysi: internal error: x is undefined",
      exit: EXIT_INTERNAL,
    });
    expect(formatError("a string")?.exit).toBe(EXIT_INTERNAL);
  });

  it("lets oclif's ExitError through", () => {
    expect(formatError(Object.assign(new Error("EEXIT: 3"), { code: "EEXIT", oclif: { exit: 3 } }))).toBeNull();
  });

  it("strips colours and blank lines", () => {
    expect(oneLine("\u001b[31mred\u001b[0m\n\n  text  ")).toBe("red text");
  });
});

describe("errors escaping a plugin's command", () => {
  const root = mkdtempSync(join(tmpdir(), "sysi-base-test-"));
  const home = makeSysiHome();
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    home.cleanup();
  });
  const plugin = join(root, "boom");
  mkdirSync(join(plugin, "commands"), { recursive: true });
  writeFileSync(
    join(plugin, "package.json"),
    JSON.stringify({ name: "sysi-test-boom", version: "0.0.1", type: "module", oclif: { commands: "./commands" } }),
  );
  const cmd = (body: string) => `export default class C {
  static flags = {};
  static args = {};
  static async run() { ${body} }
}
`;
  writeFileSync(join(plugin, "commands", "boom.js"), cmd('throw new TypeError("kaboom");'));
  writeFileSync(
    join(plugin, "commands", "bad.js"),
    cmd('throw Object.assign(new Error("plugin says no"), { name: "PlanError", code: "PLAN_X" });'),
  );

  it("maps an unexpected exception to one 'internal error' line, exit 70, no stack", async () => {
    expect((await sysi(["plugins", "link", plugin, "--no-install"], home.env)).code).toBe(0);
    const r = await sysi(["boom"], home.env);
    expect(r.code).toBe(EXIT_INTERNAL);
    expect(lines(r.stderr)).toEqual(["sysi: internal error: kaboom"]);
    expect(hasStack(r.stderr)).toBe(false);
    const debug = await sysi(["boom"], { ...home.env, DEBUG: "1" });
    expect(debug.code).toBe(EXIT_INTERNAL);
    expect(hasStack(debug.stderr)).toBe(true);
  });

  it("maps a SysiError-shaped error from a plugin to one 'error' line, exit 2", async () => {
    const r = await sysi(["bad"], home.env);
    expect(r.code).toBe(EXIT_USAGE);
    expect(lines(r.stderr)).toEqual(["sysi: error: plugin says no"]);
  });
});
