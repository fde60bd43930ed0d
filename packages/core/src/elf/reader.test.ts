/**
 * The reader against readelf/nm (the oracles) on real system binaries: headers, segments,
 * sections, interpreter, dynamic, build-id, FDE ranges and symbols.
 */
import { describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileError } from "../errors.ts";
import { type ElfFile, fdeRanges, PT_LOAD, parseElf, readElfFile } from "./index.ts";

const hasReadelf = Bun.which("readelf") !== null && Bun.which("nm") !== null;
const BUN = realpathSync(process.execPath);
const FILES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/ls", BUN].filter((p) =>
  existsSync(p),
);

/** readelf --debug-dump exits 1 after printing everything when it also follows a debuglink. */
function run(cmd: string[], okCodes = [0]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (!okCodes.includes(r.exitCode ?? -1)) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const PT_NAMES: Record<string, number> = {
  NULL: 0,
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  SHLIB: 5,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
};
const DF1: Record<string, number> = {
  NOW: 0x1,
  GLOBAL: 0x2,
  GROUP: 0x4,
  NODELETE: 0x8,
  INITFIRST: 0x20,
  NOOPEN: 0x40,
  ORIGIN: 0x80,
  INTERPOSE: 0x400,
  NODEFLIB: 0x800,
  PIE: 0x8000000,
};

interface Oracle {
  type: string;
  entry: number;
  segments: { type: number | null; offset: number; vaddr: number; filesz: number; memsz: number; flags: string }[];
  sections: { index: number; name: string; addr: number; offset: number; size: number }[];
  interpreter: string | null;
  needed: string[];
  soname: string | null;
  runpath: string | null;
  init: number | null;
  initArray: number | null;
  initArraySz: number | null;
  flags1: number | null;
  buildId: string | null;
}

function readelfOracle(path: string): Oracle {
  const out = run(["readelf", "-W", "-h", "-l", "-S", "-n", "-d", path]);
  const o: Oracle = {
    type: /Type:\s+(\S+)/.exec(out)?.[1] ?? "",
    entry: Number(/Entry point address:\s+(0x[0-9a-f]+)/.exec(out)?.[1]),
    segments: [],
    sections: [],
    interpreter: /\[Requesting program interpreter: (.*)\]/.exec(out)?.[1] ?? null,
    needed: [...out.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1] as string),
    soname: /\(SONAME\)\s+Library soname: \[(.*)\]/.exec(out)?.[1] ?? null,
    runpath: /\(RUNPATH\)\s+Library runpath: \[(.*)\]/.exec(out)?.[1] ?? null,
    init: null,
    initArray: null,
    initArraySz: null,
    flags1: null,
    buildId: /Build ID: ([0-9a-f]+)/.exec(out)?.[1] ?? null,
  };
  const num = (re: RegExp): number | null => {
    const m = re.exec(out);
    return m ? Number(m[1]) : null;
  };
  o.init = num(/\(INIT\)\s+(0x[0-9a-f]+)/);
  o.initArray = num(/\(INIT_ARRAY\)\s+(0x[0-9a-f]+)/);
  o.initArraySz = num(/\(INIT_ARRAYSZ\)\s+(\d+) \(bytes\)/);
  const f1 = /\(FLAGS_1\)\s+Flags: (.*)/.exec(out);
  if (f1) {
    const names = (f1[1] as string).trim().split(/\s+/);
    o.flags1 = names.every((n) => n in DF1) ? names.reduce((a, n) => a | (DF1[n] as number), 0) : null;
  }
  const phRe =
    /^\s+(\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]{3})\s+0x[0-9a-f]+$/;
  for (const line of out.split("\n")) {
    const m = phRe.exec(line);
    if (m) {
      o.segments.push({
        type: PT_NAMES[m[1] as string] ?? null,
        offset: Number.parseInt(m[2] as string, 16),
        vaddr: Number.parseInt(m[3] as string, 16),
        filesz: Number.parseInt(m[4] as string, 16),
        memsz: Number.parseInt(m[5] as string, 16),
        flags: m[6] as string,
      });
      continue;
    }
    const s = /^\s+\[\s*(\d+)\]\s+(.*)$/.exec(line);
    if (s) {
      const toks = (s[2] as string).trim().split(/\s+/);
      const ai = toks.findIndex((t) => /^[0-9a-f]{16}$/.test(t));
      if (ai < 1) continue;
      o.sections.push({
        index: Number(s[1]),
        name: toks.slice(0, ai - 1).join(" "),
        addr: Number.parseInt(toks[ai] as string, 16),
        offset: Number.parseInt(toks[ai + 1] as string, 16),
        size: Number.parseInt(toks[ai + 2] as string, 16),
      });
    }
  }
  return o;
}

