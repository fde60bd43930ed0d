/**
 * What sysi trusts, and how it fails (issue 13, items 5 and 6):
 *
 *   - a cache another user can write is refused with one line, and code planted there never
 *     runs (the planted library would create a marker file);
 *   - a plan with any one byte changed (header, tables, strings, blob) is refused by libsysi at
 *     load and planned again by `sysi run`: the program's output stays the native run's;
 *   - a plan file someone else owns, and a stale plan (same build-id and size, other code), are
 *     refused at load; a stripped copy of a program gets its own plan;
 *   - `--stats` and `-o` never write through a symlink planted under their temp file's name;
 *   - every bad program, cache path or hook: exit 2, one `sysi: error:` line, no stack, no file
 *     left behind, before the program starts.
 *
 * Oracles: the native run (output), the stats file libsysi fills (plans refused), the file
 * system (markers, victims, leftovers). Tests that need another user drop to uid 65534 with
 * setpriv (root only).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStatsFile, readStatsFile, STATS_FILE_SIZE } from "@sysi/core/runtime";
import { hasStack, lines, RUN_JS, type SysiResult, sysi } from "../helpers.ts";

const ROOT = process.getuid?.() === 0;
const SETPRIV = Bun.which("setpriv");
const UNSHARE = Bun.which("unshare");
const CC = Bun.which("cc") !== null;
const NOBODY = 65534;
const REPO = join(import.meta.dir, "../../../..");

const dir = mkdtempSync(join(tmpdir(), "sysi-trust-"));
chmodSync(dir, 0o755); // uid 65534 must reach its own directories in here
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cache = join(dir, "cache");
const env = { SYSI_CACHE_DIR: cache };
let n = 0;
const fresh = (what: string): string => {
  const d = join(dir, `${what}-${++n}`);
  mkdirSync(d, { mode: 0o755 });
  return d;
};

/** Run `cmd` as uid/gid 65534 (setpriv), synchronously. */
function asNobody(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const r = Bun.spawnSync(
    [SETPRIV as string, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--inh-caps=-all", ...cmd],
    {
      env: { ...(process.env as Record<string, string>), ...opts.env },
      cwd: opts.cwd ?? "/",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function expectOneError(r: SysiResult, re: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: "" });
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr).toMatch(/^sysi: error: /);
  expect(r.stderr.trimEnd()).toMatch(re);
  expect(hasStack(r.stderr)).toBe(false);
}

/** `sysi env --format json`: the launcher environment and the modules planned ahead. */
async function launcher(prog: string, extra: Record<string, string> = env) {
  const r = await sysi(["env", "--format", "json", "--hook", "passthrough", "--", prog], extra);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { env: Record<string, string>; modules: { path: string; planPath: string }[] };
}

/** Run `cmd` with the launcher environment and a fresh stats file: its output and libsysi's counts. */
function launch(cmd: string[], launchEnv: Record<string, string>) {
  const stats = join(fresh("stats"), "stats");
  createStatsFile(stats);
  const r = Bun.spawnSync(cmd, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", ...launchEnv, SYSI_STATS_FILE: stats },
    stdout: "pipe",
    stderr: "pipe",
  });
  return {
    code: r.exitCode,
    stdout: r.stdout.toString(),
    stderr: r.stderr.toString(),
    stats: readStatsFile(stats),
  };
}

/**
 * A plan file's layout from its header: the table offsets and counts, whichever format version
 * (2 put the checksum at 16 and moved the rest of the header by 8 bytes).
 */
function layout(b: Uint8Array) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = dv.getUint32(8, true);
  const d = version === 1 ? 0 : 8;
  const u32 = (o: number) => dv.getUint32(o + d, true);
  const u64 = (o: number) => Number(dv.getBigUint64(o + d, true));
  return {
    version,
    header: version === 1 ? 152 : 176,
    sections: {
      strategies: [u64(40), u32(24) * 8],
      sites: [u64(48), u32(28) * 24],
      options: [u64(56), u32(32) * 64],
      trampolines: [u64(64), u32(36) * 32],
      strings: [u64(72), u64(80)],
      blob: [u64(88), u64(96)],
    } as Record<string, [number, number]>,
    noptions: u32(32),
    optionsOff: u64(56),
  };
}

