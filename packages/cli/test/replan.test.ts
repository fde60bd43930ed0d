import { afterAll, describe, expect, it } from "bun:test";
import { makeSysiHome, sysi, TRUE_BIN } from "./helpers.ts";

/** The modules `sysi run -v` lists, each with whether it was planned in this run. */
function modules(stderr: string): { path: string; planned: boolean }[] {
  const line = stderr.split("\n").find((l) => l.startsWith("sysi: chain ") && l.includes("; modules: "));
  if (line === undefined) throw new Error(`no modules line in:\n${stderr}`);
  return (line.split("; modules: ")[1] as string)
    .split(", ")
    .map((m) => ({ path: m.replace(/ \(planned\)$/, ""), planned: m.endsWith(" (planned)") }));
}

describe("sysi run --replan", () => {
  const home = makeSysiHome();
  afterAll(() => home.cleanup());

  it("plans every module again instead of using the cache, and the next run uses the new plans", async () => {
    const first = await sysi(["run", "-v", "-s", "ud2", "--hook", "passthrough", "--", TRUE_BIN], home.env);
    expect(first.code).toBe(0);
    expect(modules(first.stderr).every((m) => m.planned)).toBe(true);
    const warm = await sysi(["run", "-v", "-s", "ud2", "--hook", "passthrough", "--", TRUE_BIN], home.env);
    expect(modules(warm.stderr).map((m) => m.planned)).toEqual(modules(first.stderr).map(() => false));

    const replan = await sysi(
      ["run", "-v", "--replan", "-s", "ud2", "--hook", "passthrough", "--", TRUE_BIN],
      home.env,
    );
    expect(replan.code).toBe(0);
    const again = modules(replan.stderr);
    expect(again.map((m) => m.path)).toEqual(modules(first.stderr).map((m) => m.path));
    expect(again.every((m) => m.planned)).toBe(true);

    const after = await sysi(["run", "-v", "-s", "ud2", "--hook", "passthrough", "--", TRUE_BIN], home.env);
    expect(modules(after.stderr).every((m) => !m.planned)).toBe(true);
  });
});
