/**
 * The `sysi run` start-up fast path. Loading @oclif/core and letting it discover plugins and
 * commands costs ~150 ms, most of a warm `sysi run`. bin/run.js therefore hands `run` to
 * fastRun() first, which runs the command without oclif when it can tell that oclif would do
 * exactly the same thing:
 *
 *   - the arguments are plain: known flags (each option once, with a value that is not a flag),
 *     then the command — no `--help`, no unknown flag, nothing oclif would reject;
 *   - the plugins are ones it can list as oclif's Config would: the bundled ones, and the
 *     user-installed and linked ones the data dir's package.json names (as plugin-plugins
 *     writes it; an unreadable or odd one needs oclif), no dev plugins, no globbed plugin
 *     names, no plugin that hooks oclif's command lifecycle (init, prerun, preparse, postrun,
 *     finally) or has plugins of its own, and no installed or linked plugin with commands
 *     (one could be a `run` of its own). A strategy plugin has none of these, so installing
 *     or linking one keeps `sysi run` on this path.
 *
 * Anything else returns null and bin/run.js goes through oclif as before, so help text, parse
 * errors and plugin behaviour stay oclif's own.
 */
import { readFileSync, realpathSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { errorOutput, writeStderr } from "../format-error.ts";
import type { RegistryConfig, RegistryPlugin } from "../registry.ts";
import { dieLikeProgram, executeRun, type RunFlags } from "./execute.ts";
import { timestampLevel } from "./trace-filter.ts";

/** A flag of `sysi run`, as oclif's parser sees it (commands/run.ts; a test keeps them equal). */
export interface RunFlagSpec {
  name: string;
  char?: string;
  type: "boolean" | "option";
  /** An option that may be given several times (oclif multiple, non-greedy). */
  multiple?: boolean;
}

export const RUN_FLAG_SPECS: readonly RunFlagSpec[] = [
  { name: "strategy", char: "s", type: "option" },
  { name: "hook", type: "option" },
  { name: "output", char: "o", type: "option" },
  { name: "json", type: "boolean" },
  { name: "filter", char: "e", type: "option", multiple: true },
  { name: "timestamps", char: "t", type: "boolean" },
  { name: "syscall-times", char: "T", type: "boolean" },
  { name: "summary-wall-clock", char: "w", type: "boolean" },
  { name: "string-limit", type: "option" },
  { name: "verbose", char: "v", type: "boolean" },
  { name: "strict", type: "boolean" },
  { name: "replan", type: "boolean" },
  { name: "complete", type: "boolean" },
  { name: "vdso", type: "boolean" },
];

export const RUN_HOOK_DEFAULT = "count";

export interface ScannedRun {
  /** The program and its arguments, in the order given. */
  words: string[];
  /** Flag values by name (booleans: true). */
  values: Record<string, string | true>;
  /** False when oclif does something odd with the words (`--json=x` makes "x" an argument). */
  plain: boolean;
}

/**
 * Split `sysi run`'s argv (after "run") into flags and the command the way oclif's parser
 * classifies tokens (strict: false; `--` ends the flags), keeping the command's words in their
 * original order. Null where oclif's parser throws: an unknown flag before `--` (oclif rejects
 * those even though the command is not strict), an option given twice or without a value.
 */
export function scanRunArgv(
  argv: readonly string[],
  specs: readonly RunFlagSpec[] = RUN_FLAG_SPECS,
): ScannedRun | null {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byChar = new Map(specs.filter((s) => s.char !== undefined).map((s) => [s.char as string, s]));
  const find = (arg: string): { spec?: RunFlagSpec; isLong: boolean } => {
    if (arg.startsWith("--")) return { spec: byName.get(arg.slice(2)), isLong: true };
    if (arg.startsWith("-") && arg.length > 1) return { spec: byChar.get(arg[1] as string), isLong: false };
    return { isLong: false };
  };
  const rest = [...argv];
  const words: string[] = [];
  const values: Record<string, string | true> = {};
  let plain = true;
  const parseFlag = (arg: string): boolean | "error" => {
    const { spec, isLong } = find(arg);
    if (spec === undefined) {
      const eq = arg.indexOf("=");
      if (eq === -1) return false;
      rest.unshift(arg.slice(eq + 1));
      const head = arg.slice(0, eq);
      const r = parseFlag(head);
      if (r === false) rest.shift();
      // `--json=x`: oclif sets the flag and takes "x" as an argument.
      else if (find(head).spec?.type === "boolean") plain = false;
      return r;
    }
    if (spec.type === "option") {
      if (spec.name in values && !spec.multiple) return "error";
      const input = isLong || arg.length < 3 ? rest.shift() : arg.slice(arg[2] === "=" ? 3 : 2);
      if (input === undefined || find(input).spec !== undefined) return "error";
      // several values of a multiple option: NUL-separated (no argv word holds a NUL)
      values[spec.name] = spec.name in values ? `${values[spec.name]}\0${input}` : input;
      return true;
    }
    values[spec.name] = true;
    if (!isLong && arg.length > 2) rest.unshift(`-${arg.slice(2)}`);
    return true;
  };
  let parsing = true;
  while (rest.length > 0) {
    const input = rest.shift() as string;
    if (parsing && input.startsWith("-") && input !== "-") {
      if (input === "--") {
        parsing = false;
        continue;
      }
      const r = parseFlag(input);
      if (r === "error") return null;
      if (r) continue;
      // Not a flag of ours (`--help` included): oclif fails with "Nonexistent flag" (or shows help).
      if (!/^-\d/.test(input)) return null;
    }
    words.push(input);
  }
  return { words, values, plain };
}

/**
 * The program and its arguments in the order given. oclif's parser returns them sorted by the
 * first occurrence of each string, which reorders repeated words (`sh -c 'echo $0' sh`) and
 * words equal to a flag value (`-s ud2 -- echo ud2`); scanRunArgv classifies the tokens as
 * oclif does but keeps their order. Should the two ever disagree on the words, oclif's win.
 */
export function commandWords(raw: readonly string[], parsed: readonly string[]): string[] {
  const scanned = scanRunArgv(raw);
  if (scanned === null || scanned.words.length !== parsed.length) return [...parsed];
  const a = [...scanned.words].sort();
  const b = [...parsed].sort();
  return a.every((w, i) => w === b[i]) ? scanned.words : [...parsed];
}

/** RunFlags from scanned values, with the defaults of commands/run.ts. */
export function runFlags(values: Record<string, string | true>): RunFlags {
  const str = (k: string) => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  return {
    strategy: str("strategy"),
    hook: str("hook") ?? RUN_HOOK_DEFAULT,
    output: str("output"),
    json: values.json === true,
    filter: str("filter")?.split("\0"),
    timestamps: values.timestamps === true,
    syscallTimes: values["syscall-times"] === true,
    wallClock: values["summary-wall-clock"] === true,
    stringLimit: str("string-limit"),
    verbose: values.verbose === true,
    strict: values.strict === true,
    replan: values.replan === true,
    complete: values.complete === true,
    vdso: values.vdso === true,
  };
}

/**
 * oclif hook events that run around every command: a plugin with one needs oclif. Not
 * command_not_found (the CLI's did-you-mean): `run` is always found, so oclif never calls it.
 */
const LIFECYCLE_HOOKS = ["init", "prerun", "preparse", "postrun", "finally"];

interface OclifSection {
  plugins?: unknown;
  devPlugins?: unknown;
  hooks?: Record<string, unknown>;
  additionalHelpFlags?: unknown;
  additionalVersionFlags?: unknown;
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  oclif?: OclifSection;
}

function readJson(path: string): PackageJson | null {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof v === "object" && v !== null ? (v as PackageJson) : null;
  } catch {
    return null;
  }
}