/** After editing a plan in place: its checksum again (format 2), so that only the edit is wrong. */
function reseal(b: Uint8Array): Uint8Array {
  if (layout(b).version >= 2) {
    new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(
      16,
      BigInt(Bun.hash.xxHash64(b.subarray(24), 0n)),
      true,
    );
  }
  return b;
}

/** A plan that would break every site it patches: each option's new bytes become int3s. */
function evilPlan(good: Uint8Array): Uint8Array {
  const b = Uint8Array.from(good);
  const l = layout(b);
  for (let i = 0; i < l.noptions; i++) {
    const o = l.optionsOff + i * 64;
    b.fill(0xcc, o + 32, o + 32 + (b[o + 4] as number));
  }
  return reseal(b);
}

const libcOf = (mods: { path: string; planPath: string }[]) => {
  const m = mods.find((x) => /\/libc\.so\.6$/.test(x.path));
  if (m === undefined) throw new Error("no libc among the planned modules");
  return m;
};

beforeAll(async () => {
  // Fill the cache (runtimes built, /bin/echo's modules planned) once for every test below.
  const r = await sysi(["run", "--hook", "passthrough", "--", "/bin/echo", "warm"], env);
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "warm\n" });
}, 600_000);

describe.skipIf(!ROOT || SETPRIV === null || !CC)(
  "a cache another user can write is refused, and what they planted there never runs (needs root, setpriv, cc)",
  () => {
    const marker = join(dir, "planted-code-ran");
    const planted = join(dir, "planted.so");
    beforeAll(() => {
      const src = join(dir, "planted.c");
      writeFileSync(
        src,
        `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) { close(open("${marker}", O_CREAT | O_WRONLY, 0644)); }\nvoid *sysi_punning_ops, *sysi_zpoline_entry, *sysi_ud2_entry;\n`,
      );
      const b = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", planted, src], { stderr: "pipe" });
      expect(b.stderr.toString()).toBe("");
      chmodSync(planted, 0o644);
    });

    /**
     * As uid 65534: put the planted library over every runtime library and (where it can write
     * there) an evil plan over libc's.
     */
    async function plant(shared: string, plan = true) {
      const plans = await launcher("/bin/echo");
      const libc = libcOf(plans.modules);
      const evil = join(dir, `evil-${++n}.plan`);
      writeFileSync(evil, evilPlan(readFileSync(libc.planPath)), { mode: 0o644 });
      const planted_ = [];
      for (const h of readdirSync(join(shared, "native"))) {
        for (const f of readdirSync(join(shared, "native", h))) {
          if (!f.endsWith(".so")) continue;
          const r = asNobody(["cp", planted, join(shared, "native", h, f)]);
          expect(r.stderr).toBe("");
          planted_.push(f);
        }
      }
      expect(planted_).toContain("libsysi.so");
      if (plan) expect(asNobody(["cp", evil, libc.planPath.replace(cache, shared)]).stderr).toBe("");
    }

    async function expectRefused(shared: string, extra: Record<string, string>, why: RegExp) {
      rmSync(marker, { force: true });
      for (const args of [
        ["run", "--hook", "passthrough", "--", "/bin/echo", "hi"],
        ["env", "--", "/bin/echo"],
      ]) {
        const r = await sysi(args, extra);
        expectOneError(r, why);
        expect(r.stderr).toContain(shared);
        expect(existsSync(marker)).toBe(false);
      }
    }

    test("a cache directory uid 65534 owns (SYSI_CACHE_DIR)", async () => {
      const shared = join(fresh("owned"), "cache");
      cpSync(cache, shared, { recursive: true });
      expect(Bun.spawnSync(["chown", "-R", `${NOBODY}:${NOBODY}`, shared]).exitCode).toBe(0);
      await plant(shared);
      await expectRefused(
        shared,
        { SYSI_CACHE_DIR: shared },
        /^sysi: error: refusing the cache directory \S+ \(from SYSI_CACHE_DIR\): \S+ is owned by uid 65534, not by you \(uid 0\) or root/,
      );
    });

    test("a world-writable cache directory filled by uid 65534 (a shared /tmp/sysi-cache)", async () => {
      const shared = join(fresh("world"), "cache");
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      expect(asNobody(["cp", "-r", `${cache}/.`, shared]).stderr).toBe("");
      await plant(shared);
      await expectRefused(
        shared,
        { SYSI_CACHE_DIR: shared },
        /refusing the cache directory \S+ \(from SYSI_CACHE_DIR\): \S+ is writable by group and others \(mode 01777\)/,
      );
    });

    test("a cache of root's whose runtime directory uid 65534 owns", async () => {
      const shared = join(fresh("subdir"), "cache");
      cpSync(cache, shared, { recursive: true });
      expect(Bun.spawnSync(["chown", "-R", `${NOBODY}:${NOBODY}`, join(shared, "native")]).exitCode).toBe(0);
      expect(Bun.spawnSync(["chown", "0:0", join(shared, "native")]).exitCode).toBe(0);
      await plant(shared, false);
      await expectRefused(
        shared,
        { SYSI_CACHE_DIR: shared },
        // whichever of the cache's native files sysi checks first (libsysi.so, sysi-exec, …)
        /refusing the runtime library \S+: \S+ is owned by uid 65534, not by you \(uid 0\) or root/,
      );
    });

    test("sudo -E keeping a user's XDG_CACHE_HOME", async () => {
      const home = fresh("userhome");
      const shared = join(home, ".cache", "sysi");
      mkdirSync(join(home, ".cache"));
      cpSync(cache, shared, { recursive: true });
      expect(Bun.spawnSync(["chown", "-R", `${NOBODY}:${NOBODY}`, home]).exitCode).toBe(0);
      await plant(shared);
      await expectRefused(
        shared,
        { SYSI_CACHE_DIR: "", XDG_CACHE_HOME: join(home, ".cache"), HOME: home },
        /refusing the cache directory \S+ \(from XDG_CACHE_HOME\): \S+ is owned by uid 65534/,
      );
    });

    test("a plan file uid 65534 owns in a trusted plan directory: libsysi refuses it at load", async () => {
      const plans = await launcher("/bin/echo");
      const libc = libcOf(plans.modules);
      const good = readFileSync(libc.planPath);
      try {
        writeFileSync(libc.planPath, evilPlan(good));
        chownSync(libc.planPath, NOBODY, NOBODY);
        const r = launch(["/bin/echo", "hi"], plans.env);
        expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
        expect(r.stats.modules.corrupt).toBe(1);
        // sysi run plans it again (written by root now) and applies that
        const again = await sysi(["run", "--hook", "passthrough", "--", "/bin/echo", "hi"], env);
        expect({ code: again.code, stdout: again.stdout }).toEqual({ code: 0, stdout: "hi\n" });
        expect(statSync(libc.planPath).uid).toBe(0);
      } finally {
        writeFileSync(libc.planPath, good);
        chownSync(libc.planPath, 0, 0);
      }
    });
  },
);

