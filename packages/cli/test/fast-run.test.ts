/**
 * The `sysi run` start-up fast path (src/run/fast-run.ts) against its oracle, oclif itself: the
 * same flags and command words as oclif's parser, the same plugins as oclif's Config, and the
 * same observable behaviour through bin/run.js with and without the fast path.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Config, Parser, settings } from "@oclif/core";
import Run from "../src/commands/run.ts";
import {
  commandWords,
  fastPluginList,
  oclifDataDir,
  RUN_FLAG_SPECS,
  RUN_HOOK_DEFAULT,
  runFlags,
  scanRunArgv,
} from "../src/run/fast-run.ts";
import { CLI_ROOT, hasStack, lines, makeSysiHome, RUN_JS, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());
// As bin/run.js does: Bun runs the TypeScript commands itself.
settings.enableAutoTranspile = false;

/** oclif's own parse of `sysi run <argv>` (strict: false), or the error message it throws. */
async function oclifParse(argv: string[]) {
  try {
    const r = await Parser.parse(argv, { flags: Run.flags, args: Run.args, strict: Run.strict });
    return { flags: r.flags as Record<string, unknown>, argv: r.argv as string[] };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe("RUN_FLAG_SPECS", () => {
  it("describes exactly the flags of commands/run.ts", () => {
    const fromCommand = Object.entries(Run.flags)
      .map(([name, f]) => ({ name, char: f.char, type: f.type }))
      .sort((a, b) => a.name.localeCompare(b.name));
    const fromSpecs = [...RUN_FLAG_SPECS]
      .map((s) => ({ name: s.name, char: s.char, type: s.type }))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(fromSpecs).toEqual(fromCommand);
    expect(Run.flags.hook.default).toBe(RUN_HOOK_DEFAULT);
    for (const [name, f] of Object.entries(Run.flags)) {
      // the fast path repeats only what its specs say may repeat (-e, as strace's)
      const spec = RUN_FLAG_SPECS.find((x) => x.name === name) as { multiple?: boolean } | undefined;
      expect((f as { multiple?: boolean }).multiple ?? false).toBe(spec?.multiple ?? false);
      expect((f as { allowNo?: boolean }).allowNo ?? false).toBe(false);
      expect(f.aliases ?? []).toEqual([]);
    }
  });
});

describe("scanRunArgv", () => {
  const table: string[][] = [
    ["--", "/bin/true"],
    ["/bin/true"],
    ["ls", "/tmp"],
    ["-s", "ud2", "--", "echo", "hi"],
    ["-sud2", "--hook", "trace", "-o", "out.txt", "--json", "--", "echo"],
    ["-s=zpoline,ud2", "--hook=passthrough", "-v", "--", "echo", "-v", "--json"],
    ["--strategy", "punning", "-e", "read,write", "--verbose", "echo"],
    ["-vs", "ud2", "--", "echo"],
    ["--json", "--", "--", "x"],
    ["--", "sh", "-c", "echo $0", "sh"],
    ["-s", "ud2", "--", "echo", "ud2"],
    ["ls", "-la"],
    ["--bogus", "--", "echo"],
    ["--json=yes", "--", "echo"],
    ["--help"],
    ["echo", "--help"],
    ["-", "x"],
    ["-1", "x"],
    ["-o", "--", "echo"],
    ["-s", "ud2", "-s", "zpoline", "--", "echo"],
    ["-s"],
    ["-s", "-v", "--", "echo"],
    ["--output"],
    [],
  ];
  for (const argv of table) {
    it(`classifies ${JSON.stringify(argv)} as oclif's parser does`, async () => {
      const oclif = await oclifParse(argv);
      const scanned = scanRunArgv(argv);
      if ("error" in oclif) {
        // No command: the fast path declines and oclif reports it. A bad flag: scanRunArgv says so.
        if (/required arg/i.test(oclif.error as string)) expect(scanned?.words ?? []).toEqual([]);
        else expect(scanned).toBeNull();
        return;
      }
      expect(scanned).not.toBeNull();
      const s = scanned as NonNullable<typeof scanned>;
      // Same words (as a multiset), and in the order given.
      expect([...s.words].sort()).toEqual([...oclif.argv].sort());
      const flags = runFlags(s.values);
      for (const k of ["strategy", "hook", "output", "filter"] as const)
        expect(flags[k]).toEqual(oclif.flags[k] as never);
      for (const k of ["json", "verbose"] as const) expect(flags[k]).toBe((oclif.flags[k] ?? false) as boolean);
      const dashdash = argv.indexOf("--");
      if (dashdash >= 0 && s.plain) expect(s.words).toEqual(argv.slice(dashdash + 1));
    });
  }

  it("keeps repeated words and words equal to flag values in order (oclif reorders them)", async () => {
    const argv = ["-s", "ud2", "--", "sh", "-c", 'echo "$0 $1"', "ud2", "sh"];
    const oclif = await oclifParse(argv);
    expect(oclif.argv).not.toEqual(argv.slice(3)); // the oclif behaviour commandWords works around
    expect(commandWords(argv, oclif.argv as string[])).toEqual(argv.slice(3));
    expect(scanRunArgv(argv)?.words).toEqual(argv.slice(3));
  });

  it("falls back to oclif's words when they differ as a multiset", () => {
    expect(commandWords(["--", "a", "b"], ["a", "c"])).toEqual(["a", "c"]);
  });
});

describe("fastPluginList", () => {
  it("lists the plugins oclif's Config loads (name, type, root), given no user plugins", async () => {
    const env = { ...process.env, ...home.env };
    const saved = process.env.SYSI_DATA_DIR;
    process.env.SYSI_DATA_DIR = home.env.SYSI_DATA_DIR;
    try {
      const config = await Config.load({ root: CLI_ROOT });
      const oclif = config
        .getPluginsList()
        .map((p) => `${p.name} ${p.type} ${p.root} ${p.version}`)
        .sort();
      const fast = fastPluginList(CLI_ROOT, env);
      expect(fast).not.toBeNull();
      expect((fast ?? []).map((p) => `${p.name} ${p.type} ${p.root} ${p.version}`).sort()).toEqual(oclif);
    } finally {
      if (saved === undefined) delete process.env.SYSI_DATA_DIR;
      else process.env.SYSI_DATA_DIR = saved;
    }
  });

  /** A data dir listing one installed and one linked strategy-like plugin, as plugin-plugins writes it. */
  function dataDirWithPlugins(name: string, linkedOclif: Record<string, unknown> = {}): string {
    const data = join(home.dir, name);
    const inst = join(data, "node_modules", "@x", "installed");
    const linked = join(home.dir, `${name}-linked`);
    mkdirSync(inst, { recursive: true });
    mkdirSync(linked, { recursive: true });
    const pj = (n: string, oclif: Record<string, unknown>) =>
      JSON.stringify({
        name: n,
        version: "1.2.3",
        type: "module",
        exports: "./index.js",
        oclif,
        sysi: { strategy: "./index.js" },
      });
    writeFileSync(join(inst, "package.json"), pj("@x/installed", {}));
    writeFileSync(join(inst, "index.js"), "export default null;\n");
    writeFileSync(join(linked, "package.json"), pj("@x/linked", linkedOclif));
    writeFileSync(join(linked, "index.js"), "export default null;\n");
    writeFileSync(
      join(data, "package.json"),
      JSON.stringify({
        private: true,
        oclif: {
          schema: 1,
          plugins: [
            { name: "@x/linked", type: "link", root: linked },
            { name: "@x/installed", type: "user", tag: "latest" },
          ],
        },
        dependencies: { "@x/installed": "^1.2.3" },
      }),
    );
    return data;
  }

  it("lists installed and linked plugins as oclif's Config does (so they keep the fast path)", async () => {
    const data = dataDirWithPlugins("data-with-plugins");
    const saved = process.env.SYSI_DATA_DIR;
    process.env.SYSI_DATA_DIR = data;
    try {
      const config = await Config.load({ root: CLI_ROOT });
      const show = (l: readonly { name: string; type: string; root: string; version: string }[]) =>
        l.map((p) => `${p.name} ${p.type} ${p.root} ${p.version}`).sort();
      const oclif = show(config.getPluginsList());
      expect(oclif.some((l) => l.startsWith("@x/installed user "))).toBe(true);
      expect(oclif.some((l) => l.startsWith("@x/linked link "))).toBe(true);
      const fast = fastPluginList(CLI_ROOT, { ...home.env, SYSI_DATA_DIR: data });
      expect(fast).not.toBeNull();
      expect(show(fast ?? [])).toEqual(oclif);
    } finally {
      if (saved === undefined) delete process.env.SYSI_DATA_DIR;
      else process.env.SYSI_DATA_DIR = saved;
    }
  });

  it("declines when the data dir is unreadable or odd, or a user plugin has commands or hooks", () => {
    const data = join(home.dir, "data-odd");
    mkdirSync(data);
    const env = { ...home.env, SYSI_DATA_DIR: data };
    expect(fastPluginList(CLI_ROOT, env)).not.toBeNull();
    writeFileSync(join(data, "package.json"), JSON.stringify({ oclif: { plugins: [] } }));
    expect(fastPluginList(CLI_ROOT, env)).not.toBeNull();
    writeFileSync(join(data, "package.json"), JSON.stringify({ oclif: { plugins: [{ name: "@x/y", type: "link" }] } }));
    expect(fastPluginList(CLI_ROOT, env)).toBeNull();
    writeFileSync(
      join(data, "package.json"),
      JSON.stringify({ oclif: { plugins: [{ name: "@x/gone", type: "user" }] } }),
    );
    expect(fastPluginList(CLI_ROOT, env)).toBeNull();
    writeFileSync(join(data, "package.json"), "{ not json");
    expect(fastPluginList(CLI_ROOT, env)).toBeNull();
    const withCommands = dataDirWithPlugins("data-commands", { commands: "./commands" });
    expect(fastPluginList(CLI_ROOT, { ...home.env, SYSI_DATA_DIR: withCommands })).toBeNull();
    const withHook = dataDirWithPlugins("data-hook", { hooks: { init: "./init.js" } });
    expect(fastPluginList(CLI_ROOT, { ...home.env, SYSI_DATA_DIR: withHook })).toBeNull();
  });

  it("declines for a CLI whose plugins hook the command lifecycle", () => {
    const root = join(home.dir, "hooked-cli");
    mkdirSync(root);
    writeFileSync(
      join(root, "package.json"),
      JSON.stringify({ name: "x", version: "1.0.0", oclif: { hooks: { prerun: "./h.js" }, plugins: [] } }),
    );
    expect(fastPluginList(root, home.env)).toBeNull();
    writeFileSync(
      join(root, "package.json"),
      JSON.stringify({ name: "x", version: "1.0.0", oclif: { plugins: ["@x/*"] }, dependencies: { "@x/a": "1" } }),
    );
    expect(fastPluginList(root, home.env)).toBeNull();
  });

  it("finds oclif's data dir the way oclif does", () => {
    expect(oclifDataDir({ SYSI_DATA_DIR: "/d", XDG_DATA_HOME: "/x", HOME: "/h" })).toBe("/d");
    expect(oclifDataDir({ XDG_DATA_HOME: "/x", HOME: "/h" })).toBe("/x/sysi");
    expect(oclifDataDir({ HOME: "/h" })).toBe("/h/.local/share/sysi");
  });
});

describe("sysi run through bin/run.js, with and without the fast path", () => {
  // -s ud2: the strategy that applies everywhere; the chain is not what these tests are about.
  const paths: [string, Record<string, string>][] = [
    ["fast path", home.env],
    ["oclif", { ...home.env, SYSI_NO_FAST_RUN: "1" }],
  ];
  for (const [name, env] of paths) {
    it(`${name}: passes the command's words in order, its output and its exit status`, async () => {
      const r = await sysi(
        ["run", "--hook", "passthrough", "-s", "ud2", "--", "sh", "-c", 'echo "$0 $1"; exit 7', "ud2", "sh"],
        env,
      );
      expect(r.stdout).toBe("ud2 sh\n");
      expect(r.code).toBe(7);
    }, 120_000);

    it(`${name}: exits 128+n when the program is killed by signal n`, async () => {
      const r = await sysi(["run", "--hook", "passthrough", "-s", "ud2", "--", "sh", "-c", "kill -TERM $$"], env);
      expect(r.code).toBe(143);
    }, 120_000);

    it(`${name}: prints the count summary, or writes it with -o --json`, async () => {
      const r = await sysi(["run", "-s", "ud2", "--", "/bin/true"], env);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^% time\s+seconds\s+usecs\/call\s+calls\s+errors syscall$/m);
      expect(r.stderr).toMatch(/^\s+-\s+-\s+-\s+1\s+exit_group$/m);
      const out = join(home.dir, `${name.replace(/\W/g, "")}.json`);
      const j = await sysi(["run", "-s", "ud2", "--json", "-o", out, "--", "/bin/true"], env);
      expect(j.code).toBe(0);
      const doc = JSON.parse(await Bun.file(out).text());
      expect(doc.syscalls.find((s: { name: string }) => s.name === "exit_group")?.calls).toBe(1);
    }, 120_000);

    it(`${name}: reports a missing program in one line, exit 2`, async () => {
      const r = await sysi(["run", "--", "/no/such/program"], env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual(["sysi: error: /no/such/program: no such file"]);
      expect(hasStack(r.stderr)).toBe(false);
    }, 120_000);
  }

  it("replans a program replaced at the same path (a stale plan is never used)", async () => {
    const prog = join(home.dir, "prog");
    copyFileSync("/usr/bin/true", prog);
    const planned = (stderr: string) => lines(stderr).find((l) => l.startsWith("sysi: chain ")) ?? "";
    const first = await sysi(["run", "-v", "--hook", "passthrough", "-s", "ud2", "--", prog], home.env);
    expect(first.code).toBe(0);
    const second = await sysi(["run", "-v", "--hook", "passthrough", "-s", "ud2", "--", prog], home.env);
    expect(planned(second.stderr)).toContain(`${prog},`);
    expect(planned(second.stderr)).not.toContain(`${prog} (planned)`);
    copyFileSync("/usr/bin/false", prog);
    const third = await sysi(["run", "-v", "--hook", "passthrough", "-s", "ud2", "--", prog], home.env);
    expect(third.code).toBe(1);
    expect(planned(third.stderr)).toContain(`${prog} (planned)`);
  }, 120_000);

  it("leaves help and usage errors to oclif", async () => {
    const help = await sysi(["run", "--help"], home.env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("USAGE");
    const missing = await sysi(["run"], home.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^sysi: error: Missing 1 required arg/);
    const twice = await sysi(["run", "-s", "ud2", "-s", "ud2", "--", "/bin/true"], home.env);
    expect(twice.code).toBe(2);
    expect(lines(twice.stderr)).toEqual(["sysi: error: Flag --strategy can only be specified once"]);
    const unknown = await sysi(["run", "ls", "-la"], home.env);
    expect(unknown.code).toBe(2);
    expect(lines(unknown.stderr)).toEqual(["sysi: error: Nonexistent flag: -la"]);
  }, 120_000);

  const strace = Bun.which("strace");
  it.skipIf(strace === null)(
    "does not load @oclif/core for a plain `sysi run` (needs strace)",
    async () => {
      const files = (env: Record<string, string>) => {
        const r = Bun.spawnSync(
          [
            strace as string,
            "-f",
            "-e",
            "trace=openat",
            process.execPath,
            RUN_JS,
            "run",
            "--hook",
            "passthrough",
            "--",
            "/bin/true",
          ],
          { env: { ...(process.env as Record<string, string>), ...env }, stdout: "pipe", stderr: "pipe" },
        );
        expect(r.exitCode).toBe(0);
        return r.stderr.toString();
      };
      expect(files(home.env)).not.toMatch(/@oclif\/core\//);
      // The oracle that the check can fail: the oclif path does load it.
      expect(files({ ...home.env, SYSI_NO_FAST_RUN: "1" })).toMatch(/@oclif\/core\//);
    },
    120_000,
  );
});
