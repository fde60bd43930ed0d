/**
 * sysi as a user gets it (issue 14): a local registry (verdaccio 6 on 127.0.0.1, storage in a
 * temp dir, started and stopped here; packages it does not hold come from the upstream npm
 * registry), every package published to it with `bun run release` from a copy of this checkout,
 * the published tarballs checked, the CLI installed into a fresh prefix with `bun add -g` (and
 * with `npm i -g`), then used: `sysi run` against the native run, `sysi plugins install
 * @sysi/punning` with an empty data dir, punning's runtime built on first use, uninstalled, and
 * the one-line error for the now unknown strategy. Skips, with the reason, when the upstream
 * registry cannot be reached or there is no C compiler.
 */
import { afterAll, describe, expect, it } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "..", "..", "..", "..");
const PACKAGES = ["@sysi/core", "@sysi/zpoline", "@sysi/ud2", "@sysi/punning", "@sysi/segmentation", "sysi"];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}) {
  const r = Bun.spawnSync(cmd, {
    cwd: opts.cwd ?? tmpdir(),
    env: (opts.env ?? process.env) as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 180_000,
  });
  return { code: r.exitCode ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() } as Result;
}

/** Why this test cannot run here, or null. */
async function skipReason(): Promise<string | null> {
  if (run(["sh", "-c", "command -v cc && command -v make"]).code !== 0) return "needs cc and make";
  const upstream = run(["npm", "config", "get", "registry"]).stdout.trim();
  if (!/^https?:\/\//.test(upstream)) return "npm has no registry configured";
  try {
    const r = await fetch(new URL("verdaccio", upstream.endsWith("/") ? upstream : `${upstream}/`), {
      signal: AbortSignal.timeout(15_000),
      headers: { accept: "application/vnd.npm.install-v1+json" },
    });
    if (!r.ok) return `the npm registry answered ${r.status}`;
  } catch (e) {
    return `the npm registry is unreachable (${(e as Error).message})`;
  }
  return null;
}

const reason = await skipReason();
if (reason !== null) process.stderr.write(`distribution.test.ts: skipped: ${reason}\n`);

const tmp = mkdtempSync(join(tmpdir(), "sysi-distribution-"));
let verdaccio: ReturnType<typeof Bun.spawn> | null = null;
afterAll(() => {
  if (verdaccio !== null) {
    try {
      process.kill(-(verdaccio.pid as number), "SIGTERM"); // its process group (setsid)
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

const state = {
  registry: "",
  token: "",
  versions: {} as Record<string, string>,
  prefix: join(tmp, "prefix"),
  home: join(tmp, "home"),
};

/** The environment of an installed sysi: the prefix's bin first, empty data/cache/config dirs. */
function userEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("SYSI_") || k === "DEBUG") delete env[k];
  return {
    ...env,
    PATH: `${join(state.prefix, "bin")}:${process.env.PATH}`,
    SYSI_DATA_DIR: join(state.home, "data"),
    SYSI_CACHE_DIR: join(state.home, "cache"),
    SYSI_CONFIG_DIR: join(state.home, "config"),
    SYSI_NPM_REGISTRY: state.registry,
    npm_config_cache: join(tmp, "npm-cache"),
    ...extra,
  };
}

function sysi(args: string[], cwd = tmp, extra: Record<string, string> = {}): Result {
  return run([join(state.prefix, "bin", "sysi"), ...args], { cwd, env: userEnv(extra) });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** The runtime libraries built in the cache so far (file names). */
function builtRuntimes(): string[] {
  const dir = join(state.home, "cache", "native");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((h) => {
    try {
      return readdirSync(join(dir, h)).filter((f) => f.endsWith(".so"));
    } catch {
      return [];
    }
  });
}

describe.skipIf(reason !== null)("distribution: publish, install and use sysi as a user would", () => {
  it("starts verdaccio on 127.0.0.1 and publishes every package with `bun run release`", async () => {
    const port = freePort();
    const vdir = join(tmp, "verdaccio");
    mkdirSync(join(vdir, "storage"), { recursive: true });
    const upstream = run(["npm", "config", "get", "registry"]).stdout.trim();
    writeFileSync(
      join(vdir, "config.yaml"),
      [
        `storage: ${join(vdir, "storage")}`,
        "auth:",
        `  htpasswd: { file: ${join(vdir, "htpasswd")}, max_users: 10 }`,
        `uplinks:`,
        `  upstream: { url: ${JSON.stringify(upstream)}, timeout: 60s }`,
        "packages:",
        // ours only from what is published here, never from upstream
        "  '@sysi/*': { access: $all, publish: $authenticated }",
        "  'sysi': { access: $all, publish: $authenticated }",
        "  '**': { access: $all, publish: $authenticated, proxy: upstream }",
        "web: { enable: false }",
        "max_body_size: 100mb",
        "log: { type: stdout, format: pretty, level: warn }",
        "",
      ].join("\n"),
    );
    state.registry = `http://127.0.0.1:${port}/`;
    verdaccio = Bun.spawn(
      [
        "setsid",
        "bunx",
        "--bun",
        "verdaccio@6",
        "--config",
        join(vdir, "config.yaml"),
        "--listen",
        `127.0.0.1:${port}`,
      ],
      { cwd: vdir, stdin: "ignore", stdout: Bun.file(join(vdir, "log")), stderr: Bun.file(join(vdir, "err")) },
    );
    const deadline = Date.now() + 150_000;
    let up = false;
    while (!up && Date.now() < deadline && verdaccio.exitCode === null) {
      up = await fetch(`${state.registry}-/ping`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await Bun.sleep(500);
    }
    if (!up) throw new Error(`verdaccio did not start: ${readFileSync(join(vdir, "err"), "utf8").slice(-500)}`);
    const user = await fetch(`${state.registry}-/user/org.couchdb.user:sysi-test`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "sysi-test", password: "sysi-test-password" }),
    });
    state.token = ((await user.json()) as { token: string }).token;
    expect(state.token).toBeTruthy();

    // A copy of the checkout as it is (tracked and new files): release versions it.
    const copy = join(tmp, "repo");
    mkdirSync(copy);
    const files = run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], { cwd: REPO })
      .stdout.split("\0")
      .filter((f) => f !== "" && existsSync(join(REPO, f)));
    writeFileSync(join(tmp, "files"), files.join("\0"));
    const tar = run(["sh", "-c", `tar --null -T "$1" -cf - | tar -xf - -C "$2"`, "sh", join(tmp, "files"), copy], {
      cwd: REPO,
    });
    expect(tar.stderr).toBe("");
    expect(run(["bun", "install"], { cwd: copy }).code).toBe(0);
    const rel = run(["bun", "run", "release", "--registry", state.registry], {
      cwd: copy,
      env: { ...process.env, NPM_CONFIG_TOKEN: state.token },
    });
    if (rel.code !== 0) throw new Error(`bun run release failed:\n${rel.stderr}`);
    for (const dir of [
      "packages/core",
      "packages/cli",
      "plugins/zpoline",
      "plugins/ud2",
      "plugins/punning",
      "plugins/segmentation",
    ]) {
      const pj = JSON.parse(readFileSync(join(copy, dir, "package.json"), "utf8"));
      state.versions[pj.name] = pj.version;
    }
    // dependencies first: core before the plugins, the plugins before the CLI
    const order = lines(rel.stderr)
      .map((l) => /^release: publishing (\S+)@/.exec(l)?.[1])
      .filter((n) => n !== undefined);
    expect(order.sort()).toEqual([...PACKAGES].sort());
    const at = (n: string) => lines(rel.stderr).findIndex((l) => l.startsWith(`release: publishing ${n}@`));
    for (const dep of ["@sysi/core", "@sysi/zpoline", "@sysi/ud2"]) expect(at(dep)).toBeLessThan(at("sysi"));
    expect(at("@sysi/core")).toBeLessThan(at("@sysi/punning"));
    // the lockfile follows the versions
    const lock = Bun.JSONC.parse(readFileSync(join(copy, "bun.lock"), "utf8")) as {
      workspaces: Record<string, { name?: string; version?: string }>;
    };
    for (const w of Object.values(lock.workspaces))
      if (w.name !== undefined && w.name in state.versions) expect(w.version).toBe(state.versions[w.name]);
  }, 300_000);

  it("published tarballs: no workspace: range, no tests, a LICENSE, a README, engines/os/cpu/license", async () => {
    const license = readFileSync(join(REPO, "LICENSE"), "utf8");
    for (const name of PACKAGES) {
      const meta = (await (await fetch(`${state.registry}${name.replace("/", "%2f")}`)).json()) as {
        versions: Record<string, { dist: { tarball: string } }>;
      };
      const version = state.versions[name] as string;
      const url = meta.versions[version]?.dist.tarball;
      expect(url).toBeTruthy();
      const dir = join(tmp, "tarballs", name.replace("/", "-"));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "p.tgz"), new Uint8Array(await (await fetch(url as string)).arrayBuffer()));
      const list = lines(run(["tar", "-tzf", join(dir, "p.tgz")]).stdout);
      expect(run(["tar", "-xzf", join(dir, "p.tgz"), "-C", dir]).code).toBe(0);
      const pkg = join(dir, "package");
      const pjText = readFileSync(join(pkg, "package.json"), "utf8");
      const pj = JSON.parse(pjText);
      expect({ name, workspace: pjText.includes("workspace:") }).toEqual({ name, workspace: false });
      expect({
        name,
        tests: list.filter((f) => /\/tests?\/|\.test\.ts$/.test(f) && !f.startsWith("package/native/tests/hard/")),
      }).toEqual({ name, tests: [] });
      expect(readFileSync(join(pkg, "LICENSE"), "utf8")).toBe(license);
      expect(existsSync(join(pkg, "README.md"))).toBe(true);
      expect([pj.license, pj.engines?.bun, pj.os, pj.cpu]).toEqual(["MIT", ">=1.4.5", ["linux"], ["x64"]]);
      // @sysi/core from its tarball: the default target builds the runtime, `hard` the testkit's programs
      if (name === "@sysi/core") {
        const out = join(dir, "build");
        const m = run(["make", "-s", "-C", join(pkg, "native"), `OUT=${out}`]);
        expect(m.stderr).toBe("");
        expect(readdirSync(out).sort()).toEqual(["libsysi.so", "obj", "sysi-hook-check"]);
        expect(run(["make", "-s", "-C", join(pkg, "native"), `OUT=${out}`, "hard"]).code).toBe(0);
        expect(existsSync(join(out, "tests", "clone3"))).toBe(true);
      }
      // what the on-demand runtime build needs is there
      if (name !== "sysi" || existsSync(join(REPO, "packages/cli/native/Makefile")))
        expect(existsSync(join(pkg, "native", "Makefile"))).toBe(true);
    }
  }, 120_000);

  it("installs the CLI into a fresh prefix with `bun add -g sysi`", () => {
    const r = run(["bun", "add", "-g", `sysi@${state.versions.sysi}`, "--registry", state.registry], {
      env: { ...process.env, BUN_INSTALL: state.prefix, BUN_INSTALL_CACHE_DIR: join(tmp, "bun-cache") },
    });
    if (r.code !== 0) throw new Error(`bun add -g failed:\n${r.stderr}`);
    expect(existsSync(join(state.prefix, "bin", "sysi"))).toBe(true);
    for (const d of ["data", "cache", "config"]) mkdirSync(join(state.home, d), { recursive: true });
    // the installed CLI does not bundle punning
    expect(existsSync(join(state.prefix, "install/global/node_modules/@sysi/punning"))).toBe(false);
  }, 180_000);

  it("`sysi run -- /bin/true` and `sysi run --hook count -- ls -la /usr/lib` behave as natively", () => {
    const t = sysi(["run", "--", "/bin/true"]);
    expect(t.stderr).not.toMatch(/^sysi: (internal )?error/m);
    expect(t.code).toBe(0);
    const native = run(["ls", "-la", "/usr/lib"]);
    const r = sysi(["run", "--hook", "count", "--", "ls", "-la", "/usr/lib"]);
    expect(r.code).toBe(native.code);
    expect(r.stdout).toBe(native.stdout);
    expect(r.stderr).toMatch(/^% time\s+seconds\s+usecs\/call\s+calls\s+errors syscall$/m);
    expect(r.stderr).not.toMatch(/punning/);
  }, 180_000);

  it("`sysi bench` from the installed copy: builds its programs into the cache on first use and prints figures", () => {
    const r = sysi(["bench", "--only", "ud2:int4", "--tiny"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const figures = (label: string) => {
      const line = lines(r.stdout).find((l) => l.startsWith(`${label}  `));
      return line === undefined
        ? null
        : line
            .slice(label.length)
            .trim()
            .split(/\s+/)
            .slice(0, 4)
            .map((v) => Number(v.replaceAll(",", "")));
    };
    // median, min, max and best 1-ms block of each row: positive numbers
    for (const label of [
      "native, inline syscall",
      "floor: indirect call, no syscall",
      "ud2:int4 + self-answer, inline syscall",
    ])
      expect({ label, ok: figures(label)?.every((v) => v > 0) }).toEqual({ label, ok: true });
    expect(r.stdout).toMatch(/^ {2}floor \(indirect call through a volatile pointer\): median [\d.]+ ns/m);
    expect(r.stdout).toMatch(/^ {2}ud2:int4: self-answer, median: nr 110: [\d,.]+ ns/m);
    // built once, into the cache, as the runtimes are
    const built = readdirSync(join(state.home, "cache", "bench"));
    expect(built).toHaveLength(1);
    expect(readdirSync(join(state.home, "cache", "bench", built[0] as string)).sort()).toEqual([
      "getppid",
      "libsysi-bench-self-answer.so",
      "spawn",
    ]);
  }, 180_000);

  it("`sysi plugins install @sysi/punning` with an empty data dir, then `-s punning,ud2` builds its runtime", () => {
    expect(readdirSync(join(state.home, "data"))).toEqual([]);
    const i = sysi(["plugins", "install", "@sysi/punning"]);
    if (i.code !== 0) throw new Error(`plugins install failed:\n${i.stderr}`);
    expect(builtRuntimes()).not.toContain("libsysi-punning.so");
    const native = run(["ls"], { cwd: "/usr/share" });
    const r = sysi(["run", "-s", "punning,ud2", "--hook", "count", "--", "ls"], "/usr/share");
    expect(r.stdout).toBe(native.stdout);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/chain punning,ud2; calls by strategy: punning [1-9]/);
    expect(builtRuntimes()).toContain("libsysi-punning.so");
    // the default chain uses what is installed
    expect(sysi(["run", "--", "/bin/true"]).stderr).toMatch(/chain punning,/);
    // and `sysi run` stays on its fast path: @oclif/core is never opened
    if (run(["sh", "-c", "command -v strace"]).code === 0) {
      const log = join(tmp, "strace.log");
      const s = run(
        [
          "strace",
          "-f",
          "-qq",
          "-e",
          "trace=openat",
          "-o",
          log,
          join(state.prefix, "bin", "sysi"),
          "run",
          "--",
          "/bin/true",
        ],
        {
          env: userEnv(),
        },
      );
      expect(s.code).toBe(0);
      const opened = readFileSync(log, "utf8");
      expect(opened).toContain("@sysi/punning");
      expect(opened).not.toContain("@oclif/core");
    }
  }, 180_000);

  it("uninstalled by its short name, punning is an unknown strategy: one error line, exit 2", () => {
    const u = sysi(["plugins", "uninstall", "punning"]);
    expect(u.code).toBe(0);
    expect(JSON.parse(readFileSync(join(state.home, "data", "package.json"), "utf8")).oclif.plugins).toEqual([]);
    const r = sysi(["run", "-s", "punning,ud2", "--", "ls"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^sysi: error: unknown strategy "punning" \(known: [^)]*ud2/);
  }, 120_000);

  it("the short name resolves: `sysi plugins install punning`", () => {
    const i = sysi(["plugins", "install", "punning"]);
    if (i.code !== 0) throw new Error(`plugins install punning failed:\n${i.stderr}`);
    const list = JSON.parse(readFileSync(join(state.home, "data", "package.json"), "utf8")).oclif.plugins;
    expect(list.map((p: { name: string }) => p.name)).toEqual(["@sysi/punning"]);
    expect(sysi(["plugins", "uninstall", "@sysi/punning"]).code).toBe(0);
  }, 120_000);

  it("`sysi plugins install @sysi/segmentation`: listed, probed, and used in a chain where page 0 maps", () => {
    const i = sysi(["plugins", "install", "@sysi/segmentation"]);
    if (i.code !== 0) throw new Error(`plugins install @sysi/segmentation failed:\n${i.stderr}`);
    const list = JSON.parse(sysi(["strategies", "--json"]).stdout) as {
      strategies: { name: string; source: string }[];
    };
    expect(list.strategies.find((x) => x.name === "segmentation")?.source).toBe("installed");
    const probe = sysi(["segmentation", "probe", "--json"]);
    expect(probe.code).toBe(0);
    expect(JSON.parse(probe.stdout)).toBeTruthy();
    const page0 = (JSON.parse(sysi(["doctor", "--json"]).stdout) as { facts: { checks: { page0?: boolean } } }).facts
      .checks.page0;
    if (page0 === true) {
      const native = run(["ls"], { cwd: "/usr/share" });
      const r = sysi(["run", "-s", "segmentation,ud2", "--hook", "count", "--", "ls"], "/usr/share");
      expect(r.stdout).toBe(native.stdout);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/calls by strategy: [^\n]*segmentation [1-9]/);
    }
    expect(sysi(["plugins", "uninstall", "@sysi/segmentation"]).code).toBe(0);
  }, 180_000);

  it("without Bun on PATH, the installed sysi says so in one line, exit 2", () => {
    const bin = join(tmp, "no-bun-bin");
    mkdirSync(bin);
    symlinkSync("/usr/bin/readlink", join(bin, "readlink"));
    const r = run([join(state.prefix, "bin", "sysi"), "run", "--", "/bin/true"], {
      env: { ...userEnv(), PATH: bin },
    });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^sysi: error: bun not found on PATH/)]);
  });

  it("`npm i -g sysi` works too (Bun on PATH)", () => {
    const prefix = join(tmp, "npm-prefix");
    const r = run(["npm", "i", "-g", "--prefix", prefix, `sysi@${state.versions.sysi}`, "--registry", state.registry], {
      env: {
        ...process.env,
        npm_config_cache: join(tmp, "npm-cache"),
        npm_config_audit: "false",
        npm_config_fund: "false",
      },
    });
    if (r.code !== 0) throw new Error(`npm i -g failed:\n${r.stderr}`);
    const t = run([join(prefix, "bin", "sysi"), "run", "--hook", "passthrough", "--", "/bin/echo", "hi"], {
      env: userEnv(),
    });
    expect(t.stdout).toBe("hi\n");
    expect(t.code).toBe(0);
  }, 180_000);
});
