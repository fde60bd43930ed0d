#!/usr/bin/env bun
/**
 * `bun run release [--registry URL] [--tag TAG] [--dry-run] [--no-version]`
 *
 * 1. `changeset version` (under Bun): applies the pending changesets to the versions, the
 *    internal dependency ranges and the changelogs (skipped with --no-version);
 * 2. `bun install`: the lockfile follows the new versions (checked: every workspace's version
 *    in bun.lock equals its package.json);
 * 3. every public workspace package, dependencies first, is packed with `bun pm pack` (which
 *    turns `workspace:` ranges into the versions), the tarball checked (no `workspace:` range,
 *    no tests, a LICENSE and a README) and published with `bun publish`, unless that version is
 *    already on the registry (so a failed release can be run again);
 * 4. `changeset tag` (in a git checkout, not with --dry-run): a tag per published version.
 *
 * Not `changeset publish`: it publishes with npm, which leaves `workspace:` ranges in place.
 * The registry is --registry, else whatever bun reads ($NPM_CONFIG_REGISTRY, .npmrc, bunfig);
 * the token is what `bun publish` reads ($NPM_CONFIG_TOKEN or .npmrc's `//host/:_authToken`).
 * Errors: one `release: error: …` line, exit 1.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");

export interface WorkspacePackage {
  dir: string;
  name: string;
  version: string;
  private: boolean;
  /** Names of the workspace packages it depends on (any kind of dependency). */
  internal: string[];
}

class ReleaseError extends Error {}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** The workspace packages of `root` (its package.json `workspaces`, `dir/*` patterns). */
export function workspacePackages(root: string): WorkspacePackage[] {
  const patterns = (readJson(join(root, "package.json")).workspaces ?? []) as string[];
  const dirs: string[] = [];
  for (const pattern of patterns) {
    if (!pattern.endsWith("/*")) throw new ReleaseError(`unsupported workspaces pattern "${pattern}"`);
    const base = join(root, pattern.slice(0, -2));
    for (const d of readdirSync(base, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)))
      if (d.isDirectory() && existsSync(join(base, d.name, "package.json"))) dirs.push(join(base, d.name));
  }
  const pjs = dirs.map((dir) => ({ dir, pj: readJson(join(dir, "package.json")) }));
  const names = new Set(pjs.map((p) => p.pj.name as string));
  return pjs.map(({ dir, pj }) => {
    const deps = ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"].flatMap((k) =>
      Object.keys((pj[k] ?? {}) as Record<string, string>),
    );
    return {
      dir,
      name: pj.name as string,
      version: pj.version as string,
      private: pj.private === true,
      internal: [...new Set(deps.filter((d) => names.has(d) && d !== pj.name))].sort(),
    };
  });
}

/** Dependencies before their dependents (stable: by name among equals); a cycle is an error. */
export function dependencyOrder(pkgs: readonly WorkspacePackage[]): WorkspacePackage[] {
  const byName = new Map(pkgs.map((p) => [p.name, p]));
  const out: WorkspacePackage[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (p: WorkspacePackage, path: string[]) => {
    const s = state.get(p.name);
    if (s === "done") return;
    if (s === "visiting") throw new ReleaseError(`dependency cycle: ${[...path, p.name].join(" -> ")}`);
    state.set(p.name, "visiting");
    for (const d of p.internal) visit(byName.get(d) as WorkspacePackage, [...path, p.name]);
    state.set(p.name, "done");
    out.push(p);
  };
  for (const p of [...pkgs].sort((a, b) => a.name.localeCompare(b.name))) visit(p, []);
  return out;
}

/** What is wrong with a packed tarball's file list and package.json (empty: nothing). */
export function tarballProblems(files: readonly string[], packageJson: string): string[] {
  const problems: string[] = [];
  if (packageJson.includes('"workspace:')) problems.push("package.json keeps a workspace: range");
  // @sysi/core's native/tests/hard/ are the strategy testkit's fixtures (its hard-case programs), not tests.
  const tests = files
    .filter((f) => !f.startsWith("package/native/tests/hard/"))
    .filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\.[cm]?[jt]s$/.test(f));
  if (tests.length > 0) problems.push(`ships tests (${tests.slice(0, 3).join(", ")}${tests.length > 3 ? ", …" : ""})`);
  for (const want of ["package/LICENSE", "package/README.md", "package/package.json"])
    if (!files.includes(want)) problems.push(`has no ${want.slice("package/".length)}`);
  return problems;
}

interface Result {
  code: number;
  out: string;
  err: string;
}

function sh(cmd: string[], cwd: string, env: Record<string, string | undefined>, inherit = false): Result {
  const r = Bun.spawnSync(cmd, {
    cwd,
    env: env as Record<string, string>,
    stdin: "ignore",
    stdout: inherit ? "inherit" : "pipe",
    stderr: inherit ? "inherit" : "pipe",
  });
  return { code: r.exitCode ?? 1, out: r.stdout?.toString() ?? "", err: r.stderr?.toString() ?? "" };
}