const flagString = (f: number): string => `${f & 4 ? "R" : " "}${f & 2 ? "W" : " "}${f & 1 ? "E" : " "}`;

describe.skipIf(!hasReadelf)("parseElf against readelf (needs binutils)", () => {
  for (const path of FILES) {
    describe(path, () => {
      const oracle = readelfOracle(path);
      const elf = readElfFile(path);

      it("reads the type and entry point", () => {
        expect(elf.type).toBe(oracle.type === "EXEC" ? 2 : oracle.type === "DYN" ? 3 : -1);
        expect(elf.entry).toBe(oracle.entry);
      });

      it("reads every program header", () => {
        expect(oracle.segments.length).toBeGreaterThan(0);
        expect(elf.segments.length).toBe(oracle.segments.length);
        elf.segments.forEach((seg, i) => {
          const want = oracle.segments[i];
          if (!want) throw new Error(`no oracle segment ${i}`);
          if (want.type !== null) expect(seg.type).toBe(want.type);
          expect([seg.offset, seg.vaddr, seg.filesz, seg.memsz, flagString(seg.flags)]).toEqual([
            want.offset,
            want.vaddr,
            want.filesz,
            want.memsz,
            want.flags,
          ]);
        });
        const execs = oracle.segments.filter((s) => s.type === PT_LOAD && s.flags.includes("E"));
        expect(elf.execSegments().map((s) => s.vaddr)).toEqual(execs.map((s) => s.vaddr));
      });

      it("reads section names, addresses, offsets and sizes", () => {
        expect(elf.sections.length).toBe(oracle.sections.length);
        for (const want of oracle.sections) {
          const sec = elf.sections[want.index];
          expect(sec && [sec.name, sec.addr, sec.offset, sec.size]).toEqual([
            want.name,
            want.addr,
            want.offset,
            want.size,
          ]);
        }
      });

      it("reads the interpreter, dynamic section and build-id", () => {
        expect(elf.interpreter).toBe(oracle.interpreter);
        expect(elf.dynamic?.needed ?? []).toEqual(oracle.needed);
        expect(elf.dynamic?.soname ?? null).toBe(oracle.soname);
        expect(elf.dynamic?.runpath ?? null).toBe(oracle.runpath);
        expect(elf.dynamic?.init ?? null).toBe(oracle.init);
        expect(elf.dynamic?.initArray ?? null).toEqual(
          oracle.initArray === null ? null : { vaddr: oracle.initArray, size: oracle.initArraySz ?? 0 },
        );
        if (oracle.flags1 !== null) expect(elf.dynamic?.flags1).toBe(oracle.flags1);
        expect(elf.buildId).toBe(oracle.buildId);
        expect(elf.warnings).toEqual([]);
      });

      it("maps vaddrs to the bytes readelf says are at that offset", () => {
        for (const seg of elf.execSegments()) {
          const mid = seg.vaddr + Math.floor(seg.filesz / 2);
          expect(elf.vaddrToOffset(mid)).toBe(seg.offset + (mid - seg.vaddr));
          expect(elf.bytesAt(mid, 16)).toEqual(
            elf.bytes.subarray(seg.offset + (mid - seg.vaddr), seg.offset + (mid - seg.vaddr) + 16),
          );
          expect(elf.bytesAt(seg.vaddr + seg.filesz - 1, 2)).toBeNull();
        }
      });
    });
  }
});

function readelfFdes(path: string): { start: number; end: number }[] {
  const out = run(["readelf", "-W", "--debug-dump=frames", path], [0, 1]);
  return [...out.matchAll(/ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/g)].map((m) => ({
    start: Number.parseInt(m[1] as string, 16),
    end: Number.parseInt(m[2] as string, 16),
  }));
}

