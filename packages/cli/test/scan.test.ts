import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasStack, LIBC, lines, makeSysiHome, RUN_JS, sysi, TRUE_BIN } from "./helpers.ts";

const home = makeSysiHome();
afterAll(() => home.cleanup());

interface ScanJson {
  files: {
    path: string;
    buildId: string | null;
    sites: {
      vaddr: string;
      offset: number;
      kind: string;
      nr: number | null;
      function: string | null;
      uncertain: boolean;
      straddlesPage: boolean;
    }[];
    stats: Record<string, unknown>;
  }[];
}

/** objdump's syscall-class instructions of `path`, as lowercase hex vaddrs (the oracle). */
function objdumpSites(path: string): string[] {
  const out = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", path]).stdout.toString();
  const sites: string[] = [];
  for (const m of out.matchAll(/^\s*([0-9a-f]+):\s+(syscall|sysenter|int\s+\$0x80)\s*$/gm)) sites.push(`0x${m[1]}`);
  return sites;
}

function readelfBuildId(path: string): string | null {
  const out = Bun.spawnSync(["readelf", "-n", path]).stdout.toString();
  return /Build ID:\s*([0-9a-f]+)/.exec(out)?.[1] ?? null;
}

describe("sysi scan", () => {
  it("--json on libc gives the sites objdump -d finds, with the build-id readelf shows", async () => {
    const r = await sysi(["scan", "--json", LIBC], home.env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as ScanJson;
    expect(doc.files).toHaveLength(1);
    const f = doc.files[0] as ScanJson["files"][number];
    expect(f.path).toBe(LIBC);
    expect(f.buildId).toBe(readelfBuildId(LIBC));
    expect(f.sites.length).toBeGreaterThan(100);
    for (const s of f.sites) {
      expect(s.vaddr).toMatch(/^0x[0-9a-f]+$/);
      expect(Number.isInteger(s.offset)).toBe(true);
      expect(["syscall", "sysenter", "int80"]).toContain(s.kind);
      expect(s.nr === null || Number.isInteger(s.nr)).toBe(true);
      expect(typeof s.uncertain).toBe("boolean");
      expect(typeof s.straddlesPage).toBe("boolean");
    }
    expect(f.sites.map((s) => s.vaddr).sort()).toEqual(objdumpSites(LIBC).sort());
    expect(Object.keys(f.stats)).toEqual(expect.arrayContaining(["byKind", "uncertain", "ms"]));
  });

  it("prints a human summary per file with top syscall names", async () => {
    const r = await sysi(["scan", LIBC, TRUE_BIN], home.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`${LIBC}\n`);
    expect(r.stdout).toContain(`${TRUE_BIN}\n`);
    expect(r.stdout).toMatch(/build-id\s+[0-9a-f]{40}/);
    expect(r.stdout).toMatch(/top syscall numbers:\n\s+\d+\s+\w+\s+\d+ sites?/);
    expect(r.stdout).toMatch(/straddling\s+\d+/);
  });

  it("--json on two files keeps their order", async () => {
    const r = await sysi(["scan", "--json", TRUE_BIN, LIBC], home.env);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as ScanJson;
    expect(doc.files.map((f) => f.path)).toEqual([TRUE_BIN, LIBC]);
    expect(doc.files[0]?.sites.map((s) => s.vaddr).sort()).toEqual(objdumpSites(TRUE_BIN).sort());
  });
});

describe("sysi scan on bad input", () => {
  const dir = join(home.dir, "bad");
  mkdirSync(dir);
  const elf = new Uint8Array(readFileSync(TRUE_BIN));
  const patched = (name: string, patch: (b: Uint8Array) => void) => {
    const b = elf.slice();
    patch(b);
    writeFileSync(join(dir, name), b);
    return join(dir, name);
  };
  const text = join(dir, "text.txt");
  writeFileSync(text, "just some text\nnot an ELF\n");
  const elf32 = patched("elf32", (b) => {
    b[4] = 1; // EI_CLASS = ELFCLASS32
  });
  const aarch64 = patched("aarch64", (b) => {
    new DataView(b.buffer).setUint16(18, 183, true); // e_machine = EM_AARCH64
  });
  const unreadable = join(dir, "unreadable");
  writeFileSync(unreadable, elf);
  chmodSync(unreadable, 0o000);
  const isRoot = process.getuid?.() === 0;

  const cases: [string, () => string[], RegExp][] = [
    ["a missing file", () => [join(dir, "nope")], /no such file/],
    ["a directory", () => [dir], /directory/],
    ["a text file", () => [text], /not an ELF/],
    ["an ELF32 file", () => [elf32], /ELF32/],
    ["an aarch64 ELF", () => [aarch64], /aarch64/],
  ];
  for (const [what, args, re] of cases) {
    it(`exits 2 with one 'sysi: error:' line for ${what}`, async () => {
      const r = await sysi(["scan", ...args()], home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/^sysi: error: /);
      expect(r.stderr).toMatch(re);
      expect(hasStack(r.stderr)).toBe(false);
      expect(r.stdout).toBe("");
    });
    it(`exits 2 with one JSON error line for ${what} (--json), the document naming it`, async () => {
      const r = await sysi(["scan", "--json", ...args()], home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      const e = JSON.parse(r.stderr) as { error: { code: string; message: string; path: string } };
      expect(e.error.code).toMatch(/^[A-Z0-9_]+$/);
      expect(e.error.message).toMatch(re);
      expect(e.error.path).toBe(args()[0] as string);
      const doc = JSON.parse(r.stdout) as { files: unknown[]; errors: { path: string; error: unknown }[] };
      expect(doc.files).toEqual([]);
      expect(doc.errors).toEqual([{ path: e.error.path, error: { code: e.error.code, message: e.error.message } }]);
    });
  }

  it("goes on after a bad file: the good one scanned, a summary line, exit 2", async () => {
    const r = await sysi(["scan", text, TRUE_BIN], home.env);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([`sysi: error: not an ELF file: ${text}`, "sysi: 1 of 2 files failed, 1 scanned"]);
    expect(r.stdout).toStartWith(`${TRUE_BIN}\n`);
  });

  const canDrop = isRoot && existsSync("/usr/bin/setpriv");
  it.skipIf(isRoot && !canDrop)("exits 2 for an unreadable file (needs a non-root user, or root with setpriv)", () => {
    // Root reads anything: drop to nobody for this one.
    chmodSync(home.dir, 0o755);
    chmodSync(dir, 0o755);
    for (const v of Object.values(home.env)) chmodSync(v, 0o777);
    const drop = canDrop ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"] : [];
    const r = Bun.spawnSync([...drop, process.execPath, RUN_JS, "scan", unreadable], {
      env: { ...process.env, ...home.env, HOME: home.dir },
      cwd: "/",
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toMatch(/^sysi: error: cannot read .*: permission denied\n$/);
  });
});
