/**
 * `sysi patch` (issue 15, slice 1: dynamically linked executables, PIE and non-PIE).
 *
 * Oracles: the original program's own output (the patched copy must print the same), objdump -d
 * (no syscall instruction left in the copy's code but the sites --json lists as refused),
 * strace -f with SYSI_MARKER=1 (the hook's counts equal strace's from the runtime's start on),
 * readelf (the runtime is the first DT_NEEDED), and the file system (a failure leaves no file).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createStatsFile, readStatsFile } from "@sysi/core/runtime";
import { straceOracle } from "@sysi/core/testing";
import { hasStack, lines, makeSysiHome, prng, sysi } from "../helpers.ts";

const FIX = join(import.meta.dir, "fixtures", "patch");
const home = makeSysiHome();
const dir = join(home.dir, "work");
const hasStrace = Bun.which("strace") !== null;
const isRoot = process.getuid?.() === 0;
const CHAINS = ["punning,ud2", "zpoline,ud2"];

function run(argv: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

function cc(name: string, extra: string[]): string {
  const out = join(dir, name);
  const r = run(["cc", "-O2", "-pthread", ...extra, "-o", out, join(FIX, "sites.c")]);
  if (r.code !== 0) throw new Error(r.err);
  return out;
}

/** Syscall instructions objdump finds in the file's code. */
function objdumpSites(path: string): number[] {
  const r = run(["objdump", "-d", "--no-show-raw-insn", path]);
  return r.out
    .split("\n")
    .filter((l) => /^\s*[0-9a-f]+:\s+(syscall|sysenter)\b/.test(l))
    .map((l) => Number.parseInt(l.trim().split(":")[0] as string, 16));
}

let pie = "";
let nopie = "";
beforeAll(() => {
  mkdirSync(dir);
  pie = cc("sites-pie", ["-fPIE", "-pie"]);
  nopie = cc("sites-nopie", ["-no-pie"]);
});
afterAll(() => home.cleanup());

async function patch(args: string[]) {
  return sysi(["patch", ...args], home.env);
}

describe("sysi patch: a dynamically linked program with sites of its own", () => {
  for (const chain of CHAINS) {
    for (const kind of ["pie", "nopie"]) {
      test.skipIf(chain.startsWith("zpoline") && !isRoot)(
        `${kind} under -s ${chain}: same output, no syscall left, --json says what it did`,
        async () => {
          const input = kind === "pie" ? pie : nopie;
          const out = join(dir, `${kind}.${chain}`);
          const r = await patch(["-s", chain, "--hook", "passthrough", input, "-o", out, "--json"]);
          expect(r.stderr).toBe("");
          expect(r.code).toBe(0);
          const rep = JSON.parse(r.stdout);
          const native = objdumpSites(input);
          expect(native.length).toBeGreaterThan(0);
          expect(rep.sites).toBe(native.length);
          const refused = rep.refused.map((f: { vaddr: string }) => Number.parseInt(f.vaddr, 16));
          expect(objdumpSites(out).sort()).toEqual(refused.sort());
          const taken = Object.values(rep.byStrategy as Record<string, number>).reduce((a, b) => a + b, 0);
          expect(taken + refused.length).toBe(native.length);
          expect(rep.outputSize).toBe(readFileSync(out).length);
          expect(rep.growth).toBe(rep.outputSize - readFileSync(input).length);
          expect(rep.segments.map((s: { type: string }) => s.type)).toEqual(["LOAD", "NOTE"]);
          // the runtime is the first library the loader maps
          const needed = run(["readelf", "-d", out]).out.match(/\(NEEDED\)\s+Shared library: \[(.*)\]/);
          expect(needed?.[1]).toEndWith("/libsysi.so");
          const a = run([input, "x"]);
          const b = run([out, "x"]);
          expect(b.err).toBe(a.err);
          expect(b.out).toBe(a.out);
          expect(b.code).toBe(a.code);
          // the input is untouched and the output deterministic
          const again = join(dir, `${kind}.${chain}.again`);
          expect((await patch(["-s", chain, "--hook", "passthrough", input, "-o", again])).code).toBe(0);
          expect(Buffer.compare(readFileSync(again), readFileSync(out))).toBe(0);
        },
      );
    }
  }

  for (const chain of CHAINS) {
    test.skipIf(!hasStrace || (chain.startsWith("zpoline") && !isRoot))(
      `--hook count under -s ${chain}: counts equal strace -f's after the runtime started`,
      async () => {
        const out = join(dir, `count.${chain}`);
        expect((await patch(["-s", chain, "--hook", "count", pie, "-o", out])).code).toBe(0);
        const stats = join(dir, `stats.${chain}`);
        const trace = join(dir, `strace.${chain}`);
        createStatsFile(stats);
        const r = run(["strace", "-f", "-qq", "-o", trace, out, "x", "no-bad-nr"], {
          SYSI_STATS_FILE: stats,
          SYSI_MARKER: "1",
        });
        expect(r.code).toBe(0);
        const oracle = straceOracle(readFileSync(trace, "utf8"));
        const ours: Record<string, { calls: number; errors: number }> = {};
        for (const s of readStatsFile(stats).syscalls)
          ours[s.name ?? `nr${s.nr}`] = { calls: s.calls, errors: s.errors };
        const theirs: Record<string, { calls: number; errors: number }> = {};
        for (const [n, c] of Object.entries(oracle.byName)) theirs[n] = { calls: c.calls, errors: c.errors };
        expect(oracle.total).toBeGreaterThan(4000); // the threads' getppid loops
        expect(ours).toEqual(theirs);
      },
    );
  }
});

