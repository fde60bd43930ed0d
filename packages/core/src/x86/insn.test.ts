import { describe, expect, it, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { buildElf } from "../../test/fixtures/elf-builder.ts";
import { parseElf, readElfFile } from "../elf/reader.ts";
import { createInsnReader, stackMemOperand } from "./insn.ts";
import { scanElf } from "./scan.ts";

const BASE = 0x401000;
const hex = (s: string) => Uint8Array.from((s.match(/[0-9a-f]{2}/g) ?? []).map((h) => Number.parseInt(h, 16)));

// f:   mov %rdi,-0x8(%rsp)     48 89 7c 24 f8
//      mov 0x10(%rbp),%rax     48 8b 45 10
//      mov 0x100(%rip),%rcx    48 8b 0d 00 01 00 00
//      lea -0x80(%rsp),%rsp    48 8d 64 24 80
//      je  L                   74 02
//      nop; nop                90 90
// L:   mov $0x27,%eax          b8 27 00 00 00
//      syscall                 0f 05
//      ret                     c3
const TEXT = "48 89 7c 24 f8 48 8b 45 10 48 8b 0d 00 01 00 00 48 8d 64 24 80 74 02 90 90 b8 27 00 00 00 0f 05 c3";
const elf = () => parseElf(buildElf({ text: hex(TEXT), symbols: [{ name: "f", value: BASE, size: 33 }] }));

describe("createInsnReader", () => {
  it("decodes single instructions with memory operand facts", () => {
    const r = createInsnReader(elf());
    try {
      const a = r.decodeAt(BASE);
      expect(a).toMatchObject({ vaddr: BASE, length: 5, mnemonic: "mov", isBranch: false, ripRelative: false });
      expect(a && stackMemOperand(a)).toEqual({ base: "rsp", disp: -8 });
      const b = r.decodeAt(BASE + 5);
      expect(b && stackMemOperand(b)).toEqual({ base: "rbp", disp: 16 });
      const c = r.decodeAt(BASE + 9);
      expect(c).toMatchObject({ ripRelative: true, memBase: "rip", memDisp: 0x100 });
      expect(c && stackMemOperand(c)).toBeNull();
      expect(r.decodeAt(BASE + 30)).toMatchObject({ mnemonic: "syscall", length: 2, isBranch: true });
      const nop = r.decodeAt(BASE + 23);
      expect(nop?.memBase).toBeUndefined();
      expect(nop?.memDisp).toBeUndefined();
      expect(r.decodeAt(BASE - 1)).toBeNull();
      expect(r.decodeAt(0)).toBeNull();
    } finally {
      r.free();
    }
  });

  it("decodes the enclosing function and knows its jump targets", () => {
    const r = createInsnReader(elf());
    try {
      const insns = r.functionInsns(BASE + 30);
      expect(insns?.map((i) => i.mnemonic)).toEqual([
        "mov",
        "mov",
        "mov",
        "lea",
        "je",
        "nop",
        "nop",
        "mov",
        "syscall",
        "ret",
      ]);
      expect(insns?.map((i) => i.vaddr - BASE)).toEqual([0, 5, 9, 16, 21, 23, 24, 25, 30, 32]);
      expect(r.functionInsns(BASE + 33)).toBeNull();
      expect(r.isKnownTarget(BASE)).toBe(true); // function start
      expect(r.isKnownTarget(BASE + 25)).toBe(true); // je target
      expect(r.isKnownTarget(BASE + 30)).toBe(false);
    } finally {
      r.free();
    }
  });

  it("isKnownTarget decodes the function on demand", () => {
    const r = createInsnReader(elf());
    expect(r.isKnownTarget(BASE + 25)).toBe(true);
    r.free();
  });
});

test.skipIf(
  !existsSync("/lib/x86_64-linux-gnu/libc.so.6") || spawnSync("sh", ["-c", "command -v objdump"]).status !== 0,
)(
  "functionInsns agrees with objdump on the instruction starts of libc's syscall functions (needs objdump)",
  async () => {
    const lib = readElfFile("/lib/x86_64-linux-gnu/libc.so.6");
    const scan = await scanElf(lib);
    const r = createInsnReader(lib);
    try {
      let checked = 0;
      for (const site of scan.sites.filter((s) => !s.uncertain && s.functionRange).slice(0, 40)) {
        const fr = site.functionRange as { start: number; end: number };
        const insns = r.functionInsns(site.vaddr);
        const out = spawnSync(
          "objdump",
          ["-d", "--no-show-raw-insn", `--start-address=${fr.start}`, `--stop-address=${fr.end}`, lib.path as string],
          { encoding: "utf8" },
        ).stdout;
        const theirs = [...out.matchAll(/^\s*([0-9a-f]+):\t/gm)].map((m) => Number.parseInt(m[1] as string, 16));
        expect(insns?.map((i) => i.vaddr)).toEqual(theirs);
        expect(insns?.find((i) => i.vaddr === site.vaddr)?.mnemonic).toBe("syscall");
        checked++;
      }
      expect(checked).toBe(40);
    } finally {
      r.free();
    }
  },
);
