/**
 * Patched copies of statically linked programs, for `sysi run` (docs/patch.md, "sysi run on a
 * static program"): LD_PRELOAD never reaches a static program, so `sysi run` executes a copy
 * that `sysi patch` would write, kept in the cache:
 *
 *   <cacheDir>/patched/<hash>/<the program's file name>
 *
 * `hash` covers everything the copy's bytes depend on: the program's binary plan (module key,
 * chain, every site's options; the plan cache checked it against the file), the program file's
 * identity (device, inode, size, mtime, ctime: a reinstalled program gets a new copy even with
 * the same build-id), the static runtime image (its directory is named by the hash of its
 * sources), the writer's own sources and the embedded settings. The file name is kept because
 * the kernel names the process after it (/proc/PID/comm). The hook and the filter are not
 * embedded: the copy reads them from the environment like a preloaded libsysi, so one copy
 * serves every hook. A copy is used only when trusted (trust.ts), and written as a temp file
 * renamed into place (safe-write.ts), so a concurrent or killed writer never leaves half a file.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { fileIdentity } from "../module-key.ts";
import type { PatchPlan } from "../plan/types.ts";
import { writeFileAtomic } from "../safe-write.ts";
import { cacheLocation, checkTrustedFile, openCacheDir } from "../trust.ts";
import { buildPatched, type PatchReport } from "./build.ts";
import { ensureStaticRuntime, type StaticStrategy } from "./static-runtime.ts";

/** Sources whose change changes a copy's bytes (this folder, and the plan encoder). */
const WRITER_SOURCES = ["build.ts", "elf-writer.ts", "embed.ts", "static-writer.ts", "static-cache.ts"]
  .map((f) => join(import.meta.dir, f))
  .concat(join(import.meta.dir, "..", "plan", "binary.ts"));

export interface StaticCopyInput {
  /** The static program (a resolved path). */
  exe: string;
  /** Its plan file in the plan cache (already checked against the program). */
  planPath: string;
  /** The chain's strategy runtimes, in chain order. */
  strategies: StaticStrategy[];
  /** The program's composite plan, computed only when the copy must be written. */
  plan: () => Promise<PatchPlan>;
  cacheDir?: string;
}

export interface StaticCopy {
  path: string;
  /** Found in the cache (false: written now). */
  hit: boolean;
  /** What the writer did (a fresh copy only). */
  report?: PatchReport;
}

/** The settings embedded in a copy: the linked-in strategy runtimes (hook, filter: environment). */
export function staticCopyConfig(strategies: readonly StaticStrategy[]): Record<string, string> {
  return { SYSI_RUNTIMES: strategies.map((s) => `[static]/${s.name}#${s.entry}`).join(",") };
}

/**
 * What `sysi run` tells a copy it executes (static/exe.c), hidden from the program like every
 * sysi variable: the copy's real path (`copy`, what the kernel's /proc/self/exe gives), the
 * original's (what it gives natively) and the path the caller gave (AT_EXECFN natively: `word`
 * when it names a file, else the path the PATH search found).
 */
export function staticCopyExeEnv(copy: string, exe: string, word: string): Record<string, string> {
  return { SYSI_EXE_COPY: copy, SYSI_EXE: realpathSync(exe), SYSI_EXECFN: word.includes("/") ? word : exe };
}

export async function ensureStaticCopy(input: StaticCopyInput): Promise<StaticCopy> {
  const base = openCacheDir(input.cacheDir === undefined ? cacheLocation() : { path: input.cacheDir, from: null });
  const image = await ensureStaticRuntime(input.strategies, { cacheDir: base });
  const config = staticCopyConfig(input.strategies);
  const h = new Bun.CryptoHasher("sha256");
  h.update(readFileSync(input.planPath));
  h.update(`\0${fileIdentity(input.exe)}\0${image}\0${JSON.stringify(config)}\0`);
  for (const f of WRITER_SOURCES) h.update(readFileSync(f));
  const dir = join(base, "patched", h.digest("hex").slice(0, 24));
  const target = join(dir, basename(input.exe));
  if (existsSync(target)) {
    checkTrustedFile("patched program", target, base);
    return { path: target, hit: true };
  }
  const plan = await input.plan();
  const { readElfFile } = await import("../elf/reader.ts");
  const built = buildPatched({
    elf: readElfFile(input.exe),
    plan,
    libraryPlans: [],
    needed: [],
    config,
    staticRuntime: readElfFile(image),
  });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileAtomic(target, built.bytes, 0o755);
  checkTrustedFile("patched program", target, base);
  return { path: target, hit: false, report: built.report };
}
