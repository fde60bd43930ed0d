/**
 * `sysi patch` on shared libraries and on every kind of executable (issue 15, Deliver 1 and 5).
 *
 * A shared library is ET_DYN like a PIE, and libc.so.6 even has a PT_INTERP: taken for a PIE,
 * it was written with libsysi.so as its first DT_NEEDED (which needs libc: a cycle) and every
 * program run with it through LD_LIBRARY_PATH died with SIGSEGV. Libraries are refused (exit 2,
 * one line, no file left), the runtime's own dependencies with their own reason; every real
 * executable is still patched and prints what the original prints (the oracle), including a
 * PIE without DF_1_PIE (as older linkers wrote them: the fixture clears the flag; its DT_DEBUG
 * still marks it an executable, classify.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasStack, lines, makeSysiHome, sysi } from "../helpers.ts";

const FIX = join(import.meta.dir, "fixtures", "patch");
const home = makeSysiHome();
const dir = join(home.dir, "work");
const LIB = "/usr/lib/x86_64-linux-gnu";
const DT_FLAGS_1 = 0x6fff_fffbn;
const DF_1_PIE = 0x0800_0000n;

function run(argv: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

function cc(out: string, args: string[]): string {
  const r = run(["cc", "-O2", ...args, "-o", out]);
  if (r.code !== 0) throw new Error(r.err);
  return out;
}

/** A copy of `path` with DF_1_PIE cleared in DT_FLAGS_1 (what a PIE from an older linker has). */
function withoutPieFlag(path: string, out: string): string {
  const b = new Uint8Array(readFileSync(path));
  const dv = new DataView(b.buffer);
  const phoff = Number(dv.getBigUint64(32, true));
  let cleared = 0;
  for (let i = 0; i < dv.getUint16(56, true); i++) {
    const ph = phoff + i * 56;
    if (dv.getUint32(ph, true) !== 2) continue; // PT_DYNAMIC
    const off = Number(dv.getBigUint64(ph + 8, true));
    for (let o = off; o + 16 <= off + Number(dv.getBigUint64(ph + 32, true)); o += 16) {
      if (dv.getBigUint64(o, true) !== DT_FLAGS_1) continue;
      dv.setBigUint64(o + 8, dv.getBigUint64(o + 8, true) & ~DF_1_PIE, true);
      cleared++;
    }
  }
  if (cleared !== 1) throw new Error(`${path}: no DT_FLAGS_1 with DF_1_PIE`);
  writeFileSync(out, b, { mode: 0o755 });
  return out;
}

const readelfDynamic = (p: string) => run(["readelf", "-d", p]).out;

let exelib = "";
let smallLib = "";
let oldPie = "";
beforeAll(() => {
  mkdirSync(dir);
  // a library with a PT_INTERP and a DT_SONAME, as libc.so.6 (an "executable" shared library)
  const src = join(dir, "exelib.c");
  writeFileSync(
    src,
    `#include <unistd.h>
const char exelib_interp[] __attribute__((section(".interp"))) = "/lib64/ld-linux-x86-64.so.2";
long exelib_pid(void) { return getpid(); }
void exelib_entry(void) { _exit(0); }
`,
  );
  exelib = cc(join(dir, "libexelib.so"), ["-shared", "-fPIC", "-Wl,-soname,libexelib.so", "-Wl,-e,exelib_entry", src]);
  // the same without DT_SONAME (no DF_1_PIE, no DT_DEBUG: still a library)
  smallLib = cc(join(dir, "libsmall.so"), ["-shared", "-fPIC", "-Wl,-e,exelib_entry", src]);
  const pie = cc(join(dir, "sites-pie"), ["-pthread", "-fPIE", "-pie", join(FIX, "sites.c")]);
  oldPie = withoutPieFlag(pie, join(dir, "sites-oldpie"));
});
afterAll(() => home.cleanup());

