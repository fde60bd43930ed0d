/**
 * Plan modules into a directory usable as SYSI_PLAN_DIR, without the CLI:
 *
 *   bun scripts/plan-dir.ts -s zpoline,ud2 -o DIR [--closure] [--assume page0,…] [--json] FILE…
 *
 * Each FILE (and with --closure its interpreter and DT_NEEDED closure) is read, scanned and
 * planned with the chain; DIR/<modkey>.plan (+ .json) is written atomically. Prints one line per
 * module: "<modkey> <path> <taken>/<sites>" (with --json: one JSON document instead).
 * Strategies load from plugins/<name>/src/index.ts (default export = factory; --plugins DIR
 * loads <DIR>/<name>/src/index.ts instead). Host facts come
 * from probeHost(); --assume marks checks as passing (e.g. to plan zpoline without root).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isSysiError } from "../packages/core/src/errors.ts";
import { probeHost } from "../packages/core/src/host/index.ts";
import { encodePlan } from "../packages/core/src/plan/binary.ts";
import { planFile, writeFileAtomic } from "../packages/core/src/plan/cache.ts";
import { moduleClosure } from "../packages/core/src/plan/closure.ts";
import type { ChainEntry } from "../packages/core/src/plan/composite.ts";
import { planToJson } from "../packages/core/src/plan/json.ts";
import type { HostCheckId, HostFacts, StrategyFactory } from "../packages/core/src/strategy.ts";

const ROOT = resolve(import.meta.dir, "..");
const USAGE =
  "usage: bun scripts/plan-dir.ts -s CHAIN -o DIR [--closure] [--assume CHECK,…] [--plugins DIR] [--json] FILE…";

function fail(msg: string): never {
  process.stderr.write(`plan-dir: error: ${msg}\n`);
  process.exit(2);
}

/** `name[:opt[=val]]…` → name + options (a bare opt is { variant: opt }), as the CLI parses it. */
function parseElement(text: string): { name: string; options: Record<string, string> } {
  const [name = "", ...opts] = text.split(":");
  const options: Record<string, string> = {};
  for (const o of opts) {
    const eq = o.indexOf("=");
    options[eq < 0 ? "variant" : o.slice(0, eq)] = eq < 0 ? o : o.slice(eq + 1);
  }
  return { name, options };
}

async function loadChain(spec: string, pluginsDir = join(ROOT, "plugins")): Promise<ChainEntry[]> {
  const api = { version: "0.1.0", includeDir: join(ROOT, "packages/core/native/include") };
  const chain: ChainEntry[] = [];
  for (const part of spec.split(",").filter((p) => p.trim() !== "")) {
    const { name, options } = parseElement(part.trim());
    if (!/^[a-z][a-z0-9-]*$/.test(name)) fail(`bad strategy name "${name}"`);
    const file = join(pluginsDir, name, "src", "index.ts");
    let factory: StrategyFactory;
    try {
      factory = ((await import(file)) as { default: StrategyFactory }).default;
    } catch (e) {
      fail(`cannot load strategy ${name} from ${file}: ${(e as Error).message.split("\n")[0]}`);
    }
    if (typeof factory !== "function") fail(`${file} has no default-exported factory`);
    chain.push({ strategy: factory(api), options });
  }
  if (chain.length === 0) fail("empty strategy chain");
  return chain;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        strategies: { type: "string", short: "s" },
        out: { type: "string", short: "o" },
        closure: { type: "boolean" },
        assume: { type: "string" },
        json: { type: "boolean" },
        plugins: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    fail(`${(e as Error).message} (${USAGE})`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (typeof values.strategies !== "string" || typeof values.out !== "string" || positionals.length === 0) fail(USAGE);
  const chain = await loadChain(
    values.strategies,
    typeof values.plugins === "string" ? resolve(values.plugins) : undefined,
  );
  const facts = (await probeHost()).facts();
  const host: HostFacts = { checks: { ...facts.checks } };
  for (const id of typeof values.assume === "string" ? values.assume.split(",") : []) {
    if (id.trim() !== "") host.checks[id.trim() as HostCheckId] = true;
  }
  const files: string[] = [];
  for (const f of positionals) {
    if (values.closure) files.push(...(await moduleClosure(f)));
    else files.push(f);
  }
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const docs = [];
  for (const path of [...new Set(files)]) {
    const { key, plan } = await planFile(path, chain, host);
    const json = planToJson(plan);
    writeFileAtomic(join(out, `${key}.json`), `${JSON.stringify(json)}\n`);
    writeFileAtomic(join(out, `${key}.plan`), encodePlan(plan));
    if (values.json) docs.push(json);
    else process.stdout.write(`${key} ${path} ${plan.stats.patched}/${plan.stats.sites}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ plans: docs }, null, 2)}\n`);
}

try {
  await main();
} catch (e) {
  if (isSysiError(e)) fail(e.message);
  throw e;
}
