/**
 * The scanner against `objdump -d` (the oracle) on real binaries: the site sets must be equal,
 * and every difference must be one we can explain (uncertain on our side, or data on theirs).
 * objdump runs once per binary; on the ~100 MB bun executable that takes ~40 s.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readElfFile } from "../elf/reader.ts";
import type { ElfFile } from "../elf/types.ts";
import { syscallNumber } from "../syscalls/index.ts";
import { findCandidates } from "./candidates.ts";
import { reachStats, scanElf, uncertainReason } from "./scan.ts";
import type { ScanResult } from "./types.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
const LDSO = "/lib64/ld-linux-x86-64.so.2";
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const HAS_OBJDUMP = has("objdump");
const BUN = (() => {
  const w = spawnSync("sh", ["-c", "command -v bun"], { encoding: "utf8" }).stdout.trim();
  return w ? realpathSync(w) : null;
})();

interface ObjdumpFacts {
  /** vaddr → mnemonic ("syscall", "sysenter", "int $0x80"), prefixes dropped. */
  sites: Map<number, string>;
  /** vaddr of a site → immediate of `mov $imm,%eax|%rax` when that is the line just before. */
  movBefore: Map<number, number>;
  /** Direct jump/call targets objdump printed. */
  targets: Set<number>;
}

/**
 * Runs objdump -d once. Only lines that matter are kept (grep in the pipe: objdump prints ~1 GB
 * for bun): site lines, the line before each, and direct branch lines when `withTargets`.
 */
function objdump(file: string, withTargets: boolean): ObjdumpFacts {
  const site = "\t([a-z0-9.]+ )*(syscall|sysenter|int +\\$0x80) *$";
  const branch = "\t(j[a-z]+|call|loop[a-z]*|jrcxz) +[0-9a-f]+ <";
  const pattern = withTargets ? `(${site})|(${branch})` : site;
  const cmd = `objdump -d --no-show-raw-insn ${JSON.stringify(file)} | grep -E -B1 '${pattern}'`;
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8", maxBuffer: 1 << 30 });
  // grep exits 1 when nothing matched (a binary without syscalls); objdump errors go to stderr.
  if ((r.status !== 0 && r.status !== 1) || r.stderr !== "") throw new Error(`objdump failed: ${r.stderr}`);
  const facts: ObjdumpFacts = { sites: new Map(), movBefore: new Map(), targets: new Set() };
  let prev = "";
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*([0-9a-f]+):\t(.*)$/.exec(line);
    if (!m) {
      prev = "";
      continue;
    }
    const vaddr = Number.parseInt(m[1] as string, 16);
    const insn = (m[2] as string).trim();
    const s = /(?:^|\s)(syscall|sysenter|int +\$0x80)$/.exec(insn);
    if (s) {
      facts.sites.set(vaddr, (s[1] as string).replace(/ +/, " "));
      const mov = /^mov +\$0x([0-9a-f]+),%(eax|rax)$/.exec(prev);
      if (mov) facts.movBefore.set(vaddr, Number.parseInt(mov[1] as string, 16));
    }
    const b = /^(?:j[a-z]+|call|loop[a-z]*|jrcxz) +([0-9a-f]+) </.exec(insn);
    if (b) facts.targets.add(Number.parseInt(b[1] as string, 16));
    prev = insn;
  }
  return facts;
}

/** Numbers of the sites inside the function symbol called `name`. */
function nrsInSymbol(elf: ElfFile, ours: ScanResult, name: string): (number | null)[] {
  const sym = elf.symbols().find((x) => x.name === name && x.size > 0);
  if (!sym) throw new Error(`no symbol ${name}`);
  return ours.sites.filter((s) => s.vaddr >= sym.value && s.vaddr < sym.value + sym.size).map((s) => s.nr);
}

const inRanges = (v: number, rs: readonly { start: number; end: number }[]) =>
  rs.some((r) => r.start <= v && v < r.end);