describe("a plan with one byte changed is never applied", () => {
  /** Offsets to flip: a few in each part of the plan file (first, middle, last byte). */
  function sampleOffsets(b: Uint8Array): [string, number][] {
    const l = layout(b);
    const parts: [string, number, number][] = [["header", 0, l.header]];
    for (const [name, [off, size]] of Object.entries(l.sections)) if (size > 0) parts.push([name, off, size]);
    const out: [string, number][] = [];
    for (const [name, off, size] of parts) {
      for (const at of new Set([off, off + Math.floor(size / 3), off + Math.floor(size / 2) + 1, off + size - 1]))
        out.push([name, at]);
    }
    // the issue's case: a byte of an option's new bytes
    out.push(["option new bytes", l.optionsOff + 32]);
    out.push(["option new bytes", l.optionsOff + Math.floor(l.noptions / 2) * 64 + 33]);
    return out;
  }

  test("libsysi refuses it at load: the program's output is the native run's", async () => {
    const plans = await launcher("/bin/echo");
    const libc = libcOf(plans.modules);
    const good = new Uint8Array(readFileSync(libc.planPath));
    const native = Bun.spawnSync(["/bin/echo", "same as native"]).stdout.toString();
    const offsets = sampleOffsets(good);
    expect(new Set(offsets.map(([s]) => s)).size).toBeGreaterThanOrEqual(6); // header, tables, strings, blob …
    try {
      const clean = launch(["/bin/echo", "same as native"], plans.env);
      expect({ out: clean.stdout, corrupt: clean.stats.modules.corrupt }).toEqual({ out: native, corrupt: 0 });
      for (const [part, at] of offsets) {
        for (const flip of [0x01, 0xff]) {
          const b = Uint8Array.from(good);
          b[at] = (b[at] as number) ^ flip;
          writeFileSync(libc.planPath, b);
          const r = launch(["/bin/echo", "same as native"], plans.env);
          expect({ part, at, flip, code: r.code, out: r.stdout, err: r.stderr }).toEqual({
            part,
            at,
            flip,
            code: 0,
            out: native,
            err: "",
          });
          expect({ part, at, flip, refused: r.stats.modules.corrupt }).toEqual({ part, at, flip, refused: 1 });
        }
      }
    } finally {
      writeFileSync(libc.planPath, good);
    }
  }, 120_000);

  test("sysi run plans it again: native output, and the plan file is whole again", async () => {
    const plans = await launcher("/bin/echo");
    const libc = libcOf(plans.modules);
    const good = new Uint8Array(readFileSync(libc.planPath));
    const l = layout(good);
    const picks: [string, number][] = [
      ["checksum", 16],
      ["sites", (l.sections.sites as [number, number])[0] + 9],
      ["option new bytes", l.optionsOff + 32],
      ["option aux", l.optionsOff + 48],
      ["strings", (l.sections.strings as [number, number])[0] + 1],
      ["last byte", good.length - 1],
    ];
    const [blobOff, blobSize] = l.sections.blob as [number, number];
    if (blobSize > 0) picks.push(["blob", blobOff + Math.floor(blobSize / 2)]);
    for (const [part, at] of picks) {
      const b = Uint8Array.from(good);
      b[at] = (b[at] as number) ^ 0xff;
      writeFileSync(libc.planPath, b);
      const r = await sysi(["run", "--hook", "passthrough", "--", "/bin/echo", "hi"], env);
      expect({ part, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        part,
        code: 0,
        stdout: "hi\n",
        stderr: "",
      });
      expect({ part, rebuilt: Buffer.from(readFileSync(libc.planPath)).equals(Buffer.from(good)) }).toEqual({
        part,
        rebuilt: true,
      });
    }
  }, 300_000);
});