function hooksLifecycle(oclif: OclifSection): boolean {
  return oclif.hooks !== undefined && LIFECYCLE_HOOKS.some((h) => oclif.hooks?.[h] !== undefined);
}

/** oclif's data dir (Config#dataDir): $SYSI_DATA_DIR, else $XDG_DATA_HOME/sysi, else ~/.local/share/sysi. */
export function oclifDataDir(env: Record<string, string | undefined> = process.env): string {
  if (env.SYSI_DATA_DIR) return env.SYSI_DATA_DIR;
  const home = env.HOME || homedir() || tmpdir();
  return join(env.XDG_DATA_HOME || join(home, ".local/share"), "sysi");
}

/** An entry of the data dir's `oclif.plugins` (written by @oclif/plugin-plugins). */
interface UserPluginEntry {
  name: string;
  type: "user" | "link";
  root?: string;
}

/**
 * The user-installed and linked plugins the data dir's package.json lists, in oclif's load
 * order (installed, then linked); null when oclif would warn (unreadable, not JSON) or an entry
 * is not one oclif's loader reads plainly. No package.json: none.
 */
export function userPluginEntries(dataDir: string): UserPluginEntry[] | null {
  let text: string;
  try {
    text = readFileSync(join(dataDir, "package.json"), "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? [] : null;
  }
  let list: unknown;
  try {
    list = (JSON.parse(text) as PackageJson)?.oclif?.plugins ?? [];
  } catch {
    return null;
  }
  if (!Array.isArray(list)) return null;
  const out: UserPluginEntry[] = [];
  for (const type of ["user", "link"] as const) {
    for (const p of list as unknown[]) {
      // oclif's loader ignores plain strings and other types; plugin-plugins never writes them.
      if (typeof p !== "object" || p === null || (p as { type?: unknown }).type !== type) continue;
      const { name, root } = p as { name?: unknown; root?: unknown };
      if (typeof name !== "string" || name === "") return null;
      if (type === "link" && (typeof root !== "string" || root === "")) return null;
      out.push(type === "link" ? { name, type, root: root as string } : { name, type });
    }
  }
  return out;
}

/**
 * A plugin the fast path can take as oclif would: it hooks no command lifecycle event, has no
 * plugins of its own and, unless bundled, adds no commands (one could be a `run` of its own).
 */
function plainPlugin(pj: PackageJson, bundled: boolean): boolean {
  const oclif = pj.oclif;
  if (oclif === undefined) return false;
  if (hooksLifecycle(oclif)) return false;
  if (Array.isArray(oclif.plugins) && oclif.plugins.length > 0) return false;
  return bundled || (oclif as { commands?: unknown }).commands === undefined;
}

/** Node's package lookup from `from` upwards: the realpath of node_modules/<name>. */
function findPackage(from: string, name: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      return realpathSync(join(dir, "node_modules", name));
    } catch {
      // not here
    }
    if (dirname(dir) === dir) return null;
  }
}

