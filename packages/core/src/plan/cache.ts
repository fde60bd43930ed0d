/**
 * The content-addressed plan cache:
 *
 *   <cacheDir>/plans/<chainKey>/<modkey>.plan   the binary plan (sysi.h) — SYSI_PLAN_DIR
 *   <cacheDir>/plans/<chainKey>/<modkey>.json   planToJson(plan), for `sysi plan` on a warm cache
 *
 * `chainKey` hashes everything that changes planner output besides the module: the plan format
 * version, the composite planner version, each strategy's name + planVersion + options, and the
 * host facts. The module key (module-key.ts) names the file. A cached entry is returned only
 * when both files decode and agree with the module (build-id) and the chain; anything else —
 * missing, truncated, corrupt, stale — is replanned and rewritten (temp file + rename).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { readElfFile } from "../elf/reader.ts";
import type { ElfFile } from "../elf/types.ts";
import { FileError } from "../errors.ts";
import { moduleKey, quickBuildId } from "../module-key.ts";
import type { HostFacts } from "../strategy.ts";
import type { ScanResult } from "../x86/types.ts";
import { decodePlan, encodePlan } from "./binary.ts";
import { type ChainEntry, COMPOSITE_VERSION, PLAN_FORMAT_VERSION, planModule } from "./composite.ts";
import { type PlanJson, planToJson } from "./json.ts";
import type { PatchPlan } from "./types.ts";

/** $SYSI_CACHE_DIR, else $XDG_CACHE_HOME/sysi, else ~/.cache/sysi. */
export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.SYSI_CACHE_DIR) return env.SYSI_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "sysi");
  return join(env.HOME || homedir(), ".cache", "sysi");
}

/** Short (16 hex digits) hash naming a chain's plan directory. */
export function chainKey(chain: readonly ChainEntry[], host: HostFacts): string {
  const doc = {
    format: PLAN_FORMAT_VERSION,
    composite: COMPOSITE_VERSION,
    chain: chain.map((c) => ({
      name: c.strategy.name,
      planVersion: c.strategy.planVersion,
      options: Object.entries(c.options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    })),
    host: Object.entries(host.checks)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
  return createHash("sha256").update(JSON.stringify(doc)).digest("hex").slice(0, 16);
}

/** Write `data` to `path` atomically: a temp file in the same directory, then rename. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new FileError("FILE_WRITE", `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      cause: e,
    });
  }
}

export interface PlannedModule {
  /** The path asked for. */
  path: string;
  /** Module key (plan file name without ".plan"). */
  key: string;
  planPath: string;
  /** The JSON form (always present: read from the cache on a hit). */
  json: PlanJson;
  /** The full plan, when it was planned now (not on a cache hit). */
  plan?: PatchPlan;
  hit: boolean;
  /** Milliseconds spent on this module (read + scan + plan + write, or the cache check). */
  ms: number;
}

export interface PlanFileResult {
  elf: ElfFile;
  key: string;
  scan: ScanResult;
  plan: PatchPlan;
}

/** Read, scan and plan one file (no cache). */
export async function planFile(path: string, chain: ChainEntry[], host: HostFacts): Promise<PlanFileResult> {
  const elf = readElfFile(path);
  return planElf(path, elf, chain, host);
}

async function planElf(path: string, elf: ElfFile, chain: ChainEntry[], host: HostFacts): Promise<PlanFileResult> {
  const key = moduleKey(path, elf);
  const { scanElf } = await import("../x86/scan.ts");
  const scan = await scanElf(elf);
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // keep the given path
  }
  const plan = planModule(elf, scan, chain, host, { key, path: real });
  return { elf, key, scan, plan };
}

export interface GetOrPlanOptions {
  /** Replan even when the cache holds a valid entry. */
  force?: boolean;
}

export class PlanCache {
  readonly root: string;
  constructor(root: string = cacheDir()) {
    this.root = root;
  }

  planDir(key: string): string {
    return join(this.root, "plans", key);
  }

  /** Return the module's cached plan for this chain, or plan it and store it. */
  async getOrPlan(
    path: string,
    chain: ChainEntry[],
    host: HostFacts,
    opts: GetOrPlanOptions = {},
  ): Promise<PlannedModule> {
    const t0 = performance.now();
    const dir = this.planDir(chainKey(chain, host));
    const names = chain.map((c) => c.strategy.name);
    // Fast path: the build-id from the program headers' notes names the plan without reading the file.
    const quick = opts.force ? null : quickBuildId(path);
    if (quick !== null) {
      const json = readValid(join(dir, `${quick}.plan`), join(dir, `${quick}.json`), quick, quick, names);
      if (json !== null) {
        return { path, key: quick, planPath: join(dir, `${quick}.plan`), json, hit: true, ms: performance.now() - t0 };
      }
    }
    const elf = readElfFile(path);
    const key = moduleKey(path, elf);
    const planPath = join(dir, `${key}.plan`);
    const jsonPath = join(dir, `${key}.json`);
    if (!opts.force && quick === null) {
      const json = readValid(planPath, jsonPath, elf.buildId, key, names);
      if (json !== null) return { path, key, planPath, json, hit: true, ms: performance.now() - t0 };
    }
    const { plan } = await planElf(path, elf, chain, host);
    const json = planToJson(plan);
    mkdirSync(dir, { recursive: true });
    // JSON first: a present .plan implies its .json (the runtime only reads .plan).
    writeFileAtomic(jsonPath, `${JSON.stringify(json)}\n`);
    writeFileAtomic(planPath, encodePlan(plan));
    return { path, key, planPath, json, plan, hit: false, ms: performance.now() - t0 };
  }

  /** Plan independent modules (deduplicated by path, results in input order). */
  async planMany(
    paths: readonly string[],
    chain: ChainEntry[],
    host: HostFacts,
    opts: GetOrPlanOptions = {},
  ): Promise<PlannedModule[]> {
    const uniq = [...new Set(paths)];
    const byPath = new Map<string, Promise<PlannedModule>>();
    for (const p of uniq) byPath.set(p, this.getOrPlan(p, chain, host, opts));
    const done = new Map<string, PlannedModule>();
    for (const [p, r] of byPath) done.set(p, await r);
    return paths.map((p) => done.get(p) as PlannedModule);
  }
}

/** The cached JSON when both files are present, decode, and match the module and chain; else null. */
function readValid(
  planPath: string,
  jsonPath: string,
  buildId: string | null,
  key: string,
  chain: string[],
): PlanJson | null {
  try {
    const decoded = decodePlan(new Uint8Array(readFileSync(planPath)));
    if (decoded.chain !== chain.join(",")) return null;
    if (decoded.strategies.join(",") !== chain.join(",")) return null;
    const bid = buildId === null ? null : buildId.toLowerCase().slice(0, 64);
    if (decoded.buildId !== bid) return null;
    const json = JSON.parse(readFileSync(jsonPath, "utf8")) as PlanJson;
    if (json.format !== "sysi-plan" || json.module?.key !== key || json.chain?.join(",") !== chain.join(","))
      return null;
    if (json.stats?.sites !== decoded.sites.length) return null;
    return json;
  } catch {
    // missing, unreadable, corrupt (PlanError) or bad JSON: replan
    return null;
  }
}
