/**
 * Trampolines: the TS encoder (planner) and the C builder (runtime) must produce the same bytes for
 * every site of libc and ld.so; objdump (the oracle) must decode each trampoline to the layout in
 * encode.ts, with the call through the page's slot and the final jmp back after the window. The
 * second trampolines of succ and neigh too: the planner's, verify.ts's (rebuilt from the plan the
 * way init.c does) and the C builder's (sysi_punning_build_post; sysi_punning_build with the aux
 * word init.c masks to no pre, post or fixups) must agree.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "@sysi/core/elf";
import { createInsnReader, scanElf } from "@sysi/core/scan";
import type { SiteContext } from "@sysi/core/strategy";
import { branchKindOf, buildTrampoline, jmpRel8, jmpRel32, ripDispOffset } from "../src/encode.ts";
import { SLOT_OFFSET } from "../src/pages.ts";
import { planSiteDetailed } from "../src/plan.ts";
import { rebuildTrampolines } from "../src/verify.ts";

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
    expect(Array.from(code.subarray(7, 9))).toEqual([0xeb, 0x04]); // jmp L over the in-context block
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
      const tramps: { t: number; target: number; code: Uint8Array; site: number; back: number; pre: number }[] = [];
      for (const site of scan.sites) {
        const r = planSiteDetailed(site, ctx);
        if (!r.ok) continue;
        const aux = r.patch.aux as [bigint, bigint];
        const pre = Number((aux[1] >> 24n) & 15n);
        const post = Number((aux[1] >> 28n) & 15n);
        // The runtime's t is the jump target: site + aux[0] (the span starts before it).
        expect(site.vaddr + Number(BigInt.asIntN(32, aux[0]))).toBe(r.target);
        const win = elf.bytesAt(site.vaddr - pre, pre + 2 + post) as Uint8Array;
        lines.push(`${r.target.toString(16)} ${site.vaddr.toString(16)} ${aux[1].toString(16)} ${hex(win)}`);
        want.push(hex(r.code));
        tramps.push({ t: r.t, target: r.target, code: r.code, site: site.vaddr, back: site.vaddr + 2 + post, pre });
      }
      expect(lines.length).toBeGreaterThan(40);
      const out = spawnSync(join(NATIVE, "build/tramp-check"), { input: `${lines.join("\n")}\n`, encoding: "utf8" });
      expect(out.stdout.trim().split("\n")).toEqual(want);

      if (!HAS_OBJDUMP) return;
      // objdump: the whole trampoline is code. From the entry: lea over the red zone, the site in
      // r11, the call through the slot of the page; the in-context block (syscall; jmp R) sits 22
      // bytes before R, the last jmp goes back.
      // Addresses are shifted by 2^40 for objdump: spans below a library have negative vaddrs.
      const K = 2 ** 40;
      const hx = (v: number) => (v + K).toString(16);
      const dir = mkdtempSync(join(tmpdir(), "sysi-punning-enc-"));
      const evicts = tramps.filter((x) => x.pre > 0).slice(0, 5);
      for (const tr of [...tramps.slice(0, 40), ...evicts]) {
        const f = join(dir, "t.bin");
        writeFileSync(f, tr.code);
        const dis = spawnSync("objdump", ["-D", "-b", "binary", "-mi386:x86-64", `--adjust-vma=0x${hx(tr.t)}`, f], {
          encoding: "utf8",
        }).stdout;
        const insns = [...dis.matchAll(/^\s*([0-9a-f]+):\t[0-9a-f ]+\t(.*)$/gm)].map((m) => ({
          at: Number.parseInt(m[1] as string, 16) - K,
          text: (m[2] as string).trim(),
        }));
        const at = (a: number) => insns.find((x) => x.at === a)?.text ?? `<nothing at ${a.toString(16)}>`;
        const l = tr.pre > 0 ? tr.t + tr.pre + 2 + 4 : tr.target + 0;
        if (tr.pre > 0) expect(at(tr.t + tr.pre)).toBe(`jmp    0x${hx(l)}`);
        expect(tr.target).toBe(tr.pre > 0 ? tr.t : l);
        const r = l + 18;
        const slot = Math.floor(tr.t / 4096) * 4096 + SLOT_OFFSET;
        expect(at(l)).toBe("lea    -0x80(%rsp),%rsp");
        expect(at(l + 5)).toMatch(new RegExp(`^lea\\s+-?0x[0-9a-f]+\\(%rip\\),%r11\\s+# 0x${hx(tr.site)}$`));
        expect(at(l + 12)).toMatch(new RegExp(`^call\\s+\\*-?0x[0-9a-f]+\\(%rip\\)\\s+# 0x${hx(slot)}$`));
        expect(at(r - 22)).toBe("syscall");
        expect(at(r - 20)).toBe(`jmp    0x${hx(r)}`);
        const jmps = insns.filter((x) => x.at >= r && /^jmp\s/.test(x.text));
        expect(jmps[jmps.length - 1]?.text).toBe(`jmp    0x${hx(tr.back)}`);
      }
    }, 120_000);

    test(`second trampolines of ${path}: planner = verify.ts = C builder`, async () => {
      const { elf, ctx } = contextFor(path);
      const scan = await scanElf(elf);
      const lines: string[] = [];
      const want: string[] = [];
      const seen: Record<string, number> = {};
      for (const site of scan.sites) {
        const r = planSiteDetailed(site, ctx);
        if (!r.ok) continue;
        const rebuilt = rebuildTrampolines(elf, site.vaddr, r.patch);
        const [main, second] = rebuilt;
        expect(main?.code && hex(main.code)).toBe(hex(r.code));
        expect(main?.t).toBe(r.t);
        if (r.second === undefined) {
          expect(rebuilt.length).toBe(1);
          continue;
        }
        expect(rebuilt.length).toBe(2);
        if (second?.code == null) throw new Error(`0x${site.vaddr.toString(16)}: ${second?.refused}`);
        expect(second.t).toBe(r.second.t);
        expect(second.len).toBe(r.second.length);
        expect(hex(second.code)).toBe(hex(r.second.code));
        const aux1 = (r.patch.aux as [bigint, bigint])[1];
        const pre = Number((aux1 >> 24n) & 15n);
        const post = Number((aux1 >> 28n) & 15n);
        const win = hex(elf.bytesAt(site.vaddr - pre, pre + 2 + post) as Uint8Array);
        const s = site.vaddr.toString(16);
        if (second.role === "successor") {
          lines.push(`P ${second.t.toString(16)} ${s} ${aux1.toString(16)} ${win}`);
        } else {
          // init.c prepare_second: aux1 & (0xffffff | 31 << 51), the window at the site itself.
          const plain = aux1 & (0xff_ffffn | (31n << 51n));
          const at = hex(elf.bytesAt(site.vaddr, 2) as Uint8Array);
          lines.push(`B ${second.entry.toString(16)} ${s} ${plain.toString(16)} ${at}`);
        }
        want.push(hex(second.code));
        seen[second.role] = (seen[second.role] ?? 0) + 1;
      }
      console.log(JSON.stringify({ path, second: seen }));
      expect(lines.length).toBeGreaterThan(0);
      const out = spawnSync(join(NATIVE, "build/tramp-check"), { input: `${lines.join("\n")}\n`, encoding: "utf8" });
      expect(out.stdout.trim().split("\n")).toEqual(want);
    }, 120_000);
  }
});
