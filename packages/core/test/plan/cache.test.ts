import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodePlan, encodePlan } from "../../src/plan/binary.ts";
import { cacheDir, chainKey, PlanCache } from "../../src/plan/cache.ts";
import type { ChainEntry } from "../../src/plan/composite.ts";
import { fakeStrategy, twoByte } from "./fixtures.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-cache-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const host = { checks: { cc: true } };
const ud = (): ChainEntry => ({ strategy: fakeStrategy("ud", (s) => twoByte(s, 0x0f, 0x0b)), options: {} });
const libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"].find((p) => existsSync(p));

describe("cacheDir", () => {
  it("prefers SYSI_CACHE_DIR, then XDG_CACHE_HOME/sysi, then ~/.cache/sysi", () => {
    expect(cacheDir({ SYSI_CACHE_DIR: "/a", XDG_CACHE_HOME: "/b", HOME: "/h" })).toBe("/a");
    expect(cacheDir({ XDG_CACHE_HOME: "/b", HOME: "/h" })).toBe("/b/sysi");
    expect(cacheDir({ HOME: "/h" })).toBe("/h/.cache/sysi");
  });
});

describe("chainKey", () => {
  it("changes with names, order, planVersion, options and host facts", () => {
    const a = fakeStrategy("a", () => ({ reason: "x" }));
    const b = fakeStrategy("b", () => ({ reason: "x" }));
    const a2 = fakeStrategy("a", () => ({ reason: "x" }), { planVersion: "2" });
    const base = chainKey(
      [
        { strategy: a, options: {} },
        { strategy: b, options: {} },
      ],
      host,
    );
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(
      chainKey(
        [
          { strategy: a, options: {} },
          { strategy: b, options: {} },
        ],
        { checks: { cc: true } },
      ),
    ).toBe(base);
    const others = [
      chainKey(
        [
          { strategy: b, options: {} },
          { strategy: a, options: {} },
        ],
        host,
      ),
      chainKey(
        [
          { strategy: a2, options: {} },
          { strategy: b, options: {} },
        ],
        host,
      ),
      chainKey(
        [
          { strategy: a, options: { variant: "int3" } },
          { strategy: b, options: {} },
        ],
        host,
      ),
      chainKey(
        [
          { strategy: a, options: {} },
          { strategy: b, options: {} },
        ],
        { checks: { cc: true, page0: true } },
      ),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });
});

describe.skipIf(libc === undefined)("PlanCache (needs libc.so.6)", () => {
  const cache = new PlanCache(join(tmp, "c"));
  const lib = join(tmp, "libc.so.6");
  beforeAll(() => copyFileSync(libc as string, lib));

  it("misses, writes .plan and .json, then hits without planning", async () => {
    const strategy = fakeStrategy("ud", (s) => twoByte(s, 0x0f, 0x0b));
    const chain: ChainEntry[] = [{ strategy, options: {} }];
    const miss = await cache.getOrPlan(lib, chain, host);
    expect(miss.hit).toBe(false);
    expect(miss.plan).toBeDefined();
    expect(miss.planPath).toBe(join(cache.planDir(chainKey(chain, host)), `${miss.key}.plan`));
    const d = decodePlan(readFileSync(miss.planPath));
    expect(d.sites.length).toBe(miss.json.stats.sites);
    expect(d.sites.length).toBeGreaterThan(10);
    expect(miss.json.stats.byStrategy.ud).toBe(miss.json.stats.patched);
    const calls = strategy.calls.length;
    const hit = await cache.getOrPlan(lib, chain, host);
    expect(hit.hit).toBe(true);
    expect(hit.plan).toBeUndefined();
    expect(hit.json).toEqual(miss.json);
    expect(strategy.calls.length).toBe(calls);
    expect(readdirSync(cache.planDir(chainKey(chain, host))).sort()).toEqual([`${miss.key}.json`, `${miss.key}.plan`]);
  });

  it("replans a truncated plan, a corrupt JSON sidecar, and a plan for another chain", async () => {
    const chain = [ud()];
    const first = await cache.getOrPlan(lib, chain, host);
    const good = readFileSync(first.planPath);
    truncateSync(first.planPath, 100);
    const r1 = await cache.getOrPlan(lib, chain, host);
    expect(r1.hit).toBe(false);
    expect(readFileSync(first.planPath)).toEqual(good);
    writeFileSync(first.planPath.replace(/\.plan$/, ".json"), "{ not json");
    expect((await cache.getOrPlan(lib, chain, host)).hit).toBe(false);
    expect((await cache.getOrPlan(lib, chain, host)).hit).toBe(true);
    // A valid plan file for a different chain in this chain's slot is stale.
    const other = await cache.getOrPlan(
      lib,
      [{ strategy: fakeStrategy("zz", (s) => twoByte(s, 0x0f, 0x0b)), options: {} }],
      host,
    );
    writeFileSync(first.planPath, readFileSync(other.planPath));
    expect(decodePlan(readFileSync(first.planPath)).chain).toBe("zz");
    const r3 = await cache.getOrPlan(lib, chain, host);
    expect(r3.hit).toBe(false);
    expect(decodePlan(readFileSync(first.planPath)).chain).toBe("ud");
  });

  it("replans when the module's build-id differs from the cached plan's", async () => {
    const chain = [ud()];
    const r = await cache.getOrPlan(lib, chain, host);
    const plan = r.plan ?? (await cache.getOrPlan(lib, chain, host, { force: true })).plan;
    if (plan === undefined) throw new Error("no plan");
    writeFileSync(r.planPath, encodePlan({ ...plan, module: { ...plan.module, buildId: "ffff" } }));
    expect((await cache.getOrPlan(lib, chain, host)).hit).toBe(false);
  });

  it("plans many modules, deduplicated, in input order", async () => {
    const chain = [ud()];
    const paths = [lib, "/usr/bin/true", lib];
    const rs = await cache.planMany(paths, chain, host);
    expect(rs.map((r) => r.path)).toEqual(paths);
    expect(rs[0]).toBe(rs[2] as (typeof rs)[number]);
  });
});

const haveCc = spawnSync("cc", ["--version"]).status === 0;
describe.skipIf(!haveCc)("PlanCache without build-id (needs cc)", () => {
  it("keys by path, size and mtime: touching the file is a miss", async () => {
    const src = join(tmp, "nb.c");
    writeFileSync(src, "#include <unistd.h>\nint main(void){return (int)syscall(39) < 0;}\n");
    const exe = join(tmp, "nb");
    expect(spawnSync("cc", ["-O1", "-Wl,--build-id=none", "-o", exe, src]).status).toBe(0);
    const cache = new PlanCache(join(tmp, "c2"));
    const chain = [ud()];
    const a = await cache.getOrPlan(exe, chain, host);
    expect(a.key).toMatch(/^p[0-9a-f]{16}$/);
    expect(decodePlan(readFileSync(a.planPath)).buildId).toBeNull();
    expect((await cache.getOrPlan(exe, chain, host)).hit).toBe(true);
    utimesSync(exe, 1_600_000_000, 1_600_000_000);
    const b = await cache.getOrPlan(exe, chain, host);
    expect(b.hit).toBe(false);
    expect(b.key).not.toBe(a.key);
  });
});
