/**
 * The planner on hand-built code: a fake module (one PT_LOAD at 0x1000 holding the bytes) and a
 * fake instruction oracle from a table of (bytes, mnemonic, branch, rip) rows. Each case names the
 * tactic or the refusal reason it must produce; jumps are checked to land on the trampoline.
 */
import { describe, expect, test } from "bun:test";
import type { ElfFile } from "@sysi/core/elf";
import type { Site } from "@sysi/core/scan";
import type { InsnInfo, SiteContext } from "@sysi/core/strategy";
import { moduleLayout, targetAllowed } from "../src/pages.ts";
import { checkOptions, planSiteDetailed } from "../src/plan.ts";

const BASE = 0x10000;
type Row = [number[], string, { branch?: boolean; rip?: boolean; target?: boolean }?];

function fake(rows: Row[], opts: { type?: number; pie?: boolean; options?: Record<string, string> } = {}) {
  const bytes: number[] = [];
  const insns: InsnInfo[] = [];
  const targets = new Set<number>([BASE]);
  for (const [b, mnemonic, f] of rows) {
    const vaddr = BASE + bytes.length;
    insns.push({
      vaddr,
      length: b.length,
      bytes: Uint8Array.from(b),
      isBranch: f?.branch ?? false,
      ripRelative: f?.rip ?? false,
      mnemonic,
    });
    if (f?.target) targets.add(vaddr);
    bytes.push(...b);
  }
  while (bytes.length < 64) bytes.push(0xcc);
  const buf = Uint8Array.from(bytes);
  const elf = {
    path: null,
    bytes: buf,
    type: opts.type ?? 3,
    entry: BASE,
    segments: [
      { index: 0, type: 1, flags: 5, offset: 0, vaddr: BASE, filesz: buf.length, memsz: buf.length, align: 4096 },
    ],
    sections: [],
    interpreter: null,
    dynamic: opts.pie
      ? { needed: [], soname: null, rpath: null, runpath: null, initArray: null, init: null, flags1: 0x08000000 }
      : null,
    buildId: null,
    warnings: [],
    bytesAt: (v: number, n: number) =>
      v >= BASE && v + n <= BASE + buf.length ? buf.slice(v - BASE, v - BASE + n) : null,
  } as unknown as ElfFile;
  const ctx: SiteContext = {
    elf,
    functions: [{ start: BASE, end: BASE + bytes.length, name: "f", source: "symbol" }],
    decodeAt: (v) => insns.find((i) => i.vaddr === v) ?? null,
    functionInsns: () => insns,
    isKnownTarget: (v) => targets.has(v),
    host: { checks: {} },
    options: opts.options ?? {},
  };
  return { elf, ctx, insns };
}

function siteAt(ctx: SiteContext, kind: Site["kind"] = "syscall"): Site {
  const insn = (ctx.functionInsns(0) as InsnInfo[]).find((i) => i.mnemonic === "syscall" || i.mnemonic === "int");
  const v = (insn as InsnInfo).vaddr;
  return {
    vaddr: v,
    offset: v - BASE,
    kind,
    length: 2,
    bytes: ctx.elf.bytesAt(v, 16) ?? new Uint8Array(),
    nr: null,
    function: "f",
    functionRange: null,
    uncertain: false,
    straddlesPage: false,
  };
}

const MOV = [0xb8, 0x27, 0, 0, 0]; // mov $0x27,%eax
const SYSCALL = [0x0f, 0x05];
const CMP = [0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff]; // cmp $-0xfff,%rax
const RET = [0xc3];
const NOP7 = [0x0f, 0x1f, 0x80, 0, 0, 0, 0]; // nopl 0x0(%rax)

