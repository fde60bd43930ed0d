/**
 * Strategy registry: finds the strategies of every oclif plugin (core, user-installed, linked)
 * whose package.json has `"sysi": { "strategy": "<module>" }`, and resolves `-s` chains.
 *
 * The module's default export is a factory `(api: SysiCoreApi) => Strategy`; the CLI calls it
 * with its own core API, so a plugin never needs its own copy of @sysi/core. A plugin whose
 * module fails to load (or whose factory throws or returns something that is not a Strategy) is
 * skipped and recorded in `failures`, never fatal. So is a plugin whose package.json
 * `sysi.core` range does not cover this CLI's @sysi/core (one line naming both versions).
 *
 * The registry knows no strategy by name: the default chain, its order and the host checks it
 * needs come from each strategy's own `defaultChain` (packages/core/src/strategy.ts).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { StrategyError } from "@sysi/core/errors";
import { FACT_IDS } from "@sysi/core/host";
import type { ChainEntry } from "@sysi/core/plan";
import {
  type HostCheckId,
  type HostFacts,
  STRATEGY_CONTRACT_VERSION,
  type Strategy,
  type SysiCoreApi,
} from "@sysi/core/strategy";
import { withWorkspacePlugins } from "./workspace-plugins.ts";

export interface PluginInfo {
  name: string;
  version: string;
  /** oclif plugin type: "core" (bundled), "user" (installed), "link" (linked), "dev". */
  type: string;
  root: string;
}

export interface StrategyEntry {
  name: string;
  strategy: Strategy;
  plugin: PluginInfo;
  /** The `sysi.core` range the plugin declares (absent: none declared). */
  coreRange?: string;
  /**
   * Hash of a linked plugin's planner sources (every file under its strategy module's
   * directory): part of the plan-cache key, so an edited planner never reuses stale plans.
   */
  sourceHash?: string;
}

/** Where a plugin comes from, in the words of `sysi strategies`. */
export function pluginSource(type: string): "bundled" | "installed" | "linked" | "workspace" {
  if (type === "user") return "installed";
  if (type === "link") return "linked";
  if (type === "dev") return "workspace";
  return "bundled";
}

export interface LoadFailure {
  plugin: PluginInfo;
  /** "load": the module/factory failed; "shadowed": another plugin provides the same name. */
  kind: "load" | "shadowed";
  error: string;
}

export interface Registry {
  entries: StrategyEntry[];
  failures: LoadFailure[];
}

export interface ChainElement {
  entry: StrategyEntry;
  /** From `name:opt` (→ `{ variant: opt }`) or `name:key=val`. */
  options: Record<string, string>;
}

/**
 * SYSI_HOOK_LOW for the chain: "1" when its first strategy's entries live below 4 GiB
 * (StrategyRuntime.lowHook), unless the caller's environment already says; libsysi applies it
 * to a hook library only (the built-in hooks live in libsysi itself).
 */
export function hookLowEnv(
  chain: readonly ChainElement[],
  inherited: Record<string, string | undefined>,
): string | undefined {
  if (inherited.SYSI_HOOK_LOW === "0") return undefined;
  return chain[0]?.entry.strategy.runtime.lowHook === true ? "1" : undefined;
}

export interface ResolvedChain {
  entries: ChainElement[];
  /** The canonical spec, e.g. "punning,zpoline,ud2:int3". */
  spec: string;
}

/** The composite planner's chain for a resolved chain (a linked planner's source hash included). */
export function chainEntries(chain: ResolvedChain): ChainEntry[] {
  return chain.entries.map((c) => ({
    strategy: c.entry.strategy,
    options: c.options,
    ...(c.entry.sourceHash === undefined ? {} : { sourceHash: c.entry.sourceHash }),
  }));
}

/** The fields of an oclif plugin the registry reads. */
export interface RegistryPlugin {
  name: string;
  version: string;
  type: string;
  root: string;
  pjson: unknown;
}

/**
 * The part of oclif's Config the registry uses: an oclif Config, the `sysi run` fast path's
 * plugin list (run/fast-run.ts), or a test's fake.
 */
export interface RegistryConfig {
  getPluginsList(): readonly RegistryPlugin[];
}

let coreApi: SysiCoreApi | undefined;

