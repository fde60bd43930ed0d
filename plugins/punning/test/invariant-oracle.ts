/**
 * An outside check of E9Patch's invariant over a module's punning plan: every original instruction
 * whose bytes a patch changes must now start with a jump (e9, 48 e9, or eb to an e9 inside the
 * patch) to a trampoline that runs that very instruction, relocated, then continues after it.
 *
 * The oracle is objdump, never the planner's decoder:
 * - `objdump -d` of the original file gives the instruction starts, lengths and texts (grep keeps
 *   the 256-byte blocks around the patches, plus every `syscall` line for the site count);
 * - the patched bytes at every address of every patch are decoded by `objdump -D -b binary`, each
 *   in a 32-byte chunk of its own (16 bytes of the patched image, then `cc` so the next chunk
 *   starts in step), addresses printed by objdump translated back to the chunk's real address;
 * - the trampolines (rebuilt from the plan by src/verify.ts the way init.c does) are decoded the
 *   same way, each at a 16-byte aligned offset of one blob, with `cc` between them.
 * Instructions compare as objdump texts with symbols dropped and rip-relative displacements
 * replaced by the `# address` objdump resolves them to, branch targets as absolute addresses:
 * "the same instruction, relocated".
 *
 * From each changed instruction start S0 the check follows the patched jumps (one hop inside the
 * patch is allowed: neigh's eb) to T, which must be an instruction start of one of the patch's
 * trampolines; from T the trampoline's instructions must be the original ones from S0 on, in
 * order, except that the site's `syscall` becomes the hook part (an optional `jmp L` over the
 * in-context block, `lea -0x80(%rsp),%rsp`, `lea S(%rip),%r11` naming this site, `call *slot(%rip)`
 * naming the slot of its own page, with `syscall; jmp R` 22 bytes before R); the trampoline's last
 * instruction must be a jmp to the address after the last original instruction it ran.
 * Every objdump instruction that overlaps a changed byte is checked from its start, so a changed
 * byte on an instruction start (cc filler, a rel32 byte) outside a jump role is a violation, and
 * so is an instruction whose start stays while later bytes change. Besides: no two trampolines
 * share bytes (virtual, or physical through a shared page), none crosses its page's usable part
 * or lies inside the module image, and the runtime refuses none.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ElfFile } from "@sysi/core/elf";
import type { SitePatch } from "@sysi/core/strategy";
import { moduleLayout, PAGE, PAGE_USABLE, SLOT_OFFSET } from "../src/pages.ts";
import { type RebuiltTrampoline, rebuildTrampolines } from "../src/verify.ts";

/** objdump addresses are shifted by 2^40: spans below a library have negative link-time addresses. */
const K = 2 ** 40;
const CHUNK = 32;

export interface Insn {
  at: number;
  len: number;
  text: string;
}

export interface Taken {
  site: number;
  patch: SitePatch;
}

export interface InvariantReport {
  /** `syscall` lines in objdump -d of the whole file. */
  objdumpSites: number;
  patches: number;
  tactics: Record<string, number>;
  trampolines: number;
  /** Original instructions whose bytes a patch changes, each checked from its start. */
  startsChecked: number;
  /** Changed bytes that are objdump instruction starts (a subset of the starts checked). */
  changedStarts: number;
  /** The jump forms found at checked starts: e9, 48e9, eb>e9. */
  jumps: Record<string, number>;
  violations: string[];
}

