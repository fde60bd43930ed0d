/**
 * CLI conventions across commands: one name for the strategy flag, --json on every reporting
 * command with errors as one JSON line on stderr (exit code as without --json), did-you-mean
 * for a mistyped command, `sysi --version` naming Bun, shell completion.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { closestCommand, editDistance } from "../src/hooks/not-found.ts";
import { CLI_ROOT, hasStack, lines, makeSysiHome, RUN_JS, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());

interface FlagDef {
  char?: string;
  aliases?: string[];
  hidden?: boolean;
}
interface CommandClass {
  flags?: Record<string, FlagDef>;
}

/** Every command module under src/commands (topics too), as "plan", "strategy:new". */
const COMMAND_DIR = join(CLI_ROOT, "src", "commands");
const COMMAND_FILES = readdirSync(COMMAND_DIR, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
  .map((f) => ({
    id: relative(".", f)
      .replace(/\.ts$/, "")
      .replace(/\/index$/, "")
      .replaceAll("/", ":"),
    f,
  }));
const commands = await Promise.all(
  COMMAND_FILES.map(async ({ id, f }) => ({
    id,
    cls: (await import(join(COMMAND_DIR, f))).default as CommandClass,
  })),
);

/**
 * Commands that report nothing (they make files, run or remove something): no --json needed.
 * plugins:uninstall wraps @oclif/plugin-plugins' own, which has none.
 */
const NOT_REPORTING = new Set(["strategy:new", "plugins:uninstall"]);

describe("flag names", () => {
  it("names the strategy flag --strategy (-s) on every command that takes one", () => {
    const taking: string[] = [];
    for (const { id, cls } of commands) {
      for (const [name, f] of Object.entries(cls.flags ?? {})) {
        if (!/^strateg/.test(name) && !(f.aliases ?? []).some((a) => /^strateg/.test(a))) continue;
        taking.push(id);
        expect(`${id} --${name} -${f.char}`).toBe(`${id} --strategy -s`);
      }
    }
    expect(taking).toEqual(expect.arrayContaining(["bench", "env", "plan", "run"]));
  });

  it("has --json on every reporting command", () => {
    const missing = commands.filter(({ id, cls }) => !NOT_REPORTING.has(id) && cls.flags?.json === undefined);
    expect(missing.map((c) => c.id)).toEqual([]);
  });

  it("still takes plan's old --strategies, without showing it", async () => {
    const old = await sysi(["plan", "--strategies", "ud2", "--json", "/bin/true"], home.env);
    const now = await sysi(["plan", "-s", "ud2", "--json", "/bin/true"], home.env);
    expect(old.code).toBe(0);
    expect(JSON.parse(old.stdout).plans[0].stats).toEqual(JSON.parse(now.stdout).plans[0].stats);
    const help = await sysi(["plan", "--help"], home.env);
    expect(help.stdout).toContain("--strategy=");
    expect(help.stdout).not.toContain("--strategies");
  });
});

describe("errors under --json", () => {
  // Each: the arguments with --json; the same without gives the text line and the same exit code.
  const cases: [string, string[], Record<string, string>?][] = [
    ["plan: unknown strategy", ["plan", "--json", "-s", "nope", "/bin/true"]],
    ["scan: unknown flag", ["scan", "--json", "--bogus", "/bin/true"]],
    ["doctor: unknown flag", ["doctor", "--json", "--nope"]],
    ["bench: out-of-range value", ["bench", "--json", "--rounds", "0"]],
    ["stats: missing file", ["stats", "--json", "/nonexistent/stats"]],
    ["env: unknown strategy", ["env", "--json", "-s", "nope", "--", "/bin/true"]],
    ["env --format json: unknown strategy", ["env", "--format", "json", "-s", "nope", "--", "/bin/true"]],
    ["run (fast path): unknown strategy", ["run", "--json", "-s", "nope", "--", "/bin/true"]],
    ["run (oclif): unknown strategy", ["run", "--json", "-s", "nope", "--", "/bin/true"], { SYSI_NO_FAST_RUN: "1" }],
    ["run: missing program", ["run", "--json", "--", "/nonexistent/prog"]],
    ["a mistyped command", ["scna", "--json", "/bin/true"]],
  ];
  for (const [what, args, extra] of cases) {
    it(`prints one JSON error line on stderr, nothing on stdout, same exit code: ${what}`, async () => {
      const env = { ...home.env, ...extra };
      const r = await sysi(args, env);
      const text = await sysi(
        args.filter((a, i) => a !== "--json" && !(a === "json" && args[i - 1] === "--format") && a !== "--format"),
        env,
      );
      expect(r.code).toBe(2);
      expect(r.code).toBe(text.code);
      expect(r.stdout).toBe("");
      expect(lines(r.stderr)).toHaveLength(1);
      expect(hasStack(r.stderr)).toBe(false);
      const e = (JSON.parse(r.stderr) as { error: { code: string; message: string; suggestions?: string[] } }).error;
      expect(e.code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      // the same error as the text line, `sysi: error: message (suggestion; …)`
      const tail = e.suggestions === undefined ? "" : ` (${e.suggestions.join("; ")})`;
      expect(lines(text.stderr)).toEqual([`sysi: error: ${e.message}${tail}`]);
    });
  }

  it("leaves a --json after -- to the program", async () => {
    const r = await sysi(["run", "-s", "nope", "--", "/bin/echo", "--json"], home.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("sysi: error: ");
  });
});

describe("did you mean", () => {
  it("names the closest command in the one error line, exit 2", async () => {
    for (const [typed, meant] of [
      ["scna", "scan"],
      ["scna /bin/true", "scan"],
      ["plugins instal", "plugins install"],
      ["doctr", "doctor"],
      ["pln", "plan"],
    ]) {
      const r = await sysi((typed as string).split(" "), home.env);
      expect(r.code).toBe(2);
      const cmd = (typed as string).replace(" /bin/true", "");
      expect(lines(r.stderr)).toEqual([`sysi: error: command ${cmd} not found (did you mean "sysi ${meant}"?)`]);
    }
  });

  it("names none when nothing is close, and points at --help", async () => {
    const r = await sysi(["xyzzyq"], home.env);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(["sysi: error: command xyzzyq not found (sysi --help lists the commands)"]);
  });

  it("finds commands by edit distance or a unique prefix", () => {
    const ids = ["bench", "doctor", "env", "plan", "run", "scan", "stats", "plugins:install"];
    const table: [string, string | null][] = [
      ["rn", "run"],
      ["ben", "bench"],
      ["stat", "stats"],
      ["sacn", "scan"],
      ["plugins:instal", "plugins:install"],
      ["completely-off", null],
      ["e", "env"],
      ["s", null],
    ];
    for (const [typed, want] of table) expect(`${typed} → ${closestCommand(typed, ids)}`).toBe(`${typed} → ${want}`);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });
});

describe("sysi --version", () => {
  it("names the CLI's version and the Bun that runs it", async () => {
    const r = await sysi(["--version"], home.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const bun = Bun.spawnSync([process.execPath, "--version"]).stdout.toString().trim();
    const pj = (await Bun.file(join(CLI_ROOT, "package.json")).json()) as { version: string };
    expect(r.stdout).toStartWith(`sysi/${pj.version} linux-x64 bun-${bun} `);
  });
});

describe("shell completion", () => {
  it("bash completes command names and flags from `sysi autocomplete script bash`", () => {
    const sysiCmd = `"${process.execPath}" "${RUN_JS}"`;
    // `sysi autocomplete bash` builds the completion cache (and prints how to set it up)
    const script = `${sysiCmd} autocomplete bash > /dev/null 2>&1 || exit 9
eval "$(${sysiCmd} autocomplete script bash)"
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; _sysi_autocomplete; echo "\${COMPREPLY[*]}"; }
complete_words sysi sc
complete_words sysi plan --st
complete_words sysi doctor --j`;
    const r = Bun.spawnSync(["bash", "-c", script], {
      // without bun test's NODE_ENV=test, in which oclif warns about plugin-autocomplete's commands
      env: { ...(process.env as Record<string, string>), ...home.env, HOME: home.dir, NODE_ENV: "production" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString()).toBe("");
    expect(lines(r.stdout.toString())).toEqual(["scan", "--strategy", "--json"]);
  });
});