/** What plugin factories receive: core's version and the absolute sysi.h include directory. */
export function sysiCoreApi(): SysiCoreApi {
  if (coreApi === undefined) {
    const pjsonPath = fileURLToPath(import.meta.resolve("@sysi/core/package.json"));
    const pjson = JSON.parse(readFileSync(pjsonPath, "utf8")) as { version: string };
    coreApi = Object.freeze({
      version: pjson.version,
      contract: STRATEGY_CONTRACT_VERSION,
      includeDir: join(dirname(pjsonPath), "native", "include"),
    });
  }
  return coreApi;
}

const cache = new WeakMap<object, Promise<Registry>>();

/** Load every plugin's strategy once per config (memoized). */
export function loadRegistry(config: RegistryConfig): Promise<Registry> {
  let p = cache.get(config);
  if (p === undefined) {
    p = discover(config);
    cache.set(config, p);
  }
  return p;
}

export async function loadStrategies(config: RegistryConfig): Promise<StrategyEntry[]> {
  return (await loadRegistry(config)).entries;
}

/** Linked plugins override user-installed ones, which override bundled ones (same as oclif). */
const PRECEDENCE: Record<string, number> = { core: 0, dev: 0, user: 1, link: 2 };

async function discover(config: RegistryConfig): Promise<Registry> {
  const entries = new Map<string, StrategyEntry>();
  const failures: LoadFailure[] = [];
  // In a sysi checkout, the workspace's strategy plugins load too (workspace-plugins.ts).
  const plugins = withWorkspacePlugins(config.getPluginsList());
  const loaded = await Promise.all(
    plugins.map(async (p) => {
      const sysi = (p.pjson as { sysi?: { strategy?: unknown; core?: unknown } }).sysi;
      const field = sysi?.strategy;
      if (field === undefined) return null;
      const plugin: PluginInfo = { name: p.name, version: p.version, type: p.type, root: p.root };
      try {
        if (typeof field !== "string" || field === "") throw new Error("package.json sysi.strategy is not a path");
        const coreRange = checkCoreRange(plugin, sysi?.core);
        const modulePath = join(p.root, field);
        const mod = (await import(pathToFileURL(modulePath).href)) as { default?: unknown };
        const strategy = instantiate(mod.default);
        const sourceHash = p.type === "link" ? plannerSourceHash(dirname(modulePath)) : undefined;
        return { plugin, strategy, coreRange, sourceHash };
      } catch (e) {
        return { plugin, error: e instanceof Error ? e.message.split("\n")[0] || e.name : String(e) };
      }
    }),
  );
  for (const r of loaded) {
    if (r === null) continue;
    if ("error" in r) {
      failures.push({ plugin: r.plugin, kind: "load", error: r.error ?? "unknown error" });
      continue;
    }
    const name = r.strategy.name;
    const prev = entries.get(name);
    if (prev === undefined || (PRECEDENCE[r.plugin.type] ?? 0) > (PRECEDENCE[prev.plugin.type] ?? 0)) {
      if (prev !== undefined)
        failures.push({
          plugin: prev.plugin,
          kind: "shadowed",
          error: `strategy "${name}" overridden by ${r.plugin.name}`,
        });
      entries.set(name, {
        name,
        strategy: r.strategy,
        plugin: r.plugin,
        ...(r.coreRange === undefined ? {} : { coreRange: r.coreRange }),
        ...(r.sourceHash === undefined ? {} : { sourceHash: r.sourceHash }),
      });
    } else {
      failures.push({
        plugin: r.plugin,
        kind: "shadowed",
        error: `strategy "${name}" already provided by ${prev.plugin.name}`,
      });
    }
  }
  return { entries: [...entries.values()].sort((a, b) => a.name.localeCompare(b.name)), failures };
}

/**
 * The plugin's `sysi.core` range, checked against this CLI's @sysi/core (undefined when the
 * plugin declares none); throws one line naming both versions when it does not match.
 */
function checkCoreRange(plugin: PluginInfo, range: unknown): string | undefined {
  if (range === undefined) return undefined;
  const core = sysiCoreApi().version;
  if (typeof range !== "string" || range.trim() === "")
    throw new Error('package.json sysi.core is not a semver range (e.g. "^0.1.0")');
  let ok: boolean;
  try {
    ok = Bun.semver.satisfies(core, range);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new Error(`${plugin.name} ${plugin.version} needs @sysi/core ${range}; this sysi has @sysi/core ${core}`);
  return range;
}

/** sha256 (16 hex digits) over the names and bytes of every file under `dir` (no node_modules). */
export function plannerSourceHash(dir: string): string {
  const h = new Bun.CryptoHasher("sha256");
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const full = join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full, `${rel}${name}/`);
      else if (st.isFile()) h.update(`${rel}${name}\0${st.size}\0`).update(readFileSync(full));
    }
  };
  walk(dir, "");
  return h.digest("hex").slice(0, 16);
}

