/**
 * The static runtime image (native/static): libsysi and the chain's strategy runtimes linked
 * into one position-independent ELF without libc, which `sysi patch` places into statically
 * linked programs. Built once per source hash into `<cacheDir>/native/static-<hash>/`, where
 * the hash covers libsysi's sources, native/static's, sysi.h's directory, every strategy
 * runtime's top-level sources, the entry symbols and the compiler.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BuildError } from "../errors.ts";
import { CORE_INCLUDE_DIR, cachedCompilerId, runtimeHash } from "../native-build.ts";
import { cacheLocation, checkTrustedFile, openCacheDir } from "../trust.ts";

export const STATIC_RUNTIME_LIB = "sysi-static.elf";
const CORE_NATIVE = join(import.meta.dir, "..", "..", "native");

export interface StaticStrategy {
  name: string;
  nativeDir: string;
  entry: string;
}

/**
 * `opts.hook`: a hook's C source (sysi.h's ABI, no libc) linked into the image, for `sysi patch
 * --hook HOOK.c` of a static program; its bytes are part of the hash.
 */
export async function ensureStaticRuntime(
  strategies: StaticStrategy[],
  opts: { cc?: string; cacheDir?: string; hook?: string } = {},
): Promise<string> {
  const cc = opts.cc ?? process.env.CC ?? "cc";
  const base = openCacheDir(opts.cacheDir === undefined ? cacheLocation() : { path: opts.cacheDir, from: null });
  const compiler = await cachedCompilerId(cc, base);
  const staticDir = join(CORE_NATIVE, "static");
  const h = new Bun.CryptoHasher("sha256");
  h.update(runtimeHash(CORE_NATIVE, "libsysi", CORE_INCLUDE_DIR, compiler));
  h.update(runtimeHash(staticDir, STATIC_RUNTIME_LIB, CORE_INCLUDE_DIR, compiler));
  for (const s of strategies)
    h.update(`${s.name}\0${s.entry}\0${runtimeHash(s.nativeDir, s.name, CORE_INCLUDE_DIR, compiler)}`);
  if (opts.hook !== undefined) {
    h.update("\0hook\0");
    h.update(readFileSync(opts.hook));
  }
  const hash = h.digest("hex").slice(0, 16);
  const root = join(base, "native");
  const final = join(root, `static-${hash}`);
  const target = join(final, STATIC_RUNTIME_LIB);
  if (existsSync(target)) {
    checkTrustedFile("static runtime", target, base);
    return target;
  }
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const tmp = join(root, `static-${hash}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    const proc = Bun.spawn(
      [
        "make",
        "-s",
        "-C",
        staticDir,
        `OUT=${tmp}`,
        `CC=${cc}`,
        `SYSI_INCLUDE=${CORE_INCLUDE_DIR}`,
        `STRATEGIES=${strategies.map((s) => s.nativeDir).join(" ")}`,
        `ENTRIES=${strategies.map((s) => s.entry).join(" ")}`,
        ...(opts.hook !== undefined ? [`HOOK=${opts.hook}`] : []),
      ],
      { stdout: "pipe", stderr: "pipe", stdin: "ignore" },
    );
    const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0 || !existsSync(join(tmp, STATIC_RUNTIME_LIB))) {
      const lines = err.split("\n");
      const line =
        lines.find((l) => /undefined reference|error:/i.test(l)) ??
        lines.find((l) => /error/i.test(l)) ??
        lines[0] ??
        "";
      if (opts.hook !== undefined && line.includes("undefined reference to `sysi_hook'"))
        throw new BuildError("BUILD_FAILED", `the hook source ${opts.hook} defines no sysi_hook (sysi.h)`);
      const what =
        opts.hook !== undefined ? "building the static runtime with the hook" : "building the static runtime";
      throw new BuildError("BUILD_FAILED", `${what} failed: ${line.trim()}`);
    }
    rmSync(join(tmp, "obj"), { recursive: true, force: true });
    rmSync(join(tmp, "strategies.mk"), { force: true });
    chmodSync(join(tmp, STATIC_RUNTIME_LIB), 0o755);
    chmodSync(tmp, 0o755);
    try {
      renameSync(tmp, final);
    } catch (e) {
      if (!existsSync(target)) throw e; // another builder renamed first: use theirs
    }
    checkTrustedFile("static runtime", target, base);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
