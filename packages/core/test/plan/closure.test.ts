import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { moduleClosure } from "../../src/plan/closure.ts";

const tmp = mkdtempSync(join(tmpdir(), "sysi-closure-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** ldd's view: every mapped object except the vDSO, realpath'ed. */
function lddModules(exe: string, env: Record<string, string> = {}): string[] {
  const r = spawnSync("ldd", [exe], { encoding: "utf8", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`ldd ${exe}: ${r.stderr}`);
  const out: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const arrow = /=>\s+(\/\S+)\s+\(/.exec(line);
    const bare = /^\s+(\/\S+)\s+\(/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p !== undefined) out.push(realpathSync(p));
  }
  return out;
}

const haveLdd = spawnSync("ldd", ["--version"]).status === 0;
const haveCc = spawnSync("cc", ["--version"]).status === 0;
const programs = ["/usr/bin/ls", "/usr/bin/python3", "/usr/bin/git"].filter((p) => existsSync(p));

describe("moduleClosure", () => {
  for (const exe of programs) {
    it.skipIf(!haveLdd)(`matches ldd for ${exe} (needs ldd)`, async () => {
      const mods = await moduleClosure(exe);
      expect(mods[0]).toBe(realpathSync(exe));
      expect(new Set(mods).size).toBe(mods.length);
      expect([...mods.slice(1)].sort()).toEqual([...lddModules(exe)].sort());
    });
  }

  it.skipIf(!haveLdd || !haveCc)(
    "honours DT_RUNPATH with $ORIGIN and LD_LIBRARY_PATH like ld.so (needs ldd, cc)",
    async () => {
      const lib = join(tmp, "lib");
      mkdirSync(lib);
      const src = join(tmp, "a.c");
      await Bun.write(src, "int a(void){return 1;}\n");
      const main = join(tmp, "m.c");
      await Bun.write(main, "int a(void); int main(void){return a()-1;}\n");
      expect(spawnSync("cc", ["-shared", "-fPIC", "-o", join(lib, "liba.so"), src]).status).toBe(0);
      const exe = join(tmp, "m");
      const link = spawnSync("cc", ["-o", exe, main, `-L${lib}`, "-la", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"]);
      expect(link.status).toBe(0);
      const mods = await moduleClosure(exe, { ldLibraryPath: "" });
      expect(mods).toContain(realpathSync(join(lib, "liba.so")));
      expect(mods.slice(1).sort()).toEqual(lddModules(exe, { LD_LIBRARY_PATH: "" }).sort());
      // LD_LIBRARY_PATH wins over DT_RUNPATH.
      const other = join(tmp, "other");
      mkdirSync(other);
      copyFileSync(join(lib, "liba.so"), join(other, "liba.so"));
      const mods2 = await moduleClosure(exe, { ldLibraryPath: other });
      expect(mods2).toContain(realpathSync(join(other, "liba.so")));
      expect(mods2.slice(1).sort()).toEqual(lddModules(exe, { LD_LIBRARY_PATH: other }).sort());
    },
  );
});
