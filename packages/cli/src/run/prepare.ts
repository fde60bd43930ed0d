/**
 * Everything `sysi run` and `sysi env` do before the program starts: resolve the chain, build
 * the runtimes (cached), plan the program's modules (cached), and compute the environment that
 * makes libsysi instrument the program (the contract is "RUNTIME ENVIRONMENT" in sysi.h).
 */
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { StrategyError, SysiError } from "@sysi/core/errors";
import type { HostReport } from "@sysi/core/host";
import { checkTrustedFile, openCacheDir } from "@sysi/core/internal";
import { ensureRuntime } from "@sysi/core/runtime";
import {
  type ChainElement,
  defaultChain,
  hookLowEnv,
  loadRegistry,
  type RegistryConfig,
  type ResolvedChain,
  resolveChain,
  sysiCoreApi,
} from "../registry.ts";
import { preloadWithoutSysi } from "./environment.ts";
import { cachedProbeHost } from "./host-cache.ts";
import { chainEntries, planModules } from "./planning.ts";
import { parseTraceExprs } from "./trace-filter.ts";

export const BUILTIN_HOOKS = ["passthrough", "count", "trace"] as const;

export interface PrepareOptions {
  config: RegistryConfig;
  /** `-s` value; undefined = the default chain for this host. */
  spec?: string;
  /** Built-in hook name or path of a hook .so. */
  hook: string;
  /** `-e read,write` (names or numbers). */
  filter?: string | readonly string[];
  /** Resolved path of the program (null: not an ELF file we can plan ahead, e.g. a script). */
  exe: string | null;
  /** Reuse an earlier probe. */
  host?: HostReport;
  /** Ignore (and replace) the chain's cached plans. */
  replan?: boolean;
}

export interface PreparedRun {
  chain: ResolvedChain;
  host: HostReport;
  planDir: string;
  libsysi: string;
  runtimes: { name: string; lib: string; entry: string }[];
  /** The modules planned ahead (real paths) and their plan files. */
  modules: { path: string; planPath: string; hit: boolean }[];
  /** Variables to add to the program's environment. */
  env: Record<string, string>;
  timings: Record<string, number>;
  /**
   * A statically linked program runs as its patched copy (the runtime linked in, see
   * @sysi/core patch/static-cache.ts); null for a dynamically linked one.
   */
  staticCopy: { path: string; hit: boolean } | null;
}

function coreNativeDir(): string {
  return join(dirname(fileURLToPath(import.meta.resolve("@sysi/core/package.json"))), "native");
}

/**
 * Resolve a command name like the shell does: a path as given, else the first match on PATH.
 * A path must name something the kernel can run (checkProgram).
 */
export function resolveProgram(cmd: string, pathEnv = process.env.PATH ?? ""): string {
  if (cmd.includes("/")) {
    const p = resolve(cmd);
    if (!existsSync(p)) throw new SysiError("RUN_NOT_FOUND", `${cmd}: no such file`);
    checkProgram(cmd, p);
    return p;
  }
  for (const dir of pathEnv.split(":")) {
    const p = join(dir === "" ? "." : dir, cmd);
    try {
      const st = statSync(p);
      if (st.isFile() && (st.mode & 0o111) !== 0) {
        checkProgram(cmd, resolve(p));
        return resolve(p);
      }
    } catch (e) {
      if (e instanceof SysiError) throw e;
      // not here
    }
  }
  throw new SysiError("RUN_NOT_FOUND", `${cmd}: command not found`);
}

/** Does binfmt_misc have formats registered (then the kernel may run more than ELF and #!)? */
function binfmtMisc(): boolean {
  try {
    return readdirSync("/proc/sys/fs/binfmt_misc").some((n) => n !== "register" && n !== "status");
  } catch {
    return false;
  }
}

