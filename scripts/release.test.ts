/** scripts/release.ts: the publish order of this workspace and the tarball checks. */
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { dependencyOrder, tarballProblems, type WorkspacePackage, workspacePackages } from "./release.ts";

const ROOT = join(import.meta.dir, "..");

describe("release", () => {
  it("publishes this workspace's packages after the packages they depend on", () => {
    const pkgs = workspacePackages(ROOT);
    const order = dependencyOrder(pkgs).map((p) => p.name);
    expect(order.slice().sort()).toEqual(pkgs.map((p) => p.name).sort());
    for (const p of pkgs) for (const d of p.internal) expect(order.indexOf(d)).toBeLessThan(order.indexOf(p.name));
    expect(order[0]).toBe("@sysi/core");
    expect(order.at(-1)).toBe("sysi");
  });

  it("refuses a dependency cycle, naming it", () => {
    const p = (name: string, internal: string[]): WorkspacePackage => ({
      dir: "/",
      name,
      version: "1.0.0",
      private: false,
      internal,
    });
    expect(() => dependencyOrder([p("a", ["b"]), p("b", ["a"])])).toThrow("dependency cycle: a -> b -> a");
  });

  it("finds workspace: ranges, shipped tests and a missing LICENSE or README in a tarball", () => {
    const good = ["package/package.json", "package/LICENSE", "package/README.md", "package/src/index.ts"];
    expect(tarballProblems(good, '{"dependencies":{"@sysi/core":"^0.1.0"}}')).toEqual([]);
    expect(tarballProblems(good, '{"dependencies":{"@sysi/core":"workspace:^"}}')).toEqual([
      "package.json keeps a workspace: range",
    ]);
    expect(tarballProblems([...good, "package/native/tests/hooks/x.c"], "{}")[0]).toMatch(/^ships tests/);
    // the testkit's hard-case programs (@sysi/core) are fixtures it needs, not tests
    expect(tarballProblems([...good, "package/native/tests/hard/x.c"], "{}")).toEqual([]);
    expect(tarballProblems([...good, "package/src/a.test.ts"], "{}")[0]).toMatch(/^ships tests/);
    expect(tarballProblems(["package/package.json"], "{}")).toEqual(["has no LICENSE", "has no README.md"]);
  });
});