/** nm -S lines "addr size type name" for function-like symbols (T/t/W/w/i) with a size. */
function nmFunctions(path: string, dynamic: boolean): { start: number; size: number; name: string }[] {
  const out = run(["nm", "-S", "--defined-only", ...(dynamic ? ["-D"] : []), path]);
  const res: { start: number; size: number; name: string }[] = [];
  for (const line of out.split("\n")) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) ([TtWwi]) (\S+)$/.exec(line);
    if (m)
      res.push({
        start: Number.parseInt(m[1] as string, 16),
        size: Number.parseInt(m[2] as string, 16),
        name: (m[4] as string).replace(/@.*$/, ""),
      });
  }
  return res.filter((f) => f.size > 0);
}

function covers(elf: ElfFile, start: number, end: number): boolean {
  return elf.execSegments().some((s) => start >= s.vaddr && end <= s.vaddr + s.filesz);
}

describe.skipIf(!hasReadelf)("functions() against readelf frames and nm (needs binutils)", () => {
  for (const path of FILES) {
    it(`${path}: FDE ranges equal readelf --debug-dump=frames`, () => {
      const elf = readElfFile(path);
      const want = readelfFdes(path).filter((f) => f.end > f.start);
      expect(fdeRanges(elf)).toEqual(want);
      const fns = elf.functions();
      const byStart = new Map(fns.map((f) => [f.start, f]));
      // Every FDE in the text is a function start whose range covers the FDE.
      for (const f of want) {
        if (!covers(elf, f.start, f.end)) continue;
        const got = byStart.get(f.start);
        expect(got !== undefined && got.end >= f.end).toBe(true);
      }
      for (let i = 1; i < fns.length; i++)
        expect((fns[i] as { start: number }).start).toBeGreaterThan((fns[i - 1] as { start: number }).start);
    });

    it(`${path}: every sized function symbol from nm is a function start`, () => {
      const elf = readElfFile(path);
      const byStart = new Map(elf.functions().map((f) => [f.start, f]));
      const syms = [...nmFunctions(path, true), ...nmFunctions(path, false)];
      let checked = 0;
      for (const s of syms) {
        if (!covers(elf, s.start, s.start + s.size)) continue;
        const got = byStart.get(s.start);
        expect(got?.end).toBeGreaterThanOrEqual(s.start + s.size);
        expect(got?.source).toBe("symbol");
        checked++;
      }
      const names = new Set(elf.symbols().map((s) => s.name));
      for (const s of syms.slice(0, 200)) expect(names.has(s.name)).toBe(true);
      if (path.includes("libc.so")) expect(checked).toBeGreaterThan(1000);
    });
  }

  it("libc: FDE count matches readelf and a sample of ranges is exact", () => {
    const path = "/lib/x86_64-linux-gnu/libc.so.6";
    const want = readelfFdes(path);
    const got = fdeRanges(readElfFile(path));
    expect(got.length).toBe(want.length);
    expect(want.length).toBeGreaterThan(1000);
    for (let i = 0; i < want.length; i += 97) expect(got[i]).toEqual(want[i] as { start: number; end: number });
  });
});

describe("readElfFile errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "sysi-elf-"));
  const cases: [string, string, string][] = [
    [join(dir, "missing"), "FILE_NOT_FOUND", "no such file"],
    [dir, "FILE_IS_DIRECTORY", "is a directory"],
  ];
  for (const [path, code, why] of cases) {
    it(`throws ${code}`, () => {
      let err: unknown;
      try {
        readElfFile(path);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FileError);
      expect((err as FileError).code).toBe(code);
      expect((err as FileError).message).toBe(`cannot read ${path}: ${why}`);
    });
  }
  it.skipIf(process.getuid?.() === 0)("throws FILE_UNREADABLE without read permission (needs non-root)", () => {
    const p = join(dir, "noperm");
    writeFileSync(p, "x", { mode: 0o000 });
    expect(() => readElfFile(p)).toThrow("permission denied");
  });
  it("refuses devices instead of reading them forever", () => {
    expect(() => readElfFile("/dev/zero")).toThrow("cannot read /dev/zero: not a regular file");
  });
  it("rejects a non-ELF file with its path in the message", () => {
    const p = join(dir, "text");
    writeFileSync(p, "#!/bin/sh\necho hi\n");
    expect(() => readElfFile(p)).toThrow(`not an ELF file: ${p}`);
    rmSync(dir, { recursive: true, force: true });
  });
  it("parses from bytes without a path", () => {
    expect(() => parseElf(new Uint8Array(3))).toThrow(/^not an ELF file$/);
  });
});
