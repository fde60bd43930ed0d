/**
 * Execs under the passthrough hook's fast path (issue 13 item 2). `sysi run` no longer sets
 * SYSI_WATCH_EXEC (which turned the fast path off for every call): every strategy's passthrough
 * path sends execve and execveat to libsysi (punning's page stub, zpoline's and segmentation's
 * entries, ud2's handler: sysi.h sysi_passthrough_direct), which gives the new image sysi's
 * hidden variables back. So an exec'd child is instrumented (libsysi and the chain's strategy
 * runtimes, which it loads from SYSI_RUNTIMES, in its maps) and prints the environment a native
 * run prints, in env's output and in the kernel's view (/proc/self/environ, which libsysi points
 * at the program's environment: env.c). Oracle: the same shell script run natively.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";

const CLI = join(import.meta.dir, "../../bin/run.js");
const work = mkdtempSync(join(tmpdir(), "sysi-exec-env-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The caller's environment: no sysi variables, no DEBUG (it turns the fast path off). */
const BASE_ENV: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && !k.startsWith("SYSI_") && k !== "DEBUG") BASE_ENV[k] = v;
}

/** env itself, then env exec'd by a child shell, then what the kernel shows of an exec'd image. */
const SCRIPT = "env; echo --; sh -c 'exec env'; echo --; exec cat /proc/self/maps /proc/self/environ";

/** /proc/self/maps then /proc/self/environ (NUL-separated, no newline): split the two. */
function mapsAndEnviron(tail: string): { maps: string[]; environ: string[] } {
  const lines = tail.split("\n");
  let i = 0;
  while (i < lines.length && /^[0-9a-f]+-[0-9a-f]+ /.test(lines[i] ?? "")) i++;
  return {
    maps: lines.slice(0, i),
    environ: lines
      .slice(i)
      .join("\n")
      .split("\0")
      .filter((v) => v !== ""),
  };
}

function run(cmd: string[]): { code: number | null; head: string; tail: string } {
  const r = Bun.spawnSync(cmd, {
    env: BASE_ENV,
    cwd: work,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGKILL",
  });
  const out = r.stdout.toString();
  const cut = out.indexOf("\n--\n", out.indexOf("\n--\n") + 1);
  return { code: r.exitCode, head: out.slice(0, cut), tail: out.slice(cut + 4) };
}

const page0 = (await probeHost()).check("page0")?.ok === true;
const CHAINS: { name: string; args: string[]; skip: string | null }[] = [
  { name: "default chain", args: [], skip: null },
  { name: "-s punning,ud2", args: ["-s", "punning,ud2"], skip: null },
  { name: "-s ud2", args: ["-s", "ud2"], skip: null },
  { name: "-s zpoline,ud2", args: ["-s", "zpoline,ud2"], skip: page0 ? null : "needs page 0" },
  { name: "-s segmentation,ud2", args: ["-s", "segmentation,ud2"], skip: page0 ? null : "needs page 0" },
];

describe("an exec'd child under --hook passthrough", () => {
  for (const c of CHAINS) {
    test.skipIf(c.skip !== null)(
      `${c.name}: instrumented, sysi's variables given back, its env as natively (no SYSI_WATCH_EXEC)${
        c.skip ? ` (${c.skip})` : ""
      }`,
      () => {
        const native = run(["sh", "-c", SCRIPT]);
        const inst = run(["bun", CLI, "run", ...c.args, "--hook", "passthrough", "--", "sh", "-c", SCRIPT]);
        expect(native.code).toBe(0);
        expect(native.head).toContain("\nPATH=");
        expect(native.tail).not.toContain("/libsysi.so");
        const n = mapsAndEnviron(native.tail);
        const i = mapsAndEnviron(inst.tail);
        expect(n.environ.some((v) => v.startsWith("PATH="))).toBe(true);
        expect({
          code: inst.code,
          head: inst.head,
          libsysi: i.maps.some((l) => l.endsWith("/libsysi.so")),
          runtimes: i.maps.some((l) => /\/libsysi-[a-z0-9]+\.so$/.test(l)),
          environ: i.environ,
        }).toEqual({ code: 0, head: native.head, libsysi: true, runtimes: true, environ: n.environ });
      },
    );
  }
});