/**
 * Refuse, before anything is planned or started, what execve would refuse: a directory, a
 * file that is not executable, an empty file, a text file without a `#!` line, a script
 * whose interpreter is missing, other non-ELF files (unless binfmt_misc may know them).
 */
export function checkProgram(cmd: string, path: string): void {
  const fail = (why: string, suggestion?: string): never => {
    throw new SysiError("RUN_NOT_PROGRAM", `${cmd}: ${why}`, suggestion ? { suggestions: [suggestion] } : {});
  };
  const st = statSync(path);
  if (st.isDirectory()) fail("is a directory");
  if (!st.isFile()) fail("is not a regular file");
  try {
    accessSync(path, constants.X_OK);
  } catch {
    fail("is not executable (permission denied)", `chmod +x ${cmd}`);
  }
  if (st.size === 0) fail("is empty, not a program");
  const head = Buffer.alloc(256);
  let n = 0;
  try {
    const fd = openSync(path, "r");
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    fail(`cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (n >= 4 && head.readUInt32BE(0) === 0x7f454c46) return;
  if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) {
    const line = head.subarray(2, n).toString("latin1").split("\n")[0]?.trim() ?? "";
    const interp = line.split(/\s+/)[0] ?? "";
    if (interp === "") fail("has an empty #! line");
    try {
      accessSync(interp, constants.X_OK);
      if (!statSync(interp).isFile()) throw new Error("not a file");
    } catch {
      fail(`its interpreter ${interp} (the #! line) does not exist or is not executable`);
    }
    return;
  }
  const text = !head.subarray(0, n).includes(0);
  if (text) fail("is a text file without a #! line: not a program", `name its interpreter, e.g. sh ${cmd}`);
  if (!binfmtMisc()) fail("is not an ELF executable or a #! script");
}

/** The ELF that will actually run for `path`: itself, or a `#!` script's interpreter. */
export function elfToPlan(path: string): string | null {
  const head = Buffer.alloc(256);
  try {
    const fd = openSync(path, "r");
    try {
      readSync(fd, head, 0, 256, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) return path;
  if (head[0] === 0x23 && head[1] === 0x21) {
    const line = head.toString("latin1").split("\n")[0]?.slice(2).trim() ?? "";
    const interp = line.split(/\s+/)[0] ?? "";
    if (isAbsolute(interp) && existsSync(interp)) return elfToPlan(interp);
  }
  return null;
}

/**
 * `test(fd, header)` on a little-endian ELF64 file's 64-byte header; false for anything else: a
 * file that cannot be opened or read, not ELF64, or a read that throws inside `test`.
 */
function testElf64(path: string, test: (fd: number, eh: Buffer) => boolean): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    const eh = Buffer.alloc(64);
    if (readSync(fd, eh, 0, 64, 0) < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) {
      return false;
    }
    return test(fd, eh);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Is `path` an ELF executable that runs without the dynamic loader? LD_PRELOAD, and so the
 * runtime, never reaches such a program: no PT_INTERP and either no PT_DYNAMIC (static
 * glibc/musl, Go with CGO_ENABLED=0) or a dynamic section flagged DF_1_PIE (a static-pie; the
 * dynamic loader itself, which has no PT_INTERP either, is not flagged so).
 */
export function isStaticExecutable(path: string): boolean {
  return testElf64(path, (fd, eh) => {
    const type = eh.readUInt16LE(16);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if ((type !== 2 && type !== 3) || phentsize < 56 || phnum === 0 || phnum > 4096) return false;
    const ph = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, ph, 0, ph.length, phoff) < ph.length) return false;
    let dynamic: { offset: number; size: number } | null = null;
    for (let i = 0; i < phnum; i++) {
      const t = ph.readUInt32LE(i * phentsize);
      if (t === 3) return false; // PT_INTERP
      if (t === 2) {
        dynamic = {
          offset: Number(ph.readBigUInt64LE(i * phentsize + 8)),
          size: Number(ph.readBigUInt64LE(i * phentsize + 32)),
        };
      }
    }
    if (dynamic === null) return true;
    if (dynamic.size > 1 << 20) return false;
    const dyn = Buffer.alloc(dynamic.size);
    const got = readSync(fd, dyn, 0, dyn.length, dynamic.offset);
    for (let o = 0; o + 16 <= got; o += 16) {
      const tag = dyn.readBigUInt64LE(o);
      if (tag === 0n) break; // DT_NULL
      if (tag === 0x6ffffffbn) return (dyn.readBigUInt64LE(o + 8) & 0x08000000n) !== 0n; // DT_FLAGS_1 & DF_1_PIE
    }
    return false;
  });
}

/**
 * Is `path` a dynamically linked Go program without cgo? Such a program (a pure-Go build linked
 * by the external linker: it has a PT_INTERP, only crt1 uses libc) gets LD_PRELOAD, but Go's
 * runtime then points %fs at its own per-M storage on every thread (settls, CLONE_SETTLS):
 * libsysi's thread-local state (initial-exec TLS below %fs) would read and write the middle of
 * Go's runtime.m structures. A Go build note or section marks Go; cgo imports pthread_* functions
 * from libc (its threads keep glibc's %fs); a pure-Go build imports none.
 */
export function isGoWithoutCgo(path: string): boolean {
  return testElf64(path, (fd, eh) => {
    const shoff = Number(eh.readBigUInt64LE(40));
    const shentsize = eh.readUInt16LE(58);
    const shnum = eh.readUInt16LE(60);
    const shstrndx = eh.readUInt16LE(62);
    if (shoff === 0 || shentsize < 64 || shnum === 0 || shnum > 65280 || shstrndx >= shnum) return false;
    const sh = Buffer.alloc(shentsize * shnum);
    if (readSync(fd, sh, 0, sh.length, shoff) < sh.length) return false;
    const section = (i: number) => ({
      name: sh.readUInt32LE(i * shentsize),
      type: sh.readUInt32LE(i * shentsize + 4),
      offset: Number(sh.readBigUInt64LE(i * shentsize + 24)),
      size: Number(sh.readBigUInt64LE(i * shentsize + 32)),
      link: sh.readUInt32LE(i * shentsize + 40),
    });
    const read = (offset: number, size: number): Buffer | null => {
      if (size > 64 << 20) return null;
      const b = Buffer.alloc(size);
      return readSync(fd, b, 0, size, offset) === size ? b : null;
    };
    const strs = read(section(shstrndx).offset, section(shstrndx).size);
    if (strs === null) return false;
    const nameOf = (off: number) => strs.toString("latin1", off, Math.max(off, strs.indexOf(0, off)));
    let go = false;
    let dynstr: Buffer | null = null;
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      const name = nameOf(s.name);
      if (name === ".go.buildinfo" || name === ".note.go.buildid") go = true;
      if (s.type === 11 /* SHT_DYNSYM */ && s.link < shnum) {
        dynstr = read(section(s.link).offset, section(s.link).size);
      }
    }
    if (!go || dynstr === null) return false; // not Go, or static (isStaticExecutable's case)
    return !dynstr.includes(Buffer.from("pthread_", "latin1")); // runtime/cgo imports pthread_attr_init, _create…
  });
}