const cases: { name: string; rows: Row[]; options?: Record<string, string>; pie?: boolean; want: string }[] = [
  {
    name: "mov; syscall; cmp → jmp (cmp displaced)",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [CMP, "cmp"],
    ],
    options: { tactics: "jmp" },
    want: "jmp",
  },
  {
    name: "following insn is a branch target → pun",
    // 48 89 c7 (mov %rax,%rdi) gives rel32 0xc78948xx: about -946 MiB, below the image
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [[0x48, 0x89, 0xc7], "mov", { target: true }],
      [CMP, "cmp"],
    ],
    options: { tactics: "jmp,punx" },
    want: "punx",
  },
  {
    name: "syscall; ret; padding → short when jmp and pun are not allowed",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [RET, "ret", { branch: true }],
      [NOP7, "nop"],
    ],
    options: { tactics: "jmp,short" },
    want: "short",
  },
  {
    name: "syscall; ret (no room) → evict the mov before",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [RET, "ret", { branch: true }],
      [[0x55], "push", { target: true }],
    ],
    options: { tactics: "jmp,evict" },
    want: "evict",
  },
  {
    name: "site is a branch target → evict refuses",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall", { target: true }],
      [RET, "ret", { branch: true }],
    ],
    options: { tactics: "evict" },
    want: "refuse:displaced-insn-is-target",
  },
  {
    name: "a call after the site cannot be displaced",
    rows: [
      [SYSCALL, "syscall"],
      [[0xe8, 0, 0, 0, 0], "call", { branch: true }],
    ],
    options: { tactics: "jmp" },
    want: "refuse:displaced-branch",
  },
  {
    name: "jcc after the site is relocated as the window's last insn",
    rows: [
      [SYSCALL, "syscall"],
      [[0x0f, 0x87, 0x10, 0, 0, 0], "ja", { branch: true }],
    ],
    options: { tactics: "jmp" },
    want: "jmp",
  },
  {
    name: "rip-relative insn after the site is relocated",
    rows: [
      [SYSCALL, "syscall"],
      [[0x48, 0x8b, 0x05, 0x10, 0, 0, 0], "mov", { rip: true }],
    ],
    options: { tactics: "jmp" },
    want: "jmp",
  },
  {
    name: "default (sound): mov; syscall; cmp → succ (the cmp gets its own trampoline)",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [CMP, "cmp"],
    ],
    pie: true,
    want: "succ",
  },
  {
    name: "default (sound): a jcc successor is evicted and relocated",
    rows: [
      [SYSCALL, "syscall"],
      [[0x0f, 0x87, 0x10, 0, 0, 0], "ja", { branch: true }],
    ],
    pie: true,
    want: "succ",
  },
  {
    name: "default (sound): a rip-relative successor is evicted and relocated",
    rows: [
      [SYSCALL, "syscall"],
      [[0x48, 0x8b, 0x05, 0x10, 0, 0, 0], "mov", { rip: true }],
    ],
    pie: true,
    want: "succ",
  },
  {
    name: "default (sound): syscall; call → the mov before is evicted (neigh)",
    rows: [
      [MOV, "mov"],
      [SYSCALL, "syscall"],
      [[0xe8, 0, 0, 0, 0], "call", { branch: true }],
    ],
    pie: true,
    options: { tactics: "succ,neigh" },
    want: "neigh",
  },
  {
    name: "sound tactics never look at branch targets: the target successor is evicted all the same",
    rows: [
      [SYSCALL, "syscall"],
      [CMP, "cmp", { target: true }],
    ],
    pie: true,
    options: { tactics: "succ" },
    want: "succ",
  },
  {
    name: "PIE executable: a punned target above the image is refused",
    // 48 89 45 f8 (mov %rax,-8(%rbp)) gives rel32 0x458948xx: +1.1 GiB, above the image
    rows: [
      [SYSCALL, "syscall"],
      [[0x48, 0x89, 0x45, 0xf8], "mov", { target: true }],
    ],
    options: { tactics: "pun" },
    pie: true,
    want: "refuse:pun-no-target",
  },
];