/**
 * The plugins oclif would load for the CLI at `root` — the root plugin and its bundled core
 * plugins — or null when oclif is needed to know (see the file comment).
 */
export function fastPluginList(
  root: string,
  env: Record<string, string | undefined> = process.env,
): RegistryPlugin[] | null {
  const pjson = readJson(join(root, "package.json"));
  const oclif = pjson?.oclif;
  if (pjson === null || oclif === undefined) return null;
  if (oclif.devPlugins !== undefined || oclif.additionalHelpFlags !== undefined) return null;
  if (oclif.additionalVersionFlags !== undefined || hooksLifecycle(oclif)) return null;
  const userEntries = userPluginEntries(oclifDataDir(env));
  if (userEntries === null) return null;
  const patterns = oclif.plugins ?? [];
  if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== "string" || /[*?[\]{}!()+@]/.test(p.slice(1))))
    return null;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return null;
  }
  // oclif's order: the root plugin, then user-installed, linked and bundled ones; a name already
  // loaded is skipped (an installed @sysi/ud2 replaces the bundled one).
  const out = new Map<string, RegistryPlugin>();
  out.set(pjson.name ?? "sysi", {
    name: pjson.name ?? "sysi",
    version: pjson.version ?? "0.0.0",
    type: "core",
    root: realRoot,
    pjson,
  });
  const dataDir = oclifDataDir(env);
  for (const entry of userEntries) {
    if (out.has(entry.name)) continue;
    // oclif: a linked plugin's root as recorded; an installed one found from the data dir.
    const dir = entry.type === "link" ? (entry.root as string) : findPackage(dataDir, entry.name);
    const pj = dir === null ? null : readJson(join(dir, "package.json"));
    if (dir === null || pj === null || typeof pj.name !== "string" || !plainPlugin(pj, false)) return null;
    if (out.has(pj.name)) continue;
    out.set(pj.name, { name: pj.name, version: pj.version ?? "0.0.0", type: entry.type, root: dir, pjson: pj });
  }
  for (const dep of Object.keys(pjson.dependencies ?? {})) {
    if (!(patterns as string[]).includes(dep) || out.has(dep)) continue;
    const dir = findPackage(root, dep);
    const pj = dir === null ? null : readJson(join(dir, "package.json"));
    if (dir === null || pj === null || typeof pj.name !== "string" || !plainPlugin(pj, true)) return null;
    out.set(pj.name, { name: pj.name, version: pj.version ?? "0.0.0", type: "core", root: dir, pjson: pj });
  }
  return [...out.values()];
}

/**
 * Run `sysi run <argv>` without oclif; null when it cannot (bin/run.js then uses oclif).
 * Resolves to the exit status (a program killed by a signal: sysi dies by it, see
 * dieLikeProgram); errors are printed as the command prints them.
 */
export async function fastRun(argv: readonly string[], root: string): Promise<number | null> {
  // DEBUG wants oclif's debug output; SYSI_NO_FAST_RUN=1 turns the fast path off.
  if (process.env.DEBUG || process.env.SYSI_NO_FAST_RUN) return null;
  const scanned = scanRunArgv(argv);
  if (scanned === null || !scanned.plain || scanned.words.length === 0) return null;
  const plugins = fastPluginList(root);
  if (plugins === null) return null;
  const config: RegistryConfig = { getPluginsList: () => plugins };
  // As oclif's Command#_run does before every command.
  delete process.env.SYSI_REDIRECTED;
  try {
    const flags = runFlags(scanned.values);
    if (flags.timestamps) flags.timestamps = timestampLevel(argv);
    const outcome = await executeRun(scanned.words, flags, config);
    dieLikeProgram(outcome.signal);
    return outcome.status;
  } catch (err) {
    const out = errorOutput(err, scanned.values.json === true);
    writeStderr(`${out?.line ?? `sysi: internal error: ${String(err)}`}\n`);
    return out?.exit ?? 70;
  }
}
