/**
 * E9Patch's invariant on real binaries, checked by an outside oracle (objdump; see
 * invariant-oracle.ts): with the default (sound) tactics, every original instruction whose bytes a
 * punning patch changes starts with a jump to a trampoline that runs that very instruction,
 * relocated, and jumps back after it (for the site: the hook, then what the tactic displaced).
 * The unsafe tactic `jmp` must be caught breaking it on libc (cc filler over instruction starts),
 * which shows the check can fail.
 *
 * Each module is planned with punning alone and the default options, exactly as `sysi` plans it
 * (the scanner's sites; uncertain ones are refused). Prints per binary: sites, patched, tactics,
 * trampolines, instruction starts checked and the jump forms found. objdump of node and bun takes
 * ~20-40 s each.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "@sysi/core/elf";
import { planModule } from "@sysi/core/plan";
import { scanElf } from "@sysi/core/scan";
import { isRefusal } from "@sysi/core/strategy";
import factory from "../src/index.ts";
import { checkInvariant, type InvariantReport, type Taken } from "./invariant-oracle.ts";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const realWhich = (cmd: string) => {
  const w = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim();
  return w ? realpathSync(w) : null;
};
const HAS_OBJDUMP = has("objdump");
const HAS_GO = has("go");

const BINARIES: { name: string; path: string | null }[] = [
  { name: "libc", path: "/lib/x86_64-linux-gnu/libc.so.6" },
  { name: "ld.so", path: "/lib64/ld-linux-x86-64.so.2" },
  { name: "libstdc++", path: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6" },
  { name: "python3", path: existsSync("/usr/bin/python3") ? realpathSync("/usr/bin/python3") : null },
  { name: "node", path: "/usr/bin/node" },
  { name: "bun", path: realWhich("bun") },
  { name: "postgres", path: "/usr/lib/postgresql/15/bin/postgres" },
  { name: "docker (static Go)", path: "/usr/local/bin/docker" },
];

async function check(path: string, options: Record<string, string> = {}): Promise<InvariantReport> {
  const strategy = factory({ version: "test", includeDir: "" });
  const elf = readElfFile(path);
  const scan = await scanElf(elf);
  const plan = planModule(elf, scan, [{ strategy, options }], { checks: { cc: true } });
  const taken: Taken[] = [];
  for (const ps of plan.sites) {
    const d = ps.decisions[0];
    if (ps.taken === "punning" && d !== undefined && !isRefusal(d.result))
      taken.push({ site: ps.site.vaddr, patch: d.result });
  }
  const dir = mkdtempSync(join(tmpdir(), "sysi-invariant-"));
  try {
    const r = checkInvariant(path, elf, taken, dir);
    const { violations, ...counts } = r;
    console.log(
      JSON.stringify({
        file: path,
        scanned: scan.sites.length,
        uncertain: scan.stats.uncertain,
        ...counts,
        violations: violations.length,
      }),
    );
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The sound plan's report must show the invariant held (a violation prints its site and bytes).
 * A module without any `syscall` (objdump: python3, postgres and libstdc++ call libc) gets no patch.
 */
function expectSound(r: InvariantReport): void {
  if (r.objdumpSites === 0) expect(r.patches).toBe(0);
  else expect(r.patches).toBeGreaterThan(0);
  expect(r.startsChecked).toBeGreaterThanOrEqual(r.patches);
  expect(r.violations).toEqual([]);
}

describe.skipIf(!HAS_OBJDUMP)("E9Patch's invariant, checked by objdump (needs objdump)", () => {
  for (const { name, path } of BINARIES) {
    const ok = path !== null && existsSync(path);
    test.skipIf(!ok)(
      `sound tactics keep it in ${name}${ok ? "" : " (not installed)"}`,
      async () => {
        expectSound(await check(path as string));
      },
      600_000,
    );
  }

  test.skipIf(!HAS_GO)(
    `sound tactics keep it in a static Go program${HAS_GO ? "" : " (needs go)"}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sysi-invariant-go-"));
      try {
        writeFileSync(join(dir, "go.mod"), "module hello\n\ngo 1.19\n");
        writeFileSync(
          join(dir, "main.go"),
          'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tfmt.Println("hello", len(os.Args))\n}\n',
        );
        const env: Record<string, string | undefined> = {
          ...process.env,
          CGO_ENABLED: "0",
          GOFLAGS: "-buildvcs=false",
        };
        if (env.GOCACHE === undefined && env.HOME === undefined) env.GOCACHE = join(dir, "cache");
        const b = spawnSync("go", ["build", "-o", "hello", "."], { cwd: dir, env, encoding: "utf8" });
        expect(b.stderr).toBe("");
        expect(b.status).toBe(0);
        const out = join(dir, "hello");
        expect(spawnSync("file", [out], { encoding: "utf8" }).stdout).toContain("statically linked");
        expectSound(await check(out));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    600_000,
  );

  // The unsafe tactics overwrite instruction starts: jmp and evict with their rel32 and cc filler
  // (the displaced instructions after the site, the site after an evicted neighbour), short with
  // the e9 it writes over padding nops.
  test.each(["jmp", "evict", "short"])(
    "the unsafe tactic %s breaks it in libc (the check can fail)",
    async (tactic) => {
      const r = await check("/lib/x86_64-linux-gnu/libc.so.6", { tactics: tactic });
      expect(r.patches).toBeGreaterThan(0);
      expect(r.tactics).toEqual({ [tactic]: r.patches });
      console.log(`libc tactics=${tactic}: ${r.violations.length} violations, e.g. ${r.violations[0]}`);
      expect(r.violations.length).toBeGreaterThan(0);
      if (tactic === "short") return;
      const notJump = r.violations.filter((v) => /its start is not a jump/.test(v));
      expect(notJump.length).toBeGreaterThan(r.patches / 2);
      expect(notJump.some((v) => v.endsWith('"int3"'))).toBe(true);
    },
    600_000,
  );
});