/** `-e` expressions (strace syntax: names, numbers, %classes, !negation) → syscall numbers; undefined: all. */
export async function parseFilter(spec: string | readonly string[] | undefined): Promise<number[] | undefined> {
  const exprs = spec === undefined ? [] : typeof spec === "string" ? [spec] : spec;
  if (exprs.length === 0) return undefined;
  return (await parseTraceExprs(exprs)).numbers;
}

export function resolveHook(hook: string): string {
  if ((BUILTIN_HOOKS as readonly string[]).includes(hook)) return hook;
  const p = resolve(hook);
  if (hook.endsWith(".so") || hook.includes("/")) {
    if (!existsSync(p)) throw new SysiError("RUN_HOOK_NOT_FOUND", `hook library ${hook}: no such file`);
    if (!statSync(p).isFile()) throw new SysiError("RUN_BAD_HOOK", `hook library ${hook}: not a regular file`);
    checkTrustedFile("hook library", p);
    return p;
  }
  throw new SysiError("RUN_BAD_HOOK", `unknown hook "${hook}"`, {
    suggestions: [`built-in hooks: ${BUILTIN_HOOKS.join(", ")}; or the path of a hook .so`],
  });
}

/**
 * Load the hook library the way libsysi will (dlopen RTLD_NOW, then dlsym "sysi_hook") in a
 * helper process built with libsysi (native/hook-check.c), with libsysi preloaded as in the
 * program: a hook that cannot load is an error before the program starts, with dlerror()'s
 * reason.
 */