describe("sysi patch: real programs", () => {
  const programs = [
    { name: "ls", argv: ["/bin/ls", "-la", "/usr/lib"] },
    {
      name: "python3",
      argv: ["/usr/bin/python3", "-c", "import os,sys; print(sorted(os.listdir('/etc'))[:5], sys.version)"],
    },
    { name: "git", argv: ["/usr/bin/git", "--version"] },
  ];
  for (const chain of CHAINS) {
    for (const p of programs) {
      test.skipIf(!existsSync(p.argv[0] as string) || (chain.startsWith("zpoline") && !isRoot))(
        `${p.name} under -s ${chain}: output identical to the original`,
        async () => {
          const out = join(dir, `${p.name}.${chain}`);
          const r = await patch(["-s", chain, "--hook", "passthrough", p.argv[0] as string, "-o", out]);
          expect(r.stderr).toBe("");
          expect(r.code).toBe(0);
          const a = run(p.argv);
          const b = run([out, ...p.argv.slice(1)]);
          expect(b.out).toBe(a.out);
          expect(b.err).toBe(a.err);
          expect(b.code).toBe(a.code);
          // instrumented: every module's plan applied (SYSI_DEBUG names them)
          const d = run([out, ...p.argv.slice(1)], { SYSI_DEBUG: "1" });
          expect(d.err).toContain("sysi: applying plan to /usr/lib/x86_64-linux-gnu/libc.so.6");
          expect(d.err).not.toContain("no plan for");
        },
      );
    }
  }
});

describe("sysi patch: bad input (exit 2, one line, no output left)", () => {
  function expectFailure(r: { code: number; stderr: string }, pattern: RegExp, outDir: string, before: string[]) {
    expect(r.code).toBe(2);
    expect(lines(r.stderr).length).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expect(hasStack(r.stderr)).toBe(false);
    expect(readdirSync(outDir).sort()).toEqual(before);
  }

  test("not ELF, not x86-64, static-pie, already patched, OUT = IN, unwritable OUT", async () => {
    const bad = join(dir, "bad");
    mkdirSync(bad);
    writeFileSync(join(bad, "text"), "#!/bin/sh\necho hi\n");
    const foreign = new Uint8Array(readFileSync(pie));
    new DataView(foreign.buffer).setUint16(18, 183, true); // EM_AARCH64
    writeFileSync(join(bad, "foreign"), foreign);
    const stat = run(["cc", "-static-pie", "-O2", "-o", join(bad, "static"), join(FIX, "sites.c"), "-pthread"]);
    const before = readdirSync(bad).sort();
    const o = join(bad, "out");
    expectFailure(await patch([join(bad, "text"), "-o", o]), /^sysi: error: .*not an ELF/i, bad, before);
    expectFailure(await patch([join(bad, "foreign"), "-o", o]), /^sysi: error: .*x86-64/i, bad, before);
    if (stat.code === 0) {
      // static-pie is not handled yet (static non-PIE programs are: patch-static.test.ts)
      expectFailure(await patch([join(bad, "static"), "-o", o]), /^sysi: error: .*static-pie/, bad, before);
    }
    const once = join(dir, "once");
    expect((await patch(["-s", "ud2", pie, "-o", once])).code).toBe(0);
    expectFailure(await patch(["-s", "ud2", once, "-o", o]), /^sysi: error: already patched by sysi/, bad, before);
    const copy = join(bad, "copy");
    writeFileSync(copy, readFileSync(pie));
    chmodSync(copy, 0o755);
    const withCopy = readdirSync(bad).sort();
    expectFailure(await patch(["-s", "ud2", copy, "-o", copy]), /^sysi: error: OUT is IN/, bad, withCopy);
    expect(Buffer.compare(readFileSync(copy), readFileSync(pie))).toBe(0);
    expectFailure(
      await patch(["-s", "ud2", pie, "-o", join(bad, "missing", "out")]),
      /^sysi: error: cannot write/,
      bad,
      withCopy,
    );
    // --in-place replaces IN (atomically) with the patched program
    const r = await patch(["-s", "ud2", "--hook", "passthrough", copy, "-o", copy, "--in-place"]);
    expect(r.code).toBe(0);
    expect(objdumpSites(copy)).toEqual([]);
    expect(run([copy, "x"]).out).toBe(run([pie, "x"]).out);
  });

  test("mutated inputs: every failure is one line and leaves no file", async () => {
    const base = new Uint8Array(readFileSync(pie));
    const rnd = prng(15);
    const fz = join(dir, "fuzz");
    mkdirSync(fz);
    let failures = 0;
    for (let i = 0; i < 24; i++) {
      const m = base.slice();
      const dv = new DataView(m.buffer);
      // the header and program headers, where the writer looks
      const phoff = Number(dv.getBigUint64(32, true));
      const span = phoff + dv.getUint16(56, true) * 56;
      for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) {
        const at = Math.floor(rnd() * span);
        m[at] = Math.floor(rnd() * 256);
      }
      const input = join(fz, `in${i}`);
      writeFileSync(input, m);
      const before = readdirSync(fz).sort();
      const out = join(fz, `out${i}`);
      const r = await patch(["-s", "ud2", input, "-o", out]);
      if (r.code === 0) {
        expect(existsSync(out)).toBe(true);
        rmSync(out);
        continue;
      }
      failures++;
      expectFailure(r, /^sysi: error: /, fz, before);
    }
    expect(failures).toBeGreaterThan(0);
  });
});
