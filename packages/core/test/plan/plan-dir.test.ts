import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodePlan } from "../../src/plan/binary.ts";
import type { PlanJson } from "../../src/plan/json.ts";

const ROOT = join(import.meta.dir, "../../../..");
const tmp = mkdtempSync(join(tmpdir(), "sysi-plandir-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A throwaway out-of-tree strategy: ud2 for sites with a known number, refusal otherwise.
const plugins = join(tmp, "plugins");
mkdirSync(join(plugins, "fk", "src"), { recursive: true });
writeFileSync(
  join(plugins, "fk", "src", "index.ts"),
  `export default (api) => ({
  name: "fk", summary: "test", requires: [], planVersion: "1",
  runtime: { nativeDir: api.includeDir, lib: "libfk.so", entry: "fk" },
  planSite(site, ctx) {
    if (site.nr === null) return { reason: "unknown-nr" };
    return { patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: new Uint8Array([0x0f, 0x0b]) }, tactic: ctx.options.variant ?? "plain" };
  },
});
`,
);

function planDir(args: string[]) {
  return spawnSync("bun", [join(ROOT, "scripts/plan-dir.ts"), "--plugins", plugins, ...args], { encoding: "utf8" });
}

describe("scripts/plan-dir.ts", () => {
  it("plans a program's closure into DIR/<modkey>.plan + .json and prints key, path, taken/sites", () => {
    const out = join(tmp, "out");
    const r = planDir(["-s", "fk:x", "-o", out, "--closure", "/usr/bin/true"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(3); // true, ld.so, libc
    expect(lines[0]?.split(" ")[1]).toBe(realpathSync("/usr/bin/true"));
    for (const line of lines) {
      const [key, path, counts] = line.split(" ");
      const [taken, sites] = (counts ?? "").split("/").map(Number);
      const d = decodePlan(readFileSync(join(out, `${key}.plan`)));
      const j = JSON.parse(readFileSync(join(out, `${key}.json`), "utf8")) as PlanJson;
      expect(d.modulePath).toBe(path as string);
      expect(d.sites.length).toBe(sites as number);
      expect(d.sites.filter((s) => s.options.length > 0).length).toBe(taken as number);
      expect(d.sites.filter((s) => s.options.length > 0).every((s) => s.nr !== null)).toBe(true);
      expect(j.stats.tactics.fk?.x ?? 0).toBe(taken as number);
    }
    const libc = lines.find((l) => l.includes("libc.so"));
    expect(Number(libc?.split(" ")[2]?.split("/")[0])).toBeGreaterThan(100);
    expect(readdirSync(out).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("fails with one error line for an unknown strategy or a missing file", () => {
    const a = planDir(["-s", "nosuch", "-o", join(tmp, "o2"), "/usr/bin/true"]);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/^plan-dir: error: cannot load strategy nosuch/);
    const b = planDir(["-s", "fk", "-o", join(tmp, "o3"), join(tmp, "missing")]);
    expect(b.status).toBe(2);
    expect(b.stderr.trim().split("\n")).toHaveLength(1);
  });
});
