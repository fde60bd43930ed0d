/**
 * `sysi run` on real programs: the instrumented run prints exactly what the native run prints
 * (stdout, stderr, exit status), under each strategy, and the count hook saw system calls
 * through the strategies of the chain.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host/index";
import { PROGRAMS, programEnv } from "./programs.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-e2e-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

function runIn(dir: string, cmd: string[], extraEnv: Record<string, string> = {}) {
  const r = Bun.spawnSync(cmd, { cwd: dir, env: { ...programEnv(dir), ...extraEnv }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, signal: r.signalCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const page0 = (await probeHost()).check("page0")?.ok === true;
const CHAINS: { spec: string; skip: string | null }[] = [
  { spec: "ud2", skip: null },
  { spec: "punning,ud2", skip: null },
  { spec: "zpoline", skip: page0 ? null : "page 0 cannot be mapped here (needs root or vm.mmap_min_addr=0)" },
  { spec: "zpoline,ud2", skip: page0 ? null : "page 0 cannot be mapped here (needs root or vm.mmap_min_addr=0)" },
];

for (const chain of CHAINS) {
  describe(`sysi run -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const p of PROGRAMS) {
      const missing = Bun.which(p.needs) === null;
      test.skipIf(chain.skip !== null || missing)(`${p.name}: same output as native`, () => {
        const a = mkdtempSync(join(tmpdir(), "sysi-native-"));
        const b = mkdtempSync(join(tmpdir(), "sysi-inst-"));
        try {
          p.setup?.(a);
          p.setup?.(b);
          const native = runIn(a, p.cmd);
          const out = join(b, "..", `${b.split("/").pop()}.counts.json`);
          const inst = runIn(
            b,
            ["bun", CLI, "run", "-s", chain.spec, "--hook", "count", "--json", "-o", out, "--", ...p.cmd],
            {
              SYSI_CACHE_DIR: cache,
            },
          );
          expect(inst.stderr).toBe(native.stderr);
          expect(inst.stdout).toBe(native.stdout);
          expect(inst.code).toBe(native.code);
          const counts = JSON.parse(readFileSync(out, "utf8"));
          rmSync(out, { force: true });
          expect(counts.total.calls).toBeGreaterThan(0);
          const first = chain.spec.split(",")[0] as string;
          expect(counts.strategies[first]).toBeGreaterThan(0);
        } finally {
          rmSync(a, { recursive: true, force: true });
          rmSync(b, { recursive: true, force: true });
        }
      });
    }
  });
}
