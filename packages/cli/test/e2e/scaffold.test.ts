/**
 * Issue 14's done-when for third-party strategies: a strategy scaffolded with `sysi strategy
 * new` in a temp dir outside the repo, linked with `sysi plugins link`, passes the testkit
 * (@sysi/core/testing: plans checked with objdump on libc, ld.so and bun; real programs and the
 * hard cases as natively; per-site fallback; counts against strace -f) and appears in
 * `sysi strategies --json`. The plugin's @sysi/core dev dependency is this workspace's core
 * (a symlink where `bun install` would put the published one).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeSysiHome, RUN_JS, sysi } from "../helpers.ts";

const outside = mkdtempSync(join(tmpdir(), "sysi-scaffold-e2e-"));
const home = makeSysiHome();
afterAll(() => {
  rmSync(outside, { recursive: true, force: true });
  home.cleanup();
});

describe("a scaffolded out-of-tree strategy", () => {
  const dir = join(outside, "sysi-strategy-trapdemo");

  it("is created, linked, and listed by sysi strategies --json", async () => {
    expect((await sysi(["strategy", "new", "trapdemo", dir], home.env)).code).toBe(0);
    mkdirSync(join(dir, "node_modules", "@sysi"), { recursive: true });
    symlinkSync(join(import.meta.dir, "../../../core"), join(dir, "node_modules", "@sysi", "core"));
    expect((await sysi(["plugins", "link", dir, "--no-install"], home.env)).code).toBe(0);
    const r = await sysi(["strategies", "--json"], home.env);
    const report = JSON.parse(r.stdout) as {
      strategies: { name: string; source: string; plugin: { name: string; version: string } }[];
      failures: unknown[];
    };
    expect(report.strategies.find((s) => s.name === "trapdemo")).toMatchObject({
      source: "linked",
      plugin: { name: "sysi-strategy-trapdemo", version: "0.1.0" },
    });
    expect(report.failures).toEqual([]);
  });

  it("passes the testkit as generated (bun test in its own directory)", () => {
    const r = Bun.spawnSync(["bun", "test", "--timeout=600000"], {
      cwd: dir,
      env: { ...process.env, ...home.env, SYSI_CLI: `${process.execPath} ${RUN_JS}` },
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = r.stderr.toString() + r.stdout.toString();
    if (r.exitCode !== 0) console.log(out);
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/^ *1[0-9] pass$/m);
    expect(out).toMatch(/^ *0 fail$/m);
  }, 900_000);
});