function checkIds(v: unknown, what: string, name: string): void {
  if (!Array.isArray(v) || v.some((id) => !FACT_IDS.includes(id)))
    throw new Error(`strategy ${name}: ${what} must list host checks (${FACT_IDS.join(", ")})`);
}

function instantiate(factory: unknown): Strategy {
  if (typeof factory !== "function") throw new Error("default export is not a strategy factory function");
  const s = (factory as (api: SysiCoreApi) => unknown)(sysiCoreApi()) as Partial<Strategy> | null;
  if (s === null || typeof s !== "object") throw new Error("strategy factory did not return an object");
  if (typeof s.name !== "string" || !/^[a-z][a-z0-9-]*$/.test(s.name))
    throw new Error("strategy has no valid name (lowercase letters, digits, '-')");
  if (typeof s.planModule !== "function" && typeof s.planSite !== "function")
    throw new Error(`strategy ${s.name} has neither planModule() nor planSite()`);
  if (!Array.isArray(s.requires)) throw new Error(`strategy ${s.name} has no requires[]`);
  checkIds(s.requires, "requires", s.name);
  if (typeof s.planVersion !== "string") throw new Error(`strategy ${s.name} has no planVersion`);
  const place = s.defaultChain;
  if (place !== undefined) {
    if (place === null || typeof place !== "object" || !Number.isFinite(place.rank))
      throw new Error(`strategy ${s.name}: defaultChain needs a numeric rank`);
    if (place.needs !== undefined) checkIds(place.needs, "defaultChain.needs", s.name);
  }
  for (const key of ["variants", "options"] as const)
    if (s[key] !== undefined && !Array.isArray(s[key])) throw new Error(`strategy ${s.name}: ${key} is not a list`);
  return s as Strategy;
}

/** Parse one chain element `name[:opt[=val]][:opt…]`. A bare `opt` is `{ variant: opt }`. */
function parseElement(text: string): { name: string; options: Record<string, string> } {
  const [name = "", ...opts] = text.split(":").map((t) => t.trim());
  const options: Record<string, string> = {};
  for (const opt of opts) {
    if (opt === "") throw new StrategyError("STRATEGY_OPTION", `empty option in strategy "${text}"`);
    const eq = opt.indexOf("=");
    const key = eq < 0 ? "variant" : opt.slice(0, eq);
    const val = eq < 0 ? opt : opt.slice(eq + 1);
    if (key === "") throw new StrategyError("STRATEGY_OPTION", `option without a name in strategy "${text}"`);
    if (key in options) throw new StrategyError("STRATEGY_OPTION", `option "${key}" given twice in strategy "${text}"`);
    options[key] = val;
  }
  return { name, options };
}

function formatElement(name: string, options: Record<string, string>): string {
  const opts = Object.entries(options).map(([k, v]) => (k === "variant" ? v : `${k}=${v}`));
  return [name, ...opts].join(":");
}

/** Resolve `-s punning,zpoline,ud2:int3` against the installed strategies, in the order given. */
export async function resolveChain(config: RegistryConfig, spec: string): Promise<ResolvedChain> {
  const parts = spec
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) {
    throw new StrategyError("STRATEGY_EMPTY", "empty strategy chain", {
      suggestions: ["give one or more names, e.g. -s punning,zpoline,ud2"],
    });
  }
  const { entries: installed, failures } = await loadRegistry(config);
  const byName = new Map(installed.map((e) => [e.name, e]));
  const chain: ChainElement[] = [];
  for (const part of parts) {
    const { name, options } = parseElement(part);
    const entry = byName.get(name);
    if (entry === undefined) {
      const known = installed.map((e) => e.name).join(", ") || "none";
      const broken = failures.filter((f) => f.kind === "load").map((f) => f.plugin.name);
      const tail = broken.length > 0 ? `; failed to load: ${broken.join(", ")} (see sysi doctor)` : "";
      throw new StrategyError("STRATEGY_UNKNOWN", `unknown strategy "${name}" (known: ${known}${tail})`);
    }
    if (chain.some((c) => c.entry.name === name)) {
      throw new StrategyError("STRATEGY_DUPLICATE", `strategy "${name}" appears twice in "${spec}"`);
    }
    const bad = entry.strategy.checkOptions?.(options) ?? null;
    if (bad !== null) throw new StrategyError("STRATEGY_OPTION", `strategy "${name}": ${bad}`);
    for (const c of chain) {
      for (const [res, use] of Object.entries(entry.strategy.claims ?? {})) {
        const theirs = c.entry.strategy.claims?.[res];
        if (theirs === undefined) continue;
        throw new StrategyError(
          "STRATEGY_CONFLICT",
          `strategies "${c.entry.name}" and "${name}" cannot share a chain: both need ${res} (${c.entry.name}: ${theirs}; ${name}: ${use}); use one of them`,
        );
      }
    }
    chain.push({ entry, options });
  }
  return { entries: chain, spec: chain.map((c) => formatElement(c.entry.name, c.options)).join(",") };
}

