import { describe, expect, it } from "bun:test";
import { buildElf, type FixtureSymbol } from "../../test/fixtures/elf-builder.ts";
import { parseElf } from "../elf/reader.ts";
import { SYS } from "../syscalls/index.ts";
import { findCandidates } from "./candidates.ts";
import { type CodeView, DecodeEngine } from "./decode.ts";
import { loadIced } from "./iced.ts";
import { scanElf, uncertainReason } from "./scan.ts";

const BASE = 0x401000;
const hex = (s: string) => Uint8Array.from((s.match(/[0-9a-f]{2}/g) ?? []).map((h) => Number.parseInt(h, 16)));
const fn = (name: string, value: number, size: number): FixtureSymbol => ({ name, value: BASE + value, size });

// Hand-encoded sequences (disassembly in the comments).
const MOV_EAX_39 = "b8 27 00 00 00"; // mov $0x27,%eax
const MOV_RAX_60 = "48 c7 c0 3c 00 00 00"; // mov $0x3c,%rax
const SYSCALL = "0f 05"; // syscall
const RET = "c3"; // ret

async function scan(text: string, opts: { symbols?: FixtureSymbol[]; fdes?: { start: number; end: number }[] } = {}) {
  const bytes = buildElf({
    text: hex(text),
    symbols: opts.symbols,
    fdes: opts.fdes?.map((f) => ({ start: BASE + f.start, end: BASE + f.end })),
  });
  return scanElf(parseElf(bytes, "fixture"));
}

describe("findCandidates", () => {
  it("finds every opcode pair, sorted, including overlapping ones", () => {
    const b = hex("0f 05 0f 34 cd 80 00 0f 0f 05 cd cd 80");
    expect(findCandidates(b)).toEqual([
      { pos: 0, kind: "syscall" },
      { pos: 2, kind: "sysenter" },
      { pos: 4, kind: "int80" },
      { pos: 8, kind: "syscall" },
      { pos: 11, kind: "int80" },
    ]);
    expect(findCandidates(b, 1, 9)).toEqual([
      { pos: 2, kind: "sysenter" },
      { pos: 4, kind: "int80" },
    ]);
  });
});

describe("DecodeEngine.sweepCover", () => {
  it("equals a full linear sweep from the restart point at every byte (random and code-like bytes)", () => {
    const engine = new DecodeEngine(loadIced());
    try {
      let seed = 12345;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed >> 16;
      };
      // Mix of random bytes and common opcodes so that both long and short instructions appear.
      const common = [0x48, 0x89, 0x8b, 0xe8, 0x0f, 0x05, 0x66, 0xc7, 0x44, 0x24, 0x00, 0xcc, 0x90];
      const bytes = new Uint8Array(6000);
      for (let i = 0; i < bytes.length; i++)
        bytes[i] = rand() % 3 === 0 ? (common[rand() % common.length] as number) : rand() & 0xff;
      const view: CodeView = { bytes, base: 0x1000 };
      for (const restart of [0, 7, 1500]) {
        const full = engine.decodeLinear(view, restart, bytes.length);
        let k = 0;
        for (let c = restart; c < bytes.length - 16; c += 13) {
          while (k + 1 < full.starts.length && (full.starts[k + 1] as number) <= c) k++;
          const r = engine.sweepCover(view, restart, c, bytes.length);
          expect(r?.start).toBe(full.starts[k] as number);
          // Everything from exactFrom on is on the full sweep.
          expect(full.starts).toContain(r?.exactFrom as number);
        }
      }
    } finally {
      engine.free();
    }
  });
});

