import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
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
      // a linked planner's source hash (the same planVersion, edited source)
      chainKey(
        [
          { strategy: a, options: {}, sourceHash: "0123456789abcdef" },
          { strategy: b, options: {} },
        ],
        host,
      ),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
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

  it("ensurePlanned: plans on a miss, hits without reading the JSON form, replans what getOrPlan would", async () => {
    const strategy = fakeStrategy("en", (s) => twoByte(s, 0x0f, 0x0b));
    const chain: ChainEntry[] = [{ strategy, options: {} }];
    const c = new PlanCache(join(tmp, "c-ensure"));
    const miss = await c.ensurePlanned(lib, chain, host);
    expect(miss.hit).toBe(false);
    utimesSync(miss.planPath, 1_600_000_000, 1_600_000_000);
    const full = await c.getOrPlan(lib, chain, host);
    expect(full.hit).toBe(true);
    expect(full.key).toBe(miss.key);
    expect(full.planPath).toBe(miss.planPath);
    const calls = strategy.calls.length;
    const hit = await c.ensurePlanned(lib, chain, host);
    expect(hit).toMatchObject({ hit: true, key: miss.key, planPath: miss.planPath });
    expect(strategy.calls.length).toBe(calls);
    // The check of this exact plan file is remembered; an edit in place (same size, same
    // mtime: only the ctime tells) is decoded again and found to be for another chain.
    expect(readdirSync(join(tmp, "c-ensure", "plan-checks"))).toHaveLength(1);
    const bytes = readFileSync(miss.planPath);
    const at = bytes.indexOf(Buffer.from("en"));
    expect(at).toBeGreaterThan(0);
    bytes.set(Buffer.from("zz"), at);
    const before = statSync(miss.planPath, { bigint: true });
    writeFileSync(miss.planPath, bytes);
    utimesSync(miss.planPath, 1_600_000_000, 1_600_000_000);
    const after = statSync(miss.planPath, { bigint: true });
    expect([after.ino, after.size, after.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(false);
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(true);
    // The JSON form is not read on a hit, but it must be there.
    const jsonPath = miss.planPath.replace(/\.plan$/, ".json");
    writeFileSync(jsonPath, "{ not json");
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(true);
    rmSync(jsonPath);
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(false);
    expect(existsSync(jsonPath)).toBe(true);
    // A truncated plan, or one for another build-id, is never taken as a hit.
    truncateSync(miss.planPath, 100);
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(false);
    const plan = (await c.getOrPlan(lib, chain, host, { force: true })).plan;
    if (plan === undefined) throw new Error("no plan");
    writeFileSync(miss.planPath, encodePlan({ ...plan, module: { ...plan.module, buildId: "ffff" } }));
    expect((await c.ensurePlanned(lib, chain, host)).hit).toBe(false);
    expect(decodePlan(readFileSync(miss.planPath)).buildId).toBe(full.key.split("-")[0] ?? null);
    const many = await c.ensureMany([lib, "/usr/bin/true", lib], chain, host);
    expect(many.map((m) => m.path)).toEqual([lib, "/usr/bin/true", lib]);
    expect(many[0]).toBe(many[2] as (typeof many)[number]);
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

describe.skipIf(!haveCc)("PlanCache: a plan belongs to one module file (needs cc)", () => {
  const src = join(tmp, "id.c");
  const exe = join(tmp, "id");
  const SITE = Buffer.from([0x41, 0xbb, 0xef, 0xbe, 0xad, 0xde, 0x0f, 0x05]);
  beforeAll(() => {
    writeFileSync(
      src,
      '#include <unistd.h>\nint main(int c, char **v){long r; (void)v; __asm__ volatile("mov $0xdeadbeef, %%r11d\\n\\tsyscall" : "=a"(r) : "a"(39) : "rcx", "r11", "memory"); return c > 5 && r < 0;}\n',
    );
    expect(spawnSync("cc", ["-O1", "-g", "-Wl,--build-id", "-o", exe, src]).status).toBe(0);
  });

  it("a stripped copy (same build-id, another size) gets its own plan", async () => {
    const stripped = join(tmp, "id-stripped");
    expect(spawnSync("strip", ["-o", stripped, exe]).status).toBe(0);
    const cache = new PlanCache(join(tmp, "c-strip"));
    const a = await cache.getOrPlan(exe, [ud()], host);
    const b = await cache.getOrPlan(stripped, [ud()], host);
    expect(a.key.split("-")[0]).toBe(b.key.split("-")[0]); // one build-id
    expect(b.key).not.toBe(a.key);
    expect(b.planPath).not.toBe(a.planPath);
    expect(b.hit).toBe(false);
    expect(decodePlan(readFileSync(b.planPath)).moduleSize).toBe(statSync(stripped).size);
    expect((await cache.getOrPlan(exe, [ud()], host)).hit).toBe(true);
  });

  it("a copy with other bytes where the plan patches (same build-id and size) is planned again", async () => {
    const bytes = readFileSync(exe);
    const at = bytes.indexOf(SITE);
    expect(at).toBeGreaterThan(0);
    const copy = join(tmp, "id-copy");
    writeFileSync(copy, bytes, { mode: 0o755 });
    for (const ensure of [false, true]) {
      const cache = new PlanCache(join(tmp, `c-bytes-${ensure}`));
      const first = ensure ? await cache.ensurePlanned(copy, [ud()], host) : await cache.getOrPlan(copy, [ud()], host);
      expect((await cache.ensurePlanned(copy, [ud()], host)).hit).toBe(true);
      const edited = Buffer.from(bytes);
      edited[at + 6] = ensure ? 0x66 : 0x90; // the syscall becomes a 2-byte no-op
      edited[at + 7] = 0x90;
      writeFileSync(copy, edited);
      const again = ensure ? await cache.ensurePlanned(copy, [ud()], host) : await cache.getOrPlan(copy, [ud()], host);
      expect(again.key).toBe(first.key);
      expect(again.hit).toBe(false);
      writeFileSync(copy, bytes);
    }
  });
});

const root = process.getuid?.() === 0;
describe.skipIf(!root)("PlanCache trust (needs root to chown)", () => {
  it("replans a plan file someone else owns or may write, never reading it as a hit", async () => {
    const cache = new PlanCache(join(tmp, "c-trust"));
    const first = await cache.ensurePlanned("/usr/bin/true", [ud()], host);
    expect((await cache.ensurePlanned("/usr/bin/true", [ud()], host)).hit).toBe(true);
    chownSync(first.planPath, 65534, 65534);
    expect((await cache.ensurePlanned("/usr/bin/true", [ud()], host)).hit).toBe(false);
    expect(statSync(first.planPath).uid).toBe(0);
    chmodSync(first.planPath, 0o666);
    expect((await cache.ensurePlanned("/usr/bin/true", [ud()], host)).hit).toBe(false);
    expect(statSync(first.planPath).mode & 0o777).toBe(0o644);
  });

  it("refuses a cache directory someone else owns, or a plan directory in it", async () => {
    const dir = join(tmp, "c-theirs");
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, 65534, 65534);
    await expect(new PlanCache(dir).ensurePlanned("/usr/bin/true", [ud()], host)).rejects.toThrow(
      /refusing the cache directory .*c-theirs: .*c-theirs is owned by uid 65534/,
    );
    const mine = join(tmp, "c-mine");
    const c = new PlanCache(mine);
    const r = await c.ensurePlanned("/usr/bin/true", [ud()], host);
    chmodSync(dirname(r.planPath), 0o777);
    await expect(c.ensurePlanned("/usr/bin/true", [ud()], host)).rejects.toThrow(/is writable by group and others/);
  });
});
