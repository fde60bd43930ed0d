/**
 * The content-addressed plan cache:
 *
 *   <cacheDir>/plans/<chainKey>/<modkey>.plan   the binary plan (sysi.h) — SYSI_PLAN_DIR
 *   <cacheDir>/plans/<chainKey>/<modkey>.json   planToJson(plan), for `sysi plan` on a warm cache
 *
 * `chainKey` hashes everything that changes planner output besides the module: the plan format
 * version, the composite planner version, each strategy's name + planVersion + options, and the
 * host facts. The module key (module-key.ts: build-id and file size) names the file. A cached
 * entry is returned only when both files decode (checksum included) and agree with the module
 * (build-id, file size, and the file's bytes at every option's range: module_hash) and the
 * chain, and the plan file is trusted (trust.ts); anything else — missing, truncated, corrupt,
 * stale, someone else's — is replanned and rewritten (exclusive temp file + rename). The cache
 * directory must be trusted too (trust.ts openCacheDir), or nothing is read from it.
 *
 *   <cacheDir>/plan-checks/<hash of the plan path>   "this plan file (dev, inode, size, mtime,
 *                                                   ctime) decoded and matched build-id B, chain
 *                                                   C and this module file (same identity)" —
 *                                                   lets ensurePlanned skip decoding
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ElfFile } from "../elf/types.ts";
import { fileIdentity, moduleKey, quickModuleKey, readModuleRanges } from "../module-key.ts";
import type { HostFacts } from "../strategy.ts";
import { type CacheLocation, cacheLocation, checkTrustedDir, openCacheDir, untrustedReason } from "../trust.ts";
import type { ScanResult } from "../x86/types.ts";
import { type DecodedPlan, decodePlan, encodePlan, xxh64 } from "./binary.ts";
import type { ChainEntry } from "./composite.ts";
import type { PlanJson } from "./json.ts";
import type { PatchPlan } from "./types.ts";
import { COMPOSITE_VERSION, PLAN_FORMAT_VERSION } from "./version.ts";

export { writeFileAtomic } from "../safe-write.ts";

import { writeFileAtomic } from "../safe-write.ts";

// The ELF reader and the JSON form are loaded only when a module is read or planned: a warm
// `sysi run` finds its plans by build-id and never needs them.
const readElfFile = async (path: string) => (await import("../elf/reader.ts")).readElfFile(path);

/** $SYSI_CACHE_DIR, else $XDG_CACHE_HOME/sysi, else ~/.cache/sysi (trust.ts cacheLocation). */
export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  return cacheLocation(env).path;
}

