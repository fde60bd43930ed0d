import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Args, Flags } from "@oclif/core";
import { SysiError } from "@sysi/core/errors";
import { openCacheDir } from "@sysi/core/internal";
import type { PatchReport } from "@sysi/core/patch";
import { ensureRuntime } from "@sysi/core/runtime";
import { SysiCommand } from "../base-command.ts";
import {
  type ChainElement,
  chainEntries,
  defaultChain,
  hookLowEnv,
  loadRegistry,
  resolveChain,
  sysiCoreApi,
} from "../registry.ts";
import { cachedProbeHost } from "../run/host-cache.ts";
import { parseFilter, resolveHook } from "../run/prepare.ts";

export default class Patch extends SysiCommand {
  static override summary = "Write a copy of a program that runs instrumented when executed directly.";
  static override description =
    `Plans IN with the chain (the same composite plan \`sysi run\` applies at load time), writes the taken patch of every site into OUT's code, makes the sysi runtime OUT's first DT_NEEDED (its constructor starts instrumentation before any code of OUT's own runs) and embeds in a note the runtime's settings (strategy runtimes, hook, filter), OUT's own plan and the plans of the libraries it loads (interpreter and DT_NEEDED closure, planned now). OUT needs no wrapper and no environment; it loads the runtime libraries from sysi's cache by absolute path. See docs/patch.md for the layout and what runs before the runtime.

A shared library keeps its code and carries the runtime as its first DT_NEEDED, its own plan and its dependencies' plans: a program that loads it (LD_LIBRARY_PATH, or dlopen before it starts threads) is instrumented. A patched libc.so.6 instruments every dynamically linked program run with it through LD_LIBRARY_PATH (libc and ld.so). The dynamic loader (ld.so), which programs load by its fixed path, is refused.

With --standalone (dynamically linked executables) OUT carries the runtime itself: no DT_NEEDED on libsysi, no path into sysi's cache; a stub run from OUT's DT_PREINIT_ARRAY loads the embedded libraries from memfds at start, so OUT runs for any user, without the cache, on another machine with glibc 2.34 or later.

IN is never modified: OUT is written to a temporary file beside it and renamed; OUT equal to IN needs --in-place. Dynamically linked executables (PIE and non-PIE), statically linked non-PIE executables and shared libraries; static-pie is refused with one line, as are files already patched by sysi. See docs/patch.md.`;
  static override examples = [
    "<%= config.bin %> patch -s punning,ud2 --hook count /bin/ls -o ls.sysi",
    "<%= config.bin %> patch --hook trace --json ./prog -o prog.traced",
  ];
  static override args = {
    input: Args.string({ description: "ELF executable or shared library to patch", required: true }),
  };
  static override flags = {
    strategy: Flags.string({
      char: "s",
      summary: "strategy chain tried per site in order, e.g. punning,ud2 (default: best for this host)",
    }),
    hook: Flags.string({
      summary:
        "passthrough | count | trace | path of a hook .so (see sysi.h) | for a static program, a hook's C source (HOOK.c), linked in",
      default: "count",
    }),
    filter: Flags.string({ char: "e", summary: "only these system calls reach the hook, e.g. read,write,openat" }),
    output: Flags.string({ char: "o", summary: "the patched program to write", required: true }),
    "in-place": Flags.boolean({ summary: "allow OUT to be IN (replaced atomically)" }),
    json: Flags.boolean({ summary: "one JSON document describing what was done" }),
    standalone: Flags.boolean({
      summary: "carry the runtime inside OUT (no path into sysi's cache; dynamically linked executables)",
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Patch);
    const input = resolve(args.input);
    const output = resolve(flags.output);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(input);
    } catch (e) {
      throw new SysiError("PATCH_INPUT", `${args.input}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (!st.isFile()) throw new SysiError("PATCH_INPUT", `${args.input}: not a regular file`);
    if (sameFile(input, output) && !flags["in-place"]) {
      throw new SysiError("PATCH_SAME_FILE", "OUT is IN: sysi patch never modifies its input", {
        suggestions: ["name another -o, or pass --in-place to replace IN"],
      });
    }
    const { readElfFile } = await import("@sysi/core/elf");
    const {
      buildPatched,
      checkRewritable,
      checkStaticRewritable,
      classifyElf,
      isStaticExecutable,
      ensureStaticRuntime,
      sharedLibrary,
    } = await import("@sysi/core/patch");
    const elf = readElfFile(input);
    const isStatic = isStaticExecutable(elf);
    const isLibrary = classifyElf(elf) === "shared-library";
    // bad layouts fail before anything is planned or built (a library once the chain is known)
    if (isStatic) checkStaticRewritable(elf);
    else if (!isLibrary) checkRewritable(elf);
    if (flags.standalone && isStatic) {
      throw new SysiError(
        "PATCH_UNSUPPORTED",
        "a statically linked program is standalone already: sysi patch links the runtime into it (drop --standalone)",
      );
    }
    if (flags.standalone && isLibrary) {
      throw new SysiError(
        "PATCH_UNSUPPORTED",
        "--standalone is for executables: a library's runtime is loaded by the program (drop --standalone)",
      );
    }

    openCacheDir();
    // a hook's C source is linked into a static program's runtime (no loader to dlopen a .so)
    const hookSource = flags.hook.endsWith(".c") ? resolve(flags.hook) : undefined;
    if (hookSource !== undefined) {
      if (!isStatic) {
        throw new SysiError("PATCH_UNSUPPORTED", "a hook source (.c) is linked into statically linked programs only", {
          suggestions: ["build the hook as a shared library (cc -shared -fPIC) and give --hook HOOK.so; see sysi.h"],
        });
      }
      if (!existsSync(hookSource) || !statSync(hookSource).isFile())
        throw new SysiError("RUN_HOOK_NOT_FOUND", `hook source ${flags.hook}: no such file`);
    }
    const hook = hookSource !== undefined ? "[static]/hook" : resolveHook(flags.hook);
    if (isStatic && hook.startsWith("/")) {
      throw new SysiError("PATCH_UNSUPPORTED", "a hook library cannot be loaded into a statically linked program", {
        suggestions: [
          "link the hook in: give its C source, --hook HOOK.c (sysi.h's ABI, no libc); or use --hook count, trace or passthrough; see docs/patch.md",
        ],
      });
    }
    const filter = await parseFilter(flags.filter);
    const host = await cachedProbeHost();
    const chain =
      flags.strategy !== undefined
        ? await resolveChain(this.config, flags.strategy)
        : defaultChain((await loadRegistry(this.config)).entries, host.facts());
    const entries = chainEntries(chain);
    // the dynamic loader is refused: programs map it by their PT_INTERP path, never through
    // LD_LIBRARY_PATH, and it cannot load the runtime. libc.so.6, the runtime's other dependency,
    // is patched as any library: the copy's DT_NEEDED libsysi.so needs libc.so.6, which resolves
    // to the copy itself (one soname, one object), and ld.so initialises the copy, then libsysi,
    // then every other library (docs/patch.md, "A patched libc")
    if (isLibrary && (elf.dynamic?.needed.length ?? 0) === 0 && (await isRuntimeDependency(input, chain.entries)))
      throw sharedLibrary(elf, true);
    if (isLibrary) checkRewritable(elf, { library: true });

    if (isStatic) {
      const { planFile } = await import("@sysi/core/plan");
      const { plan } = await planFile(input, entries, host.facts());
      const image = await ensureStaticRuntime(
        chain.entries.map((c) => ({
          name: c.entry.name,
          nativeDir: c.entry.strategy.runtime.nativeDir,
          entry: c.entry.strategy.runtime.entry,
        })),
        hookSource !== undefined ? { hook: hookSource } : {},
      );
      const config: Record<string, string> = {
        SYSI_RUNTIMES: chain.entries.map((c) => `[static]/${c.entry.name}#${c.entry.strategy.runtime.entry}`).join(","),
        SYSI_HOOK: hook,
      };
      if (filter !== undefined) config.SYSI_FILTER = filter.join(",");
      const built = buildPatched({
        elf,
        plan,
        libraryPlans: [],
        needed: [],
        config,
        staticRuntime: readElfFile(image),
      });
      const { writeFileAtomic } = await import("@sysi/core/internal");
      writeFileAtomic(output, built.bytes, st.mode & 0o777);
      this.report(flags, input, output, chain.spec, hook, { static: image }, built.report, 0);
      return;
    }
    const { planFile, PlanCache } = await import("@sysi/core/plan");
    const { moduleClosure } = await import("@sysi/core/plan");
    const [{ plan }, runtimes, closure] = await Promise.all([
      planFile(input, entries, host.facts()),
      buildRuntimes(chain.entries),
      moduleClosure(input),
    ]);
    const cache = new PlanCache();
    const runtimeLibs = [runtimes.libsysi, ...runtimes.runtimes.map((r) => r.lib)];
    // a library's note also plans what the runtime itself loads (libc, ld.so), which a library
    // that needs nothing (no DT_NEEDED) would not name: their calls must reach the runtime too
    const loaded = isLibrary
      ? [...closure, ...(await Promise.all(runtimeLibs.map((p) => moduleClosure(p)))).flat()]
      : closure;
    const libs = [...new Set(loaded)].filter((p) => !sameFile(p, input) && !runtimeLibs.some((r) => sameFile(p, r)));
    const ensured = await cache.ensureMany(libs, entries, host.facts());
    const libraryPlans = ensured.map((m) => ({ key: m.key, plan: new Uint8Array(readFileSync(m.planPath)) }));

    // standalone: the note names each library by the memfd the stub writes it into at start
    const { fdPlaceholder } = await import("@sysi/core/patch");
    const at = (i: number, path: string) => (flags.standalone ? fdPlaceholder(i) : path);
    const config: Record<string, string> = {
      SYSI_RUNTIMES: runtimes.runtimes.map((r, i) => `${at(i + 1, r.lib)}#${r.entry}`).join(","),
      SYSI_HOOK: hook.startsWith("/") ? at(runtimes.runtimes.length + 1, hook) : hook,
    };
    if (filter !== undefined) config.SYSI_FILTER = filter.join(",");
    const low = hookLowEnv(chain.entries, {});
    if (low !== undefined && hook.startsWith("/")) config.SYSI_HOOK_LOW = low;
    const standalone = flags.standalone ? await embeddedRuntime(runtimes, hook) : undefined;

    const built = buildPatched({
      elf,
      plan,
      libraryPlans,
      needed: standalone === undefined ? [runtimes.libsysi] : [],
      config,
      library: isLibrary,
      ...(standalone === undefined ? {} : { standalone }),
    });
    const { writeFileAtomic } = await import("@sysi/core/internal");
    writeFileAtomic(output, built.bytes, st.mode & 0o777);

    this.report(
      flags,
      input,
      output,
      chain.spec,
      hook,
      standalone === undefined
        ? { libsysi: runtimes.libsysi, strategies: runtimes.runtimes }
        : {
            standalone: {
              stub: standalone.stub.length,
              libraries: standalone.libs.map((l) => ({ name: l.name, size: l.bytes.length })),
            },
          },
      built.report,
      libraryPlans.length,
    );
  }