/** Site sets equal, or every difference explained. Returns the explained differences. */
function compare(elf: ElfFile, ours: ScanResult, theirs: ObjdumpFacts) {
  const mine = new Map(ours.sites.map((s) => [s.vaddr, s]));
  const onlyOurs = ours.sites.filter((s) => !theirs.sites.has(s.vaddr));
  const onlyTheirs = [...theirs.sites.keys()].filter((v) => !mine.has(v));
  // Ours only: acceptable only as an uncertain site (never patched without more evidence).
  for (const s of onlyOurs)
    expect({ vaddr: s.vaddr, uncertain: s.uncertain }).toEqual({ vaddr: s.vaddr, uncertain: true });
  // Theirs only: acceptable only inside a data object (objdump decodes what it cannot know is data).
  const data = elf.dataInText();
  for (const v of onlyTheirs) expect({ vaddr: v, inData: inRanges(v, data) }).toEqual({ vaddr: v, inData: true });
  // Kinds agree on the common sites.
  const kindName = { syscall: "syscall", sysenter: "sysenter", int80: "int $0x80" } as const;
  for (const [v, mn] of theirs.sites) {
    const s = mine.get(v);
    if (s) expect({ v, kind: kindName[s.kind] }).toEqual({ v, kind: mn as (typeof kindName)[keyof typeof kindName] });
  }
  return { onlyOurs, onlyTheirs };
}

/** Our nr equals objdump's `mov $imm,%eax` right before the site, unless a branch targets the site. */
function compareNr(ours: ScanResult, theirs: ObjdumpFacts): number {
  let checked = 0;
  for (const s of ours.sites) {
    const imm = theirs.movBefore.get(s.vaddr);
    if (imm === undefined || s.uncertain) continue;
    const expected = theirs.targets.has(s.vaddr) ? null : imm;
    expect({ vaddr: s.vaddr, nr: s.nr }).toEqual({ vaddr: s.vaddr, nr: expected });
    checked++;
  }
  return checked;
}

/**
 * The reachability analysis only adds certainty: every site certain without it is certain with
 * it, and the uncertain count does not grow. Returns the uncertain count without it.
 */
async function reachOnlyAdds(elf: ElfFile, ours: ScanResult): Promise<number> {
  const plain = await scanElf(elf, { reach: false });
  expect(plain.sites.map((s) => s.vaddr)).toEqual(ours.sites.map((s) => s.vaddr));
  const nowUncertain = ours.sites.filter((s) => s.uncertain).map((s) => s.vaddr);
  const wasUncertain = new Set(plain.sites.filter((s) => s.uncertain).map((s) => s.vaddr));
  expect(nowUncertain.filter((v) => !wasUncertain.has(v))).toEqual([]);
  expect(ours.stats.uncertain).toBeLessThanOrEqual(plain.stats.uncertain);
  return plain.stats.uncertain;
}

function summary(name: string, ours: ScanResult, theirs: ObjdumpFacts, diff: ReturnType<typeof compare>) {
  const reasons = new Map<string, number>();
  for (const s of ours.sites)
    if (s.uncertain) reasons.set(uncertainReason(s) ?? "?", (reasons.get(uncertainReason(s) ?? "?") ?? 0) + 1);
  const reach = reachStats(ours);
  const reachInfo = reach ? `, reach decoded ${reach.decodedInsns} insns in ${reach.traversals} traversals` : "";
  return `${name}: ours ${ours.sites.length} (uncertain ${ours.stats.uncertain}: ${JSON.stringify(Object.fromEntries(reasons))}), objdump ${theirs.sites.size}, ours-only ${diff.onlyOurs.length}, objdump-only ${diff.onlyTheirs.length}, scan ${ours.stats.ms.toFixed(0)} ms${reachInfo}`;
}

