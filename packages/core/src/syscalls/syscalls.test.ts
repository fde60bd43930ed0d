import { describe, expect, it, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelHeadersVersion } from "../../../../scripts/gen-syscalls.ts";
import { SYS, SYS_HEADERS_VERSION, SYS_MAX, syscallName, syscallNumber } from "./index.ts";

const HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
const ROOT = join(import.meta.dir, "../../../..");
// The committed table must equal this machine's header only when it was generated from the same
// kernel headers version (CI images may ship other headers).
const SAME_HEADERS = existsSync(HEADER) && kernelHeadersVersion(HEADER) === SYS_HEADERS_VERSION;
const which = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

describe("syscall table", () => {
  test.skipIf(!SAME_HEADERS)(
    `equals an independent parse of the kernel header (needs linux-libc-dev ${SYS_HEADERS_VERSION})`,
    () => {
      // Independent parse: line by line, split on whitespace (the generator uses one regex).
      const expected = new Map<string, number>();
      for (const line of readFileSync(HEADER, "utf8").split("\n")) {
        const parts = line.trim().split(/\s+/);
        if (parts[0] === "#define" && parts[1]?.startsWith("__NR_") && parts.length === 3) {
          expected.set(parts[1].slice(5), Number(parts[2]));
        }
      }
      expect(expected.size).toBeGreaterThan(300);
      expect(new Map<string, number>(Object.entries(SYS))).toEqual(expected);
      for (const [name, nr] of expected) {
        expect(syscallName(nr)).toBe(name);
        expect(syscallNumber(name)).toBe(nr);
      }
      expect(SYS_MAX).toBe(Math.max(...expected.values()));
    },
  );

  test.skipIf(!SAME_HEADERS)(
    `generated files are up to date (gen-syscalls --check; needs headers ${SYS_HEADERS_VERSION})`,
    () => {
      const r = spawnSync("bun", [join(ROOT, "scripts/gen-syscalls.ts"), "--check"], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    },
  );

  test.skipIf(!which("strace"))(
    "agrees with strace's own table on the syscalls a real program makes (needs strace)",
    () => {
      // strace -n prints "[ nr] name(" with its built-in table: an oracle independent of the header.
      const r = spawnSync("strace", ["-n", "-f", "-qq", "ls", "-la", "/proc/self/"], { encoding: "utf8" });
      if (r.error) throw r.error;
      const seen = new Map<string, number>();
      for (const m of r.stderr.matchAll(/^(?:\[pid\s+\d+\] )?\[\s*(\d+)\] ([a-z0-9_]+)\(/gm)) {
        seen.set(m[2] as string, Number(m[1]));
      }
      expect(seen.size).toBeGreaterThan(10);
      for (const [name, nr] of seen) {
        if (nr > SYS_MAX) continue; // newer than the headers the table came from
        expect({ name, nr: syscallNumber(name) }).toEqual({ name, nr });
        expect(syscallName(nr)).toBe(name);
      }
    },
  );

  test.skipIf(!which("cc"))("the C header indexes names by number (compiled with cc)", () => {
    const dir = mkdtempSync(join(tmpdir(), "sysi-names-"));
    try {
      const src = join(dir, "t.c");
      writeFileSync(
        src,
        `#include <stdio.h>\n#include <sys/syscall.h>\n#include "${join(ROOT, "packages/core/native/syscall-names.h")}"\n` +
          `int main(void){printf("%s %s %s %d %d\\n",sysi_syscall_names[SYS_getppid],sysi_syscall_names[SYS_clone3],` +
          `sysi_syscall_names[SYS_exit_group],SYSI_NSYSCALLS,sysi_syscall_names[335]==NULL);return 0;}\n`,
      );
      const cc = spawnSync("cc", ["-Wall", "-Werror", "-o", join(dir, "t"), src], { encoding: "utf8" });
      expect(cc.stderr).toBe("");
      const run = spawnSync(join(dir, "t"), { encoding: "utf8" });
      expect(run.stdout.trim()).toBe(`getppid clone3 exit_group ${SYS_MAX + 1} 1`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects unknown names and numbers", () => {
    expect(syscallName(-1)).toBeNull();
    expect(syscallName(1.5)).toBeNull();
    expect(syscallName(SYS_MAX + 1)).toBeNull();
    expect(syscallName(335)).toBeNull(); // the hole between 334 (rseq) and 424 (pidfd_send_signal)
    expect(syscallNumber("no_such_call")).toBeNull();
    expect(syscallNumber("SYS_clone3")).toBe(SYS.clone3);
    expect(syscallNumber("__NR_getpid")).toBe(SYS.getpid);
  });
});
