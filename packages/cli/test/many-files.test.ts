/**
 * `sysi scan` and `sysi plan` over many files go on past bad ones, as readelf and objdump do:
 * one line per file that cannot be read or is not x86-64 ELF, the good files' results as when
 * each is given alone, a summary line, exit 2.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasStack, lines, makeSysiHome, RUN_JS, TRUE_BIN } from "./helpers.ts";

const isRoot = process.getuid?.() === 0;
const canDrop = isRoot && existsSync("/usr/bin/setpriv");
/** Root reads anything: the run drops to nobody so that the locked file is unreadable. */
const DROP = canDrop ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"] : [];

const home = makeSysiHome();
afterAll(() => {
  chmodSync(join(home.dir, "tree", "locked"), 0o755);
  home.cleanup();
});
// nobody must reach the tree and own the sysi dirs (the plan cache must be its own)
chmodSync(home.dir, 0o755);
for (const v of Object.values(home.env)) {
  chmodSync(v, 0o700);
  if (canDrop) chownSync(v, 65534, 65534);
}

const tree = join(home.dir, "tree");
const at = (p: string) => join(tree, p);
for (const d of ["bin", "lib", "lib/sub", "locked"]) mkdirSync(at(d), { recursive: true });
copyFileSync(TRUE_BIN, at("bin/true"));
copyFileSync("/usr/bin/env", at("bin/env"));
writeFileSync(at("lib/trunc.so"), readFileSync(TRUE_BIN).subarray(0, 3000));
writeFileSync(at("lib/notes.txt"), "not an ELF file\n");
copyFileSync(TRUE_BIN, at("locked/hidden"));
chmodSync(at("locked"), 0o000);

/** Good files and bad ones (with the error code each must get), in the order given. */
const ARGS: [string, string | null][] = [
  [at("bin"), "FILE_IS_DIRECTORY"],
  [at("bin/env"), null],
  [at("lib/trunc.so"), "ELF_TRUNCATED"],
  [at("bin/true"), null],
  [at("lib/notes.txt"), "ELF_NOT_ELF"],
  [at("lib/sub"), "FILE_IS_DIRECTORY"],
  [at("locked/hidden"), "FILE_UNREADABLE"],
  [TRUE_BIN, null],
];
const files = ARGS.map(([p]) => p);
const good = ARGS.filter(([, c]) => c === null).map(([p]) => p);
const bad = ARGS.filter((a): a is [string, string] => a[1] !== null);

function run(args: string[]) {
  const r = Bun.spawnSync([...DROP, process.execPath, RUN_JS, ...args], {
    env: { ...(process.env as Record<string, string>), ...home.env, HOME: home.dir, DEBUG: "" },
    cwd: "/",
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A scan result without its timing. */
function untimed(f: { stats: Record<string, unknown> }) {
  const { ms: _, ...stats } = f.stats;
  return { ...f, stats };
}

const describeDrop = describe.skipIf(isRoot && !canDrop);

describeDrop("sysi scan over a tree with bad files (root: as uid 65534 through setpriv)", () => {
  it("reports each bad file in one line, scans the others, sums up, exits 2", () => {
    const r = run(["scan", ...files]);
    expect(r.code).toBe(2);
    expect(hasStack(r.stderr)).toBe(false);
    const err = lines(r.stderr);
    expect(err).toHaveLength(bad.length + 1);
    for (const [i, [path]] of bad.entries()) {
      expect(err[i]).toStartWith("sysi: error: ");
      expect(err[i]).toContain(path);
    }
    expect(err[bad.length]).toBe(`sysi: ${bad.length} of ${files.length} files failed, ${good.length} scanned`);
    // every good file has its block, in order, and only those
    expect(lines(r.stdout).filter((l) => !l.startsWith(" "))).toEqual(good);
  });

  it("--json: the good files' results equal each one scanned alone; errors in the document and on stderr", () => {
    const r = run(["scan", "--json", ...files]);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as {
      files: { path: string; stats: Record<string, unknown> }[];
      errors: { path: string; error: { code: string; message: string } }[];
    };
    expect(doc.files.map((f) => f.path)).toEqual(good);
    for (const f of doc.files) {
      const alone = run(["scan", "--json", f.path]);
      expect(alone.code).toBe(0);
      expect(untimed(f)).toEqual(untimed((JSON.parse(alone.stdout) as typeof doc).files[0] as (typeof doc.files)[0]));
    }
    expect(doc.errors.map((e) => [e.path, e.error.code])).toEqual(bad);
    const err = lines(r.stderr).map((l) => JSON.parse(l) as { error: { code: string; path: string } });
    expect(err.map((e) => [e.error.path, e.error.code])).toEqual(bad);
  });
});

describeDrop("sysi plan over a tree with bad files (root: as uid 65534 through setpriv)", () => {
  it("plans the good files as alone, one line per bad file, a summary line, exit 2", () => {
    const r = run(["plan", "-s", "ud2", ...files]);
    expect(r.code).toBe(2);
    expect(hasStack(r.stderr)).toBe(false);
    const err = lines(r.stderr);
    expect(err).toHaveLength(bad.length + 1);
    for (const [i, [path]] of bad.entries()) expect(err[i]).toMatch(new RegExp(`^sysi: error: .*${path}`));
    expect(err[bad.length]).toBe(`sysi: ${bad.length} of ${files.length} files failed, ${good.length} planned`);
    const heads = lines(r.stdout).filter((l) => !l.startsWith(" "));
    expect(heads.map((l) => l.split("  ")[0])).toEqual(good);

    const j = run(["plan", "-s", "ud2", "--json", ...files]);
    expect(j.code).toBe(2);
    const doc = JSON.parse(j.stdout) as {
      plans: { module: { path: string }; stats: { sites: number } }[];
      errors: { path: string; error: { code: string } }[];
    };
    expect(doc.plans).toHaveLength(good.length);
    expect(doc.errors.map((e) => [e.path, e.error.code])).toEqual(bad);
    for (const [i, p] of doc.plans.entries()) {
      const alone = JSON.parse(run(["plan", "-s", "ud2", "--json", good[i] as string]).stdout) as typeof doc;
      expect(p.stats).toEqual((alone.plans[0] as (typeof doc.plans)[0]).stats);
    }
  });
});

describe("one bad file alone", () => {
  it("is one line and exit 2, without a summary line (scan and plan)", () => {
    for (const cmd of [["scan"], ["plan", "-s", "ud2"]]) {
      const r = run([...cmd, at("lib/notes.txt")]);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual([`sysi: error: not an ELF file: ${at("lib/notes.txt")}`]);
      expect(r.stdout).toBe("");
    }
  });
});
