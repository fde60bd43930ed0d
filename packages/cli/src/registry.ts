/**
 * Strategy registry: finds the strategies of every oclif plugin (core, user-installed, linked)
 * whose package.json has `"sysi": { "strategy": "<module>" }`, and resolves `-s` chains.
 *
 * The module's default export is a factory `(api: SysiCoreApi) => Strategy`; the CLI calls it
 * with its own core API, so a plugin never needs its own copy of @sysi/core. A plugin whose
 * module fails to load (or whose factory throws or returns something that is not a Strategy) is
 * skipped and recorded in `failures`, never fatal.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { StrategyError } from "@sysi/core/errors";
import type { HostCheckId, HostFacts, Strategy, SysiCoreApi } from "@sysi/core/strategy";

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
    coreApi = Object.freeze({ version: pjson.version, includeDir: join(dirname(pjsonPath), "native", "include") });
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
  const plugins = config.getPluginsList();
  const loaded = await Promise.all(
    plugins.map(async (p) => {
      const field = (p.pjson as { sysi?: { strategy?: unknown } }).sysi?.strategy;
      if (field === undefined) return null;
      const plugin: PluginInfo = { name: p.name, version: p.version, type: p.type, root: p.root };
      try {
        if (typeof field !== "string" || field === "") throw new Error("package.json sysi.strategy is not a path");
        const mod = (await import(pathToFileURL(join(p.root, field)).href)) as { default?: unknown };
        const strategy = instantiate(mod.default);
        return { plugin, strategy };
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
      entries.set(name, { name, strategy: r.strategy, plugin: r.plugin });
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

function instantiate(factory: unknown): Strategy {
  if (typeof factory !== "function") throw new Error("default export is not a strategy factory function");
  const s = (factory as (api: SysiCoreApi) => unknown)(sysiCoreApi()) as Partial<Strategy> | null;
  if (s === null || typeof s !== "object") throw new Error("strategy factory did not return an object");
  if (typeof s.name !== "string" || !/^[a-z][a-z0-9-]*$/.test(s.name))
    throw new Error("strategy has no valid name (lowercase letters, digits, '-')");
  if (typeof s.planSite !== "function") throw new Error(`strategy ${s.name} has no planSite()`);
  if (!Array.isArray(s.requires)) throw new Error(`strategy ${s.name} has no requires[]`);
  if (typeof s.planVersion !== "string") throw new Error(`strategy ${s.name} has no planVersion`);
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
    chain.push({ entry, options });
  }
  return { entries: chain, spec: chain.map((c) => formatElement(c.entry.name, c.options)).join(",") };
}

/**
 * The default chain: the best the host allows, most efficient first.
 *
 *  1. punning — a direct jump per site, no page 0, no signals: fastest and safest, if installed
 *     and loadable (it refuses sites it cannot pun; the next strategy takes those);
 *  2. zpoline — only when the page0 check passes (mapping address 0 needs root/CAP_SYS_RAWIO or
 *     vm.mmap_min_addr=0), since every site it takes enters through page 0, and the pkeys check
 *     passes: only a protection key makes page 0 execute-only. Without one, a NULL read in the
 *     program, or the kernel's read of a NULL pointer argument, would read page 0 instead of
 *     faulting (a Go nil dereference returns garbage instead of panicking, Java's implicit null
 *     checks stop throwing, `write(fd, NULL, n)` writes page 0's bytes): the program would not
 *     behave as natively, so there zpoline is used only when named (-s);
 *  3. ud2 — last: it works everywhere (a SIGILL per syscall), so it catches what is left.
 *
 * Other strategies (third-party, experimental) are never chosen implicitly: name them with -s.
 * Each step is skipped when a check its `requires` lists is not known to pass.
 */
const DEFAULT_ORDER: { name: string; needs: HostCheckId[] }[] = [
  { name: "punning", needs: [] },
  { name: "zpoline", needs: ["page0", "pkeys"] },
  { name: "ud2", needs: [] },
];

/** Why a strategy of the default order is installed but not in the default chain. */
const LEFT_OUT_WHY: Partial<Record<HostCheckId, string>> = {
  page0: "page 0 cannot be mapped",
  pkeys:
    "no protection keys, so page 0 would be readable: NULL reads would stop faulting and NULL pointer arguments to system calls would no longer fail with EFAULT",
};

/** Strategies of the default order that are installed but left out on this host, and why. */
export function defaultChainLeftOut(
  entries: readonly StrategyEntry[],
  host: HostFacts,
): { name: string; missing: HostCheckId[]; why: string }[] {
  const out: { name: string; missing: HostCheckId[]; why: string }[] = [];
  for (const { name, needs } of DEFAULT_ORDER) {
    const entry = entries.find((e) => e.name === name);
    if (entry === undefined) continue;
    const missing = [...new Set<HostCheckId>([...needs, ...entry.strategy.requires])].filter(
      (id) => host.checks[id] !== true,
    );
    if (missing.length > 0)
      out.push({ name, missing, why: missing.map((id) => LEFT_OUT_WHY[id] ?? `needs ${id}`).join("; ") });
  }
  return out;
}

export function defaultChain(entries: readonly StrategyEntry[], host: HostFacts): ResolvedChain {
  const chain: ChainElement[] = [];
  for (const { name, needs } of DEFAULT_ORDER) {
    const entry = entries.find((e) => e.name === name);
    if (entry === undefined) continue;
    const required = new Set<HostCheckId>([...needs, ...entry.strategy.requires]);
    if ([...required].every((id) => host.checks[id] === true)) chain.push({ entry, options: {} });
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
