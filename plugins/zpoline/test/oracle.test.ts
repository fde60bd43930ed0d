/**
 * The red-zone analysis against an outside decoder: for libc and ld.so, every site zpoline
 * takes lies in a function whose objdump -d disassembly has no operand below %rsp, and every
 * red-zone refusal names an instruction objdump shows with a negative rsp/rbp operand.
 */
import { describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import { planFile } from "@sysi/core/plan";
import zpoline from "../src/index.ts";

const MODULES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"].filter((p) => existsSync(p));
const hasObjdump = Bun.which("objdump") !== null;

/** objdump -d: vaddr → instruction text. */
function disassemble(path: string): Map<number, string> {
  const out = Bun.spawnSync(["objdump", "-d", "--no-show-raw-insn", path], { stdout: "pipe" });
  const map = new Map<number, string>();
  for (const line of out.stdout.toString().split("\n")) {
    const m = /^\s+([0-9a-f]+):\s+(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) map.set(Number.parseInt(m[1], 16), m[2]);
  }
  return map;
}

const NEG_RSP = /-0x[0-9a-f]+\(%rsp/;
const NEG_STACK = /-0x[0-9a-f]+\(%r[sb]p/;

describe.skipIf(!hasObjdump || MODULES.length === 0)("red-zone analysis vs objdump (libc, ld.so)", () => {
  for (const path of MODULES) {
    it(`${path}: taken sites have no rsp operand below rsp in their function`, async () => {
      const strategy = zpoline({ version: "0.1.0", includeDir: "" });
      const { plan } = await planFile(path, [{ strategy, options: {} }], { checks: { page0: true } });
      const dis = disassemble(path);
      const addrs = [...dis.keys()].sort((a, b) => a - b);
      let taken = 0;
      const refused: Record<string, number> = {};
      for (const ps of plan.sites) {
        const d = ps.decisions[0];
        if (d === undefined) continue;
        if ("reason" in d.result) {
          refused[d.result.reason] = (refused[d.result.reason] ?? 0) + 1;
          const at = /at 0x([0-9a-f]+)/.exec(d.result.detail ?? "");
          if (d.result.reason === "red-zone-in-use" && at?.[1] !== undefined) {
            expect(dis.get(Number.parseInt(at[1], 16)) ?? "").toMatch(NEG_STACK);
          }
          continue;
        }
        taken++;
        const fr = ps.site.functionRange;
        expect(fr).not.toBeNull();
        if (fr === null) continue;
        const bad = addrs.filter((a) => a >= fr.start && a < fr.end && NEG_RSP.test(dis.get(a) ?? ""));
        expect(bad.map((a) => `0x${a.toString(16)} ${dis.get(a)}`)).toEqual([]);
      }
      console.log(`# ${path}: ${plan.sites.length} sites, ${taken} taken, refused ${JSON.stringify(refused)}`);
      expect(taken).toBeGreaterThan(0);
    });
  }
});