describe("scanElf", () => {
  it("reports a syscall in a function with its number, bytes and location", async () => {
    const text = `${MOV_EAX_39} ${SYSCALL} ${RET} cc cc cc cc cc cc cc cc`;
    const r = await scan(text, { symbols: [fn("my_getpid", 0, 8)] });
    expect(r.sites).toHaveLength(1);
    const s = r.sites[0];
    expect(s).toMatchObject({
      vaddr: BASE + 5,
      kind: "syscall",
      length: 2,
      nr: SYS.getpid,
      function: "my_getpid",
      functionRange: { start: BASE, end: BASE + 8 },
      uncertain: false,
      straddlesPage: false,
    });
    expect([...(s?.bytes ?? [])]).toEqual([...hex(`${SYSCALL} ${RET} cc cc cc cc cc cc cc cc`)]);
    expect(r.stats.byKind).toEqual({ syscall: 1, sysenter: 0, int80: 0 });
    expect(r.stats.functions).toBe(1);
    expect(r.stats.uncertain).toBe(0);
    expect(r.path).toBe("fixture");
  });

  it("file offset maps the vaddr through the segment", async () => {
    const bytes = buildElf({ text: hex(`${MOV_EAX_39} ${SYSCALL} ${RET}`), symbols: [fn("f", 0, 8)] });
    const elf = parseElf(bytes);
    const r = await scanElf(elf);
    const s = r.sites[0];
    expect(s).toBeDefined();
    expect(elf.vaddrToOffset(s?.vaddr ?? 0)).toBe(s?.offset ?? -1);
    expect(bytes[s?.offset ?? 0]).toBe(0x0f);
  });

  it("ignores opcode pairs inside other instructions", async () => {
    // e8 0f 05 00 00: call .+0x50f — the 0f 05 is a displacement.
    const r = await scan(`e8 0f 05 00 00 ${RET}`, { symbols: [fn("f", 0, 6)] });
    expect(r.sites).toEqual([]);
  });

  it("finds all three kinds and a 64-bit mov of the number", async () => {
    // mov $0x3c,%rax; syscall; int $0x80; sysenter; ret
    const r = await scan(`${MOV_RAX_60} ${SYSCALL} cd 80 0f 34 ${RET}`, { symbols: [fn("f", 0, 14)] });
    expect(r.sites.map((s) => [s.vaddr - BASE, s.kind, s.nr])).toEqual([
      [7, "syscall", SYS.exit],
      [9, "int80", null], // the syscall before it clobbers rax: its number is unknown
      [11, "sysenter", null],
    ]);
  });

  it("stops the number search at a known jump target, a call, or another write to eax", async () => {
    // mov $0x27,%eax; L: syscall; jmp L  → L is a jump target: the mov does not dominate
    const loop = await scan(`${MOV_EAX_39} ${SYSCALL} eb fc`, { symbols: [fn("f", 0, 9)] });
    expect(loop.sites.map((s) => s.nr)).toEqual([null]);
    // mov $0x27,%eax; xor %eax,%eax; syscall
    const xor = await scan(`${MOV_EAX_39} 31 c0 ${SYSCALL} ${RET}`, { symbols: [fn("f", 0, 10)] });
    expect(xor.sites.map((s) => s.nr)).toEqual([null]);
    // mov $0x27,%eax; call .+0; syscall
    const call = await scan(`${MOV_EAX_39} e8 00 00 00 00 ${SYSCALL} ${RET}`, { symbols: [fn("f", 0, 13)] });
    expect(call.sites.map((s) => s.nr)).toEqual([null]);
    // mov $0x27,%eax; mov %rdi,%rsi; syscall — unrelated writes do not matter
    const other = await scan(`${MOV_EAX_39} 48 89 fe ${SYSCALL} ${RET}`, { symbols: [fn("f", 0, 11)] });
    expect(other.sites.map((s) => s.nr)).toEqual([SYS.getpid]);
  });

  it("skips data objects inside the text", async () => {
    const r = await scan(`${RET} 0f 05 90 0f 05`, {
      symbols: [fn("f", 0, 1), { name: "table", value: BASE + 1, size: 5, type: "object" }],
    });
    expect(r.sites).toEqual([]);
  });

  it("reports a site outside every known function as uncertain (gap sweep)", async () => {
    // f: ret; then, no function: mov $0x27,%eax; syscall
    const r = await scan(`${RET} ${MOV_EAX_39} ${SYSCALL}`, { symbols: [fn("f", 0, 1)] });
    expect(r.sites).toHaveLength(1);
    const s = r.sites[0] as (typeof r.sites)[number];
    expect(s).toMatchObject({ vaddr: BASE + 6, uncertain: true, function: null, functionRange: null });
    expect(uncertainReason(s)).toBe("gap-sweep");
    expect(r.stats.uncertain).toBe(1);
  });

  it("uses .eh_frame ranges as functions", async () => {
    const r = await scan(`${RET} ${MOV_EAX_39} ${SYSCALL} ${RET}`, { fdes: [{ start: 1, end: 9 }] });
    expect(r.sites).toHaveLength(1);
    expect(r.sites[0]).toMatchObject({
      vaddr: BASE + 6,
      nr: SYS.getpid,
      uncertain: false,
      function: null,
      functionRange: { start: BASE + 1, end: BASE + 9 },
    });
  });

  it("marks a site uncertain when the function start and the sweep disagree", async () => {
    // From 0: b8 0f 05 90 90 = mov $0x9090050f,%eax (no syscall). An FDE claims code starts at 1,
    // where 0f 05 would be a syscall: the two decodes conflict.
    const r = await scan(`b8 0f 05 90 90 ${RET}`, { fdes: [{ start: 1, end: 6 }] });
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain])).toEqual([[1, true]]);
    expect(uncertainReason(r.sites[0] as (typeof r.sites)[number])).toBe("boundary-conflict");
  });

  it("marks a site uncertain when the function decode met invalid bytes first", async () => {
    // 06 is invalid in 64-bit mode.
    const r = await scan(`06 ${MOV_EAX_39} ${SYSCALL} ${RET}`, { symbols: [fn("f", 0, 9)] });
    expect(r.sites.map((s) => [s.vaddr - BASE, s.uncertain, s.nr])).toEqual([[6, true, SYS.getpid]]);
    expect(uncertainReason(r.sites[0] as (typeof r.sites)[number])).toBe("invalid-before-site");
  });

  it("flags a syscall whose two bytes cross a page boundary", async () => {
    const pad = Array(0xfff).fill("90").join(" ");
    const r = await scan(`${pad} ${SYSCALL} ${RET}`, { symbols: [fn("f", 0, 0x1002)] });
    expect(r.sites.map((s) => [s.vaddr - BASE, s.straddlesPage])).toEqual([[0xfff, true]]);
  });

  it("reports progress and works on code with no candidates", async () => {
    const calls: [number, number][] = [];
    const bytes = buildElf({ text: hex(`${RET}`) });
    const r = await scanElf(parseElf(bytes), { onProgress: (d, t) => calls.push([d, t]) });
    expect(r.sites).toEqual([]);
    expect(calls.at(-1)).toEqual([0, 0]);
    expect(r.stats.textBytes).toBeGreaterThan(0);
  });
});
