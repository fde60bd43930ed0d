/**
 * `sysi plugins uninstall` takes the short names `sysi plugins install` takes (the CLI's
 * oclif.aliases: `punning` → `@sysi/punning`). The oracle is the data dir's package.json, where
 * @oclif/plugin-plugins records the installed and linked plugins.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { uninstallNames } from "../src/commands/plugins/uninstall.ts";
import { CLI_ROOT, hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());
const REPO = resolve(CLI_ROOT, "..", "..");
const ALIASES = JSON.parse(readFileSync(join(CLI_ROOT, "package.json"), "utf8")).oclif.aliases as Record<
  string,
  string
>;

/** Names of the plugins the data dir records (installed and linked). */
function recorded(): string[] {
  const pj = JSON.parse(readFileSync(join(home.env.SYSI_DATA_DIR as string, "package.json"), "utf8"));
  return (pj.oclif.plugins as { name: string }[]).map((p) => p.name);
}

describe("plugins uninstall short names", () => {
  it("maps an alias to its plugin only when that plugin is installed and the short name is not", () => {
    const aliases = { punning: "@sysi/punning", blocked: null };
    const both = new Set(["@sysi/punning"]);
    expect(uninstallNames(["punning", "-v", "other", "blocked"], aliases, both)).toEqual([
      "@sysi/punning",
      "-v",
      "other",
      "blocked",
    ]);
    // not installed: kept, so plugin-plugins says "punning is not installed"
    expect(uninstallNames(["punning"], aliases, new Set())).toEqual(["punning"]);
    // a plugin really named "punning" is the one meant
    expect(uninstallNames(["punning"], aliases, new Set(["punning", "@sysi/punning"]))).toEqual(["punning"]);
    expect(uninstallNames(["@sysi/punning"], aliases, both)).toEqual(["@sysi/punning"]);
    // the prototype is no alias
    expect(uninstallNames(["toString"], aliases, both)).toEqual(["toString"]);
  });

  it("the CLI aliases every workspace strategy plugin it does not bundle by its short name", () => {
    const cli = JSON.parse(readFileSync(join(CLI_ROOT, "package.json"), "utf8"));
    const unbundled = readdirSync(join(REPO, "plugins"))
      .map((d) => JSON.parse(readFileSync(join(REPO, "plugins", d, "package.json"), "utf8")))
      .filter((pj) => pj.sysi?.strategy !== undefined && !cli.oclif.plugins.includes(pj.name))
      .map((pj) => pj.name as string);
    expect(unbundled.length).toBeGreaterThan(0);
    const short = (name: string) => name.replace(/^@sysi\//, "");
    expect(Object.fromEntries(unbundled.map((n) => [short(n), ALIASES[short(n)]]))).toEqual(
      Object.fromEntries(unbundled.map((n) => [short(n), n])),
    );
  });

  it("`sysi plugins uninstall punning` removes a linked @sysi/punning; then says it is not installed", async () => {
    const link = await sysi(["plugins", "link", join(REPO, "plugins", "punning")], home.env);
    expect(link.code).toBe(0);
    expect(recorded()).toEqual(["@sysi/punning"]);
    const u = await sysi(["plugins", "uninstall", "punning"], home.env);
    expect(u.code).toBe(0);
    expect(recorded()).toEqual([]);
    const again = await sysi(["plugins", "uninstall", "punning"], home.env);
    expect(again.code).toBe(2);
    expect(hasStack(again.stderr)).toBe(false);
    expect(lines(again.stderr)).toEqual(["sysi: error: punning is not installed"]);
  }, 60_000);
});
