import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scaffoldFiles } from "../src/scaffold.ts";
import { hasStack, lines, makeSysiHome, sysi } from "./helpers.ts";

const root = mkdtempSync(join(tmpdir(), "sysi-strategy-new-"));
const home = makeSysiHome();
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  home.cleanup();
});

describe("sysi strategy new", () => {
  it("writes a plugin whose package.json declares its version, the core range and the strategy module", async () => {
    const dir = join(root, "demo");
    const r = await sysi(["strategy", "new", "my-demo", dir], home.env);
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["README.md", "native", "package.json", "src", "test"]);
    expect(readdirSync(join(dir, "native")).sort()).toEqual(["Makefile", "my-demo.c"]);
    const pjson = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const core = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@sysi/core/package.json")), "utf8"));
    expect(pjson).toMatchObject({
      name: "sysi-strategy-my-demo",
      version: "0.1.0",
      sysi: { strategy: "./src/index.ts", core: `^${core.version}` },
      devDependencies: { "@sysi/core": `^${core.version}` },
    });
    expect(readFileSync(join(dir, "native", "my-demo.c"), "utf8")).toContain("sysi_my_demo_entry(void)");
    expect(readdirSync(root).filter((f) => f.startsWith("."))).toEqual([]);
  });

  const bad: [string, string[], RegExp][] = [
    [
      "an invalid name",
      ["strategy", "new", "My_Trap", join(root, "x")],
      /^sysi: error: invalid strategy name "My_Trap"/,
    ],
    ["a directory that is not empty", ["strategy", "new", "ok", root], /^sysi: error: .* exists and is not empty\n$/],
    ["a parent that does not exist", ["strategy", "new", "ok", join(root, "no/such/dir")], /does not exist\n$/],
  ];
  for (const [what, args, re] of bad)
    it(`refuses ${what} in one line, exit 2, leaving nothing behind`, async () => {
      const before = readdirSync(root).sort();
      const r = await sysi(args, home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(hasStack(r.stderr)).toBe(false);
      expect(readdirSync(root).sort()).toEqual(before);
    });

  it("fills an existing empty directory", async () => {
    const dir = join(root, "empty");
    mkdirSync(dir);
    expect((await sysi(["strategy", "new", "e", dir], home.env)).code).toBe(0);
    expect(readdirSync(dir)).toContain("package.json");
  });

  it("is what examples/sysi-strategy-int3trap holds (the example never goes stale)", () => {
    const core = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@sysi/core/package.json")), "utf8"));
    const example = join(import.meta.dir, "../../../examples/sysi-strategy-int3trap");
    for (const [rel, text] of Object.entries(scaffoldFiles({ name: "int3trap", coreVersion: core.version })))
      expect({ rel, text: readFileSync(join(example, rel), "utf8") }).toEqual({ rel, text });
  });
});
