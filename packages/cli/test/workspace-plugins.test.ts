/**
 * Strategy plugins load from the workspace in a sysi checkout (workspace-plugins.ts), and only
 * there: the oracle is the checkout's own plugins/ folder and the CLI's package.json.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Config, settings } from "@oclif/core";
import { fastPluginList } from "../src/run/fast-run.ts";
import { withWorkspacePlugins, workspaceRoot } from "../src/workspace-plugins.ts";
import { CLI_ROOT, makeSysiHome, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());
settings.enableAutoTranspile = false;
const REPO = resolve(CLI_ROOT, "..", "..");

/** Package names of plugins/* with a sysi.strategy field, read directly. */
function workspaceStrategies(): string[] {
  return readdirSync(join(REPO, "plugins"))
    .map((d) => {
      try {
        return JSON.parse(readFileSync(join(REPO, "plugins", d, "package.json"), "utf8"));
      } catch {
        return null;
      }
    })
    .filter((pj) => pj?.sysi?.strategy !== undefined)
    .map((pj) => pj.name as string)
    .sort();
}

describe("workspace strategy plugins", () => {
  it("recognises this checkout, and no CLI inside node_modules", () => {
    expect(workspaceRoot(CLI_ROOT)).toBe(REPO);
    expect(workspaceRoot(join(REPO, "node_modules", "sysi"))).toBeNull();
    expect(workspaceRoot("/")).toBeNull();
  });

  it("adds every plugins/* strategy the CLI does not bundle, as dev plugins, to oclif's and the fast path's lists", async () => {
    const cliDeps = Object.keys(JSON.parse(readFileSync(join(CLI_ROOT, "package.json"), "utf8")).dependencies);
    const notBundled = workspaceStrategies().filter((n) => !cliDeps.includes(n));
    expect(notBundled).toContain("@sysi/punning");
    const config = await Config.load({ root: CLI_ROOT });
    const fast = fastPluginList(CLI_ROOT, home.env);
    expect(fast).not.toBeNull();
    for (const list of [config.getPluginsList(), fast ?? []]) {
      const added = withWorkspacePlugins(list).slice(list.length);
      expect(added.map((p) => p.name).sort()).toEqual(notBundled);
      for (const p of added) {
        expect(p.type).toBe("dev");
        expect(p.root.startsWith(join(REPO, "plugins"))).toBe(true);
      }
    }
  });

  it("lets an installed or linked plugin of the same name win, and adds nothing to another CLI", () => {
    const fast = fastPluginList(CLI_ROOT, home.env) ?? [];
    const linked = { name: "@sysi/punning", version: "9.9.9", type: "link", root: "/elsewhere", pjson: {} };
    const out = withWorkspacePlugins([...fast, linked]);
    expect(out.filter((p) => p.name === "@sysi/punning")).toEqual([linked]);
    const other = join(home.dir, "other-cli");
    mkdirSync(other);
    writeFileSync(join(other, "package.json"), JSON.stringify({ name: "sysi", version: "1.0.0", oclif: {} }));
    const list = [{ name: "sysi", version: "1.0.0", type: "core", root: other, pjson: {} }];
    expect(withWorkspacePlugins(list)).toBe(list);
  });

  it("`sysi run -s punning` works from the checkout, through the fast path and through oclif", async () => {
    for (const env of [home.env, { ...home.env, SYSI_NO_FAST_RUN: "1" }]) {
      const r = await sysi(["run", "-s", "punning,ud2", "--hook", "passthrough", "--", "/bin/echo", "hi"], env);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("hi\n");
      expect(r.code).toBe(0);
    }
  }, 120_000);
});
