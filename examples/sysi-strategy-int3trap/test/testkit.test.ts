/**
 * The checks every sysi strategy passes (@sysi/core/testing). The run checks go through the
 * sysi on PATH (or SYSI_CLI, e.g. "bun /path/to/packages/cli/bin/run.js"), which must see this
 * plugin: `sysi plugins link .` first.
 */
import { describe, expect, it } from "bun:test";
import { planChecks, runChecks } from "@sysi/core/testing";
import factory from "../src/index.ts";

const strategy = factory({ version: "", includeDir: "" });
const cli = (process.env.SYSI_CLI ?? "sysi").split(" ").filter((w) => w !== "");

describe("int3trap through the sysi testkit", () => {
  it("plans patches that decode to int3; nop over the file's own bytes (libc, ld.so, bun)", async () => {
    const reports = await planChecks(strategy, { expectInsns: () => ["int3", "nop"] });
    expect(reports.length).toBeGreaterThan(0);
    for (const r of reports) {
      expect({ path: r.path, problems: r.problems }).toEqual({ path: r.path, problems: [] });
      expect(r.taken).toBeGreaterThan(0);
    }
  });

  it("is visible to sysi (sysi plugins link .)", () => {
    const r = Bun.spawnSync([...cli, "strategies", "--json"], { stdout: "pipe", stderr: "pipe" });
    const names = (JSON.parse(r.stdout.toString()) as { strategies: { name: string }[] }).strategies.map((s) => s.name);
    expect(names).toContain(strategy.name);
  });

  it("runs real programs and the hard cases as natively, falls back per site, counts as strace -f", async () => {
    const checks = await runChecks({ cli, chain: `${strategy.name},ud2`, strategy: strategy.name });
    expect(checks.length).toBeGreaterThan(5);
    // every check ran and found nothing (a skipped one fails too: it proved nothing)
    expect(checks.filter((c) => c.problems.length > 0 || c.skipped !== undefined)).toEqual([]);
  });
});
