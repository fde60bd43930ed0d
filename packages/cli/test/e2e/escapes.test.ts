/**
 * Nothing escapes silently (issue 13 item 7): `sysi run` names what it did not instrument and why
 * — execs whose image never loads the runtime (set-ID and file-capability programs, static
 * programs; not a reset environment, a replaced LD_PRELOAD or sysi's variables removed: libsysi
 * gives them back at every exec, and those children are instrumented), `int $0x80` sites,
 * and the calls each image makes before the runtime starts (named, not counted) — and --strict
 * makes each an error (exit 2, one line): before the program starts where that is known, at exit
 * otherwise.
 *
 * Oracle: `strace -f` of the whole run with SYSI_MARKER=1. An image exec'd by an instrumented
 * image (one that made its start marker) that never makes its own marker is an escape; the lines
 * of an image before its marker are the calls made before the runtime started. The probe
 * program says what the kernel and the loader did with it (AT_SECURE, libsysi mapped).
 * Under the default chain and -s ud2; set-ID and capability programs as uid 65534 (setpriv).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasStack, lines, RUN_JS } from "../helpers.ts";

const FIX = join(import.meta.dir, "fixtures", "escapes");
const isRoot = process.getuid?.() === 0;
const hasStrace = Bun.which("strace") !== null;
const hasSetpriv = Bun.which("setpriv") !== null;
const setcap = Bun.which("setcap") ?? (existsSync("/sbin/setcap") ? "/sbin/setcap" : null);
const CHAINS = [
  { name: "default chain", args: [] as string[] },
  { name: "-s ud2", args: ["-s", "ud2"] },
];

// world-readable: uid 65534 runs the probes and reads nothing else of ours
const dir = mkdtempSync(join(tmpdir(), "sysi-escapes-"));
chmodSync(dir, 0o755);
const bin = (name: string) => join(dir, name);
afterAll(() => rmSync(dir, { recursive: true, force: true })); // the set-user-ID copies go with it

interface User {
  name: string;
  wrap: string[];
  env: Record<string, string>;
}

function userEnv(name: string, uid: number | null): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of [
    ["home", "HOME"],
    ["cache", "SYSI_CACHE_DIR"],
    ["tmp", "TMPDIR"],
  ] as const) {
    const d = join(dir, `${name}-${k}`);
    mkdirSync(d, { recursive: true });
    if (uid !== null) chownSync(d, uid, uid);
    env[v] = d;
  }
  return env;
}

const BASE: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && !k.startsWith("SYSI_") && k !== "DEBUG") BASE[k] = v;
}

let root: User;
let nobody: User;

function cc(out: string, src: string, extra: string[] = []): void {
  const r = Bun.spawnSync(["cc", "-O2", ...extra, "-o", out, join(FIX, src)], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cc ${src}: ${r.stderr.toString()}`);
}

beforeAll(() => {
  root = { name: "root", wrap: [], env: userEnv("root", null) };
  nobody = {
    name: "uid 65534",
    wrap: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
    env: isRoot ? userEnv("nobody", 65534) : {},
  };
  cc(bin("probe"), "probe.c");
  for (const k of ["env", "preload", "vars", "ok", "suid", "caps"]) {
    Bun.spawnSync(["cp", bin("probe"), bin(`probe-${k}`)]);
  }
  cc(bin("probe-static"), "probe.c", ["-static"]);
  cc(bin("int80"), "int80.c");
  Bun.spawnSync(["cp", bin("probe-static"), bin("probe-noexec")]);
  chmodSync(bin("probe-noexec"), 0o644);
  if (isRoot) {
    chmodSync(bin("probe-suid"), 0o4755); // set-user-ID root: removed with dir in afterAll
    if (setcap !== null) Bun.spawnSync([setcap, "cap_net_raw+ep", bin("probe-caps")]);
  }
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  trace: string;
}

let runs = 0;

/** `sysi run ARGS` as `user`, under `strace -f` when `traced` (SYSI_MARKER=1 either way). */
function run(user: User, args: string[], traced = true): Run {
  const trace = join(dir, `trace-${++runs}`);
  const strace = traced ? ["strace", "-f", "-qq", "-o", trace] : [];
  const r = Bun.spawnSync([...strace, ...user.wrap, process.execPath, RUN_JS, "run", ...args], {
    env: { ...BASE, ...user.env, SYSI_MARKER: "1" },
    cwd: dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const text = traced && existsSync(trace) ? readFileSync(trace, "utf8") : "";
  rmSync(trace, { force: true });
  return { code: r.exitCode ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString(), trace: text };
}

interface Image {
  path: string;
  /** Exec'd by an image that had the runtime (its escape would be libsysi's to see). */
  watched: boolean;
  marker: boolean;
  /** Lines before the marker (all of them, without one). */
  before: number;
}

/**
 * The process images of a `strace -f -qq` log: each successful execve starts one in its pid;
 * a child starts with its parent's current image (a pid's first line comes after the parent's
 * marker, whatever order strace prints the clone's result in).
 */
function images(text: string): Image[] {
  const parent = new Map<number, number>();
  const CLONE = /^(\d+) +(?:(?:clone3?|vfork|fork)\(.*|<\.\.\. (?:clone3?|vfork|fork) resumed>.*)\) += (\d+)$/;
  for (const l of text.split("\n")) {
    const m = CLONE.exec(l);
    if (m) parent.set(Number(m[2]), Number(m[1]));
  }
  const cur = new Map<number, Image | null>();
  const pending = new Map<number, string>();
  const all: Image[] = [];
  for (const l of text.split("\n")) {
    const m = /^(\d+) +(.*)$/.exec(l);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2] as string;
    if (!cur.has(pid)) cur.set(pid, cur.get(parent.get(pid) ?? -1) ?? null);
    const img = cur.get(pid) ?? null;
    const exec = /^execve\("((?:[^"\\]|\\.)*)"/.exec(rest);
    if (exec) pending.set(pid, exec[1] as string);
    const done = /^execve\(.*\) += 0$/.test(rest) || /^<\.\.\. execve resumed>.* = 0$/.test(rest);
    if (done) {
      const next: Image = { path: pending.get(pid) ?? "?", watched: img?.marker ?? false, marker: false, before: 0 };
      all.push(next);
      cur.set(pid, next);
      continue;
    }
    if (img === null || img.marker || rest.startsWith("+++") || rest.startsWith("---")) continue;
    if (rest.startsWith("<... ")) continue; // the rest of a call already counted
    if (/^syscall_0x5157\(0[,)]/.test(rest)) img.marker = true;
    else img.before++;
  }
  return all;
}