async function checkHookLoads(given: string, hook: string, libsysi: string, preload: string): Promise<void> {
  const helper = join(dirname(libsysi), "sysi-hook-check");
  checkTrustedFile("runtime helper", helper);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SYSI_")) env[k] = v;
  env.LD_PRELOAD = preload;
  const proc = Bun.spawn([helper, hook], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (proc.exitCode === 0) return;
  const why =
    out.trim().split("\n")[0] ||
    (proc.signalCode ? `crashed while loading (${proc.signalCode})` : err.trim().split("\n")[0] || "cannot be loaded");
  throw new SysiError("RUN_BAD_HOOK", `hook library ${given} ${why}`);
}

async function chooseChain(opts: PrepareOptions, host: HostReport, isStatic: boolean): Promise<ResolvedChain> {
  if (opts.spec !== undefined) return resolveChain(opts.config, opts.spec);
  const { entries } = await loadRegistry(opts.config);
  const chain = defaultChain(entries, host.facts());
  if (!isStatic) return chain;
  // a static program's copy: the default chain's strategies whose runtimes are validated linked
  // into one (docs/patch.md, statically linked programs); ud2 when none of them is
  const kept = chain.entries.filter((c) => STATIC_VALIDATED.has(c.entry.name));
  if (kept.length === 0) return resolveChain(opts.config, "ud2");
  return { entries: kept, spec: kept.map((c) => c.entry.name).join(",") };
}

/** Strategies tested with their runtime linked into a static program (patch-static.test.ts). */
const STATIC_VALIDATED = new Set(["punning", "zpoline", "ud2"]);

async function buildRuntimes(chain: ChainElement[]) {
  const includeDir = sysiCoreApi().includeDir;
  const [libsysi, ...libs] = await Promise.all([
    ensureRuntime(coreNativeDir(), "libsysi.so", { includeDir }),
    ...chain.map((c) =>
      ensureRuntime(c.entry.strategy.runtime.nativeDir, c.entry.strategy.runtime.lib, { includeDir }),
    ),
  ]);
  if (libsysi === undefined) throw new StrategyError("RUNTIME_MISSING", "libsysi could not be built");
  const runtimes = chain.map((c, i) => ({
    name: c.entry.name,
    lib: libs[i] as string,
    entry: c.entry.strategy.runtime.entry,
  }));
  return { libsysi, runtimes };
}

export async function prepareRun(opts: PrepareOptions): Promise<PreparedRun> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = Math.round((now - t) * 10) / 10;
    t = now;
  };
  openCacheDir(); // an unusable or untrusted cache is the first error, before anything is read from it
  const hook = resolveHook(opts.hook);
  const isStatic = opts.exe !== null && isStaticExecutable(opts.exe);
  if (isStatic && hook.startsWith("/")) {
    throw new SysiError(
      "RUN_STATIC_HOOK",
      `${opts.exe} is statically linked: it runs as a patched copy with the runtime linked in, which cannot load a hook library`,
      { suggestions: ["use --hook count, trace or passthrough (built in); see docs/patch.md"] },
    );
  }
  if (!isStatic && opts.exe !== null && isGoWithoutCgo(opts.exe)) {
    throw new SysiError(
      "RUN_GO_WITHOUT_CGO",
      `${opts.exe} is a Go program without cgo linked against libc: Go's runtime takes over %fs on every thread, where sysi's load-time runtime keeps its per-thread state, so it cannot run instrumented this way`,
      {
        suggestions: [
          "build it static (CGO_ENABLED=0): sysi run then uses the static runtime, which leaves %fs to Go",
          'or build it with cgo (import "C" or runtime/cgo): its threads then keep libc\'s %fs',
        ],
      },
    );
  }
  const filter = await parseFilter(opts.filter);
  const host = opts.host ?? (await cachedProbeHost());
  lap("probe");
  const chain = await chooseChain(opts, host, isStatic);
  lap("chain");
  const [{ libsysi, runtimes }, planned] = await Promise.all([
    buildRuntimes(chain.entries),
    planModules(opts.exe, chainEntries(chain), host.facts(), { replan: opts.replan }),
  ]);
  lap("build+plan");
  const staticCopy = isStatic ? await patchedCopy(opts.exe as string, chain, host, planned.modules) : null;
  if (staticCopy !== null) lap("static copy");
  const env: Record<string, string> = {
    LD_PRELOAD: [libsysi, preloadWithoutSysi(process.env.LD_PRELOAD)].filter((s) => s !== undefined).join(":"),
    SYSI_RUNTIMES: runtimes.map((r) => `${r.lib}#${r.entry}`).join(","),
    SYSI_PLAN_DIR: planned.planDir,
    SYSI_HOOK: hook,
  };
  if (hook.startsWith("/")) await checkHookLoads(opts.hook, hook, libsysi, env.LD_PRELOAD as string);
  if (filter !== undefined) env.SYSI_FILTER = filter.join(",");
  const low = hookLowEnv(chain.entries, process.env);
  if (low !== undefined) env.SYSI_HOOK_LOW = low;
  return {
    chain,
    host,
    planDir: planned.planDir,
    libsysi,
    runtimes,
    modules: planned.modules,
    env,
    timings,
    staticCopy,
  };
}

