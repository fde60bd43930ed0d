/**
 * The patched-file writer on a real executable (/usr/bin/true): every original byte stays where
 * it was except the fields the layout names (e_phoff, e_phnum, the .dynamic and .dynstr section
 * headers) and the patched sites; readelf (the outside oracle) reads the new program headers,
 * the runtime as first DT_NEEDED and the old ones after it; the note round-trips.
 */
import { describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildElf } from "../../test/fixtures/elf-builder.ts";
import { parseElf } from "../elf/index.ts";
import { checkRewritable, findSysiNote, PatchError, rewriteElf } from "./elf-writer.ts";
import { decodeEmbedded, encodeEmbedded } from "./embed.ts";

const TRUE = "/usr/bin/true";
const have = existsSync(TRUE) && Bun.which("readelf") !== null;

function readelf(bytes: Uint8Array, flag: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sysi-patch-unit-"));
  try {
    const p = join(dir, "f");
    writeFileSync(p, bytes);
    return Bun.spawnSync(["readelf", "-W", flag, p]).stdout.toString();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const note = encodeEmbedded({
  config: { SYSI_HOOK: "count", SYSI_RUNTIMES: "/x/libsysi-ud2.so#e" },
  plans: [{ key: "abc-1", plan: new Uint8Array([1, 2, 3]) }],
});

describe.skipIf(!have)("rewriteElf on /usr/bin/true", () => {
  const input = new Uint8Array(readFileSync(TRUE));
  const elf = parseElf(input, TRUE);
  const r = rewriteElf(elf, { patches: [], needed: ["/opt/sysi/libsysi.so"], noteDesc: note, reserved: [] });

  it("keeps every original byte but the layout's own fields", () => {
    const out = r.bytes;
    expect(out.length).toBeGreaterThan(input.length);
    const changed = new Set<number>();
    for (let i = 32; i < 40; i++) changed.add(i); // e_phoff
    for (let i = 56; i < 58; i++) changed.add(i); // e_phnum
    const dv = new DataView(input.buffer, input.byteOffset);
    const shoff = Number(dv.getBigUint64(40, true));
    for (const s of elf.sections) {
      if (s.name !== ".dynamic" && s.name !== ".dynstr") continue;
      for (let i = 16; i < 40; i++) changed.add(shoff + s.index * 64 + i); // sh_addr, sh_offset, sh_size
    }
    const diff: number[] = [];
    for (let i = 0; i < input.length; i++) if (out[i] !== input[i] && !changed.has(i)) diff.push(i);
    expect(diff).toEqual([]);
  });

  it("is deterministic", () => {
    const again = rewriteElf(elf, { patches: [], needed: ["/opt/sysi/libsysi.so"], noteDesc: note, reserved: [] });
    expect(Buffer.compare(again.bytes, r.bytes)).toBe(0);
  });

  it("readelf sees the runtime first among DT_NEEDED and the new segments", () => {
    const d = readelf(r.bytes, "-d");
    const needed = [...d.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]);
    expect(needed).toEqual(["/opt/sysi/libsysi.so", ...(elf.dynamic?.needed ?? [])]);
    const l = readelf(r.bytes, "-l");
    const load = r.segments[0];
    expect(l).toContain(`0x${load?.offset.toString(16).padStart(6, "0")}`);
    expect(l).toMatch(/PHDR\s+0x0*([0-9a-f]+)/);
    expect(l.match(/PHDR\s+0x0*([0-9a-f]+)/)?.[1]).toBe(load?.offset.toString(16));
  });

  it("the note round-trips and marks the file as patched", () => {
    const out = parseElf(r.bytes, null);
    const desc = findSysiNote(out);
    expect(desc).not.toBeNull();
    const e = decodeEmbedded(desc as Uint8Array);
    expect(e.config).toEqual({ SYSI_HOOK: "count", SYSI_RUNTIMES: "/x/libsysi-ud2.so#e" });
    expect(e.plans.map((p) => [p.key, [...p.plan]])).toEqual([["abc-1", [1, 2, 3]]]);
    expect(() => checkRewritable(out)).toThrow(/already patched by sysi/);
  });

  it("refuses a patch outside the executable sections", () => {
    const data = elf.sections.find((s) => s.name === ".rodata");
    expect(() =>
      rewriteElf(elf, {
        patches: [{ vaddr: data?.addr ?? 0, bytes: new Uint8Array([0x0f, 0x0b]) }],
        needed: [],
        noteDesc: note,
        reserved: [],
      }),
    ).toThrow(PatchError);
  });
});

describe.skipIf(!have)("rewriteElf on /usr/bin/true, standalone", () => {
  const elf = parseElf(new Uint8Array(readFileSync(TRUE)), TRUE);
  const lib = (n: number) => ({ name: `l${n}`, bytes: new Uint8Array([n, n, n]), path: null, key: null, patch: null });
  const stub = new Uint8Array([0xc3]); // ret
  const r = rewriteElf(elf, {
    patches: [],
    needed: [],
    noteDesc: note,
    reserved: [],
    standalone: { stub, libs: [lib(1)] },
  });
  const stubSeg = r.segments.find((s) => s.holds === "stub");

  it("the preinit array names the stub through a relocation appended to IN's (a PIE; readelf -D: by DT_RELA)", () => {
    const d = readelf(r.bytes, "-d");
    expect(d).not.toContain("(NEEDED)                     Shared library: [/");
    const preinit = d.match(/\(PREINIT_ARRAY\)\s+0x([0-9a-f]+)/)?.[1];
    expect(d).toMatch(/\(PREINIT_ARRAYSZ\)\s+8 \(bytes\)/);
    const rela = readelf(r.bytes, "-Dr")
      .split("\n")
      .filter((l) => /R_X86_64_/.test(l));
    const mine = rela.filter((l) => l.startsWith((preinit ?? "?").padStart(16, "0")));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatch(new RegExp(`R_X86_64_RELATIVE\\s+${stubSeg?.vaddr.toString(16)}$`));
    // IN's own relocations are all still there
    const before = readelf(new Uint8Array(readFileSync(TRUE)), "-Dr")
      .split("\n")
      .filter((l) => /R_X86_64_/.test(l));
    expect(rela.length).toBe(before.length + 1);
  });

  it("the stub (R E) and the libraries (R) in segments of their own, the header after the stub", () => {
    const l = readelf(r.bytes, "-l");
    expect(l).toMatch(new RegExp(`LOAD\\s+0x0*${stubSeg?.offset.toString(16)}\\s.*R E`));
    const libs = r.segments.find((s) => s.holds === "libraries");
    expect(l).toMatch(new RegExp(`LOAD\\s+0x0*${libs?.offset.toString(16)}\\s.*R   0x1000`));
    const h = (stubSeg?.offset ?? 0) + 16;
    expect(Buffer.from(r.bytes.subarray(h, h + 8)).toString("latin1")).toBe("SYSISTB\0");
    expect([...r.bytes.subarray(libs?.offset ?? 0, (libs?.offset ?? 0) + 3)]).toEqual([1, 1, 1]);
  });

  it("refuses a library and too many libraries", () => {
    const libs = Array.from({ length: 9 }, (_, i) => lib(i));
    expect(() =>
      rewriteElf(elf, { patches: [], needed: [], noteDesc: note, reserved: [], standalone: { stub, libs } }),
    ).toThrow(/1 to 8 runtime libraries/);
    expect(() =>
      rewriteElf(elf, {
        patches: [],
        needed: [],
        noteDesc: note,
        reserved: [],
        library: true,
        standalone: { stub, libs: [lib(1)] },
      }),
    ).toThrow(PatchError);
  });
});

describe("checkRewritable", () => {
  it("refuses a static executable and a shared library with a reason", () => {
    const stat = parseElf(buildElf({ text: new Uint8Array(16).fill(0x90) }), null);
    expect(() => checkRewritable(stat)).toThrow(/statically linked/);
    const noInterp = parseElf(buildElf({ text: new Uint8Array(16).fill(0x90), needed: ["libc.so.6"] }), null);
    expect(() => checkRewritable(noInterp)).toThrow(/statically linked/);
    // a library with a PT_INTERP (as libc.so.6) is not taken for a PIE
    const lib = parseElf(
      buildElf({
        type: "dyn",
        text: new Uint8Array(16).fill(0x90),
        interpreter: "/lib64/ld-linux-x86-64.so.2",
        soname: "libx.so.1",
        needed: ["libc.so.6"],
      }),
      null,
    );
    expect(() => checkRewritable(lib)).toThrow(/^libx\.so\.1 is a shared library/);
    expect(() => checkRewritable(lib, { library: true })).not.toThrow();
  });
});
