// The real `sysi plan` command (packages/cli/src/commands/plan.ts), run as a user would.
import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodePlan } from "../../src/plan/binary.ts";
import type { PlanJson } from "../../src/plan/json.ts";

const ROOT = join(import.meta.dir, "../../../..");
const tmp = mkdtempSync(join(tmpdir(), "sysi-plan-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const LIBC = ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"].find((p) => existsSync(p));
const haveUd2 = existsSync(join(ROOT, "plugins/ud2/src/index.ts"));

function sysi(args: string[], cache = join(tmp, "cache")) {
  const r = spawnSync("bun", [join(ROOT, "packages/cli/bin/run.js"), ...args], {
    encoding: "utf8",
    env: { ...process.env, SYSI_CACHE_DIR: cache, DEBUG: "" },
  });
  // Other commands' load warnings are not this command's output.
  const errLines = r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("sysi: warning:"));
  return { ...r, errLines };
}

describe.skipIf(LIBC === undefined || !haveUd2)("sysi plan (needs libc.so.6 and the ud2 plugin)", () => {
  const libc = LIBC as string;

  it("plans libc with ud2, then answers from the cache with the same document", () => {
    const a = sysi(["plan", "-s", "ud2", "--json", libc]);
    expect(a.errLines).toEqual([]);
    expect(a.status).toBe(0);
    const ja = (JSON.parse(a.stdout) as { plans: PlanJson[] }).plans;
    expect(ja).toHaveLength(1);
    const p = ja[0] as PlanJson;
    expect(p.chain).toEqual(["ud2"]);
    expect(p.stats.sites).toBe(p.sites.length);
    expect(p.stats.sites).toBeGreaterThan(100);
    const uncertain = p.sites.filter((s) => s.uncertain).length;
    const ud2 = p.stats.strategies.ud2;
    expect((ud2?.taken ?? 0) + (ud2?.refused ?? 0)).toBe(p.stats.sites);
    expect(ud2?.refusals["uncertain-site"] ?? 0).toBe(uncertain);
    expect(p.sites.filter((s) => s.taken === "ud2").every((s) => s.decisions[0]?.ok === true)).toBe(true);
    expect(p.sites.find((s) => s.name === "write")).toBeDefined();
    const b = sysi(["plan", "-s", "ud2", "--json", libc]);
    expect(b.status).toBe(0);
    expect(JSON.parse(b.stdout)).toEqual(JSON.parse(a.stdout));
    const human = sysi(["plan", "-s", "ud2", libc]);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain("(cached;");
    expect(human.stdout).toContain(`sites ${p.stats.sites}: patched ${p.stats.patched}`);
  });

  it("-o writes the binary plan atomically; `sysi plan FILE.plan` decodes it", () => {
    const out = join(tmp, "libc.plan");
    const r = sysi(["plan", "-s", "ud2", "-o", out, libc]);
    expect(r.status).toBe(0);
    const d = decodePlan(readFileSync(out));
    expect(d.chain).toBe("ud2");
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const show = sysi(["plan", "--json", out]);
    expect(show.status).toBe(0);
    const shown = JSON.parse(show.stdout) as { plans: { sites: unknown[]; chain: string }[] };
    expect(shown.plans[0]?.sites.length).toBe(d.sites.length);
  });

  it("fails with one error line and exit 2 for a missing file, a non-ELF, or an unknown strategy", () => {
    for (const args of [
      ["plan", "-s", "ud2", join(tmp, "missing")],
      ["plan", "-s", "ud2", join(ROOT, "package.json")],
      ["plan", "-s", "nosuch", libc],
    ]) {
      const r = sysi(args);
      expect(r.status).toBe(2);
      expect(r.errLines).toHaveLength(1);
      expect(r.errLines[0]).toMatch(/^sysi: error: /);
    }
  });
});