describe.skipIf(!CC)("a plan belongs to one module file (needs cc)", () => {
  const SITE = Buffer.from([0x41, 0xbb, 0xef, 0xbe, 0xad, 0xde, 0x0f, 0x05]);
  const d = join(dir, "prog");
  const prog = join(d, "prog");
  beforeAll(() => {
    mkdirSync(d, { recursive: true });
    const src = join(d, "prog.c");
    // getppid through an inline syscall the plan patches, marked by the mov before it
    writeFileSync(
      src,
      '#include <stdio.h>\nint main(void){long r; __asm__ volatile("mov $0xdeadbeef, %%r11d\\n\\tsyscall" : "=a"(r) : "a"(110) : "rcx", "r11", "memory"); printf("ran %d\\n", r > 0); return 0;}\n',
    );
    expect(Bun.spawnSync(["cc", "-O1", "-g", "-Wl,--build-id", "-o", prog, src]).exitCode).toBe(0);
  });

  test("a stripped copy (same build-id) gets its own plan", async () => {
    const stripped = join(d, "prog-stripped");
    expect(Bun.spawnSync(["strip", "-o", stripped, prog]).exitCode).toBe(0);
    const r = await sysi(["plan", "--json", prog, stripped], env);
    expect(r.code).toBe(0);
    const [a, b] = (JSON.parse(r.stdout) as { plans: { module: { key: string; buildId: string } }[] }).plans;
    expect(a?.module.buildId).toBe(b?.module.buildId as string);
    expect(a?.module.key).not.toBe(b?.module.key as string);
    for (const p of [prog, stripped]) {
      const run = await sysi(["run", "--hook", "passthrough", "--", p], env);
      expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
        code: 0,
        stdout: "ran 1\n",
        stderr: "",
      });
    }
  });

  test("a copy with other code where the plan patches (same build-id and size) is refused at load", async () => {
    const plans = await launcher(prog);
    const bytes = readFileSync(prog);
    const at = bytes.indexOf(SITE);
    expect(at).toBeGreaterThan(0);
    const stale = join(d, "prog-stale");
    const edited = Buffer.from(bytes);
    edited[at + 6] = 0x66; // 66 90: xchg %ax,%ax, a 2-byte no-op: rax stays 110
    edited[at + 7] = 0x90;
    writeFileSync(stale, edited, { mode: 0o755 });
    const native = Bun.spawnSync([stale]).stdout.toString();
    // the launcher's plan directory holds the plan for prog's build-id and size: stale's key too
    const r = launch([stale], plans.env);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: native, stderr: "" });
    expect(r.stats.modules.corrupt).toBe(1);
  });
});

