/**
 * Statically linked executables: LD_PRELOAD never reaches them, so `sysi run` runs a patched copy
 * (the runtime linked in); a static-pie, which `sysi patch` cannot rewrite yet, is refused with a
 * one-line error instead of running uninstrumented. The oracle is the compiler: the same C
 * file linked dynamically, -static and -static-pie.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStaticExecutable } from "../src/run/prepare.ts";
import { makeSysiHome, sysi } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "sysi-static-"));
const home = makeSysiHome();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  home.cleanup();
});

writeFileSync(join(dir, "hi.c"), '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n');
function build(name: string, flags: string[]): string | null {
  const out = join(dir, name);
  const r = Bun.spawnSync(["cc", ...flags, "-o", out, join(dir, "hi.c")], { stderr: "pipe" });
  return r.exitCode === 0 ? out : null;
}
const hasCc = Bun.which("cc") !== null;
const dyn = hasCc ? build("hi-dyn", []) : null;
const stat = hasCc ? build("hi-static", ["-static"]) : null;
const spie = hasCc ? build("hi-static-pie", ["-static-pie"]) : null;
const LDSO = "/lib64/ld-linux-x86-64.so.2";

describe("isStaticExecutable", () => {
  it.skipIf(dyn === null)("a dynamically linked program is not static (needs cc)", () => {
    expect(isStaticExecutable(dyn as string)).toBe(false);
  });
  it.skipIf(stat === null)("-static is (needs cc and a static libc)", () => {
    expect(isStaticExecutable(stat as string)).toBe(true);
  });
  it.skipIf(spie === null)("-static-pie is (needs cc with static-pie support)", () => {
    expect(isStaticExecutable(spie as string)).toBe(true);
  });
  it.skipIf(!existsSync(LDSO))("the dynamic loader itself is not (it has no PT_INTERP either)", () => {
    expect(isStaticExecutable(LDSO)).toBe(false);
  });
  it("files that are not ELF executables are not", () => {
    writeFileSync(join(dir, "script"), "#!/bin/sh\necho hi\n");
    expect(isStaticExecutable(join(dir, "script"))).toBe(false);
    expect(isStaticExecutable(join(dir, "missing"))).toBe(false);
  });
});

describe("sysi run on a static executable", () => {
  it.skipIf(stat === null)(
    "-static: runs as a patched copy, output as native, counted from its first call",
    async () => {
      const r = await sysi(
        ["run", "-s", "ud2", "--hook", "count", "--json", "-o", join(dir, "c.json"), "--", stat as string],
        home.env,
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("hi\n");
      const counts = JSON.parse(await Bun.file(join(dir, "c.json")).text());
      const names = counts.syscalls.map((s: { name: string }) => s.name);
      expect(names).toContain("write"); // puts, from the program's own (patched) code
      expect(names).toContain("exit_group");
      expect(counts.escapes.beforeRuntime.images).toBe(0); // nothing of it ran before the runtime
    },
  );
  it.skipIf(spie === null)("-static-pie: one-line error, exit 2, the program does not run", async () => {
    const r = await sysi(["run", "-s", "ud2", "--", spie as string], home.env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^sysi: error: \S+ is statically linked: [^\n]*\n$/);
  });
});
