import { describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Site, SiteKind } from "@sysi/core/scan";
import { isRefusal, type SitePatch } from "@sysi/core/strategy";
import { gadgetBytes, trapBytes, VARIANT_CODE, VARIANTS } from "../src/encode.ts";
import factory from "../src/index.ts";
import { checkOptions, planSite } from "../src/plan.ts";

function site(kind: SiteKind, bytes: number[], vaddr = 0x1234): Site {
  return {
    vaddr,
    offset: vaddr,
    kind,
    length: 2,
    bytes: Uint8Array.from(bytes),
    nr: 39,
    function: "f",
    functionRange: { start: vaddr - 5, end: vaddr + 3 },
    uncertain: false,
    straddlesPage: (vaddr & 0xfff) === 0xfff,
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("planSite", () => {
  const accepted: [string, SiteKind, number[], string | undefined, string, bigint][] = [
    ["syscall → ud2 (default)", "syscall", [0x0f, 0x05, 0xc3], undefined, "0f0b", 0n],
    ["sysenter → ud2", "sysenter", [0x0f, 0x34, 0x90], undefined, "0f0b", 0n],
    ["syscall → int3; nop", "syscall", [0x0f, 0x05, 0xc3], "int3", "cc90", 1n],
    ["syscall → hlt; nop", "syscall", [0x0f, 0x05, 0xc3], "hlt", "f490", 2n],
    ["syscall → int $4", "syscall", [0x0f, 0x05, 0xc3], "int4", "cd04", 3n],
    ["explicit ud2 variant", "syscall", [0x0f, 0x05], "ud2", "0f0b", 0n],
  ];
  for (const [name, kind, bytes, variant, want, aux] of accepted) {
    it(`patches ${name}`, () => {
      const r = planSite(site(kind, bytes), { options: variant === undefined ? {} : { variant } });
      expect(isRefusal(r)).toBe(false);
      const p = r as SitePatch;
      expect(p.patch.vaddr).toBe(0x1234);
      expect(hex(p.patch.old)).toBe(hex(Uint8Array.from(bytes.slice(0, 2))));
      expect(hex(p.patch.bytes)).toBe(want);
      expect(p.aux).toEqual([aux, 0n]);
    });
  }

  const refused: [string, SiteKind, number[], Record<string, string>, string][] = [
    ["int 0x80", "int80", [0xcd, 0x80], {}, "int80-not-supported"],
    ["an unknown variant", "syscall", [0x0f, 0x05], { variant: "bogus" }, "unknown-variant"],
    ["bytes that are not a syscall", "syscall", [0x0f, 0x0b], {}, "unexpected-bytes"],
    ["a sysenter site holding syscall bytes", "sysenter", [0x0f, 0x05], {}, "unexpected-bytes"],
    ["a truncated site", "syscall", [0x0f], {}, "unexpected-bytes"],
  ];
  for (const [name, kind, bytes, options, reason] of refused) {
    it(`refuses ${name} with ${reason}`, () => {
      const r = planSite(site(kind, bytes), { options });
      expect(isRefusal(r)).toBe(true);
      expect((r as { reason: string }).reason).toBe(reason);
    });
  }

  it("patches a site that straddles a page boundary like any other (2 bytes, same patch)", () => {
    const r = planSite(site("syscall", [0x0f, 0x05], 0x3fff), { options: {} }) as SitePatch;
    expect(r.patch.vaddr).toBe(0x3fff);
    expect(hex(r.patch.bytes)).toBe("0f0b");
  });
});

describe("checkOptions", () => {
  it("takes each trap, and nothing else", () => {
    for (const v of VARIANTS) expect(checkOptions({ variant: v })).toBeNull();
    expect(checkOptions({})).toBeNull();
    expect(checkOptions({ variant: "int5" })).toBe('unknown trap "int5" (use ud2, int3, hlt or int4)');
    expect(checkOptions({ mode: "fast" })).toContain('unknown option "mode=fast"');
  });
});

describe("encode", () => {
  it("builds the trap bytes and variant codes the runtime expects (native/ud2.h)", () => {
    expect(hex(trapBytes("ud2"))).toBe("0f0b");
    expect(hex(trapBytes("int3"))).toBe("cc90");
    expect(hex(trapBytes("hlt"))).toBe("f490");
    expect(hex(trapBytes("int4"))).toBe("cd04");
    expect(VARIANT_CODE).toEqual({ ud2: 0n, int3: 1n, hlt: 2n, int4: 3n });
  });

  const objdump = Bun.which("objdump");
  it.skipIf(objdump === null)("each variant's bytes decode (objdump) as the trap it names, 2 bytes in all", () => {
    const want: Record<string, string[]> = {
      ud2: ["ud2"],
      int3: ["int3", "nop"],
      hlt: ["hlt", "nop"],
      int4: ["int    $0x4"],
    };
    for (const v of VARIANTS) {
      const dir = mkdtempSync(join(tmpdir(), "sysi-ud2-objdump-"));
      try {
        const f = join(dir, `${v}.bin`);
        writeFileSync(f, trapBytes(v));
        const r = Bun.spawnSync(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f], { stdout: "pipe" });
        expect(r.exitCode).toBe(0);
        // "   0:\tcd 04                \tint    $0x4"
        const insns = [...r.stdout.toString().matchAll(/^\s+[0-9a-f]+:\t(?:[0-9a-f]{2} )+\s*\t(.+?)\s*$/gm)].map(
          (m) => m[1],
        );
        expect({ v, insns }).toEqual({ v, insns: want[v] as string[] });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it("builds the in-context gadget: syscall; jmp *0(%rip); .quad site+2", () => {
    // site + 2 = 0x7f0000001002, little endian
    expect(hex(gadgetBytes(0x7f0000001000n))).toBe("0f05ff25" + "00000000" + "02100000007f0000");
  });
});

describe("strategy", () => {
  it("names its runtime library and entry", () => {
    const s = factory({ version: "0", includeDir: "/x" });
    expect(s.name).toBe("ud2");
    expect(s.requires).toEqual([]);
    expect(s.runtime.lib).toBe("libsysi-ud2.so");
    expect(s.runtime.entry).toBe("sysi_ud2_entry");
    expect(s.runtime.nativeDir.endsWith("plugins/ud2/native")).toBe(true);
  });
});