/**
 * The patched copy a statically linked program runs as (in the cache, keyed by its plan, the
 * file's identity and the runtime's sources): LD_PRELOAD never reaches it, so the runtime is
 * linked into a copy as `sysi patch` does. Its hook and filter come from the environment.
 */
async function patchedCopy(
  exe: string,
  chain: ResolvedChain,
  host: HostReport,
  modules: { path: string; planPath: string }[],
): Promise<{ path: string; hit: boolean }> {
  const { checkStaticRewritable, ensureStaticCopy } = await import("@sysi/core/patch");
  const own = modules.find((m) => m.path === exe) ?? modules[0];
  if (own === undefined) throw new SysiError("RUN_STATIC_EXECUTABLE", `${exe}: no plan was made`);
  const copy = await ensureStaticCopy({
    exe,
    planPath: own.planPath,
    strategies: chain.entries.map((c) => ({
      name: c.entry.name,
      nativeDir: c.entry.strategy.runtime.nativeDir,
      entry: c.entry.strategy.runtime.entry,
    })),
    plan: async () => {
      const { readElfFile } = await import("@sysi/core/elf");
      try {
        checkStaticRewritable(readElfFile(exe));
      } catch (e) {
        throw new SysiError(
          "RUN_STATIC_EXECUTABLE",
          `${exe} is statically linked: it cannot be patched (${(e as Error).message}), so it would run uninstrumented`,
          { suggestions: ["run a dynamically linked build, e.g. Go with CGO_ENABLED=1"] },
        );
      }
      const { planFile } = await import("@sysi/core/plan");
      return (await planFile(exe, chainEntries(chain), host.facts())).plan;
    },
  });
  return { path: copy.path, hit: copy.hit };
}
