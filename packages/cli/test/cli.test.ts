import { afterAll, describe, expect, it } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { CLI_ROOT, hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());

/** Every command file the CLI ships (plan/run included once they exist). */
const COMMANDS = readdirSync(join(CLI_ROOT, "src", "commands"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
  .map((f) => f.replace(/\.ts$/, ""));

describe("sysi help", () => {
  it("lists every command in --help", async () => {
    const r = await sysi(["--help"], home.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\s`, "m"));
  });

  for (const c of COMMANDS) {
    it(`prints usage for ${c} --help`, async () => {
      const r = await sysi([c, "--help"], home.env);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("USAGE");
      expect(r.stdout).toContain(`sysi ${c}`);
      expect(r.stderr).toBe("");
    });
  }
});

describe("sysi usage errors", () => {
  const cases: [string, string[], RegExp][] = [
    ["an unknown flag", ["scan", "--bogus", "/usr/bin/true"], /^sysi: error: Nonexistent flag: --bogus/],
    ["a missing argument", ["scan"], /^sysi: error: Missing 1 required arg/],
    ["an unknown flag on doctor", ["doctor", "--nope"], /^sysi: error: Nonexistent flag: --nope/],
    ["an unknown command", ["frobnicate"], /^sysi: error: command frobnicate not found/],
    // a mistyped option must not plan (and run) with every site refused
    [
      "an unknown trap of ud2",
      ["run", "-s", "ud2:int5", "--", "/bin/true"],
      /^sysi: error: strategy "ud2": unknown trap "int5" \(use ud2, int3, hlt or int4\)$/m,
    ],
    [
      "an unknown punning tactic",
      ["plan", "-s", "punning:tactics=jmp+bogus", "/bin/true"],
      /^sysi: error: strategy "punning": unknown tactic "bogus"/,
    ],
    [
      "an option zpoline does not take",
      ["plan", "-s", "zpoline:fast", "/bin/true"],
      /^sysi: error: strategy "zpoline": takes no options \(got "fast"\)$/m,
    ],
  ];
  for (const [what, args, re] of cases) {
    it(`exits 2 with one line for ${what}`, async () => {
      const r = await sysi(args, home.env);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(hasStack(r.stderr)).toBe(false);
    });
  }
});
