/**
 * `sysi patch --standalone`: the runtime carried inside the output (docs/patch.md, "A standalone
 * program"). The start stub (native/standalone) is built once per source hash into
 * `<cacheDir>/native/standalone-<hash>/sysi-stub.bin`, like the static runtime; the runtime
 * libraries are embedded stripped (`strip --strip-unneeded`: their dynamic symbols are all
 * libsysi and the strategy runtimes use). The note names each library the runtime loads by a
 * memfd path whose fd number the stub writes at start: a fixed-width placeholder.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseElf } from "../elf/reader.ts";
import { BuildError } from "../errors.ts";
import { cachedCompilerId, runtimeHash } from "../native-build.ts";
import { cacheLocation, checkTrustedFile, openCacheDir } from "../trust.ts";
import { PatchError, rewriteElf, type StandaloneRequest } from "./elf-writer.ts";
import { configOffset } from "./embed.ts";

export const STANDALONE_STUB = "sysi-stub.bin";
const STUB_DIR = join(import.meta.dir, "..", "..", "native", "standalone");
/** native/standalone/stub.h SYSI_STUB_FD_DIGITS: "/proc/self/fd/" and this many bytes. */
export const FD_DIGITS = 10;
const FD_PREFIX = "/proc/self/fd/";

/** The placeholder path of the i-th embedded library (i < 10): the stub writes "//////// N". */
export function fdPlaceholder(i: number): string {
  if (i < 0 || i > 9) throw new PatchError("PATCH_UNSUPPORTED", "too many embedded runtime libraries");
  return `${FD_PREFIX}${"%".repeat(FD_DIGITS - 1)}${i}`;
}

/**
 * A hook library as a standalone output embeds it: with libsysi's memfd (placeholder 0) as its
 * first DT_NEEDED. The stub loads libsysi RTLD_LOCAL (ld.so's start-up is walking the global
 * list), so a hook's references to libsysi (sysi_syscall, …) resolve only through a dependency;
 * ld.so finds that dependency loaded already (same path, same memfd). Returns the bytes and the
 * offset of the fd digits the stub writes.
 */
export function hookWithRuntime(bytes: Uint8Array): { bytes: Uint8Array; patch: number } {
  const out = rewriteElf(parseElf(bytes), {
    patches: [],
    needed: [fdPlaceholder(0)],
    noteDesc: new Uint8Array(0),
    reserved: [],
    library: true,
    noNote: true,
  }).bytes;
  const at = Buffer.from(out).lastIndexOf(Buffer.from(fdPlaceholder(0), "latin1"));
  if (at < 0) throw new PatchError("PATCH_LAYOUT", "the hook's new DT_NEEDED is not in its string table");
  return { bytes: out, patch: at + FD_PREFIX.length };
}

export interface EmbeddedLib {
  name: string;
  bytes: Uint8Array;
  /** Its placeholder path (fdPlaceholder) in the note's settings; null for libsysi. */
  placeholder: string | null;
  /** The setting that names it (SYSI_RUNTIMES, SYSI_HOOK); null for libsysi. */
  key: string | null;
  /** Offset in `bytes` of a placeholder the stub fills with libsysi's fd (hookWithRuntime). */
  patch?: number | null;
}

export interface StandaloneInput {
  stub: Uint8Array;
  libs: EmbeddedLib[];
}

/** The writer's request: each placeholder and key found in the note's descriptor. */
export function standaloneRequest(input: StandaloneInput, desc: Uint8Array): StandaloneRequest {
  return {
    stub: input.stub,
    libs: input.libs.map((l) => {
      const path = l.placeholder === null ? null : configOffset(desc, l.placeholder);
      const key = l.key === null ? null : configOffset(desc, l.key, true);
      if ((l.placeholder !== null && path === null) || (l.key !== null && key === null)) {
        throw new PatchError("PATCH_LAYOUT", `the note does not name the embedded ${l.name}`);
      }
      const at = path === null ? null : path + FD_PREFIX.length;
      return { name: l.name, bytes: l.bytes, path: at, key, patch: l.patch ?? null };
    }),
  };
}

async function spawnOk(cmd: string[]): Promise<{ ok: boolean; err: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { ok: code === 0, err };
}

/** A runtime library's bytes without its static symbols and debug info. */
export async function strippedLibrary(path: string): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), "sysi-strip-"));
  try {
    const out = join(dir, "lib.so");
    const r = await spawnOk(["strip", "--strip-unneeded", "-o", out, path]);
    if (!r.ok) throw new BuildError("BUILD_FAILED", `strip ${path} failed: ${r.err.split("\n")[0] ?? ""}`);
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The stub's flat code, built on demand into the cache. */
export async function ensureStandaloneStub(opts: { cc?: string; cacheDir?: string } = {}): Promise<Uint8Array> {
  const cc = opts.cc ?? process.env.CC ?? "cc";
  const base = openCacheDir(opts.cacheDir === undefined ? cacheLocation() : { path: opts.cacheDir, from: null });
  const compiler = await cachedCompilerId(cc, base);
  const h = new Bun.CryptoHasher("sha256");
  h.update(runtimeHash(STUB_DIR, STANDALONE_STUB, STUB_DIR, compiler));
  h.update(readFileSync(join(STUB_DIR, "stub.ld")));
  const hash = h.digest("hex").slice(0, 16);
  const root = join(base, "native");
  const final = join(root, `standalone-${hash}`);
  const target = join(final, STANDALONE_STUB);
  if (!existsSync(target)) {
    mkdirSync(root, { recursive: true, mode: 0o755 });
    const tmp = join(root, `standalone-${hash}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(tmp, { mode: 0o755 });
    try {
      const r = await spawnOk(["make", "-s", "-C", STUB_DIR, `OUT=${tmp}`, `CC=${cc}`]);
      if (!r.ok || !existsSync(join(tmp, STANDALONE_STUB))) {
        const line = r.err.split("\n").find((l) => /error/i.test(l)) ?? r.err.split("\n")[0] ?? "";
        throw new BuildError("BUILD_FAILED", `building the standalone stub failed: ${line.trim()}`);
      }
      for (const f of ["stub.o", "syscall.o", "stub.elf"]) rmSync(join(tmp, f), { force: true });
      chmodSync(join(tmp, STANDALONE_STUB), 0o644);
      chmodSync(tmp, 0o755);
      try {
        renameSync(tmp, final);
      } catch (e) {
        if (!existsSync(target)) throw e; // another builder renamed first: use theirs
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  checkTrustedFile("standalone stub", target, base);
  return new Uint8Array(readFileSync(target));
}
