/**
 * Edge cases on files from the fixture builder: every rejection has its code and a one-line
 * message; optional parts degrade with a warning; nothing hangs or reads out of range.
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildElf, buildElfLayout, encodeEhFrame } from "../../test/fixtures/elf-builder.ts";
import { ElfError } from "../errors.ts";
import { type ElfFile, fdeRanges, parseElf } from "./index.ts";

// mov $60,%eax; mov $42,%edi; syscall; (pad) — exit(42)
const EXIT42 = Uint8Array.from([0xb8, 60, 0, 0, 0, 0xbf, 42, 0, 0, 0, 0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc]);
const T = 0x401000;
const hasReadelf = Bun.which("readelf") !== null;

function put(b: Uint8Array, off: number, size: 1 | 2 | 4 | 8, value: number | bigint): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (size === 1) dv.setUint8(off, Number(value));
  else if (size === 2) dv.setUint16(off, Number(value), true);
  else if (size === 4) dv.setUint32(off, Number(value), true);
  else dv.setBigUint64(off, BigInt.asUintN(64, BigInt(value)), true);
  return b;
}

function elfError(fn: () => unknown): ElfError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ElfError) return e;
    throw e;
  }
  throw new Error("expected an ElfError");
}

const full = () =>
  buildElfLayout({
    text: EXIT42,
    symbols: [
      { name: "_start", value: T, size: 12 },
      { name: "pad", value: T + 12, size: 4, type: "object" },
    ],
    fdes: [
      { start: T, end: T + 12 },
      { start: T + 12, end: T + 16 },
    ],
    interpreter: "/lib64/ld-linux-x86-64.so.2",
    needed: ["libc.so.6", "libm.so.6"],
    soname: "libfx.so",
    runpath: "$ORIGIN",
    buildId: "00112233445566778899aabbccddeeff01234567",
    data: new Uint8Array(16),
  });

const PH = (i: number, field: number) => 64 + i * 56 + field; // p_type 0, p_flags 4, p_offset 8, p_vaddr 16, p_filesz 32, p_memsz 40

describe("fixture builder", () => {
  it("builds a file the reader reads back", () => {
    const { bytes, layout } = full();
    const elf = parseElf(bytes, "/fx");
    expect(elf.entry).toBe(T);
    expect(elf.interpreter).toBe("/lib64/ld-linux-x86-64.so.2");
    expect(elf.dynamic).toMatchObject({ needed: ["libc.so.6", "libm.so.6"], soname: "libfx.so", runpath: "$ORIGIN" });
    expect(elf.buildId).toBe("00112233445566778899aabbccddeeff01234567");
    expect(elf.execSegments().map((s) => s.vaddr)).toEqual([T]);
    expect(elf.bytesAt(T, EXIT42.length)).toEqual(EXIT42);
    expect(elf.vaddrToOffset(T + 3)).toBe(layout.textOffset + 3);
    expect(elf.functions()).toEqual([
      { start: T, end: T + 12, name: "_start", source: "symbol" },
      { start: T + 12, end: T + 16, name: null, source: "eh_frame" },
    ]);
    expect(elf.dataInText()).toEqual([{ start: T + 12, end: T + 16, name: "pad" }]);
    expect(elf.sections.map((s) => s.name)).toContain(".eh_frame");
    expect(elf.warnings).toEqual([]);
  });

  it.skipIf(!hasReadelf)("builds a file readelf agrees with (needs binutils)", () => {
    const { bytes } = full();
    const dir = mkdtempSync(join(tmpdir(), "sysi-fx-"));
    const p = join(dir, "fx");
    writeFileSync(p, bytes);
    const r = Bun.spawnSync(["readelf", "-W", "-l", "-n", "-d", "--debug-dump=frames", p], { stderr: "pipe" });
    rmSync(dir, { recursive: true, force: true });
    const out = r.stdout.toString();
    expect(r.stderr.toString()).toBe("");
    expect(out).toContain("Build ID: 00112233445566778899aabbccddeeff01234567");
    expect(out).toContain("Shared library: [libm.so.6]");
    expect([...out.matchAll(/pc=([0-9a-f]+)\.\.([0-9a-f]+)/g)].map((m) => [m[1], m[2]])).toEqual([
      ["0000000000401000", "000000000040100c"],
      ["000000000040100c", "0000000000401010"],
    ]);
  });

  it("builds a static executable the kernel runs", () => {
    const dir = mkdtempSync(join(tmpdir(), "sysi-fx-"));
    const p = join(dir, "exit42");
    writeFileSync(p, buildElf({ text: EXIT42 }));
    chmodSync(p, 0o755);
    const r = Bun.spawnSync([p]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.exitCode).toBe(42);
  });

  for (const enc of [0x00, 0x03, 0x04, 0x0b, 0x0c, 0x1b, 0x1c]) {
    it(`decodes FDE pointer encoding 0x${enc.toString(16)}`, () => {
      const fdes = [
        { start: T, end: T + 5 },
        { start: T + 5, end: T + 16 },
      ];
      const elf = parseElf(buildElf({ text: EXIT42, fdes, fdeEncoding: enc }));
      expect(fdeRanges(elf)).toEqual(fdes);
      expect(elf.warnings).toEqual([]);
    });
  }

  it("finds .eh_frame through PT_GNU_EH_FRAME when there is no section table", () => {
    const elf = parseElf(buildElf({ text: EXIT42, fdes: [{ start: T + 2, end: T + 9 }], sections: false }));
    expect(elf.sections).toEqual([]);
    expect(elf.functions()).toEqual([{ start: T + 2, end: T + 9, name: null, source: "eh_frame" }]);
  });

  it("builds ET_DYN files at low addresses", () => {
    const elf = parseElf(buildElf({ text: EXIT42, type: "dyn", symbols: [{ name: "f", value: 0x1000, size: 16 }] }));
    expect(elf.type).toBe(3);
    expect(elf.functions()).toEqual([{ start: 0x1000, end: 0x1010, name: "f", source: "symbol" }]);
  });
});

describe("file header", () => {
  it.each([
    [0, "ELF_NOT_ELF", "not an ELF file: /x"],
    [3, "ELF_NOT_ELF", "not an ELF file: /x"],
    [4, "ELF_TRUNCATED", "truncated ELF: file header needs 64 bytes, file has 4: /x"],
    [20, "ELF_TRUNCATED", "truncated ELF: file header needs 64 bytes, file has 20: /x"],
    [63, "ELF_TRUNCATED", "truncated ELF: file header needs 64 bytes, file has 63: /x"],
    [64 + 56 + 3, "ELF_TRUNCATED", "truncated ELF: program header 1 extends past end of file: /x"],
  ])("rejects a file truncated to %d bytes", (n, code, message) => {
    const e = elfError(() => parseElf(buildElf({ text: EXIT42 }).slice(0, n), "/x"));
    expect([e.code, e.message]).toEqual([code, message]);
  });

  it("rejects or reads every truncation, never anything else", () => {
    const bytes = full().bytes;
    let ok = 0;
    for (let n = 0; n <= bytes.length; n++) {
      try {
        const elf = parseElf(bytes.subarray(0, n));
        elf.functions();
        elf.dataInText();
        ok++;
      } catch (e) {
        expect(e).toBeInstanceOf(ElfError);
      }
    }
    // Cuts inside the trailing symbol/section tables still leave a loadable file.
    expect(ok).toBeGreaterThan(0);
  });

  const phPastEof = (b: Uint8Array) =>
    `truncated ELF: program header ${Math.floor((b.length - 64) / 56)} extends past end of file: /x`;
  const cases: [string, number, 1 | 2 | 4 | 8, number | bigint, string, string | ((b: Uint8Array) => string)][] = [
    ["ELF32", 4, 1, 1, "ELF_CLASS", "ELF32 is not supported (only x86-64 ELF64): /x"],
    ["an invalid class", 4, 1, 7, "ELF_CLASS", "invalid ELF class 7 (only x86-64 ELF64): /x"],
    ["big-endian", 5, 1, 2, "ELF_ENDIAN", "big-endian ELF is not supported (only x86-64 ELF64): /x"],
    ["aarch64", 18, 2, 183, "ELF_MACHINE", "unsupported architecture aarch64 (only x86-64): /x"],
    ["an unknown machine", 18, 2, 4242, "ELF_MACHINE", "unsupported architecture machine 4242 (only x86-64): /x"],
    ["a bad e_phentsize", 54, 2, 32, "ELF_BAD_HEADER", "bad ELF header: e_phentsize is 32, expected 56: /x"],
    ["e_phnum 0xffff", 56, 2, 0xffff, "ELF_BAD_HEADER", "bad ELF header: too many program headers (65535): /x"],
    ["e_phnum past EOF", 56, 2, 1000, "ELF_TRUNCATED", phPastEof],
    ["a huge e_phoff", 32, 8, 1n << 62n, "ELF_TOO_LARGE", "e_phoff is too large: /x"],
    [
      "e_phoff past EOF",
      32,
      8,
      1 << 30,
      "ELF_TRUNCATED",
      "truncated ELF: program header 0 extends past end of file: /x",
    ],
    ["a huge e_entry", 24, 8, -1n, "ELF_TOO_LARGE", "e_entry is too large: /x"],
  ];
  for (const [what, off, size, value, code, message] of cases) {
    it(`rejects ${what}`, () => {
      const b = put(buildElf({ text: EXIT42, fdes: [{ start: T, end: T + 4 }] }), off, size, value);
      const e = elfError(() => parseElf(b, "/x"));
      expect([e.code, e.message]).toEqual([code, typeof message === "string" ? message : message(b)]);
      expect(e.message).not.toContain("\n");
    });
  }
});

describe("program headers", () => {
  const reject = (mutate: (b: Uint8Array, l: ReturnType<typeof full>["layout"]) => void, code: string, msg: RegExp) => {
    const { bytes, layout } = full();
    mutate(bytes, layout);
    const e = elfError(() => parseElf(bytes, "/x"));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
  };

  it("rejects a PT_LOAD whose file image extends past EOF", () => {
    reject(
      (b, l) => put(b, PH(l.ph.text, 8), 8, b.length - 4 + 0x1000 * 0),
      "ELF_TRUNCATED",
      /segment 2 \(PT_LOAD\) extends past end of file: \/x$/,
    );
    reject(
      (b, l) => put(b, PH(l.ph.text, 32), 8, b.length),
      "ELF_TRUNCATED",
      /segment 2 \(PT_LOAD\) extends past end of file/,
    );
  });
  it("rejects sizes above 2^53", () => {
    reject(
      (b, l) => put(b, PH(l.ph.text, 32), 8, -1n),
      "ELF_TOO_LARGE",
      /^program header 2: p_filesz is too large: \/x$/,
    );
    reject(
      (b, l) => put(b, PH(l.ph.note ?? 0, 8), 8, 1n << 60n),
      "ELF_TOO_LARGE",
      /program header \d+: p_offset is too large/,
    );
    reject((b, l) => put(b, PH(l.ph.text, 16), 8, 2 ** 53 - 8), "ELF_TOO_LARGE", /p_vaddr \+ p_memsz is too large/);
  });
  it("rejects overlapping PT_LOAD segments", () => {
    reject((b, l) => put(b, PH(l.ph.text, 16), 8, 0x400000), "ELF_BAD_SEGMENT", /segments 0 and 2 overlap in memory/);
  });
  it("rejects PT_LOADs out of address order", () => {
    reject(
      (b, l) => put(b, PH(l.ph.data ?? 0, 16), 8, 0x300000),
      "ELF_BAD_SEGMENT",
      /segment 5 \(PT_LOAD\): PT_LOAD segments are not sorted by address/,
    );
  });
  it("accepts a bss-only PT_LOAD whose offset is past EOF", () => {
    const { bytes, layout } = full();
    put(bytes, PH(layout.ph.data ?? 0, 32), 8, 0);
    put(bytes, PH(layout.ph.data ?? 0, 8), 8, 0x100_0000);
    expect(parseElf(bytes).bytesAt(layout.dataVaddr ?? 0, 1)).toBeNull();
  });
  it("rejects PT_LOADs sharing a page from different file offsets", () => {
    // Move the eh_frame segment onto the text page, right after the text (offsets stay apart).
    reject(
      (b, l) => {
        put(b, PH(l.ph.ehLoad ?? 0, 16), 8, T + 0x100);
        put(b, PH(l.ph.ehLoad ?? 0, 8), 8, (l.ehFrameOffset ?? 0) + 0x100);
      },
      "ELF_BAD_SEGMENT",
      /map the same page from different file offsets/,
    );
  });
  it("rejects filesz > memsz and offsets not congruent with vaddrs", () => {
    reject((b, l) => put(b, PH(l.ph.text, 40), 8, 4), "ELF_BAD_SEGMENT", /p_filesz is larger than p_memsz/);
    reject((b, l) => put(b, PH(l.ph.text, 16), 8, T + 8), "ELF_BAD_SEGMENT", /not congruent/);
  });
  it("rejects a PT_INTERP that is not NUL-terminated or past EOF", () => {
    reject((b, l) => put(b, PH(l.ph.interp ?? 0, 32), 8, 5), "ELF_BAD_SEGMENT", /PT_INTERP: not a NUL-terminated path/);
    reject(
      (b, l) => put(b, PH(l.ph.interp ?? 0, 8), 8, b.length),
      "ELF_TRUNCATED",
      /PT_INTERP extends past end of file/,
    );
  });
  it("rejects DT_NEEDED strings outside the string table", () => {
    reject(
      (b, l) => put(b, (l.dynamicOffset ?? 0) + 8, 8, 1 << 20),
      "ELF_BAD_DYNAMIC",
      /DT_NEEDED 0 string is out of range/,
    );
  });
  it("falls back to .dynstr when DT_STRTAB is not mapped, and rejects when neither exists", () => {
    const { bytes, layout } = full();
    const strtabEntry = (layout.dynamicOffset ?? 0) + 4 * 16; // after 2×NEEDED, SONAME, RUNPATH
    expect(new DataView(bytes.buffer).getUint32(strtabEntry, true)).toBe(5);
    put(bytes, strtabEntry + 8, 8, 0x7000_0000);
    expect(parseElf(bytes).dynamic?.needed).toEqual(["libc.so.6", "libm.so.6"]);
    put(bytes, 40, 8, 0); // drop the section table
    expect(elfError(() => parseElf(bytes)).code).toBe("ELF_BAD_DYNAMIC");
  });
  it("stops the dynamic array at DT_NULL and bounds it by its size", () => {
    const { bytes, layout } = full();
    put(bytes, PH(layout.ph.dynamic ?? 0, 32), 8, 16); // only the first entry
    const elf = parseElf(bytes);
    expect(elf.dynamic?.needed).toEqual(["libc.so.6"]);
  });
});

describe("optional parts degrade", () => {
  const warned = (elf: ElfFile, code: string) => expect(elf.warnings.map((w) => w.code)).toContain(code);

  it("ignores a section table past EOF, with a huge e_shnum, or a huge e_shoff", () => {
    for (const [off, size, value] of [
      [40, 8, 1 << 30],
      [60, 2, 0xfffe],
      [40, 8, -1n],
      [58, 2, 40],
    ] as const) {
      const { bytes } = full();
      put(bytes, off, size, value);
      const elf = parseElf(bytes);
      expect(elf.sections).toEqual([]);
      warned(elf, "ELF_BAD_SECTION");
      expect(elf.buildId).toBe("00112233445566778899aabbccddeeff01234567");
      // Symbols are gone with the section table; FDEs are still found through PT_GNU_EH_FRAME.
      expect(elf.functions().map((f) => f.source)).toEqual(["eh_frame", "eh_frame"]);
    }
  });
  it("ignores a section table whose section data lies past EOF", () => {
    const { bytes, layout } = full();
    put(bytes, layout.shoff + (layout.sectionIndex[".symtab"] ?? 0) * 64 + 32, 8, 1 << 30);
    const elf = parseElf(bytes);
    expect(elf.sections).toEqual([]);
    warned(elf, "ELF_BAD_SECTION");
  });
  it("gives a section with an out-of-range name index an empty name", () => {
    const { bytes, layout } = full();
    const idx = layout.sectionIndex[".text"] ?? 0;
    put(bytes, layout.shoff + idx * 64, 4, 0xffff_fff0);
    const elf = parseElf(bytes);
    expect(elf.sections[idx]?.name).toBe("");
    expect(elf.sections[idx + 1]?.name).toBe(".eh_frame");
    warned(elf, "ELF_BAD_SECTION");
  });
  it("ignores names when e_shstrndx is out of range", () => {
    const { bytes } = full();
    put(bytes, 62, 2, 999);
    const elf = parseElf(bytes);
    expect(elf.sections.every((s) => s.name === "")).toBe(true);
    expect(elf.functions().length).toBe(2); // .eh_frame found through PT_GNU_EH_FRAME
  });
  it("ignores a note with a huge size", () => {
    for (const field of [0, 4]) {
      const { bytes, layout } = full();
      put(bytes, (layout.noteOffset ?? 0) + field, 4, 0xffff_fff0);
      const elf = parseElf(bytes);
      expect(elf.buildId).toBeNull();
      warned(elf, "ELF_BAD_SEGMENT");
    }
  });
  it("falls back to SHT_NOTE sections for the build-id", () => {
    const { bytes, layout } = full();
    put(bytes, PH(layout.ph.note ?? 0, 0), 4, 0); // PT_NOTE → PT_NULL
    expect(parseElf(bytes).buildId).toBe("00112233445566778899aabbccddeeff01234567");
    put(bytes, 40, 8, 0); // and without a section table there is none
    expect(parseElf(bytes).buildId).toBeNull();
  });
  it("skips a symbol table with a bad entry size or string table link", () => {
    const { bytes, layout } = full();
    const sym = layout.shoff + (layout.sectionIndex[".symtab"] ?? 0) * 64;
    put(bytes, sym + 40, 4, 0); // sh_link → the null section
    let elf = parseElf(bytes);
    expect(elf.symbols().map((s) => s.name)).toEqual(["", ""]);
    warned(elf, "ELF_BAD_SYMBOLS");
    put(bytes, sym + 56, 8, 16);
    elf = parseElf(bytes);
    expect(elf.symbols()).toEqual([]);
    warned(elf, "ELF_BAD_SYMBOLS");
  });
  it("deduplicates symbols by value and name", () => {
    const elf = parseElf(
      buildElf({
        text: EXIT42,
        symbols: [
          { name: "a", value: T, size: 4 },
          { name: "a", value: T, size: 4 },
          { name: "b", value: T, size: 8, bind: "weak" },
        ],
      }),
    );
    expect(elf.symbols().map((s) => [s.name, s.bind, s.source])).toEqual([
      ["a", 1, "symtab"],
      ["b", 2, "symtab"],
    ]);
    expect(elf.functions()).toEqual([{ start: T, end: T + 8, name: "a", source: "symbol" }]);
  });
  it("keeps only function ranges inside executable segments", () => {
    const elf = parseElf(
      buildElf({
        text: EXIT42,
        data: new Uint8Array(64),
        symbols: [
          { name: "in", value: T, size: 16 },
          { name: "overhang", value: T + 8, size: 64 },
          { name: "elsewhere", value: 0x10, size: 4 },
        ],
        fdes: [{ start: T + 4, end: T + 0x2000 }],
      }),
    );
    expect(elf.functions().map((f) => f.name)).toEqual(["in"]);
  });
});

describe(".eh_frame", () => {
  const cie = [0x14, 0, 0, 0, 0, 0, 0, 0, 1, 0x7a, 0x52, 0, 1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1, 0, 0];
  const withRaw = (raw: number[]) => {
    const elf = parseElf(
      buildElf({ text: EXIT42, ehFrameRaw: Uint8Array.from(raw), symbols: [{ name: "s", value: T, size: 4 }] }),
    );
    return { elf, fdes: fdeRanges(elf), fns: elf.functions() };
  };

  it("stops at an FDE whose CIE pointer points at itself", () => {
    const { elf, fns } = withRaw([...cie, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // CIE pointer 0 means "this is a CIE" (unreferenced, so never parsed); a CIE pointer that
    // leads back to the FDE itself is tried as a CIE and rejected.
    expect(fns).toEqual([{ start: T, end: T + 4, name: "s", source: "symbol" }]);
    expect(elf.warnings).toEqual([]);
    const self = withRaw([...cie, 0x10, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(self.fdes).toEqual([]);
    expect(self.elf.warnings.map((w) => w.code)).toEqual(["ELF_BAD_EH_FRAME"]);
  });
  it("rejects a 64-bit length of zero and lengths past the end, keeping earlier FDEs", () => {
    const eh = encodeEhFrame([{ start: T, end: T + 4 }], 0);
    const good = [...eh.subarray(0, eh.length - 4)]; // without the terminator
    for (const tail of [
      [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0xf0, 0xff, 0xff, 0xff, 1, 2, 3, 4],
    ]) {
      const { elf } = withRaw([...good, ...tail]);
      expect(elf.warnings.map((w) => w.code)).toEqual(["ELF_BAD_EH_FRAME"]);
    }
  });
  it("walks thousands of entries quickly and in bounded time for garbage", () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ start: T + (i % 16), end: T + (i % 16) + 1 }));
    const elf = parseElf(buildElf({ text: EXIT42, fdes: many }));
    expect(fdeRanges(elf).length).toBe(5000);
    expect(elf.functions().length).toBe(16);
    const junk = withRaw(Array.from({ length: 4096 }, (_, i) => (i * 37) & 0xff));
    expect(junk.elf.warnings.length).toBeLessThanOrEqual(1);
  });
});

describe("bytesAt / vaddrToOffset", () => {
  const { bytes, layout } = full();
  const elf = parseElf(bytes);
  it("returns bytes only inside one PT_LOAD file image", () => {
    expect(elf.bytesAt(T, 16)).toEqual(EXIT42);
    expect(elf.bytesAt(T + 15, 1)).toEqual(Uint8Array.of(0xcc));
    expect(elf.bytesAt(T + 15, 2)).toBeNull();
    expect(elf.bytesAt(T + 16, 0)).toBeNull();
    expect(elf.bytesAt(T, 0)).toEqual(new Uint8Array(0));
    expect(elf.bytesAt(T - 1, 2)).toBeNull();
    expect(elf.bytesAt(-1, 1)).toBeNull();
    expect(elf.bytesAt(Number.NaN, 1)).toBeNull();
    expect(elf.bytesAt(T, -1)).toBeNull();
    expect(elf.bytesAt(T, Number.POSITIVE_INFINITY)).toBeNull();
    expect(elf.bytesAt(T + 1.5, 1)).toBeNull();
  });
  it("maps vaddrs to offsets", () => {
    expect(elf.vaddrToOffset(T)).toBe(layout.textOffset);
    expect(elf.vaddrToOffset(T + 16)).toBeNull();
    expect(elf.vaddrToOffset(0x400000)).toBe(0);
    expect(elf.vaddrToOffset(2 ** 60)).toBeNull();
  });
});
