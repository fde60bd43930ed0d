/**
 * The pieces of `sysi run`'s fidelity that need no program: reading bin/sysi's record of the
 * caller's state (SYSI_FRONT), what is left of it in Bun's own process, sysi-exec's SPEC, the
 * hidden output fd, and the environment less sysi's own variables. The oracle for the whole is
 * e2e/fidelity.test.ts (native runs); here the tables pin the formats both sides share.
 */
import { describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callerEnv, preloadWithoutSysi, programEnv, RUNTIME_VARS } from "../src/run/environment.ts";
import { execSpec, fromBun, hiddenFd, type Origin, parseFront, readOrigin } from "../src/run/origin.ts";

describe("parseFront", () => {
  it("reads bin/sysi's record for this pid", () => {
    expect(parseFront("1 42 0,1,2,7,3 1000 4200 1024", 42)).toEqual({
      fds: [0, 1, 2, 3, 7],
      ignored: 0x1000n,
      blocked: 0x4200n,
      nofile: 1024,
      source: "front",
    });
    expect(parseFront("1 42 - 0 0 unlimited", 42)).toMatchObject({ fds: [], nofile: "inf" });
  });

  it("refuses a record made for another process or malformed", () => {
    for (const v of ["1 43 0,1,2 0 0 1024", "2 42 0 0 0 1", "1 42 0,x 0 0 1", "1 42 0 0 0", ""]) {
      expect({ v, parsed: parseFront(v, 42) }).toEqual({ v, parsed: null });
    }
  });

  it("readOrigin takes SYSI_FRONT out of the environment either way", () => {
    const env: Record<string, string | undefined> = { SYSI_FRONT: "1 1 0 0 0 1", KEEP: "1" };
    expect(readOrigin(env, 2).source).toBe("bun");
    expect(env).toEqual({ KEEP: "1" });
  });
});

