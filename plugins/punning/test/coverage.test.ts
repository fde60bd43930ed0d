/**
 * Coverage of punning alone on real binaries, against objdump's list of syscall sites (the oracle):
 * every objdump site is planned (sites the scanner marks uncertain but objdump also disassembles as
 * `syscall` are planned as certain here, since objdump is the evidence), and ≥ 90% must be
 * patched. Prints per tactic counts, refusals by reason and virtual/physical page counts.
 * objdump on the ~100 MB bun executable takes ~40 s.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { readElfFile } from "@sysi/core/elf";
import { planModule } from "@sysi/core/plan";
import type { Site } from "@sysi/core/scan";
import { scanElf } from "@sysi/core/scan";
import { isRefusal, type SitePatch } from "@sysi/core/strategy";
import factory from "../src/index.ts";
import { pageStats } from "../src/stats.ts";

const BUN = (() => {
  const w = spawnSync("sh", ["-c", "command -v bun"], { encoding: "utf8" }).stdout.trim();
  return w ? realpathSync(w) : null;
})();
const BINARIES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", BUN].filter(
  (p): p is string => p !== null && existsSync(p),
);
const HAS_OBJDUMP = spawnSync("sh", ["-c", "command -v objdump"]).status === 0;

function objdumpSites(file: string): Set<number> {
  const cmd = `objdump -d --no-show-raw-insn ${JSON.stringify(file)} | grep -E '\t([a-z0-9.]+ )*(syscall|sysenter) *$'`;
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`objdump failed: ${r.stderr}`);
  const out = new Set<number>();
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*([0-9a-f]+):/.exec(line);
    if (m) out.add(Number.parseInt(m[1] as string, 16));
  }
  return out;
}

describe.skipIf(!HAS_OBJDUMP)("punning alone on real binaries (needs objdump)", () => {
  const strategy = factory({ version: "test", includeDir: "" });
  const totals = { sites: 0, patched: 0, vpages: 0, ppages: 0 };
  for (const file of BINARIES) {
    test(`covers >= 90% of objdump's sites in ${file}`, async () => {
      const oracle = objdumpSites(file);
      const elf = readElfFile(file);
      const scan = await scanElf(elf);
      const sites: Site[] = scan.sites
        .filter((s) => oracle.has(s.vaddr))
        .map((s) => (s.uncertain ? { ...s, uncertain: false } : s));
      // The scanner must find every objdump site for this test to mean anything.
      expect(sites.length).toBe(oracle.size);
      const plan = planModule(elf, { ...scan, sites }, [{ strategy, options: {} }], { checks: { cc: true } });
      const taken: { site: Site; patch: SitePatch }[] = [];
      for (const ps of plan.sites) {
        const d = ps.decisions[0];
        if (ps.taken === "punning" && d !== undefined && !isRefusal(d.result))
          taken.push({ site: ps.site, patch: d.result });
      }
      const pages = pageStats(taken);
      const line = {
        file,
        sites: oracle.size,
        patched: plan.stats.patched,
        pct: Number(((100 * plan.stats.patched) / oracle.size).toFixed(1)),
        tactics: plan.stats.tactics.punning,
        refusals: plan.stats.refusals.punning,
        virtualPages: pages["virtual-pages"],
        physicalPages: pages["physical-pages"],
      };
      console.log(JSON.stringify(line));
      totals.sites += oracle.size;
      totals.patched += plan.stats.patched;
      totals.vpages += pages["virtual-pages"];
      totals.ppages += pages["physical-pages"];
      expect(plan.stats.patched / oracle.size).toBeGreaterThanOrEqual(0.9);
      // Every taken site's jump really reaches its trampoline: follow eb/e9 from the patch start.
      for (const { site, patch } of taken) {
        const b = patch.patch.bytes;
        let at = patch.patch.vaddr;
        let i = 0;
        if (b[0] === 0xeb) {
          at = at + 2 + (((b[1] as number) << 24) >> 24);
          i = at - patch.patch.vaddr;
        } else if (b[0] === 0x48 && b[1] === 0xe9) {
          at += 1; // pun's prefixed form: rex.W jmp rel32
          i = 1;
        }
        expect(b[i]).toBe(0xe9);
        const rel = new DataView(b.buffer, b.byteOffset).getInt32(i + 1, true);
        const aux = patch.aux as [bigint, bigint];
        expect(at + 5 + rel).toBe(site.vaddr + Number(BigInt.asIntN(32, aux[0])));
      }
    }, 300_000);
  }
  test("totals", () => {
    console.log(JSON.stringify({ totals }));
  });
});