describe("planSite tactics", () => {
  for (const c of cases) {
    test(c.name, () => {
      const { ctx } = fake(c.rows, { options: c.options, pie: c.pie });
      const site = siteAt(ctx);
      const r = planSiteDetailed(site, ctx);
      if (c.want.startsWith("refuse:")) {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.reason).toBe(c.want.slice(7));
        return;
      }
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.patch.tactic).toBe(c.want);
      const p = r.patch.patch;
      // the patch contains the site, is <= 16 bytes, and old bytes are the file's
      expect(p.vaddr).toBeLessThanOrEqual(site.vaddr);
      expect(p.vaddr + p.bytes.length).toBeGreaterThanOrEqual(site.vaddr + 2);
      expect(p.bytes.length).toBeLessThanOrEqual(16);
      expect(Array.from(p.old)).toEqual(Array.from(ctx.elf.bytesAt(p.vaddr, p.old.length) as Uint8Array));
      // follow the jump(s) from the first changed byte: they must reach the trampoline entry
      let at = p.vaddr;
      let i = 0;
      if (p.bytes[0] === 0xeb) {
        at += 2 + (((p.bytes[1] as number) << 24) >> 24);
        i = at - p.vaddr;
      } else if (p.bytes[0] === 0x48 && p.bytes[1] === 0xe9) {
        at += 1; // the prefixed form: rex.W jmp rel32
        i = 1;
      }
      expect(p.bytes[i]).toBe(0xe9);
      const rel = new DataView(p.bytes.buffer, p.bytes.byteOffset).getInt32(i + 1, true);
      expect(at + 5 + rel).toBe(r.target);
      // and the trampoline lies in a zone, away from the image
      expect(targetAllowed(moduleLayout(ctx.elf), r.t, r.length)).toBe(true);
      if (c.want === "pun" || c.want === "punx") {
        // punned: the bytes after e9+free byte are the original following bytes, unchanged
        expect(Array.from(p.bytes.slice(2))).toEqual(Array.from(p.old.slice(2)));
      }
      if (["pun", "succ", "neigh"].includes(c.want)) {
        // E9Patch's invariant: every instruction start in the patch keeps its byte or starts a jump
        let v = BASE;
        for (const [b] of c.rows) {
          if (v >= p.vaddr && v < p.vaddr + p.bytes.length) {
            const now = p.bytes[v - p.vaddr] as number;
            const was = p.old[v - p.vaddr] as number;
            if (now !== was) expect(v === site.vaddr ? [0xe9, 0xeb, 0x48] : [0xe9]).toContain(now);
          }
          v += b.length;
        }
      }
    });
  }

  test("int $0x80 is not planned", () => {
    const { ctx } = fake([[[0xcd, 0x80], "int"]]);
    const r = planSiteDetailed(siteAt(ctx, "int80"), ctx);
    expect(r.ok ? "" : r.reason).toBe("unsupported-kind");
  });

  test("zones: a library may use both sides, a PIE executable only below, ET_EXEC absolute", () => {
    const lib = moduleLayout(fake([[SYSCALL, "syscall"]]).elf);
    expect(lib.zones.length).toBe(2);
    expect(lib.zones.every((z) => z.end <= lib.minVaddr - 0x1000_0000 || z.start >= lib.maxVaddr + 0x1000_0000)).toBe(
      true,
    );
    const pie = moduleLayout(fake([[SYSCALL, "syscall"]], { pie: true }).elf);
    expect(pie.zones.every((z) => z.end < pie.minVaddr)).toBe(true);
    const exe = moduleLayout(fake([[SYSCALL, "syscall"]], { type: 2 }).elf);
    expect(exe.zones.every((z) => z.start >= 0x10_0000)).toBe(true);
  });
});

test("the same bytes in a library pun to the target above the image", () => {
  const { ctx } = fake(
    [
      [SYSCALL, "syscall"],
      [[0x48, 0x89, 0x45, 0xf8], "mov", { target: true }],
    ],
    {
      options: { tactics: "pun" },
    },
  );
  const r = planSiteDetailed(siteAt(ctx), ctx);
  expect(r.ok && r.patch.tactic).toBe("pun");
  if (r.ok) expect(r.t).toBeGreaterThan(BASE + 0x4000_0000);
});

test("trampolines of one module never overlap; punned pages share physical pages", () => {
  // many sites in one module: place them all and check the space's bookkeeping
  const rows: Row[] = [];
  for (let i = 0; i < 40; i++) rows.push([MOV, "mov"], [SYSCALL, "syscall"], [CMP, "cmp"]);
  const { ctx, insns } = fake(rows);
  const placed: [number, number][] = [];
  for (const insn of insns.filter((x) => x.mnemonic === "syscall")) {
    const site = { ...siteAt(ctx), vaddr: insn.vaddr, offset: insn.vaddr - BASE };
    const r = planSiteDetailed(site, ctx);
    expect(r.ok).toBe(true);
    if (r.ok) placed.push([r.t, r.t + r.length]);
  }
  placed.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < placed.length; i++)
    expect((placed[i] as number[])[0]).toBeGreaterThanOrEqual((placed[i - 1] as number[])[1] as number);
});

describe("checkOptions", () => {
  test("takes tactics= with known names only", () => {
    expect(checkOptions({})).toBeNull();
    expect(checkOptions({ tactics: "jmp+pun" })).toBeNull();
    expect(checkOptions({ tactics: "jmp,evict" })).toBeNull();
    expect(checkOptions({ tactics: "jmp+bogus" })).toBe(
      'unknown tactic "bogus" (sound: pun, succ, neigh; unsafe: jmp, punx, short, evict)',
    );
    expect(checkOptions({ variant: "jmp" })).toContain('unknown option "jmp"');
  });
});