describe("fromBun", () => {
  /** A fake /proc/self: fdinfo flags (octal) and fd targets. */
  function fakeProc(fds: Record<number, [string, string]>, status: string): string {
    const dir = mkdtempSync(join(tmpdir(), "sysi-origin-"));
    mkdirSync(join(dir, "fdinfo"));
    mkdirSync(join(dir, "fd"));
    for (const [fd, [flags, target]] of Object.entries(fds)) {
      writeFileSync(join(dir, "fdinfo", fd), `pos:\t0\nflags:\t${flags}\nmnt_id:\t1\n`);
      symlinkSync(target, join(dir, "fd", fd));
    }
    writeFileSync(join(dir, "status"), status);
    return dir;
  }

  it("reads Bun's /dev/null on closed stdio fds as closed, and its own fds as not inherited", () => {
    // fd 1 closed: Bun opened /dev/null O_RDWR|O_CLOEXEC there; fd 2 closed: its dup2 copy; fd 3 inherited
    const dir = fakeProc(
      { 0: ["0100000", "/dev/tty"], 1: ["02100002", "/dev/null"], 2: ["0100002", "/dev/null"], 3: ["0100000", "/f"] },
      "SigBlk:\t0000000000004200\nSigIgn:\t0000000001001200\n",
    );
    try {
      expect(fromBun(dir)).toEqual({ fds: [0, 3], ignored: 0x200n, blocked: 0x4200n, nofile: null, source: "bun" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps a /dev/null the caller opened (write-only, not close-on-exec)", () => {
    const dir = fakeProc(
      { 0: ["0100000", "/dev/null"], 1: ["0100001", "/dev/null"], 2: ["0100001", "/dev/null"], 3: ["02000002", "x"] },
      "",
    );
    try {
      expect(fromBun(dir).fds).toEqual([0, 1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("hiddenFd", () => {
  const table: [number | "inf" | null, number | "inf", number[], number][] = [
    [1024, 1048576, [0, 1, 2], 1024], // just above the program's range
    [1024, 1048576, [0, 1, 2, 1024], 1025], // an inherited fd there: the next one
    [1024, 1024, [0, 1, 2], 1023], // soft = hard: the top of the range
    [200, 200, [0, 1, 2, 199], 198],
    [1048576, 1048576, [0, 1, 2], 1023], // huge: no table of that size in every process
    [null, 20000, [0, 1, 2], 1023], // unknown (started without bin/sysi)
    ["inf", "inf", [0, 1, 2], 1023],
  ];
  for (const [soft, hard, taken, fd] of table) {
    it(`soft ${soft}, hard ${hard}, taken ${taken.join(",")} → ${fd}`, () => {
      expect(hiddenFd(soft, hard, taken)).toBe(fd);
    });
  }
});

describe("execSpec", () => {
  it("is the SPEC of native/exec.c", () => {
    const origin: Origin = { fds: [0, 2, 7], ignored: 0x1000n, blocked: 0n, nofile: 1024, source: "front" };
    expect(execSpec(origin, 9, { from: 8, to: 1024 })).toBe("ppid=9 keep=0,2,7 move=8:1024 ign=1000 blk=0 nofile=1024");
    expect(execSpec({ ...origin, fds: [], nofile: null }, 9)).toBe("ppid=9 ign=1000 blk=0");
    expect(execSpec({ ...origin, nofile: "inf" }, 9)).toContain(" nofile=inf");
  });
});

describe("callerEnv", () => {
  it("drops the runtime's variables and libsysi, keeps the rest and the knobs", () => {
    const env: Record<string, string> = { HOME: "/h", SYSI_DEBUG: "1", SYSI_MARKER: "1", SYSI_CACHE_DIR: "/c" };
    for (const k of RUNTIME_VARS) env[k] = "stray";
    env.SYSI_HOOK_LOW = "1";
    env.LD_PRELOAD = "/x/libsysi.so:/y/libfaketime.so /z/libsysi.so";
    expect(callerEnv(env)).toEqual({
      HOME: "/h",
      SYSI_DEBUG: "1",
      SYSI_MARKER: "1",
      SYSI_CACHE_DIR: "/c",
      LD_PRELOAD: "/y/libfaketime.so",
    });
    expect(callerEnv({ SYSI_HOOK_LOW: "0", LD_PRELOAD: "libsysi.so" })).toEqual({ SYSI_HOOK_LOW: "0" });
  });

  it("preloadWithoutSysi keeps other libraries, in order", () => {
    expect(preloadWithoutSysi(undefined)).toBeUndefined();
    expect(preloadWithoutSysi("/a/libsysi.so")).toBeUndefined();
    expect(preloadWithoutSysi("/a/x.so:/b/libsysi-ud2.so")).toBe("/a/x.so:/b/libsysi-ud2.so");
    expect(preloadWithoutSysi("/a/x.so /b/y.so ")).toBe("/a/x.so /b/y.so "); // as it is: no libsysi
  });

  it("keeps the caller's order as bin/sysi recorded it (SYSI_ENV_ORDER), then the rest", () => {
    const env = { B: "2", A: "1", SYSI_ENV_ORDER: "A GONE LD_PRELOAD B SYSI_ENV_ORDER ", C: "3", LD_PRELOAD: "x.so" };
    expect(Object.entries(callerEnv(env))).toEqual([
      ["A", "1"],
      ["LD_PRELOAD", "x.so"],
      ["B", "2"],
      ["C", "3"],
    ]);
  });

  it("programEnv: SYSI_HIDE names what sysi set and the knobs; the caller's LD_PRELOAD goes along", () => {
    const caller = { A: "1", LD_PRELOAD: "x.so ", SYSI_DEBUG: "1", SYSI_CACHE_DIR: "/c" };
    const env = { ...caller, LD_PRELOAD: "/c/libsysi.so:x.so", SYSI_HOOK: "count", SYSI_PLAN_DIR: "/p" };
    expect(programEnv(caller, env)).toEqual({
      ...env,
      SYSI_HIDE: "SYSI_DEBUG,SYSI_HOOK,SYSI_PLAN_DIR",
      SYSI_PROGRAM_LD_PRELOAD: "x.so ",
    });
    expect(programEnv({ A: "1" }, { A: "1", LD_PRELOAD: "/c/libsysi.so" })).toEqual({
      A: "1",
      LD_PRELOAD: "/c/libsysi.so",
      SYSI_HIDE: "",
    });
  });
});