describe.skipIf(!ROOT || SETPRIV === null || UNSHARE === null)(
  "--stats and -o never write through a planted symlink (needs root, setpriv, unshare)",
  () => {
    // A directory like /tmp: root's, world-writable, sticky; uid 65534 plants symlinks in it to
    // a root-owned 0600 file. In a new PID namespace `sysi` runs as pid 1, so the names its temp
    // files had before (".stats.<pid>.tmp", ".<ms>-<pid>.sysi-tmp") are known in advance.
    const shared = join(dir, "tmp-shared");
    const victim = join(dir, "victim");
    beforeAll(() => {
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
    });
    const resetVictim = () => {
      writeFileSync(victim, "secret\n", { mode: 0o600 });
      chmodSync(victim, 0o600);
    };
    const spray = (names: string) => {
      const r = asNobody([
        process.execPath,
        "-e",
        `const fs = require("node:fs"); for (const n of ${names}) fs.symlinkSync(${JSON.stringify(victim)}, ${JSON.stringify(shared)} + "/" + n);`,
      ]);
      expect(r.stderr).toBe("");
    };
    const inPidNamespace = (args: string[]) =>
      Bun.spawnSync([UNSHARE as string, "--pid", "--fork", "--mount-proc", process.execPath, RUN_JS, ...args], {
        env: { ...(process.env as Record<string, string>), ...env },
        stdout: "pipe",
        stderr: "pipe",
      });

    test("sysi env --stats FILE", () => {
      resetVictim();
      spray(`Array.from({ length: 64 }, (_, i) => ".stats." + (i + 1) + ".tmp")`);
      const out = join(shared, "stats");
      const r = inPidNamespace(["env", "--stats", out, "--", "/bin/true"]);
      expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      expect(readFileSync(victim, "utf8")).toBe("secret\n");
      const st = lstatSync(out);
      expect({ file: st.isFile(), size: st.size, uid: st.uid }).toEqual({ file: true, size: STATS_FILE_SIZE, uid: 0 });
    });

    test("sysi run -o FILE (the count summary)", () => {
      resetVictim();
      const t0 = Date.now();
      spray(`Array.from({ length: 40000 }, (_, i) => "." + (${t0} + i) + "-1.sysi-tmp")`);
      const out = join(shared, "counts");
      const r = inPidNamespace(["run", "--hook", "count", "-o", out, "--", "/bin/true"]);
      expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      expect(Date.now() - t0).toBeLessThan(40000); // the run's temp names were all planted
      expect(readFileSync(victim, "utf8")).toBe("secret\n");
      expect(readFileSync(out, "utf8")).toMatch(/total/);
    });

    test("-o FILE that is another user's symlink: refused before the program starts", async () => {
      resetVictim();
      spray(`["theirs"]`);
      const made = join(dir, "ran-anyway");
      const r = await sysi(["run", "--hook", "trace", "-o", join(shared, "theirs"), "--", "/usr/bin/touch", made], env);
      expectOneError(
        r,
        /refusing to write \S+theirs: it is a symlink owned by uid 65534, not by you \(uid 0\) or root/,
      );
      expect(existsSync(made)).toBe(false);
      expect(readFileSync(victim, "utf8")).toBe("secret\n");
    });
  },
);