describe("sysi patch: shared libraries are refused (exit 2, one line, no output left)", () => {
  const libs = [
    { path: `${LIB}/libc.so.6`, runtime: true },
    { path: "/lib64/ld-linux-x86-64.so.2", runtime: true },
    { path: `${LIB}/libm.so.6`, runtime: false },
    { path: `${LIB}/libz.so.1`, runtime: false },
    { path: `${LIB}/libcrypto.so.3`, runtime: false },
    { path: `${LIB}/libssl.so.3`, runtime: false },
    { path: `${LIB}/libstdc++.so.6`, runtime: false },
    { path: `${LIB}/libpython3.11.so.1.0`, runtime: false },
  ];
  for (const l of libs) {
    test.skipIf(!existsSync(l.path))(`${l.path}${l.runtime ? " (the runtime's own dependency)" : ""}`, async () => {
      expect(readelfDynamic(l.path)).toMatch(/\(SONAME\)/); // the oracle: a library
      const out = join(dir, `refused-${l.path.replace(/\W+/g, "-")}`);
      mkdirSync(out, { recursive: true });
      const r = await sysi(["patch", "-s", "ud2", l.path, "-o", join(out, "lib.so")], home.env);
      expect(r.code).toBe(2);
      expect(lines(r.stderr).length).toBe(1);
      expect(hasStack(r.stderr)).toBe(false);
      expect(r.stderr.trimEnd()).toMatch(
        l.runtime
          ? /^sysi: error: \S+ is a shared library the sysi runtime itself loads, .*use sysi run$/
          : /^sysi: error: \S+ is a shared library, not an executable .*use sysi run$/,
      );
      expect(readdirSync(out)).toEqual([]);
    });
  }

  test("a library with PT_INTERP and DT_SONAME (as libc.so.6), and one with PT_INTERP only", async () => {
    expect(run(["readelf", "-l", exelib]).out).toContain("Requesting program interpreter");
    for (const [lib, name] of [
      [exelib, "libexelib.so"],
      [smallLib, "this file"],
    ] as const) {
      const out = join(dir, `refused-${name}`);
      mkdirSync(out, { recursive: true });
      const r = await sysi(["patch", "-s", "ud2", lib, "-o", join(out, "lib.so")], home.env);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(lines(r.stderr)).toEqual([
        `sysi: error: ${name} is a shared library, not an executable (docs/patch.md, "Shared libraries"): patch the programs that load it (their copies instrument every library they load) or use sysi run`,
      ]);
      expect(readdirSync(out)).toEqual([]);
    }
  });
});

describe("sysi patch: every kind of executable is still accepted", () => {
  const bun = realpathSync(process.execPath);
  const programs = [
    { name: "ls", argv: ["/bin/ls", "-la", "/usr/lib"] },
    { name: "cat", argv: ["/bin/cat", "/etc/hostname"] },
    { name: "env", argv: ["/usr/bin/env", "--version"] },
    { name: "python3 (non-PIE)", argv: ["/usr/bin/python3", "-c", "import sys; print(sys.version)"] },
    { name: "git", argv: ["/usr/bin/git", "--version"] },
    { name: "bun (non-PIE)", argv: [bun, "--version"] },
    { name: "a PIE without DF_1_PIE", argv: ["<oldpie>", "x"] },
  ];
  for (const p of programs) {
    test.skipIf(p.argv[0] !== "<oldpie>" && !existsSync(p.argv[0] as string))(
      `${p.name}: patched under -s ud2, output identical to the original`,
      async () => {
        const argv = p.argv[0] === "<oldpie>" ? [oldPie, ...p.argv.slice(1)] : p.argv;
        const input = argv[0] as string;
        if (p.argv[0] === "<oldpie>") {
          expect(readelfDynamic(input)).not.toMatch(/FLAGS_1.*PIE/);
          expect(readelfDynamic(input)).toMatch(/\(DEBUG\)/); // what tells it from a library
          expect(run(["readelf", "-h", input]).out).toMatch(/Type:\s+DYN/);
        }
        const out = join(dir, `${p.name.replace(/\W+/g, "-")}.ud2`);
        const r = await sysi(["patch", "-s", "ud2", "--hook", "passthrough", input, "-o", out], home.env);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(readelfDynamic(out)).toMatch(/\(NEEDED\)\s+Shared library: \[\S+\/libsysi\.so\]/);
        const a = run(argv);
        const b = run([out, ...argv.slice(1)]);
        expect(b.out).toBe(a.out);
        expect(b.err).toBe(a.err);
        expect(b.code).toBe(a.code);
      },
    );
  }
});
