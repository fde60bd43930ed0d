/**
 * Trampolines: the TS encoder (planner) and the C builder (runtime) must produce the same bytes for
 * every site of libc and ld.so; objdump (the oracle) must decode each trampoline to the layout in
 * encode.ts, with the call through the page's slot and the final jmp back after the window.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "@sysi/core/elf/reader";
import type { SiteContext } from "@sysi/core/strategy";
import { createInsnReader } from "@sysi/core/x86/insn";
import { scanElf } from "@sysi/core/x86/scan";
import { branchKindOf, buildTrampoline, jmpRel8, jmpRel32, ripDispOffset } from "../src/encode.ts";
import { SLOT_OFFSET } from "../src/pages.ts";
import { planSiteDetailed } from "../src/plan.ts";

const NATIVE = join(import.meta.dir, "..", "native");
const CHECK_OK = spawnSync("make", ["-s", "-C", NATIVE, "build/tramp-check"]).status === 0;
const HAS_OBJDUMP = spawnSync("sh", ["-c", "command -v objdump"]).status === 0;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("byte builders", () => {
  test.each([
    [[0x48, 0x8b, 0x05, 1, 2, 3, 4], 3], // mov 0x04030201(%rip),%rax
    [[0x8b, 0x05, 1, 2, 3, 4], 2], // mov ...(%rip),%eax
    [[0x66, 0x0f, 0x6f, 0x05, 1, 2, 3, 4], 4], // movdqa ...(%rip),%xmm0
    [[0xc5, 0xf9, 0x6f, 0x05, 1, 2, 3, 4], 4], // vmovdqa ...(%rip),%xmm0
    [[0x48, 0x8d, 0x3d, 1, 2, 3, 4], 3], // lea ...(%rip),%rdi
    [[0x48, 0x8b, 0x04, 0x24], -1], // mov (%rsp),%rax: not rip-relative
  ])("ripDispOffset(%p) = %p", (bytes, off) => {
    expect(ripDispOffset(Uint8Array.from(bytes))).toBe(off);
  });
  test.each([
    [[0xeb, 0x10], "jmp8"],
    [[0xe9, 0, 0, 0, 0], "jmp32"],
    [[0x77, 0x05], "jcc8"],
    [[0x0f, 0x87, 0, 1, 0, 0], "jcc32"],
    [[0xc3], "none"],
    [[0xff, 0xe0], "none"],
  ])("branchKindOf(%p) = %p", (bytes, kind) => {
    expect(branchKindOf(Uint8Array.from(bytes))).toBe(kind as ReturnType<typeof branchKindOf>);
  });
  test("jmpRel32 / jmpRel8 encode the distance from the end of the jump", () => {
    expect(hex(jmpRel32(0x1000, 0x2000))).toBe("e9fb0f0000");
    expect(hex(jmpRel32(0x2000, 0x1000))).toBe("e9fbefffff");
    expect(hex(jmpRel8(0x1000, 0x1008))).toBe("eb06");
  });
  test("a relocated rip-relative operand still names the same address", () => {
    // mov 0x100(%rip),%rax at 0x5000 reads 0x5107; moved to 0x7000 it must read 0x5107 too.
    const d = {
      vaddr: 0x5000,
      bytes: Uint8Array.of(0x48, 0x8b, 0x05, 0, 1, 0, 0),
      ripDisp: 3,
      branch: "none" as const,
    };
    const code = buildTrampoline(0x7000, 0x5007, [d], [], 0x5009) as Uint8Array;
    const disp = new DataView(code.buffer).getInt32(3, true);
    expect(0x7000 + 7 + disp).toBe(0x5107);
  });
});

function contextFor(path: string) {
  const elf = readElfFile(path);
  const reader = createInsnReader(elf);
  const ctx: SiteContext = {
    elf,
    functions: elf.functions(),
    decodeAt: (v) => reader.decodeAt(v),
    functionInsns: (v) => reader.functionInsns(v),
    isKnownTarget: (v) => reader.isKnownTarget(v),
    host: { checks: {} },
    options: {},
  };
  return { elf, ctx };
}

describe.skipIf(!CHECK_OK)("TS encoder = C builder (needs cc)", () => {
  for (const path of ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]) {
    test(`every trampoline of ${path}`, async () => {
      const { elf, ctx } = contextFor(path);
      const scan = await scanElf(elf);
      const lines: string[] = [];
      const want: string[] = [];
      const tramps: { t: number; code: Uint8Array; site: number; back: number }[] = [];
      for (const site of scan.sites) {
        const r = planSiteDetailed(site, ctx);
        if (!r.ok) continue;
        const aux1 = (r.patch.aux as [bigint, bigint])[1];
        const pre = Number((aux1 >> 24n) & 15n);
        const post = Number((aux1 >> 28n) & 15n);
        const win = elf.bytesAt(site.vaddr - pre, pre + 2 + post) as Uint8Array;
        lines.push(`${r.t.toString(16)} ${site.vaddr.toString(16)} ${aux1.toString(16)} ${hex(win)}`);
        want.push(hex(r.code));
        tramps.push({ t: r.t, code: r.code, site: site.vaddr, back: site.vaddr + 2 + post });
      }
      expect(lines.length).toBeGreaterThan(40);
      const out = spawnSync(join(NATIVE, "build/tramp-check"), { input: `${lines.join("\n")}\n`, encoding: "utf8" });
      expect(out.stdout.trim().split("\n")).toEqual(want);

      if (!HAS_OBJDUMP) return;
      // objdump: the call goes through the slot of the trampoline's page, the last jmp goes back.
      const dir = mkdtempSync(join(tmpdir(), "sysi-punning-enc-"));
      for (const tr of tramps.slice(0, 40)) {
        const f = join(dir, "t.bin");
        writeFileSync(f, tr.code);
        // The i32 at R+10 is data: disassemble [T, R+10) and [R+14, end) separately.
        const r = hex(tr.code).indexOf("488d642480ff15") / 2 + 11;
        const dis = (from: number, to: number) =>
          spawnSync(
            "objdump",
            [
              "-D",
              "-b",
              "binary",
              "-mi386:x86-64",
              `--adjust-vma=0x${tr.t.toString(16)}`,
              `--start-address=0x${(tr.t + from).toString(16)}`,
              `--stop-address=0x${(tr.t + to).toString(16)}`,
              f,
            ],
            { encoding: "utf8" },
          ).stdout;
        const head = dis(0, r + 10);
        const tail = dis(r + 14, tr.code.length);
        const slot = Math.floor(tr.t / 4096) * 4096 + SLOT_OFFSET;
        expect(head).toContain(`call   *0x${(slot - (tr.t + r)).toString(16)}(%rip)        # 0x${slot.toString(16)}`);
        expect(head).toContain(`jmp    0x${(tr.t + r + 24).toString(16)}`);
        expect(tail).toMatch(/lea\s+0x80\(%rsp\),%rsp[\s\S]*?\tsyscall/);
        const jmps = [...tail.matchAll(/\tjmp\s+0x([0-9a-f]+)/g)].map((m) => Number.parseInt(m[1] as string, 16));
        expect(jmps[jmps.length - 1]).toBe(tr.back);
        const site = new DataView(tr.code.buffer, tr.code.byteOffset).getInt32(r + 10, true) + tr.t + r;
        expect(site).toBe(tr.site);
      }
    }, 120_000);
  }
});