const real = (p: string) => Bun.spawnSync(["realpath", p]).stdout.toString().trim();

/** Escaped images by real path, from the trace: exec'd by an instrumented image, no marker. */
function escapedByTrace(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const i of images(text)) {
    if (!i.watched || i.marker) continue;
    const p = real(i.path.startsWith("/") ? i.path : join(dir, i.path));
    out.set(p, (out.get(p) ?? 0) + 1);
  }
  return out;
}

interface Json {
  processes: number;
  escapes: {
    command: { path: string; kind: string } | null;
    execs: Record<string, { path: string; count: number }[]>;
    int80: { path: string; sites: number }[];
    beforeRuntime: { images: number; calls: number | null; reason: string };
  };
}

function summary(r: Run): Json {
  const start = r.stdout.indexOf("\n{");
  return JSON.parse(r.stdout.slice(start + 1)) as Json;
}

/** The JSON's exec escapes as "kind path count" strings. */
function execsOf(j: Json): string[] {
  return Object.entries(j.escapes.execs).flatMap(([k, list]) => list.map((e) => `${k} ${e.path} ${e.count}`));
}

const skipTrace = !hasStrace ? "needs strace" : null;

for (const chain of CHAINS) {
  describe(`sysi run names what it did not instrument (${chain.name})`, () => {
    test.skipIf(skipTrace !== null)(
      `a static program escapes; a reset environment, LD_PRELOAD replaced, a failed exec do not: each against strace -f${skipTrace ? ` (skipped: ${skipTrace})` : ""}`,
      () => {
        const script = [
          `env -i ${bin("probe-env")}`,
          `LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6 ${bin("probe-preload")}`,
          bin("probe-static"),
          `${bin("probe-noexec")} 2>/dev/null`,
          bin("probe-ok"),
          "true",
        ].join("; ");
        const r = run(root, [...chain.args, "--json", "-o", "-", "--", "sh", "-c", script]);
        expect(r.code).toBe(0);
        // what the images themselves saw
        // env -i and a replaced LD_PRELOAD: libsysi put its variables back (native/env.c)
        expect(r.stdout).toContain("probe-env secure=0 sysi=1");
        expect(r.stdout).toContain("probe-preload secure=0 sysi=1");
        expect(r.stdout).toContain("probe-static secure=0 sysi=0");
        expect(r.stdout).toContain("probe-ok secure=0 sysi=1");
        const oracle = escapedByTrace(r.trace);
        const expected = new Map([[bin("probe-static"), 1]]);
        expect(oracle).toEqual(expected); // the oracle sees this one and nothing else
        const j = summary(r);
        expect(execsOf(j)).toEqual([`static ${bin("probe-static")} 1`]);
        // every image with a start marker is counted, the env -i and LD_PRELOAD ones included
        expect(j.processes).toBe(images(r.trace).filter((i) => i.marker).length);
        expect(j.escapes.command).toBeNull();
        // the exit line says the same (--json: the summary holds no sentence)
        const last = lines(r.stderr).at(-1) ?? "";
        expect(last).toMatch(/^sysi: not instrumented during the run: /);
        for (const p of expected.keys()) expect(last).toContain(p);
        expect(last).not.toContain("probe-noexec");
      },
    );

    test.skipIf(skipTrace !== null)(
      `sysi's variables removed by the program: put back at the exec, the image is counted${skipTrace ? ` (skipped: ${skipTrace})` : ""}`,
      () => {
        const r = run(root, [
          ...chain.args,
          "--json",
          "-o",
          "-",
          "--",
          "sh",
          "-c",
          `env -u SYSI_STATS_FILE ${bin("probe-vars")}`,
        ]);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("probe-vars secure=0 sysi=1");
        const imgs = images(r.trace).filter((i) => i.marker);
        const vars = imgs.filter((i) => i.path === bin("probe-vars"));
        expect(vars).toHaveLength(1);
        const j = summary(r);
        expect(j.processes).toBe(imgs.length);
        expect(execsOf(j)).toEqual([]);
      },
    );

    test.skipIf(skipTrace !== null)(
      `calls before the runtime started are named, not counted; strace -f of the native run counts them${skipTrace ? ` (skipped: ${skipTrace})` : ""}`,
      () => {
        const trace = join(dir, `native-${chain.args.join("") || "default"}`);
        Bun.spawnSync(["strace", "-f", "-qq", "-o", trace, "/usr/bin/true"]);
        const native = lines(readFileSync(trace, "utf8")).filter((l) => /^\d+ +[a-z_0-9]+\(/.test(l)).length;
        rmSync(trace, { force: true });
        const r = run(root, [...chain.args, "--json", "-o", "-", "--", "/usr/bin/true"]);
        expect(r.code).toBe(0);
        const j = summary(r) as Json & { total: { calls: number } };
        const marked = images(r.trace).filter((i) => i.marker);
        expect(marked.map((i) => real(i.path))).toEqual([real("/usr/bin/true")]);
        // the dynamic loader alone opens, maps and protects libc: far more calls than the hook saw
        expect(native - j.total.calls).toBeGreaterThan(10);
        console.log(
          `/usr/bin/true under ${chain.name}: strace -f of the native run ${native} calls, the hook ${j.total.calls}; ` +
            `under sysi, ${marked[0]?.before} lines before the start marker (the loader's and libsysi's own setup)`,
        );
        expect(j.escapes.beforeRuntime).toEqual({
          images: 1,
          calls: null,
          reason:
            "the kernel keeps no per-process count of system calls that sysi can read without tracing the program (ptrace, perf)",
        });
        const text = run(root, [...chain.args, "--", "/usr/bin/true"], false);
        expect(lines(text.stderr)).toContain(
          `sysi: not counted: the system calls the one process image made before the runtime started (the dynamic loader's, constructors that ran before libsysi's): ${j.escapes.beforeRuntime.reason}`,
        );
      },
    );

    test("int $0x80 sites are named before start; --strict refuses before the program starts", () => {
      const r = run(root, [...chain.args, "--json", "-o", "-", "--", bin("int80")], false);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("int80 getpid ok");
      const first = lines(r.stderr)[0] ?? "";
      expect(first).toContain(`${bin("int80")} (1, 1 int $0x80)`);
      expect(first).toContain("int $0x80 is the 32-bit system-call ABI, which no strategy instruments");
      expect(summary(r).escapes.int80).toEqual([{ path: bin("int80"), sites: 1 }]);
      const objdump = Bun.spawnSync(["objdump", "-d", bin("int80")]).stdout.toString();
      expect(objdump.match(/\bint\s+\$0x80\b/g)).toHaveLength(1);
      const s = run(root, [...chain.args, "--strict", "--", bin("int80")], false);
      expect(s.code).toBe(2);
      expect(s.stdout).toBe("");
      expect(lines(s.stderr)).toHaveLength(1);
      expect(s.stderr).toMatch(
        /^sysi: error: --strict: chain \S+ leaves 1 system-call site unpatched, in .*int \$0x80/,
      );
    });

    test("--strict: an escaped exec is an error at exit (exit 2, one line); none: the program's status", () => {
      for (const hook of ["count", "passthrough"]) {
        const r = run(
          root,
          [...chain.args, "--strict", "--hook", hook, "--", "sh", "-c", `env -i ${bin("probe-static")}`],
          false,
        );
        expect({ hook, code: r.code }).toEqual({ hook, code: 2 });
        expect(r.stdout).toBe("probe-static secure=0 sysi=0\n"); // it ran: only exit knows
        const errs = lines(r.stderr).filter((l) => l.startsWith("sysi: error"));
        expect(errs).toHaveLength(1);
        expect(errs[0]).toMatch(
          /^sysi: error: --strict: not instrumented during the run: 1 exec of a statically linked program \(/,
        );
        expect(hasStack(r.stderr)).toBe(false);
        const ok = run(
          root,
          [...chain.args, "--strict", "--hook", hook, "--", "sh", "-c", `env -i ${bin("probe-ok")}; exit 3`],
          false,
        );
        expect({ hook, code: ok.code, stderr: ok.stderr.includes("sysi: error") }).toEqual({
          hook,
          code: 3,
          stderr: false,
        });
      }
    });
  });

  const skipUser = !isRoot
    ? "needs root to make set-user-ID copies and switch to uid 65534"
    : !hasSetpriv
      ? "needs setpriv (util-linux)"
      : !hasStrace
        ? "needs strace"
        : null;
  describe(`as uid 65534: set-ID and capability programs (${chain.name})${skipUser ? ` (skipped: ${skipUser})` : ""}`, () => {
    test.skipIf(skipUser !== null)(
      "a set-user-ID root program and one with file capabilities, exec'd: against strace -f",
      () => {
        const caps = setcap !== null;
        const script = [bin("probe-suid"), ...(caps ? [bin("probe-caps")] : []), bin("probe-ok")].join("; ");
        const r = run(nobody, [...chain.args, "--json", "-o", "-", "--", "sh", "-c", script]);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("probe-suid secure=1 sysi=0");
        if (caps) expect(r.stdout).toContain("probe-caps secure=1 sysi=0");
        expect(r.stdout).toContain("probe-ok secure=0 sysi=1");
        const expected = new Map([[bin("probe-suid"), 1]]);
        if (caps) expected.set(bin("probe-caps"), 1);
        expect(escapedByTrace(r.trace)).toEqual(expected);
        const want = [`setid ${bin("probe-suid")} 1`, ...(caps ? [`caps ${bin("probe-caps")} 1`] : [])];
        expect(execsOf(summary(r)).sort()).toEqual(want.sort());
      },
    );

    test.skipIf(skipUser !== null)(
      "a set-user-ID command: named before start; --strict refuses before it starts",
      () => {
        const made = join(nobody.env.TMPDIR as string, `made-${chain.args.join("") || "default"}`);
        const s = run(nobody, [...chain.args, "--strict", "--", bin("probe-suid"), made], false);
        expect(s.code).toBe(2);
        expect(s.stdout).toBe("");
        expect(lines(s.stderr)).toHaveLength(1);
        expect(s.stderr).toMatch(
          /^sysi: error: --strict: \S+probe-suid is set-user-ID or set-group-ID for this user: the kernel runs it in secure mode/,
        );
        expect(existsSync(made)).toBe(false);
        const r = run(nobody, [...chain.args, "--json", "-o", "-", "--", bin("probe-suid"), made], false);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("probe-suid secure=1 sysi=0");
        expect(lines(r.stderr)[0]).toMatch(/^sysi: \S+probe-suid is set-user-ID or set-group-ID for this user: /);
        expect(summary(r).escapes.command).toEqual({ path: bin("probe-suid"), kind: "setid" });
        // as root the same program is not set-ID to anyone else: instrumented, nothing said
        const asRoot = run(root, [...chain.args, "--strict", "--", bin("probe-suid")], false);
        expect(asRoot.code).toBe(0);
        expect(asRoot.stdout).toBe("probe-suid secure=0 sysi=1\n");
      },
    );
  });
}

/*
 * A dynamically linked Go program without cgo exec'd by an instrumented one (issue 13): Go's
 * runtime points %fs at its own per-M storage, so libsysi's thread-local state would land in the
 * middle of runtime.m ("fatal: bad g in signal handler" under ud2). libsysi's exec check
 * (escape.c) runs it natively instead, without libsysi and sysi's variables, and names it; the
 * cgo build of the same program keeps libc's %fs and stays instrumented. page0.test's fixture.
 */
const noGo = Bun.which("go") === null ? "needs go (scripts/setup.sh installs golang-go)" : null;
const skipGo = noGo ?? skipTrace;

describe(`a Go program without cgo exec'd by an instrumented one${skipGo ? ` (skipped: ${skipGo})` : ""}`, () => {
  const nocgo = bin("nilgo-nocgo");
  const withCgo = bin("nilgo");
  beforeAll(() => {
    if (noGo !== null) return;
    const env: Record<string, string | undefined> = { ...process.env, CGO_ENABLED: "1", GOFLAGS: "-buildvcs=false" };
    if (env.GOCACHE === undefined && env.HOME === undefined) env.GOCACHE = join(dir, "gocache");
    for (const [out, tags] of [
      [nocgo, ["-tags", "nocgo"]], // no runtime/cgo import: pure Go, linked by the external linker
      [withCgo, []],
    ] as const) {
      const g = Bun.spawnSync(["go", "build", ...tags, "-ldflags=-linkmode=external", "-o", out, "."], {
        cwd: join(import.meta.dir, "fixtures", "page0", "nilgo"),
        env,
        stderr: "pipe",
      });
      if (g.exitCode !== 0) throw new Error(`building ${out} failed: ${g.stderr.toString()}`);
    }
  });
  const script = (prog: string) => `${prog}; echo rc=$?`;

  for (const chain of CHAINS) {
    test.skipIf(skipGo !== null)(
      `${chain.name}: runs natively (output as without sysi, no start marker), named as escaped; --strict exits 2`,
      () => {
        const native = Bun.spawnSync(["sh", "-c", script(nocgo)], { env: BASE, cwd: dir, stdin: "ignore" });
        const want = native.stdout.toString();
        expect(want).toContain("recovered: runtime error: invalid memory address or nil pointer dereference");
        const r = run(root, [...chain.args, "--json", "-o", "-", "--", "sh", "-c", script(nocgo)]);
        expect(r.code).toBe(0);
        expect(r.stdout.slice(0, r.stdout.indexOf("\n{") + 1)).toBe(want);
        expect(escapedByTrace(r.trace)).toEqual(new Map([[nocgo, 1]])); // no marker: libsysi never ran in it
        const j = summary(r);
        expect(execsOf(j)).toEqual([`go ${nocgo} 1`]);
        expect(j.processes).toBe(1); // sh only
        const last = lines(r.stderr).at(-1) ?? "";
        expect(last).toMatch(
          /^sysi: not instrumented during the run: 1 exec of a dynamically linked Go program without cgo \(/,
        );
        expect(last).toContain(nocgo);
        const s = run(
          root,
          [...chain.args, "--strict", "--hook", "passthrough", "--", "sh", "-c", script(nocgo)],
          false,
        );
        expect(s.code).toBe(2);
        expect(s.stdout).toBe(want); // it ran: only exit knows
        expect(lines(s.stderr)).toHaveLength(1);
        expect(s.stderr).toMatch(
          /^sysi: error: --strict: not instrumented during the run: 1 exec of a dynamically linked Go program without cgo \(/,
        );
        expect(hasStack(s.stderr)).toBe(false);
      },
    );

    test.skipIf(skipGo !== null)(
      `${chain.name}: its cgo build is instrumented (start marker, counted) and not named`,
      () => {
        const native = Bun.spawnSync(["sh", "-c", script(withCgo)], { env: BASE, cwd: dir, stdin: "ignore" });
        const r = run(root, [...chain.args, "--json", "-o", "-", "--", "sh", "-c", script(withCgo)]);
        expect(r.code).toBe(0);
        expect(r.stdout.slice(0, r.stdout.indexOf("\n{") + 1)).toBe(native.stdout.toString());
        const go = images(r.trace).filter((i) => i.path === withCgo);
        expect(go.map((i) => ({ watched: i.watched, marker: i.marker }))).toEqual([{ watched: true, marker: true }]);
        const j = summary(r) as Json & { syscalls: { name: string; calls: number }[] };
        expect(execsOf(j)).toEqual([]);
        expect(j.processes).toBe(2); // sh and the Go program
      },
    );
  }

  test.skipIf(skipGo !== null)(
    "the Go image gets the environment it gets natively: the caller's LD_PRELOAD, none of sysi's (strace -v of its execve)",
    () => {
      const preload = "/lib/x86_64-linux-gnu/libc.so.6"; // the caller's own LD_PRELOAD: passed on
      const execs = (args: string[]): string[] => {
        const trace = join(dir, "go-env");
        const strace = ["strace", "-f", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-o", trace];
        Bun.spawnSync([...strace, ...args], {
          env: { ...BASE, ...root.env, LD_PRELOAD: preload },
          cwd: dir,
          stdin: "ignore",
          stdout: "pipe",
        });
        const text = readFileSync(trace, "utf8");
        rmSync(trace, { force: true });
        return lines(text).filter((l) => / execve\(/.test(l));
      };
      const envOf = (all: string[], path: RegExp): string[] => {
        const l = all.filter((x) => path.test(x));
        expect(l).toHaveLength(1);
        // strace -f splits the line when another process's call comes between (sysi's CLI runs
        // beside the program): the envp is printed whole at entry either way
        const list = /\], \[(.*)\](?:\) += | <unfinished \.\.\.>)/.exec(l[0] as string)?.[1] ?? "";
        return [...list.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] as string).sort();
      };
      const cmd = ["sh", "-c", `${nocgo}; env >/dev/null`];
      const native = execs(cmd);
      const sysi = execs([process.execPath, RUN_JS, "run", "-s", "ud2", "--hook", "passthrough", "--", ...cmd]);
      const go = new RegExp(`execve\\("${nocgo}"`);
      const want = envOf(native, go);
      expect(want).toContain(`LD_PRELOAD=${preload}`);
      expect(envOf(sysi, go)).toEqual(want);
      // the other exec of the script (env) is given sysi's variables back, libsysi first in LD_PRELOAD
      const other = envOf(sysi, /execve\("[^"]*\/env"/);
      expect(other.some((e) => e.startsWith("SYSI_HIDE="))).toBe(true);
      expect(other.find((e) => e.startsWith("LD_PRELOAD="))).toMatch(
        /libsysi[^:]*:\/lib\/x86_64-linux-gnu\/libc\.so\.6$/,
      );
    },
  );
});
