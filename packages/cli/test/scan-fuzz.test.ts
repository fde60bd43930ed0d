import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasStack, lines, makeSysiHome, mapLimit, prng, sysi, TRUE_BIN } from "./helpers.ts";

const SEED = 0x5eed_0001;
const COUNT = 50;

/** Deterministic mutants of /usr/bin/true: truncations and flips in the ELF, program and section headers. */
function mutants(src: Uint8Array, seed: number, n: number): { name: string; bytes: Uint8Array }[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo));
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const phoff = Number(dv.getBigUint64(32, true));
  const phsize = dv.getUint16(54, true) * dv.getUint16(56, true);
  const shoff = Number(dv.getBigUint64(40, true));
  const shsize = dv.getUint16(58, true) * dv.getUint16(60, true);
  const regions: [string, number, number][] = [
    ["ehdr", 4, 64], // keep the magic: flips past it reach the parser
    ["phdr", phoff, phoff + phsize],
    ["shdr", shoff, shoff + shsize],
  ];
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) {
    const kind = int(0, 4);
    if (kind === 0) {
      const len = rnd() < 0.5 ? int(0, 4096) : int(0, src.length);
      out.push({ name: `${i}-trunc-${len}`, bytes: src.slice(0, len) });
      continue;
    }
    const [region, lo, hi] = regions[kind - 1] as [string, number, number];
    const b = src.slice();
    const flips = int(1, 5);
    for (let f = 0; f < flips; f++) {
      const at = int(lo, hi);
      b[at] = rnd() < 0.3 ? 0xff : int(0, 256);
    }
    out.push({ name: `${i}-${region}-x${flips}`, bytes: b });
  }
  return out;
}

function isScanJson(text: string): boolean {
  try {
    return Array.isArray((JSON.parse(text) as { files?: unknown }).files);
  } catch {
    return false;
  }
}

interface JsonError {
  error: { code: string; message: string; path?: string };
}

/** `sysi scan --json`'s error line for `path`: {"error":{"code","message","path"}}. */
function isJsonError(line: string, path: string): boolean {
  try {
    const e = (JSON.parse(line) as JsonError).error;
    return /^[A-Z0-9_]+$/.test(e.code) && e.message !== "" && e.path === path;
  } catch {
    return false;
  }
}

const home = makeSysiHome();
afterAll(() => home.cleanup());

describe("sysi scan on mutated ELF files", () => {
  it(`exits 0 or 2 with one line and no stack for ${COUNT} mutants of ${TRUE_BIN} (seed ${SEED})`, async () => {
    const dir = join(home.dir, "fuzz");
    mkdirSync(dir);
    const files = mutants(new Uint8Array(readFileSync(TRUE_BIN)), SEED, COUNT).map((m) => {
      const p = join(dir, m.name);
      writeFileSync(p, m.bytes);
      return p;
    });
    const results = await mapLimit(files, 2, async (f) => ({ f, r: await sysi(["scan", "--json", f], home.env) }));
    const bad: string[] = [];
    let ok = 0;
    for (const { f, r } of results) {
      const errLines = lines(r.stderr);
      const good =
        (r.code === 0 && r.stderr === "" && isScanJson(r.stdout)) ||
        (r.code === 2 && errLines.length === 1 && isJsonError(errLines[0] as string, f) && isScanJson(r.stdout));
      if (r.code === 0) ok++;
      if (!good || hasStack(r.stderr)) bad.push(`${f}: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
    }
    expect(bad).toEqual([]);
    // The set must exercise both outcomes, or it tests nothing.
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(COUNT);

    // All of them in one run: the same files fail, each in one line, and the run goes on.
    const all = await sysi(["scan", ...files], home.env);
    const failedAlone = results.filter(({ r }) => r.code !== 0).map(({ f }) => f);
    const errLines = lines(all.stderr);
    expect(all.code).toBe(2);
    expect(hasStack(all.stderr)).toBe(false);
    expect(errLines.at(-1)).toBe(`sysi: ${failedAlone.length} of ${COUNT} files failed, ${ok} scanned`);
    expect(errLines.slice(0, -1)).toEqual(
      results
        .filter(({ r }) => r.code !== 0)
        .map(({ r }) => `sysi: error: ${(JSON.parse(r.stderr) as JsonError).error.message}`),
    );
    expect(lines(all.stdout).filter((l) => !l.startsWith(" "))).toEqual(files.filter((f) => !failedAlone.includes(f)));
  }, 120_000);
});
