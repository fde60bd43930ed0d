import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "@oclif/core";
import type { Strategy } from "@sysi/core/strategy";
import {
  defaultChain,
  defaultChainLeftOut,
  loadRegistry,
  loadStrategies,
  resolveChain,
  type StrategyEntry,
} from "../src/registry.ts";
import { hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";

const root = mkdtempSync(join(tmpdir(), "sysi-registry-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A plugin package on disk whose `sysi.strategy` module exports a factory for `names`. */
function fakePlugin(pkg: string, body: string, extra: Record<string, unknown> = {}): string {
  const dir = join(root, pkg.replace(/[@/]/g, "_"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({
      name: pkg,
      version: "1.2.3",
      type: "module",
      sysi: { strategy: "./strategy.js" },
      oclif: {},
      ...extra,
    }),
  );
  writeFileSync(join(dir, "strategy.js"), body);
  return dir;
}

const factory = (name: string, extra = "") => `export default function create(api) {
  return {${extra}
    name: ${JSON.stringify(name)},
    summary: "fake " + ${JSON.stringify(name)} + " from core " + api.version + " with " + api.includeDir,
    requires: [],
    planVersion: "1",
    planSite: () => ({ reason: "fake" }),
    runtime: { nativeDir: "/nonexistent", lib: "libfake.so", entry: "fake_ops" },
  };
}
`;

function fakeConfig(dirs: string[], types: string[] = []): Config {
  const plugins = dirs.map((root, i) => {
    const pjson = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    return { name: pjson.name, version: pjson.version, type: types[i] ?? "link", root, pjson };
  });
  return { getPluginsList: () => plugins } as unknown as Config;
}

const good = fakePlugin("@test/fake", factory("fake"));
const other = fakePlugin(
  "@test/other",
  factory("other", `\n    checkOptions: (o) => (o.variant === "bad" ? 'no "bad" here' : null),`),
);
const broken = fakePlugin("@test/broken", "throw new Error('boom at import');\n");
const notFactory = fakePlugin("@test/not-factory", "export default 42;\n");
const missing = fakePlugin("@test/missing", "", { sysi: { strategy: "./nope.js" } });
const noField = fakePlugin("@test/plain", "", { sysi: undefined });

describe("registry", () => {
  const config = fakeConfig([good, other, broken, notFactory, missing, noField]);

  it("loads strategies from plugins with a sysi.strategy module and passes the core API", async () => {
    const entries = await loadStrategies(config);
    expect(entries.map((e) => e.name)).toEqual(["fake", "other"]);
    const fake = entries[0] as StrategyEntry;
    expect(fake.plugin).toEqual({ name: "@test/fake", version: "1.2.3", type: "link", root: good });
    const corePkg = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@sysi/core/package.json")), "utf8"));
    expect(fake.strategy.summary).toContain(`from core ${corePkg.version} with `);
    const includeDir = fake.strategy.summary.split(" with ")[1] as string;
    expect(existsSync(join(includeDir, "sysi.h"))).toBe(true);
  });

  it("records plugins that fail to load instead of crashing", async () => {
    const { failures } = await loadRegistry(config);
    expect(failures.every((f) => f.kind === "load")).toBe(true);
    const byName = new Map(failures.map((f) => [f.plugin.name, f.error]));
    expect([...byName.keys()].sort()).toEqual(["@test/broken", "@test/missing", "@test/not-factory"]);
    expect(byName.get("@test/broken")).toContain("boom at import");
    expect(byName.get("@test/not-factory")).toContain("not a strategy factory");
  });

  it("lets a linked plugin override a bundled strategy of the same name, and says so", async () => {
    const bundled = fakePlugin("@test/bundled-fake", factory("fake"));
    const cfg = fakeConfig([good, bundled], ["link", "core"]);
    const { entries, failures } = await loadRegistry(cfg);
    expect(entries.map((e) => `${e.name}:${e.plugin.name}`)).toEqual(["fake:@test/fake"]);
    expect(failures).toEqual([
      expect.objectContaining({ kind: "shadowed", plugin: expect.objectContaining({ name: "@test/bundled-fake" }) }),
    ]);
  });

  it("resolves a chain in the order given, with options", async () => {
    const chain = await resolveChain(config, "other, fake:int3");
    expect(chain.entries.map((c) => c.entry.name)).toEqual(["other", "fake"]);
    expect(chain.entries[1]?.options).toEqual({ variant: "int3" });
    expect(chain.spec).toBe("other,fake:int3");
    const kv = await resolveChain(config, "fake:mode=fast:pages=2");
    expect(kv.entries[0]?.options).toEqual({ mode: "fast", pages: "2" });
  });

  it("lets a strategy reject its options before anything is planned (checkOptions)", async () => {
    const e = await resolveChain(config, "fake,other:bad").then(
      () => null,
      (err: unknown) => err as { code: string; message: string },
    );
    expect(e).toMatchObject({ code: "STRATEGY_OPTION", message: 'strategy "other": no "bad" here' });
    expect((await resolveChain(config, "other:good")).spec).toBe("other:good");
    // a strategy without checkOptions gets whatever it is given
    expect((await resolveChain(config, "fake:bad")).spec).toBe("fake:bad");
  });

  const errors: [string, string, string][] = [
    ["an unknown name", "fake,nosuch", "STRATEGY_UNKNOWN"],
    ["an empty spec", " , ", "STRATEGY_EMPTY"],
    ["a duplicate", "fake,fake", "STRATEGY_DUPLICATE"],
    ["an empty option", "fake:", "STRATEGY_OPTION"],
  ];
  for (const [what, spec, code] of errors) {
    it(`rejects ${what} with ${code}`, async () => {
      const e = await resolveChain(config, spec).then(
        () => null,
        (err: unknown) => err as { name: string; code: string; message: string },
      );
      expect(e?.name).toBe("StrategyError");
      expect(e?.code).toBe(code);
      expect(e?.message).not.toContain("\n");
      if (code === "STRATEGY_UNKNOWN") expect(e?.message).toContain("known: fake, other");
    });
  }
});

describe("defaultChain", () => {
  const entry = (
    name: string,
    requires: Strategy["requires"] = [],
    defaultChain?: Strategy["defaultChain"],
  ): StrategyEntry => ({
    name,
    strategy: { name, requires, defaultChain } as unknown as Strategy,
    plugin: { name, version: "0", type: "core", root: "/" },
  });
  // The places the bundled strategies declare (a test below checks the real ones agree).
  const all = [
    entry("ud2", [], { rank: 900 }),
    entry("zpoline", ["page0"], { rank: 200, needs: ["page0", "pkeys"] }),
    entry("punning", [], { rank: 100 }),
    entry("segmentation", ["modify_ldt"]),
  ];

  it("takes the order and the host checks from the strategies' own declarations", () => {
    const third = entry("third", [], { rank: 150, needs: ["sud"], why: { sud: "no Syscall User Dispatch" } });
    const host = { checks: { page0: true, pkeys: true, sud: true } };
    expect(defaultChain([...all, third], host).spec).toBe("punning,third,zpoline,ud2");
    expect(defaultChain([...all, third], { checks: { page0: true, pkeys: true } }).spec).toBe("punning,zpoline,ud2");
    expect(defaultChainLeftOut([...all, third], { checks: {} })).toEqual([
      { name: "third", missing: ["sud"], why: "no Syscall User Dispatch" },
      { name: "zpoline", missing: ["page0", "pkeys"], why: "page 0 cannot be mapped; no protection keys" },
    ]);
  });

  it("orders punning, zpoline, ud2 when page 0 is mappable and a protection key makes it execute-only", () => {
    expect(defaultChain(all, { checks: { page0: true, pkeys: true, modify_ldt: true } }).spec).toBe(
      "punning,zpoline,ud2",
    );
  });
  it("drops zpoline without protection keys: a readable page 0 would change what NULL reads do", () => {
    expect(defaultChain(all, { checks: { page0: true, pkeys: false, modify_ldt: true } }).spec).toBe("punning,ud2");
    expect(defaultChain(all, { checks: { page0: true, modify_ldt: true } }).spec).toBe("punning,ud2");
  });
  it("drops zpoline without page 0, and never picks experimental strategies", () => {
    expect(defaultChain(all, { checks: { page0: false, pkeys: true, modify_ldt: true } }).spec).toBe("punning,ud2");
  });
  it("works with only ud2 installed", () => {
    expect(defaultChain([entry("ud2", [], { rank: 900 })], { checks: {} }).spec).toBe("ud2");
  });
  it("throws STRATEGY_NONE_AVAILABLE when nothing fits", () => {
    expect(() => defaultChain([entry("zpoline", ["page0"], { rank: 200 })], { checks: { page0: false } })).toThrow(
      /no default strategy/,
    );
    expect(() => defaultChain([entry("segmentation", [])], { checks: {} })).toThrow(/no default strategy/);
  });

  it("gives the bundled strategies' declared order: punning, zpoline with page0 and pkeys, ud2", async () => {
    const bundled: StrategyEntry[] = [];
    for (const name of ["punning", "zpoline", "ud2"]) {
      // From the workspace: punning need not be installed into the CLI.
      const mod = (await import(join(import.meta.dir, "../../../plugins", name, "src/index.ts"))) as {
        default: (api: unknown) => Strategy;
      };
      bundled.push({ name, strategy: mod.default({}), plugin: { name, version: "0", type: "core", root: "/" } });
    }
    expect(defaultChain(bundled, { checks: { page0: true, pkeys: true } }).spec).toBe("punning,zpoline,ud2");
    expect(defaultChain(bundled, { checks: { page0: true, pkeys: false } }).spec).toBe("punning,ud2");
    expect(defaultChain(bundled, { checks: { page0: false, pkeys: true } }).spec).toBe("punning,ud2");
    expect(defaultChainLeftOut(bundled, { checks: { page0: true } })).toEqual([
      {
        name: "zpoline",
        missing: ["pkeys"],
        why: "no protection keys, so page 0 would be readable: NULL reads would stop faulting and NULL pointer arguments to system calls would no longer fail with EFAULT",
      },
    ]);
  });
});

describe("the plugin contract's checks", () => {
  it("refuses a plugin whose sysi.core range misses this core, in one line naming both versions", async () => {
    const corePkg = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@sysi/core/package.json")), "utf8"));
    const future = fakePlugin("@test/future", factory("future"), { sysi: { strategy: "./strategy.js", core: ">=99" } });
    const fits = fakePlugin("@test/fits", factory("fits"), {
      sysi: { strategy: "./strategy.js", core: `^${corePkg.version}` },
    });
    const { entries, failures } = await loadRegistry(fakeConfig([future, fits]));
    expect(entries.map((e) => [e.name, e.coreRange])).toEqual([["fits", `^${corePkg.version}`]]);
    expect(failures).toEqual([
      expect.objectContaining({
        kind: "load",
        error: `@test/future 1.2.3 needs @sysi/core >=99; this sysi has @sysi/core ${corePkg.version}`,
      }),
    ]);
  });

  it("refuses a strategy with neither planModule nor planSite, or requires naming no host check", async () => {
    const noPlanner = fakePlugin(
      "@test/no-planner",
      factory("noplanner").replace('planSite: () => ({ reason: "fake" }),', ""),
    );
    const badCheck = fakePlugin("@test/bad-check", factory("badcheck").replace("requires: [],", 'requires: ["root"],'));
    const { entries, failures } = await loadRegistry(fakeConfig([noPlanner, badCheck]));
    expect(entries).toEqual([]);
    expect(failures.map((f) => f.error)).toEqual([
      "strategy noplanner has neither planModule() nor planSite()",
      expect.stringContaining("strategy badcheck: requires must list host checks"),
    ]);
  });

  it("hashes a linked plugin's planner sources into its entry, and the hash follows an edit", async () => {
    const dir = fakePlugin("@test/hashed", factory("hashed"));
    const first = await loadRegistry(fakeConfig([dir]));
    const h1 = first.entries[0]?.sourceHash;
    expect(h1).toMatch(/^[0-9a-f]{16}$/);
    writeFileSync(join(dir, "strategy.js"), `${factory("hashed")}// edited\n`);
    const h2 = (await loadRegistry(fakeConfig([dir]))).entries[0]?.sourceHash;
    expect(h2).toMatch(/^[0-9a-f]{16}$/);
    expect(h2).not.toBe(h1);
    // bundled and installed plugins are versioned: no hash
    expect((await loadRegistry(fakeConfig([dir], ["core"]))).entries[0]?.sourceHash).toBeUndefined();
  });
});

describe("registry through the real CLI", () => {
  const home = makeSysiHome();
  afterAll(() => home.cleanup());

  it("finds a linked plugin's strategy and reports a broken one (sysi plugins link + doctor)", async () => {
    const link1 = await sysi(["plugins", "link", good, "--no-install"], home.env);
    expect(link1.code).toBe(0);
    const link2 = await sysi(["plugins", "link", broken, "--no-install"], home.env);
    expect(link2.code).toBe(0);
    const r = await sysi(["doctor", "--json"], home.env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      strategies: { name: string; plugin: { name: string; type: string } }[];
      failures: { plugin: { name: string }; error: string }[];
    };
    expect(report.strategies.find((s) => s.name === "fake")?.plugin).toMatchObject({
      name: "@test/fake",
      type: "link",
    });
    expect(report.failures.find((f) => f.plugin.name === "@test/broken")?.error).toContain("boom at import");
  });

  const hasPlan = existsSync(join(import.meta.dir, "../src/commands/plan.ts"));
  it.skipIf(!hasPlan)(
    "an unknown strategy name is a one-line error in sysi plan (needs the plan command)",
    async () => {
      const r = await sysi(["plan", "-s", "nosuch", "/usr/bin/true"], home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/^sysi: error: unknown strategy "nosuch" \(known: .*fake/);
      expect(hasStack(r.stderr)).toBe(false);
    },
  );
});
