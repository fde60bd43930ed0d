/**
 * The strategy plugins of a sysi checkout, loaded in development. Only zpoline and ud2 ship with
 * the CLI; the others (punning, …) are installed with `sysi plugins install`. In the repository
 * they live beside the CLI, so `bun sysi` there loads them from the workspace as "dev" plugins.
 *
 * A checkout is recognised from the CLI's own root (the root plugin of the list): not inside a
 * node_modules folder, and two levels up a private package.json whose workspaces list
 * `plugins/*`. Each plugins/<dir>/package.json with a `sysi.strategy` field is added unless a
 * plugin of the same package name is already listed (bundled, installed or linked: those win).
 * An installed CLI (…/node_modules/sysi) finds nothing here, without touching the file system.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import type { RegistryPlugin } from "./registry.ts";

interface PackageJson {
  name?: unknown;
  version?: unknown;
  private?: unknown;
  workspaces?: unknown;
  sysi?: { strategy?: unknown };
}

function readJson(path: string): PackageJson | null {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof v === "object" && v !== null ? (v as PackageJson) : null;
  } catch {
    return null;
  }
}

/** The monorepo root holding the CLI at `cliRoot`, or null for an installed CLI. */
export function workspaceRoot(cliRoot: string): string | null {
  if (`${cliRoot}${sep}`.includes(`${sep}node_modules${sep}`)) return null;
  const root = resolve(cliRoot, "..", "..");
  const pj = readJson(join(root, "package.json"));
  if (pj === null || pj.private !== true || !Array.isArray(pj.workspaces)) return null;
  return pj.workspaces.includes("plugins/*") ? root : null;
}

/** The strategy plugins under `<root>/plugins`, as "dev" plugins. */
export function workspaceStrategyPlugins(root: string): RegistryPlugin[] {
  let dirs: string[];
  try {
    dirs = readdirSync(join(root, "plugins"), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
  const out: RegistryPlugin[] = [];
  for (const dir of dirs) {
    const pluginRoot = join(root, "plugins", dir);
    const pj = readJson(join(pluginRoot, "package.json"));
    if (pj === null || typeof pj.name !== "string" || pj.sysi?.strategy === undefined) continue;
    const version = typeof pj.version === "string" ? pj.version : "0.0.0";
    out.push({ name: pj.name, version, type: "dev", root: pluginRoot, pjson: pj });
  }
  return out;
}

/**
 * `list` plus the workspace's strategy plugins it lacks, when its root plugin (the CLI, type
 * "core", listed first by oclif and by the fast path) is a checkout's packages/cli.
 */
export function withWorkspacePlugins(list: readonly RegistryPlugin[]): readonly RegistryPlugin[] {
  const cli = list[0];
  if (cli === undefined || cli.type !== "core" || cli.name !== "sysi") return list;
  const root = workspaceRoot(cli.root);
  if (root === null) return list;
  const have = new Set(list.map((p) => p.name));
  const extra = workspaceStrategyPlugins(root).filter((p) => !have.has(p.name));
  return extra.length === 0 ? list : [...list, ...extra];
}