describe("errors: exit 2, one line, no stack, no file left behind, before the program starts", () => {
  const work = join(dir, "errors");
  mkdirSync(work, { recursive: true });
  const NATIVE_DIRS = [
    join(REPO, "packages/core/native"),
    ...readdirSync(join(REPO, "plugins")).map((p) => join(REPO, "plugins", p, "native")),
  ].filter((p) => existsSync(p));
  const listing = () => NATIVE_DIRS.map((p) => readdirSync(p).sort().join(",")).join("\n");

  const file = (name: string, text: string, mode: number) => {
    const p = join(work, name);
    writeFileSync(p, text, { mode });
    chmodSync(p, mode);
    return p;
  };
  const noSysiHook = join(work, "nohook.so");
  beforeAll(() => {
    if (!CC) return;
    writeFileSync(join(work, "nohook.c"), "int not_a_hook(void) { return 1; }\n");
    Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", noSysiHook, join(work, "nohook.c")]);
  });

  interface Case {
    what: string;
    args: () => string[];
    env?: () => Record<string, string>;
    re: RegExp;
    skip?: string | false;
    nobody?: boolean;
    /** Must not exist afterwards (a cache path that was never created). */
    absent?: () => string;
  }
  const made = join(work, "program-ran");
  const touch = (prog: string) => ["run", "--hook", "passthrough", "--", prog, made];
  const CASES: Case[] = [
    { what: "a directory as the program", args: () => touch(work), re: /^sysi: error: \S+: is a directory$/ },
    {
      what: "an empty file as the program",
      args: () => touch(file("empty", "", 0o755)),
      re: /^sysi: error: \S+\/empty: is empty, not a program$/,
    },
    {
      what: "a text file without #! as the program",
      args: () => touch(file("text", "touch $1\n", 0o755)),
      re: /^sysi: error: \S+\/text: is a text file without a #! line: not a program/,
    },
    {
      what: "a file without execute permission as the program",
      args: () => {
        const p = join(work, "noexec");
        copyFileSync("/usr/bin/touch", p);
        chmodSync(p, 0o644);
        return touch(p);
      },
      re: /^sysi: error: \S+\/noexec: is not executable \(permission denied\)/,
    },
    {
      what: "a script whose interpreter is missing",
      args: () => touch(file("script", "#!/nonexistent/sh\ntouch $1\n", 0o755)),
      re: /^sysi: error: \S+\/script: its interpreter \/nonexistent\/sh \(the #! line\) does not exist/,
    },
    {
      what: "a cache path that is a file",
      args: () => touch("/usr/bin/touch"),
      env: () => ({ SYSI_CACHE_DIR: file("cache-file", "", 0o644) }),
      re: /^sysi: error: the cache directory \S+\/cache-file \(from SYSI_CACHE_DIR\) is not a directory/,
    },
    {
      what: "a relative cache path",
      args: () => touch("/usr/bin/touch"),
      env: () => ({ SYSI_CACHE_DIR: "relative-cache" }),
      re: /^sysi: error: the cache directory must be an absolute path: SYSI_CACHE_DIR=relative-cache/,
      absent: () => join(work, "relative-cache"),
    },
    {
      what: "a cache path with a space",
      args: () => touch("/usr/bin/touch"),
      env: () => ({ SYSI_CACHE_DIR: join(work, "with space", "cache") }),
      re: /^sysi: error: the cache directory "\S+\/with space\/cache" \(from SYSI_CACHE_DIR\) contains whitespace: LD_PRELOAD and SYSI_RUNTIMES cannot name libraries there/,
      absent: () => join(work, "with space"),
    },
    {
      what: "a cache path with a colon",
      args: () => touch("/usr/bin/touch"),
      env: () => ({ SYSI_CACHE_DIR: join(work, "with:colon", "cache") }),
      re: /^sysi: error: the cache directory "\S+\/with:colon\/cache" \(from SYSI_CACHE_DIR\) contains a colon/,
      absent: () => join(work, "with:colon"),
    },
    {
      what: "a read-only cache (as uid 65534)",
      args: () => touch("/usr/bin/touch"),
      env: () => {
        const c = join(work, "ro-cache");
        mkdirSync(c, { recursive: true, mode: 0o555 });
        chmodSync(c, 0o555);
        chownSync(c, NOBODY, NOBODY);
        return { SYSI_CACHE_DIR: c, HOME: work };
      },
      re: /^sysi: error: the cache directory \S+\/ro-cache \(from SYSI_CACHE_DIR\) is not writable: EACCES/,
      nobody: true,
      skip: !ROOT || SETPRIV === null ? "needs root and setpriv to run as uid 65534" : false,
    },
    {
      what: "a hook library without sysi_hook (dlerror's reason)",
      args: () => ["run", "--hook", noSysiHook, "--", "/usr/bin/touch", made],
      re: /^sysi: error: hook library \S+\/nohook\.so has no sysi_hook function: \S+\/nohook\.so: undefined symbol: sysi_hook$/,
      skip: CC ? false : "needs cc",
    },
    {
      what: "a hook library that is not a shared library (dlerror's reason)",
      args: () => [
        "run",
        "--hook",
        file("text.so", "not an ELF file, but long enough to be read as one..........\n", 0o644),
        "--",
        "/usr/bin/touch",
        made,
      ],
      re: /^sysi: error: hook library \S+\/text\.so cannot be loaded: \S+\/text\.so: (invalid ELF header|file too short)$/,
    },
  ];

  for (const c of CASES) {
    test.skipIf(c.skip !== undefined && c.skip !== false)(`${c.what}${c.skip ? ` (${c.skip})` : ""}`, async () => {
      const cwd = fresh("cwd");
      const tmp = fresh("tmpdir");
      const args = c.args();
      const extra = { ...env, ...(c.env?.() ?? {}), TMPDIR: tmp };
      const before = listing();
      let r: SysiResult;
      if (c.nobody) {
        chownSync(cwd, NOBODY, NOBODY);
        chownSync(tmp, NOBODY, NOBODY);
        const x = asNobody([process.execPath, RUN_JS, ...args], { env: extra, cwd });
        r = { code: x.code ?? -1, stdout: x.stdout, stderr: x.stderr };
      } else {
        r = await sysi(args, extra, cwd);
      }
      expectOneError(r, c.re);
      expect(existsSync(made)).toBe(false);
      expect(readdirSync(cwd)).toEqual([]);
      expect(readdirSync(tmp)).toEqual([]);
      expect(listing()).toBe(before);
      if (c.absent !== undefined) expect(existsSync(c.absent())).toBe(false);
    });
  }
});