/** Short (16 hex digits) hash naming a chain's plan directory. */
export function chainKey(chain: readonly ChainEntry[], host: HostFacts): string {
  const doc = {
    format: PLAN_FORMAT_VERSION,
    composite: COMPOSITE_VERSION,
    chain: chain.map((c) => ({
      name: c.strategy.name,
      planVersion: c.strategy.planVersion,
      ...(c.sourceHash === undefined ? {} : { source: c.sourceHash }),
      options: Object.entries(c.options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    })),
    host: Object.entries(host.checks)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
  return new Bun.CryptoHasher("sha256").update(JSON.stringify(doc)).digest("hex").slice(0, 16);
}

/**
 * Does `decoded` describe the module file at `path`: its size, and its bytes at every option's
 * range (what the runtime checks in memory before patching)?
 */
export function planMatchesModule(decoded: DecodedPlan, path: string): boolean {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return false;
  }
  if (decoded.moduleSize !== size) return false;
  const bytes = readModuleRanges(
    path,
    decoded.options.map((o) => ({ vaddr: o.vaddr, len: o.old.length })),
  );
  return bytes !== null && xxh64(bytes) === decoded.moduleHash;
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
  const elf = await readElfFile(path);
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
  const { planModule } = await import("./composite.ts");
  const plan = planModule(elf, scan, chain, host, { key, path: real });
  return { elf, key, scan, plan };
}

export interface GetOrPlanOptions {
  /** Replan even when the cache holds a valid entry. */
  force?: boolean;
}

/** A module whose plan is in the cache (ensurePlanned): no JSON form read. */
export interface EnsuredModule {
  path: string;
  key: string;
  planPath: string;
  hit: boolean;
  ms: number;
}

export class PlanCache {
  readonly root: string;
  private readonly location: CacheLocation;
  /** `root`: a cache directory given directly (default: cacheLocation()). */
  constructor(root?: string) {
    this.location = root === undefined ? cacheLocation() : { path: root, from: null };
    this.root = this.location.path;
  }

  planDir(key: string): string {
    return join(this.root, "plans", key);
  }

  /**
   * Remove every cached plan of this chain (`sysi run --replan`): modules planned ahead and
   * those the runtime asks for later are all planned again. Removes nothing outside the
   * chain's own plan directory.
   */
  dropPlans(chain: readonly ChainEntry[], host: HostFacts): void {
    openCacheDir(this.location);
    rmSync(this.planDir(chainKey(chain, host)), { recursive: true, force: true });
  }

  /** Return the module's cached plan for this chain, or plan it and store it. */
  async getOrPlan(
    path: string,
    chain: ChainEntry[],
    host: HostFacts,
    opts: GetOrPlanOptions = {},
  ): Promise<PlannedModule> {
    return (await this.lookup(path, chain, host, opts.force === true, true)) as PlannedModule;
  }

  /**
   * Make sure the module's plan for this chain is in the cache (planning it if not), like
   * getOrPlan, but a hit does not read the JSON form: what `sysi run` needs before start-up.
   * The binary plan is still checked against the module's build-id and the chain (decoded, or
   * known to be this exact file already checked: see readValid).
   */
  async ensurePlanned(path: string, chain: ChainEntry[], host: HostFacts): Promise<EnsuredModule> {
    const r = await this.lookup(path, chain, host, false, false);
    return { path: r.path, key: r.key, planPath: r.planPath, hit: r.hit, ms: r.ms };
  }

  private async lookup(
    path: string,
    chain: ChainEntry[],
    host: HostFacts,
    force: boolean,
    withJson: boolean,
  ): Promise<EnsuredModule & { json?: PlanJson; plan?: PatchPlan }> {
    const t0 = performance.now();
    openCacheDir(this.location);
    const dir = this.planDir(chainKey(chain, host));
    const names = chain.map((c) => c.strategy.name);
    const dirUsable = !force && existsSync(dir);
    if (dirUsable) checkTrustedDir("plan directory", dir, this.root);
    // Fast path: the build-id from the program headers' notes and the file's size name the
    // plan without reading the file.
    const quick = dirUsable ? quickModuleKey(path) : null;
    if (quick !== null) {
      const planPath = join(dir, `${quick.key}.plan`);
      const json = this.readValid(
        path,
        planPath,
        join(dir, `${quick.key}.json`),
        quick.buildId,
        quick.key,
        names,
        withJson,
      );
      if (json !== null) {
        return {
          path,
          key: quick.key,
          planPath,
          json: json === true ? undefined : json,
          hit: true,
          ms: performance.now() - t0,
        };
      }
    }
    const elf = await readElfFile(path);
    const key = moduleKey(path, elf);
    const planPath = join(dir, `${key}.plan`);
    const jsonPath = join(dir, `${key}.json`);
    if (dirUsable && quick === null) {
      const json = this.readValid(path, planPath, jsonPath, elf.buildId, key, names, withJson);
      if (json !== null)
        return { path, key, planPath, json: json === true ? undefined : json, hit: true, ms: performance.now() - t0 };
    }
    const { plan } = await planElf(path, elf, chain, host);
    const { planToJson } = await import("./json.ts");
    const json = planToJson(plan);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    checkTrustedDir("plan directory", dir, this.root);
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
    return inOrder(paths, (p) => this.getOrPlan(p, chain, host, opts));
  }

  /** ensurePlanned() for independent modules (deduplicated by path, results in input order). */
  async ensureMany(paths: readonly string[], chain: ChainEntry[], host: HostFacts): Promise<EnsuredModule[]> {
    return inOrder(paths, (p) => this.ensurePlanned(p, chain, host));
  }
  /**
   * The cached JSON when both files are present, decode, and match the module file at
   * `modulePath` (build-id, size, bytes at the options' ranges) and the chain, and the plan
   * file is trusted; else null. Without `withJson` (ensurePlanned), the JSON file must exist
   * but is not read (true on success), and decoding the plan is skipped when this exact plan
   * file — same dev, inode, size, mtime and ctime (a rewrite is a new inode, an edit a new
   * ctime) — was decoded and matched this build-id, chain and module file (same identity)
   * before: `<root>/plan-checks/` remembers that.
   */
  private readValid(
    modulePath: string,
    planPath: string,
    jsonPath: string,
    buildId: string | null,
    key: string,
    chain: string[],
    withJson: boolean,
  ): PlanJson | true | null {
    const bid = buildId === null ? null : buildId.toLowerCase().slice(0, 64);
    try {
      if (untrustedReason(planPath, this.root) !== null) return null; // rewritten by us
    } catch {
      return null; // missing
    }
    const id = withJson ? null : fileIdentity(planPath);
    const check = join(this.root, "plan-checks", Bun.hash(planPath).toString(16));
    const proof = `${planPath}\n${id}\n${bid}\n${chain.join(",")}\n${fileIdentity(modulePath)}\n`;
    if (id !== null && existsSync(jsonPath)) {
      try {
        if (readFileSync(check, "utf8") === proof) return true;
      } catch {
        // not checked before: decode
      }
    }
    try {
      const decoded = decodePlan(new Uint8Array(readFileSync(planPath)));
      if (decoded.chain !== chain.join(",")) return null;
      if (decoded.strategies.join(",") !== chain.join(",")) return null;
      if (decoded.buildId !== bid) return null;
      if (!planMatchesModule(decoded, modulePath)) return null;
      if (!withJson) {
        if (!existsSync(jsonPath)) return null;
        if (id !== null && fileIdentity(planPath) === id) {
          try {
            mkdirSync(dirname(check), { recursive: true, mode: 0o755 });
            writeFileAtomic(check, proof);
          } catch {
            // a read-only cache only costs the decoding next time
          }
        }
        return true;
      }
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
}

async function inOrder<T>(paths: readonly string[], one: (path: string) => Promise<T>): Promise<T[]> {
  const byPath = new Map<string, Promise<T>>();
  for (const p of new Set(paths)) byPath.set(p, one(p));
  const done = new Map<string, T>();
  for (const [p, r] of byPath) done.set(p, await r);
  return paths.map((p) => done.get(p) as T);
}