/**
 * The default chain: the best the host allows, in the order the strategies' own `defaultChain`
 * ranks give (lowest first; ties by name). A strategy joins when every check of its `requires`
 * and of its `defaultChain.needs` is known to pass; one without `defaultChain` (third-party,
 * experimental) is never chosen implicitly: name it with -s. The bundled ones declare:
 *
 *  1. punning (100) — a direct jump per site, no page 0, no signals: fastest and safest (it
 *     refuses sites it cannot pun; the next strategy takes those);
 *  2. zpoline (200) — needs page0 (every site it takes enters through page 0) and pkeys: only
 *     a protection key makes page 0 execute-only. Without one, a NULL read in the program, or
 *     the kernel's read of a NULL pointer argument, would read page 0 instead of faulting (a
 *     Go nil dereference returns garbage instead of panicking, Java's implicit null checks stop
 *     throwing, `write(fd, NULL, n)` writes page 0's bytes): the program would not behave as
 *     natively, so there zpoline is used only when named (-s);
 *  3. ud2 (900) — last: it works everywhere (a SIGILL per syscall), so it catches what is left.
 */
function defaultOrder(entries: readonly StrategyEntry[]): { entry: StrategyEntry; needs: HostCheckId[] }[] {
  return entries
    .filter((e) => e.strategy.defaultChain !== undefined)
    .sort(
      (a, b) =>
        (a.strategy.defaultChain?.rank ?? 0) - (b.strategy.defaultChain?.rank ?? 0) || a.name.localeCompare(b.name),
    )
    .map((entry) => ({
      entry,
      needs: [...new Set<HostCheckId>([...(entry.strategy.defaultChain?.needs ?? []), ...entry.strategy.requires])],
    }));
}

/** What a failing host check costs, when the strategy does not say. */
const CHECK_WHY: Partial<Record<HostCheckId, string>> = {
  page0: "page 0 cannot be mapped",
  modify_ldt: "modify_ldt is not available",
  pkeys: "no protection keys",
  cc: "no C compiler to build its runtime",
};

/** Strategies with a default-chain place that are installed but left out on this host, and why. */
export function defaultChainLeftOut(
  entries: readonly StrategyEntry[],
  host: HostFacts,
): { name: string; missing: HostCheckId[]; why: string }[] {
  const out: { name: string; missing: HostCheckId[]; why: string }[] = [];
  for (const { entry, needs } of defaultOrder(entries)) {
    const missing = needs.filter((id) => host.checks[id] !== true);
    const why = entry.strategy.defaultChain?.why ?? {};
    if (missing.length > 0)
      out.push({
        name: entry.name,
        missing,
        why: missing.map((id) => why[id] ?? CHECK_WHY[id] ?? `needs ${id}`).join("; "),
      });
  }
  return out;
}

export function defaultChain(entries: readonly StrategyEntry[], host: HostFacts): ResolvedChain {
  const chain: ChainElement[] = [];
  for (const { entry, needs } of defaultOrder(entries)) {
    if (needs.every((id) => host.checks[id] === true)) chain.push({ entry, options: {} });
  }
  if (chain.length === 0) {
    const known = entries.map((e) => e.name).join(", ") || "none";
    throw new StrategyError(
      "STRATEGY_NONE_AVAILABLE",
      `no default strategy usable on this host (installed: ${known})`,
      {
        suggestions: ["run sysi doctor", "name one with -s"],
      },
    );
  }
  return { entries: chain, spec: chain.map((c) => c.entry.name).join(",") };
}