  private report(
    flags: { json: boolean; hook: string },
    input: string,
    output: string,
    spec: string,
    hook: string,
    runtime: unknown,
    r: PatchReport,
    nlibs: number,
  ): void {
    const chain = { spec };
    if (flags.json) {
      this.printJson({
        input,
        output,
        chain: spec,
        hook,
        runtime,
        linked: nlibs === 0 && "static" in (runtime as object),
        ...r,
      });
      return;
    }
    const per = Object.entries(r.byStrategy)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    const what = r.library ? "the library and the" : "the program and";
    const lines = [
      `${basename(output)}: ${r.patched} of ${r.sites} sites ${r.library ? "planned (patched when the library loads; its code is kept)" : "patched"}${per ? ` (${per})` : ""}, ${r.refused.length} refused; chain ${chain.spec}, hook ${flags.hook}`,
      `  ${r.embeddedPlans.length} plans embedded (${what} ${nlibs} libraries${r.library ? " it loads" : ""}), ${r.trampolines} trampolines built at start${"static" in (runtime as object) ? "; static program: the runtime is linked in" : ""}`,
      `  +${r.growth} bytes (${r.inputSize} -> ${r.outputSize}); new segments: ${r.segments.map((s) => `${s.type} 0x${s.vaddr.toString(16)} (${s.size} bytes)`).join(", ")}`,
    ];
    for (const f of r.refused.slice(0, 10)) {
      lines.push(
        `  refused ${f.vaddr}${f.function ? ` in ${f.function}` : ""}: ${Object.entries(f.reasons)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}`,
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}

/** Is `path` one of the libraries the runtime (libsysi and the chain's runtimes) loads itself? */
async function isRuntimeDependency(path: string, chain: ChainElement[]): Promise<boolean> {
  const { moduleClosure } = await import("@sysi/core/plan");
  const rt = await buildRuntimes(chain);
  const closures = await Promise.all([rt.libsysi, ...rt.runtimes.map((r) => r.lib)].map((p) => moduleClosure(p)));
  const self = realpathSync(path);
  return closures.flat().some((p) => sameFile(p, self));
}

/** The stub and the stripped runtime libraries a standalone OUT carries (libsysi first). */
async function embeddedRuntime(runtimes: Awaited<ReturnType<typeof buildRuntimes>>, hook: string) {
  const { ensureStandaloneStub, fdPlaceholder, hookWithRuntime, strippedLibrary } = await import("@sysi/core/patch");
  const n = runtimes.runtimes.length;
  const [stub, ...bytes] = await Promise.all([
    ensureStandaloneStub(),
    strippedLibrary(runtimes.libsysi),
    ...runtimes.runtimes.map((r) => strippedLibrary(r.lib)),
    ...(hook.startsWith("/") ? [strippedLibrary(hook)] : []),
  ]);
  const libs = [
    { name: "libsysi.so", bytes: bytes[0] as Uint8Array, placeholder: null, key: null },
    ...runtimes.runtimes.map((r, i) => ({
      name: basename(r.lib),
      bytes: bytes[i + 1] as Uint8Array,
      placeholder: fdPlaceholder(i + 1),
      key: "SYSI_RUNTIMES",
    })),
    ...(hook.startsWith("/")
      ? [
          {
            name: basename(hook),
            ...hookWithRuntime(bytes[n + 1] as Uint8Array),
            placeholder: fdPlaceholder(n + 1),
            key: "SYSI_HOOK",
          },
        ]
      : []),
  ];
  return { stub: stub as Uint8Array, libs };
}

function coreNativeDir(): string {
  return join(dirname(fileURLToPath(import.meta.resolve("@sysi/core/package.json"))), "native");
}

async function buildRuntimes(chain: ChainElement[]) {
  const includeDir = sysiCoreApi().includeDir;
  const [libsysi, ...libs] = await Promise.all([
    ensureRuntime(coreNativeDir(), "libsysi.so", { includeDir }),
    ...chain.map((c) =>
      ensureRuntime(c.entry.strategy.runtime.nativeDir, c.entry.strategy.runtime.lib, { includeDir }),
    ),
  ]);
  return {
    libsysi: libsysi as string,
    runtimes: chain.map((c, i) => ({
      name: c.entry.name,
      lib: libs[i] as string,
      entry: c.entry.strategy.runtime.entry,
    })),
  };
}