describe("scan vs objdump -d", () => {
  test.skipIf(!HAS_OBJDUMP || !existsSync(LIBC))(
    "libc.so.6: same sites, numbers match objdump's mov (needs objdump)",
    async () => {
      const elf = readElfFile(LIBC);
      const ours = await scanElf(elf);
      const theirs = objdump(LIBC, true);
      const diff = compare(elf, ours, theirs);
      expect(ours.sites.length).toBeGreaterThan(400);
      expect(compareNr(ours, theirs)).toBeGreaterThan(300);
      // By symbol: getpid/getppid are a plain mov + syscall.
      for (const name of ["getpid", "getppid"]) expect(nrsInSymbol(elf, ours, name)).toEqual([syscallNumber(name)]);
      const before = await reachOnlyAdds(elf, ours);
      console.log(`${summary("libc", ours, theirs, diff)}; uncertain without reach ${before}`);
    },
  );

  test.skipIf(!HAS_OBJDUMP || !existsSync(LDSO))("ld-linux-x86-64.so.2: same sites (needs objdump)", async () => {
    const elf = readElfFile(LDSO);
    const ours = await scanElf(elf);
    const theirs = objdump(LDSO, true);
    const diff = compare(elf, ours, theirs);
    expect(ours.sites.length).toBeGreaterThan(20);
    expect(compareNr(ours, theirs)).toBeGreaterThan(10);
    await reachOnlyAdds(elf, ours);
    console.log(summary("ld.so", ours, theirs, diff));
  });

  test.skipIf(!HAS_OBJDUMP || !has("go"))(
    "a static Go program built here: same sites (needs go, objdump)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sysi-go-"));
      try {
        writeFileSync(join(dir, "go.mod"), "module sysiscan\n\ngo 1.19\n");
        writeFileSync(
          join(dir, "main.go"),
          'package main\n\nimport (\n\t"fmt"\n\t"os"\n\t"syscall"\n)\n\nfunc main() {\n\tfmt.Println(os.Getpid(), syscall.Getppid())\n}\n',
        );
        const exe = join(dir, "hello");
        const env = {
          ...process.env,
          CGO_ENABLED: "0",
          GOCACHE: join(dir, "cache"),
          GOPATH: join(dir, "gopath"),
          GOFLAGS: "",
        };
        const b = spawnSync("go", ["build", "-o", exe, "."], { cwd: dir, env, encoding: "utf8" });
        expect(b.stderr).toBe("");
        const elf = readElfFile(exe);
        expect(elf.interpreter).toBeNull(); // statically linked
        const ours = await scanElf(elf);
        const theirs = objdump(exe, true);
        const diff = compare(elf, ours, theirs);
        expect(ours.sites.length).toBeGreaterThan(10);
        compareNr(ours, theirs);
        // Go's runtime.exit is MOVL $SYS_exit_group, AX; SYSCALL.
        const exit = elf.symbols().some((x) => x.name === "runtime.exit.abi0") ? "runtime.exit.abi0" : "runtime.exit";
        expect(nrsInSymbol(elf, ours, exit)).toEqual([syscallNumber("exit_group")]);
        await reachOnlyAdds(elf, ours);
        console.log(summary("go", ours, theirs, diff));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test.skipIf(!HAS_OBJDUMP || BUN === null)(
    "the bun executable (~100 MB): same sites (needs objdump; ~45 s)",
    async () => {
      const file = BUN as string;
      const elf = readElfFile(file);
      const ours = await scanElf(elf);
      const theirs = objdump(file, false);
      const diff = compare(elf, ours, theirs);
      expect(ours.sites.length).toBeGreaterThan(100);
      // bun has no .eh_frame and few symbols: nearly every site lies outside known functions and
      // is certain only with proof from reach.ts (entry point, code pointers, call chains).
      const before = await reachOnlyAdds(elf, ours);
      const certain = ours.sites.filter((s) => !s.uncertain).length;
      expect(certain / ours.sites.length).toBeGreaterThanOrEqual(0.9);
      expect(reachStats(ours)?.exhausted).toBe(false);
      console.log(
        `${summary("bun", ours, theirs, diff)}; certain ${certain}/${ours.sites.length} (${((100 * certain) / ours.sites.length).toFixed(1)}%), uncertain without reach ${before}`,
      );
    },
    300_000,
  );

  test.skipIf(!HAS_OBJDUMP || !existsSync("/usr/bin/node"))(
    "/usr/bin/node: data in .text is not a site (needs node, objdump)",
    async () => {
      const elf = readElfFile("/usr/bin/node");
      const ours = await scanElf(elf);
      const theirs = objdump("/usr/bin/node", false);
      const diff = compare(elf, ours, theirs);
      // The opcode pairs that lie inside data objects (OpenSSL tables, …) are never reported.
      const data = elf.dataInText();
      const inData = elf
        .execSegments()
        .flatMap((seg) =>
          findCandidates(elf.bytes.subarray(seg.offset, seg.offset + seg.filesz)).map((c) => seg.vaddr + c.pos),
        )
        .filter((v) => inRanges(v, data));
      expect(inData.length).toBeGreaterThan(0);
      const reported = new Set(ours.sites.map((s) => s.vaddr));
      expect(inData.filter((v) => reported.has(v))).toEqual([]);
      console.log(summary("node", ours, theirs, diff));
    },
    300_000,
  );
});