export const hexAddr = (v: number) => (v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** An objdump text made comparable across addresses (see the header); delta maps printed → real. */
export function norm(text: string, delta = 0): string {
  const addr = (h: string) => hexAddr(Number.parseInt(h, 16) + delta);
  let t = text
    .replace(/\s*<[^>]*>/g, "")
    .replace(/\s+/g, " ")
    .trim();
  t = t.replace(
    /^((?:[a-zA-Z0-9.]+ )*?(?:j[a-z]+|call|loop[a-z]*|xbegin) )(?:0x)?([0-9a-f]+)$/,
    (_m, p: string, h: string) => p + addr(h),
  );
  t = t.replace(/ # (?:0x)?([0-9a-f]+)$/, (_m, h: string) => ` # ${addr(h)}`);
  return t.replace(/-?0x[0-9a-f]+\(%rip\)/g, "(%rip)");
}

const LINE = /^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t(.*)$/;

function parse(out: string): { at: number; len: number; text: string }[] {
  const insns: { at: number; len: number; text: string }[] = [];
  for (const line of out.split("\n")) {
    const m = LINE.exec(line);
    if (m)
      insns.push({ at: Number.parseInt(m[1] as string, 16), len: (m[2] as string).length / 3, text: m[3] as string });
  }
  return insns;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * objdump -d of the original file, kept where it matters: instructions in the 256-byte blocks
 * that `blocks` names, and the number of `syscall` lines anywhere.
 */
export function objdumpFile(
  file: string,
  blocks: Set<number>,
  dir: string,
): { insns: Map<number, Insn>; sites: number } {
  const pat = join(dir, "blocks.txt");
  const lines = [...blocks].map((b) => `^ +${b === 0 ? "" : b.toString(16)}[0-9a-f]{2}:`);
  lines.push("\tsyscall *$");
  writeFileSync(pat, `${lines.join("\n")}\n`);
  const out = run("sh", [
    "-c",
    `objdump -d --insn-width=16 ${JSON.stringify(file)} | grep -E -f ${JSON.stringify(pat)}`,
  ]);
  const insns = new Map<number, Insn>();
  let sites = 0;
  for (const x of parse(out)) {
    if (/^syscall\s*$/.test(x.text)) sites++;
    if (blocks.has(Math.floor(x.at / 256))) insns.set(x.at, { at: x.at, len: x.len, text: norm(x.text) });
  }
  return { insns, sites };
}

/** Decode blob pieces with objdump: each piece (its bytes at blob offset `off`) really lies at `at`. */
function objdumpPieces(blob: Uint8Array, pieces: { off: number; at: number; end: number }[], dir: string): Insn[][] {
  const f = join(dir, "blob.bin");
  writeFileSync(f, blob);
  const insns = parse(
    run("objdump", [
      "-D",
      "-z",
      "-b",
      "binary",
      "-mi386:x86-64",
      "--insn-width=16",
      `--adjust-vma=0x${K.toString(16)}`,
      f,
    ]),
  );
  const out: Insn[][] = pieces.map(() => []);
  let k = 0;
  for (const x of insns) {
    const off = x.at - K;
    while (k < pieces.length && off >= (pieces[k] as { end: number }).end) k++;
    const p = pieces[k];
    if (p === undefined) break;
    if (off < p.off) continue; // cc filler
    const delta = p.at - p.off - K;
    (out[k] as Insn[]).push({ at: x.at + delta, len: x.len, text: norm(x.text, delta) });
  }
  return out;
}

/** The module image with every patch applied (throws when a patch's old bytes are not the file's). */
export function patchedImage(elf: ElfFile, taken: readonly Taken[]): Uint8Array {
  const img = elf.bytes.slice();
  for (const { patch } of taken) {
    const off = elf.vaddrToOffset(patch.patch.vaddr);
    const old = elf.bytesAt(patch.patch.vaddr, patch.patch.bytes.length);
    if (off === null || old === null || hex(old) !== hex(patch.patch.old))
      throw new Error(`patch at ${hexAddr(patch.patch.vaddr)}: old bytes are not the file's`);
    img.set(patch.patch.bytes, off);
  }
  return img;
}

interface Tramp extends RebuiltTrampoline {
  insns: Insn[];
}

export function checkInvariant(file: string, elf: ElfFile, taken: readonly Taken[], dir: string): InvariantReport {
  const violations: string[] = [];
  const img = patchedImage(elf, taken);
  const byteAt = (buf: Uint8Array, a: number) => {
    const off = elf.vaddrToOffset(a);
    return off === null ? undefined : buf[off];
  };

  // (1) objdump of the original file around the patches.
  const blocks = new Set<number>();
  for (const { patch } of taken)
    for (let a = patch.patch.vaddr - 16; a < patch.patch.vaddr + patch.patch.bytes.length + 16; a++)
      blocks.add(Math.floor(a / 256));
  const orig = objdumpFile(file, blocks, dir);

  // (2) the patched bytes at every address of every patch, one chunk each.
  const chunkAt = new Map<number, number>();
  const chunks: { off: number; at: number; end: number }[] = [];
  const blob = new Uint8Array(CHUNK * taken.reduce((n, t) => n + t.patch.patch.bytes.length, 0)).fill(0xcc);
  for (const { patch } of taken)
    for (let a = patch.patch.vaddr; a < patch.patch.vaddr + patch.patch.bytes.length; a++) {
      const off = elf.vaddrToOffset(a) as number;
      blob.set(img.subarray(off, off + 16), chunks.length * CHUNK);
      chunkAt.set(a, chunks.length);
      chunks.push({ off: chunks.length * CHUNK, at: a, end: (chunks.length + 1) * CHUNK });
    }
  const decoded = objdumpPieces(blob, chunks, dir);
  const jumpAt = (a: number): { len: number; to: number } | string => {
    const k = chunkAt.get(a);
    const x = k === undefined ? undefined : decoded[k]?.[0];
    if (x === undefined || x.at !== a) return `no decode at ${hexAddr(a)}`;
    const m = /^(?:rex\.W )?jmp (-?0x[0-9a-f]+)$/.exec(x.text);
    if (m === null) return `"${x.text}"`;
    return { len: x.len, to: Number.parseInt((m[1] as string).replace("0x", ""), 16) };
  };

  // (3) every trampoline, rebuilt from the plan, decoded.
  const perPatch: Tramp[][] = [];
  const all: Tramp[] = [];
  const pieces: { off: number; at: number; end: number }[] = [];
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const { site, patch } of taken) {
    const list: Tramp[] = [];
    for (const r of rebuildTrampolines(elf, site, patch)) {
      const tr: Tramp = { ...r, insns: [] };
      list.push(tr);
      if (r.code === null) {
        violations.push(`${where(site, patch)}: the runtime refuses the ${r.role} trampoline (${r.refused})`);
        continue;
      }
      if (r.code.length !== r.len)
        violations.push(`${where(site, patch)}: ${r.role} trampoline is ${r.code.length} bytes, its span ${r.len}`);
      all.push(tr);
      pieces.push({ off: size, at: r.t, end: size + r.code.length });
      parts.push(r.code);
      size = Math.ceil((size + r.code.length + 1) / 16) * 16;
    }
    perPatch.push(list);
  }
  const tblob = new Uint8Array(size).fill(0xcc);
  parts.forEach((c, i) => {
    tblob.set(c, (pieces[i] as { off: number }).off);
  });
  objdumpPieces(tblob, pieces, dir).forEach((insns, i) => {
    (all[i] as Tramp).insns = insns;
  });
  checkSpans(elf, all, violations);

  // (4) every instruction whose bytes changed, from its start.
  const report: InvariantReport = {
    objdumpSites: orig.sites,
    patches: taken.length,
    tactics: {},
    trampolines: all.length,
    startsChecked: 0,
    changedStarts: 0,
    jumps: {},
    violations,
  };
  taken.forEach(({ site, patch }, n) => {
    const tag = patch.tactic ?? "?";
    report.tactics[tag] = (report.tactics[tag] ?? 0) + 1;
    const start = patch.patch.vaddr;
    const end = start + patch.patch.bytes.length;
    const changed = (a: number) => byteAt(img, a) !== byteAt(elf.bytes, a);
    const bad = (msg: string) => violations.push(`${where(site, patch)}: ${msg}`);
    const touched: Insn[] = [];
    for (let a = start - 15; a < end; a++) {
      const x = orig.insns.get(a);
      if (x === undefined) continue;
      for (let b = Math.max(a, start); b < Math.min(a + x.len, end); b++)
        if (changed(b)) {
          touched.push(x);
          break;
        }
    }
    for (let a = start; a < end; a++) if (changed(a) && orig.insns.has(a)) report.changedStarts++;
    if (!orig.insns.has(site)) bad("the site is not an objdump instruction start");
    for (const x of touched) {
      report.startsChecked++;
      const err = checkStart(x, site, start, end, jumpAt, perPatch[n] as Tramp[], orig.insns, report.jumps);
      if (err !== null) bad(`instruction ${hexAddr(x.at)} "${x.text}": ${err}`);
    }
  });
  return report;
}

function where(site: number, patch: SitePatch): string {
  const p = patch.patch;
  return `site ${hexAddr(site)} ${patch.tactic}, patch ${hexAddr(p.vaddr)} ${hex(p.old)} -> ${hex(p.bytes)}`;
}

/** Trampoline memory: no two spans overlap, in virtual or in physical pages; each fits its page. */
function checkSpans(elf: ElfFile, all: readonly Tramp[], violations: string[]): void {
  const lay = moduleLayout(elf);
  const sorted = [...all].sort((a, b) => a.t - b.t);
  const vphys = new Map<number, number>();
  const byPhys = new Map<number, { off: number; end: number; vpage: number; t: number }[]>();
  sorted.forEach((x, i) => {
    const next = sorted[i + 1];
    if (next !== undefined && next.t < x.t + x.len)
      violations.push(`trampolines at ${hexAddr(x.t)} and ${hexAddr(next.t)} overlap`);
    if (x.t < lay.maxVaddr && lay.minVaddr < x.t + x.len)
      violations.push(`trampoline at ${hexAddr(x.t)} lies inside the module image`);
    const off = x.t - Math.floor(x.t / PAGE) * PAGE;
    if (off + x.len > PAGE_USABLE) violations.push(`trampoline at ${hexAddr(x.t)} crosses its page's usable part`);
    const vpage = Math.floor(x.t / PAGE);
    const p = vphys.get(vpage);
    if (p !== undefined && p !== x.phys) violations.push(`virtual page ${hexAddr(vpage * PAGE)} on two physical pages`);
    vphys.set(vpage, x.phys);
    const list = byPhys.get(x.phys) ?? [];
    for (const o of list)
      if (o.vpage !== vpage && off < o.end && o.off < off + x.len)
        violations.push(`trampolines at ${hexAddr(x.t)} and ${hexAddr(o.t)} share bytes of physical page ${x.phys}`);
    list.push({ off, end: off + x.len, vpage, t: x.t });
    byPhys.set(x.phys, list);
  });
}

/**
 * The instruction x (original, objdump) starts with a jump to a trampoline that runs it and
 * continues after it: null, or what is wrong.
 */
function checkStart(
  x: Insn,
  site: number,
  start: number,
  end: number,
  jumpAt: (a: number) => { len: number; to: number } | string,
  trampolines: readonly Tramp[],
  orig: ReadonlyMap<number, Insn>,
  jumps: Record<string, number>,
): string | null {
  if (x.at < start) return "it starts before the patch, which changes its bytes";
  const first = jumpAt(x.at);
  if (typeof first === "string") return `its start is not a jump but ${first}`;
  let form = first.len === 5 ? "e9" : first.len === 6 ? "48e9" : first.len === 2 ? "eb" : `jmp${first.len}`;
  let target = first.to;
  if (target >= start && target < end) {
    const hop = jumpAt(target);
    if (typeof hop === "string") return `its jump reaches ${hexAddr(target)} inside the patch: ${hop}`;
    if (hop.to >= start && hop.to < end) return "two jumps inside the patch";
    form += `>${hop.len === 5 ? "e9" : `jmp${hop.len}`}`;
    target = hop.to;
  }
  jumps[form] = (jumps[form] ?? 0) + 1;
  const tr = trampolines.find((t) => t.code !== null && target >= t.t && target < t.t + t.len);
  if (tr === undefined) return `its jump goes to ${hexAddr(target)}, in no trampoline of the patch`;
  return walk(x.at, target, tr, site, orig);
}

function walk(s: number, entry: number, tr: Tramp, site: number, orig: ReadonlyMap<number, Insn>): string | null {
  const insns = tr.insns;
  const index = new Map(insns.map((y, i) => [y.at, i]));
  const textAt = (a: number) => {
    const i = index.get(a);
    return i === undefined ? `<nothing at ${hexAddr(a)}>` : (insns[i] as Insn).text;
  };
  const lastInsn = insns[insns.length - 1];
  if (lastInsn === undefined || lastInsn.at + lastInsn.len !== tr.t + tr.len)
    return `the ${tr.role} trampoline at ${hexAddr(tr.t)} does not decode to its end`;
  let i = index.get(entry);
  if (i === undefined) return `its jump goes to ${hexAddr(entry)}, not an instruction start of the trampoline`;
  let o = s;
  let ran = 0;
  const last = insns.length - 1;
  while (i < last) {
    const y = insns[i] as Insn;
    const ox = orig.get(o);
    if (ox === undefined) return `the trampoline at ${hexAddr(y.at)} runs past objdump's instructions (${hexAddr(o)})`;
    if (o === site && ox.text === "syscall") {
      // The hook part: [jmp L], lea over the red zone, lea S(%rip),%r11, call *slot(%rip).
      let k = i;
      const jl = /^jmp (-?0x[0-9a-f]+)$/.exec(y.text);
      if (jl !== null) {
        const l = index.get(Number.parseInt((jl[1] as string).replace("0x", ""), 16));
        if (l === undefined || l <= i)
          return `trampoline ${hexAddr(y.at)}: "${y.text}" is not a jmp over the in-context block`;
        k = l;
      }
      const [a, b, c] = [insns[k], insns[k + 1], insns[k + 2]];
      if (a?.text !== "lea -0x80(%rsp),%rsp")
        return `trampoline ${hexAddr(a?.at ?? y.at)}: "${a?.text}" at the site's hook`;
      if (b?.text !== `lea (%rip),%r11 # ${hexAddr(site)}`)
        return `trampoline ${hexAddr(b?.at ?? a.at)}: "${b?.text}" does not name the site`;
      const slot = Math.floor(c === undefined ? 0 : c.at / PAGE) * PAGE + SLOT_OFFSET;
      if (c?.text !== `call *(%rip) # ${hexAddr(slot)}`)
        return `trampoline ${hexAddr(b.at)}: "${c?.text}" is not the call through the slot`;
      const r = c.at + c.len;
      if (textAt(r - 22) !== "syscall" || textAt(r - 20) !== `jmp ${hexAddr(r)}`)
        return `the in-context block before ${hexAddr(r)} is "${textAt(r - 22)}; ${textAt(r - 20)}"`;
      const next = index.get(r);
      if (next === undefined) return `nothing after the call at ${hexAddr(c.at)}`;
      i = next;
      o += 2;
      ran++;
      continue;
    }
    if (y.text !== ox.text) return `trampoline ${hexAddr(y.at)}: "${y.text}" where ${hexAddr(o)} has "${ox.text}"`;
    i++;
    o += ox.len;
    ran++;
  }
  if (ran === 0) return "its trampoline runs no original instruction";
  if (lastInsn.text !== `jmp ${hexAddr(o)}`)
    return `the trampoline ends with "${lastInsn.text}", not jmp ${hexAddr(o)}`;
  if (!orig.has(o)) return `the trampoline jumps back to ${hexAddr(o)}, not an objdump instruction start`;
  return null;
}
