/**
 * The count hook against the kernel's own syscall-entry tracepoints (`perf stat -e
 * syscalls:sys_enter_NAME`), an oracle without ptrace stops: for the multi-threaded programs whose
 * strace comparison is a todo (programs.ts EXIT_RACE: threads killed by exit_group), per syscall
 * that the runtime never makes itself, the hook's calls must equal the kernel's entries. The
 * program runs on the launcher path (`sysi env` + `env VAR=… CMD`: no Bun in the process tree)
 * after one `sysi run` has planned every module it executes into the same cache.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { PROGRAMS, programEnv } from "./programs.ts";

const CLI = join(import.meta.dir, "../../bin/run.js");
const cache = mkdtempSync(join(tmpdir(), "sysi-count-perf-cache-"));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** Syscalls these programs make after start-up and libsysi never makes on its own. */
const WATCHED = ["nanosleep", "clock_nanosleep", "epoll_ctl", "epoll_pwait", "epoll_wait", "sched_yield", "exit_group"];

function perfWorks(): string | null {
  if (Bun.which("perf") === null) return "perf is not installed";
  const r = Bun.spawnSync(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_exit_group", "--", "true"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const ok = r.exitCode === 0 && /^1,,syscalls:sys_enter_exit_group/m.test(r.stderr.toString());
  return ok ? null : "perf cannot count syscall tracepoints here";
}

const page0 = (await probeHost()).check("page0")?.ok === true;
const noPerf = perfWorks();
const CHAINS = [
  { spec: "ud2", skip: null as string | null },
  { spec: "punning,ud2", skip: null as string | null },
  { spec: "zpoline,ud2", skip: page0 ? null : "page 0 cannot be mapped here" },
];
const RACY = PROGRAMS.filter((p) => p.countTodo?.includes("strace oracle") === true);

test("the exit-race programs are the ones compared here", () => {
  expect(RACY.length).toBeGreaterThan(0);
});

for (const chain of CHAINS) {
  const why = noPerf ?? chain.skip;
  describe(`count hook = perf sys_enter counts, -s ${chain.spec}${why ? ` (skipped: ${why})` : ""}`, () => {
    for (const p of RACY) {
      test.skipIf(why !== null || Bun.which(p.needs) === null)(p.name, () => {
        const dir = mkdtempSync(join(tmpdir(), "sysi-count-perf-"));
        try {
          p.setup?.(dir);
          const env = { ...programEnv(dir), SYSI_CACHE_DIR: cache };
          const opts = { cwd: dir, env, stdout: "pipe", stderr: "pipe" } as const;
          // plan the program and everything it executes into the cache
          expect(
            Bun.spawnSync(["bun", CLI, "run", "-s", chain.spec, "--hook", "count", "--", ...p.cmd], opts).exitCode,
          ).toBe(0);
          const stats = join(dir, "..", `${dir.split("/").pop()}.stats`);
          const e = Bun.spawnSync(
            [
              "bun",
              CLI,
              "env",
              "-s",
              chain.spec,
              "--hook",
              "count",
              "--stats",
              stats,
              "--format",
              "env",
              "--",
              ...p.cmd,
            ],
            opts,
          );
          expect(e.exitCode).toBe(0);
          const vars = e.stdout.toString().trim().split(/\s+/);
          const perfOut = join(dir, "..", `${dir.split("/").pop()}.perf`);
          const events = WATCHED.map((n) => `syscalls:sys_enter_${n}`).join(",");
          const r = Bun.spawnSync(
            ["perf", "stat", "-x,", "-e", events, "-o", perfOut, "--", "env", ...vars, ...p.cmd],
            opts,
          );
          expect(r.exitCode).toBe(0);
          const kernel: Record<string, number> = {};
          for (const line of readFileSync(perfOut, "utf8").split("\n")) {
            const m = /^(\d+),[^,]*,syscalls:sys_enter_(\w+),/.exec(line);
            if (m) kernel[m[2] as string] = Number(m[1]);
          }
          const s = Bun.spawnSync(["bun", CLI, "stats", "--json", stats], opts);
          const counts = JSON.parse(s.stdout.toString()) as { syscalls: { name: string; calls: number }[] };
          const ours: Record<string, number> = {};
          for (const n of WATCHED) ours[n] = counts.syscalls.find((c) => c.name === n)?.calls ?? 0;
          expect(Object.keys(kernel).sort()).toEqual([...WATCHED].sort()); // perf counted every event
          expect(Object.values(kernel).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
          expect(ours).toEqual(kernel);
          rmSync(stats, { force: true });
          rmSync(perfOut, { force: true });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
}