function must(r: Result, what: string): Result {
  if (r.code !== 0) {
    const line = `${r.err}\n${r.out}`.split("\n").find((l) => /error/i.test(l)) ?? r.err.split("\n")[0] ?? "";
    throw new ReleaseError(`${what} failed (exit ${r.code})${line.trim() ? `: ${line.trim()}` : ""}`);
  }
  return r;
}

/** Is name@version on the registry? (bun info: exit 0 with the version; "no version"/404: no) */
function published(p: WorkspacePackage, env: Record<string, string | undefined>): boolean {
  const r = sh(["bun", "info", `${p.name}@${p.version}`, "version"], p.dir, env);
  if (r.code === 0 && r.out.trim() === p.version) return true;
  if (/No version of|404|does not exist/i.test(`${r.out}\n${r.err}`)) return false;
  return must(r, `looking up ${p.name}@${p.version}`) && false;
}

/** The workspace versions bun.lock records, by package name. */
function lockedVersions(root: string): Map<string, string> {
  const lock = Bun.JSONC.parse(readFileSync(join(root, "bun.lock"), "utf8")) as {
    workspaces?: Record<string, { name?: string; version?: string }>;
  };
  return new Map(
    Object.values(lock.workspaces ?? {})
      .filter((w) => w.name !== undefined)
      .map((w) => [w.name as string, w.version ?? ""]),
  );
}

function parseArgs(argv: string[]) {
  const opts = {
    registry: undefined as string | undefined,
    tag: undefined as string | undefined,
    dryRun: false,
    version: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--dry-run") opts.dryRun = true;
    else if (a === "--no-version") opts.version = false;
    else if (a === "--registry" || a === "--tag") {
      const v = argv[++i];
      if (v === undefined || v.startsWith("-")) throw new ReleaseError(`${a} needs a value`);
      if (a === "--registry") opts.registry = v;
      else opts.tag = v;
    } else
      throw new ReleaseError(
        `unknown argument "${a}" (usage: bun run release [--registry URL] [--tag TAG] [--dry-run] [--no-version])`,
      );
  }
  return opts;
}

export async function release(argv: string[], root = ROOT): Promise<void> {
  const opts = parseArgs(argv);
  const env: Record<string, string | undefined> = { ...process.env };
  if (opts.registry !== undefined) env.NPM_CONFIG_REGISTRY = opts.registry;
  const log = (line: string) => process.stderr.write(`release: ${line}\n`);

  if (opts.version) {
    log("changeset version");
    must(sh(["bun", "run", "changeset", "version"], root, env, true), "changeset version");
  }
  log("bun install (the lockfile follows the versions)");
  must(sh(["bun", "install"], root, env), "bun install");
  const pkgs = workspacePackages(root);
  const locked = lockedVersions(root);
  for (const p of pkgs) {
    if (locked.get(p.name) !== p.version)
      throw new ReleaseError(`bun.lock has ${p.name}@${locked.get(p.name)}, package.json ${p.version}`);
  }

  const order = dependencyOrder(pkgs).filter((p) => !p.private);
  log(`order: ${order.map((p) => `${p.name}@${p.version}`).join(", ")}`);
  const work = mkdtempSync(join(tmpdir(), "sysi-release-"));
  try {
    for (const p of order) {
      if (published(p, env)) {
        log(`${p.name}@${p.version} is already published: skipped`);
        continue;
      }
      const dest = join(work, relative(root, p.dir).replaceAll("/", "-"));
      must(sh(["bun", "pm", "pack", "--destination", dest, "--quiet"], p.dir, env), `packing ${p.name}`);
      const tgz = readdirSync(dest).find((f) => f.endsWith(".tgz"));
      if (tgz === undefined) throw new ReleaseError(`packing ${p.name} produced no tarball`);
      const tarball = join(dest, tgz);
      const files = must(sh(["tar", "-tzf", tarball], dest, env), `listing ${tgz}`)
        .out.split("\n")
        .filter(Boolean);
      const pj = must(sh(["tar", "-xzOf", tarball, "package/package.json"], dest, env), `reading ${tgz}`).out;
      const problems = tarballProblems(files, pj);
      if (problems.length > 0) throw new ReleaseError(`${p.name}@${p.version}: ${problems.join("; ")}`);
      const cmd = [
        "bun",
        "publish",
        tarball,
        ...(opts.tag ? ["--tag", opts.tag] : []),
        ...(opts.dryRun ? ["--dry-run"] : []),
      ];
      log(`${opts.dryRun ? "(dry run) " : ""}publishing ${p.name}@${p.version}`);
      must(sh(cmd, p.dir, env), `publishing ${p.name}@${p.version}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!opts.dryRun && existsSync(join(root, ".git")))
    must(sh(["bun", "run", "changeset", "tag"], root, env), "changeset tag");
}

if (import.meta.main) {
  try {
    await release(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`release: error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
