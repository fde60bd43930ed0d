/**
 * `sysi run` on real programs: the instrumented run prints exactly what the native run prints
 * (stdout, stderr, exit status), under each strategy, and the count hook saw system calls
 * through the strategies of the chain — including, for programs that name them, the calls only
 * the program's own process makes, as `strace -f` of the native run sees them. Known failures are
 * todos with their reason (`bun test --todo` runs them).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { splitCoverage } from "../helpers.ts";
import { PROGRAMS, programEnv } from "./programs.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-e2e-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const STRACE = Bun.which("strace") !== null;

/** Calls per system call name from a `strace -c -o FILE` summary. */
function straceSummary(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)$/.exec(line);
    if (m !== null && m[2] !== "total") out[m[2] as string] = Number(m[1]);
  }
  return out;
}

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
  // the default chain as root when punning is installed
  {
    spec: "punning,zpoline,ud2",
    skip: page0 ? null : "page 0 cannot be mapped here (needs root or vm.mmap_min_addr=0)",
  },
];

for (const chain of CHAINS) {
  describe(`sysi run -s ${chain.spec}${chain.skip ? ` (skipped: ${chain.skip})` : ""}`, () => {
    for (const p of PROGRAMS) {
      const missing = Bun.which(p.needs) === null;
      const title = `${p.name}: same output as native${missing ? ` (needs ${p.needs})` : ""}`;
      const run =
        p.todo !== undefined && chain.skip === null && !missing
          ? test.todo
          : test.skipIf(chain.skip !== null || missing);
      run(p.todo !== undefined ? `${title} — todo: ${p.todo}` : title, () => {
        const a = mkdtempSync(join(tmpdir(), "sysi-native-"));
        const b = mkdtempSync(join(tmpdir(), "sysi-inst-"));
        const own = p.ownSyscalls !== undefined && STRACE ? p.ownSyscalls : [];
        try {
          p.setup?.(a);
          p.setup?.(b);
          const summary = join(a, "..", `${a.split("/").pop()}.strace`);
          const native = runIn(
            a,
            own.length > 0
              ? ["strace", "-f", "-qq", "-c", "-e", `trace=${own.join(",")}`, "-o", summary, ...p.cmd]
              : p.cmd,
          );
          const seen = own.length > 0 ? straceSummary(readFileSync(summary, "utf8")) : {};
          rmSync(summary, { force: true });
          const out = join(b, "..", `${b.split("/").pop()}.counts.json`);
          const inst = runIn(
            b,
            ["bun", CLI, "run", "-s", chain.spec, "--hook", "count", "--json", "-o", out, "--", ...p.cmd],
            {
              SYSI_CACHE_DIR: cache,
            },
          );
          // zpoline alone leaves red-zone sites unpatched and sysi run says so (first line,
          // and a last one for modules loaded later); chains ending in ud2 leave none.
          const { start, exit, rest } = splitCoverage(inst.stderr);
          expect(rest).toBe(native.stderr);
          if (chain.spec.endsWith("ud2")) expect({ start, exit }).toEqual({ start: null, exit: null });
          else expect(start ?? exit).not.toBeNull();
          expect(inst.stdout).toBe(native.stdout);
          expect(inst.code).toBe(native.code);
          const counts = JSON.parse(readFileSync(out, "utf8"));
          rmSync(out, { force: true });
          expect(counts.total.calls).toBeGreaterThan(0);
          const first = chain.spec.split(",")[0] as string;
          expect(counts.strategies[first]).toBeGreaterThan(0);
          const ours: Record<string, number> = {};
          for (const c of counts.syscalls as { name: string; calls: number }[]) ours[c.name] = c.calls;
          for (const name of own) {
            expect({ [name]: seen[name] ?? 0 }).not.toEqual({ [name]: 0 }); // the oracle: the native program made it
            expect({ [name]: ours[name] ?? 0 }).not.toEqual({ [name]: 0 }); // and the hook saw it
          }
        } finally {
          rmSync(a, { recursive: true, force: true });
          rmSync(b, { recursive: true, force: true });
        }
      });
    }
  });
}
