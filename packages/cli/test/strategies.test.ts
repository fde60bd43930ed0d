import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { StrategyReport } from "../src/commands/strategies.ts";
import { makeSysiHome, sysi } from "./helpers.ts";

const root = mkdtempSync(join(tmpdir(), "sysi-strategies-test-"));
const home = makeSysiHome();
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  home.cleanup();
});

function plugin(pkg: string, body: string, sysiField: Record<string, unknown> = {}): string {
  const dir = join(root, pkg.replace(/[@/]/g, "_"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({
      name: pkg,
      version: "2.0.1",
      type: "module",
      sysi: { strategy: "./s.js", ...sysiField },
      oclif: {},
    }),
  );
  writeFileSync(join(dir, "s.js"), body);
  return dir;
}

const body = (name: string) => `export default () => ({
  name: ${JSON.stringify(name)},
  summary: "a test strategy",
  requires: ["modify_ldt"],
  planVersion: "1",
  planSite: () => ({ reason: "nope" }),
  variants: [{ name: "fast", summary: "the fast one" }],
  options: [{ key: "pages", summary: "how many pages", values: "1..4" }],
  runtime: { nativeDir: "/nonexistent", lib: "libx.so", entry: "x_ops" },
});
`;

interface Report {
  strategies: StrategyReport[];
  failures: { plugin: { name: string }; source: string; kind: string; error: string }[];
  defaultChain: string | null;
}

describe("sysi strategies", () => {
  const corePkg = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@sysi/core/package.json")), "utf8"));
  const linked = plugin("@test/linked", body("linked"), { core: `^${corePkg.version}` });
  const broken = plugin("@test/broken", "throw new Error('cannot load this\\nsecond line');\n");
  const future = plugin("@test/future", body("future"), { core: ">=99.0.0" });

  it("lists bundled and linked strategies with source, version, variants, options, requires and host support", async () => {
    for (const dir of [linked, broken, future])
      expect((await sysi(["plugins", "link", dir, "--no-install"], home.env)).code).toBe(0);
    const r = await sysi(["strategies", "--json"], home.env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    const byName = new Map(report.strategies.map((s) => [s.name, s]));
    expect(byName.get("ud2")).toMatchObject({ source: "bundled", plugin: { name: "@sysi/ud2" }, supported: true });
    const ud2Variants = byName.get("ud2")?.variants ?? [];
    expect(ud2Variants.map((v) => v.name).sort()).toEqual(["hlt", "int3", "int4", "ud2"]);
    // the first is the default: this host's measured trap (never int3), and it says why
    expect(ud2Variants[0]?.name).not.toBe("int3");
    expect(ud2Variants[0]?.summary).toContain("the default on this host");
    expect(byName.get("zpoline")?.defaultChain).toMatchObject({ rank: 200, needs: ["page0", "pkeys"] });
    const l = byName.get("linked");
    expect(l).toMatchObject({
      source: "linked",
      plugin: { name: "@test/linked", version: "2.0.1", root: linked },
      core: `^${corePkg.version}`,
      variants: [{ name: "fast", summary: "the fast one" }],
      options: [{ key: "pages", summary: "how many pages", values: "1..4" }],
      requires: ["modify_ldt"],
      defaultChain: null,
    });
    // host support against the probe doctor prints
    const doctor = JSON.parse((await sysi(["doctor", "--json"], home.env)).stdout) as {
      facts: { checks: Record<string, boolean> };
      defaultChain: string;
    };
    expect(l?.supported).toBe(doctor.facts.checks.modify_ldt === true);
    expect(byName.get("zpoline")?.supported).toBe(doctor.facts.checks.page0 === true);
    expect(report.defaultChain).toBe(doctor.defaultChain);
    // plugins that failed to load, each with its one-line reason
    const failed = new Map(report.failures.map((f) => [f.plugin.name, f]));
    expect(failed.get("@test/broken")).toMatchObject({ source: "linked", kind: "load", error: "cannot load this" });
    expect(failed.get("@test/future")?.error).toBe(
      `@test/future 2.0.1 needs @sysi/core >=99.0.0; this sysi has @sysi/core ${corePkg.version}`,
    );
    expect(byName.has("future")).toBe(false);
  });

  it("prints the same in text, one line per plugin that failed to load", async () => {
    const r = await sysi(["strategies"], home.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[✓✗] linked \(@test\/linked@2\.0\.1, linked, core \^/m);
    expect(r.stdout).toContain("    variant linked:fast — the fast one");
    expect(r.stdout).toContain("    option linked:pages=… — how many pages (1..4)");
    expect(r.stdout.split("\n").filter((l) => l.includes("@test/broken"))).toEqual([
      "✗ @test/broken@2.0.1 (linked): failed to load: cannot load this",
    ]);
    expect(r.stdout).toMatch(/^default chain here: /m);
  });
});
