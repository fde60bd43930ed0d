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
