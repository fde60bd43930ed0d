/**
 * What a `sysi run` leaves uninstrumented: system-call sites no strategy of the chain patched,
 * whose calls bypass the hook. Known twice:
 *
 *   - before start, from the plans of the modules planned ahead (the program, its interpreter,
 *     its libraries): sites every strategy refused (but not uncertain ones, found only by a
 *     linear sweep: maybe data, and never patched);
 *   - at exit, from the runtime's SYSI_UNPATCHED_FILE (sysi.h): modules loaded later with
 *     refused sites, sites whose every planned option failed at run time (fell through), and
 *     modules that ran without a usable plan; the stats file says whose options failed.
 *
 * `sysi run` says so in one sentence on stderr, and says nothing when every site was patched;
 * with --strict each is an error instead (exit 2), the first before the program starts.
 */
import { readFileSync } from "node:fs";
import { SysiError } from "@sysi/core/errors";
import { decodePlan, SITE_UNCERTAIN } from "@sysi/core/internal";
import type { StatsSnapshot } from "@sysi/core/runtime";

/** One module's sites left unpatched. */
export interface ModuleGap {
  /** Real path of the module. */
  path: string;
  /**
   * Sites the plan gives no option: every strategy of the chain refused them. Uncertain sites
   * (found only by a linear sweep, maybe data) are not counted: no strategy patches them.
   */
  refused: number;
  /** Sites whose every planned option failed at run time (a process image's worst). */
  fell: number;
  /** The module ran without a usable plan (none found, or corrupt): none of it is patched. */
  noPlan: boolean;
}

/** Modules named in a sentence before the rest are counted ("and N more"). */
const NAMED = 4;

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function list(items: string[]): string {
  const shown = items.slice(0, NAMED);
  if (items.length > NAMED) shown.push(`${items.length - NAMED} more`);
  return shown.length <= 1 ? (shown[0] ?? "") : `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}`;
}

/** Sites every strategy refused, per module planned ahead (from the binary plans). */
export function plannedGaps(modules: readonly { path: string; planPath: string }[]): ModuleGap[] {
  const out: ModuleGap[] = [];
  for (const m of modules) {
    const plan = decodePlan(new Uint8Array(readFileSync(m.planPath)));
    const refused = plan.sites.filter((s) => s.options.length === 0 && (s.flags & SITE_UNCERTAIN) === 0).length;
    if (refused > 0) out.push({ path: m.path, refused, fell: 0, noPlan: false });
  }
  return out;
}

/**
 * The SYSI_UNPATCHED_FILE lines, one module each: every process image that loads a module
 * writes its own line, so the counts are the worst image's. Malformed lines are ignored.
 */
export function parseUnpatchedFile(text: string): ModuleGap[] {
  const by = new Map<string, ModuleGap>();
  for (const line of text.split("\n")) {
    const sites = /^sites (\d+) (\d+) (.+)$/.exec(line);
    const noplan = /^noplan (.+)$/.exec(line);
    const path = sites?.[3] ?? noplan?.[1];
    if (path === undefined) continue;
    const g = by.get(path) ?? { path, refused: 0, fell: 0, noPlan: false };
    if (sites) {
      g.refused = Math.max(g.refused, Number(sites[1]));
      g.fell = Math.max(g.fell, Number(sites[2]));
    } else {
      g.noPlan = true;
    }
    by.set(path, g);
  }
  return [...by.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * `int80`: per module, how many of its refused sites are `int $0x80` (escapes.ts int80Sites):
 * the 32-bit ABI, which no strategy instruments, named as such.
 */
function refusedSentence(
  spec: string,
  gaps: readonly ModuleGap[],
  verb: string,
  int80: ReadonlyMap<string, number>,
): string {
  const n = gaps.reduce((s, g) => s + g.refused, 0);
  const where = list(
    gaps.map((g) => {
      const k = int80.get(g.path) ?? 0;
      return `${g.path} (${g.refused}${k > 0 ? `, ${k} int $0x80` : ""})`;
    }),
  );
  return `chain ${spec} leaves ${plural(n, "system-call site")} unpatched, in ${where}: system calls made there ${verb} the hook`;
}

const INT80_WHY = "int $0x80 is the 32-bit system-call ABI, which no strategy instruments; ";

function why(spec: string, gaps: readonly ModuleGap[], int80: ReadonlyMap<string, number>): string {
  const any = gaps.some((g) => (int80.get(g.path) ?? 0) > 0);
  return `${any ? INT80_WHY : ""}\`sysi plan -s ${spec} FILE\` says why`;
}

/** The line `sysi run` prints before start, or null when the plans patch every site. */
export function startNotice(
  spec: string,
  gaps: readonly ModuleGap[],
  int80: ReadonlyMap<string, number> = new Map(),
): string | null {
  if (gaps.length === 0) return null;
  return `sysi: ${refusedSentence(spec, gaps, "bypass", int80)} (${why(spec, gaps, int80)})\n`;
}

/** --strict before start: the plans leave sites unpatched. */
export function startError(
  spec: string,
  gaps: readonly ModuleGap[],
  int80: ReadonlyMap<string, number> = new Map(),
): SysiError | null {
  if (gaps.length === 0) return null;
  const suggestions = [why(spec, gaps, int80)];
  if (!spec.split(",").some((s) => s.split(":")[0] === "ud2"))
    suggestions.unshift(`-s ${spec},ud2 lets ud2 take the sites the others refuse`);
  return new SysiError("RUN_UNPATCHED", `--strict: ${refusedSentence(spec, gaps, "would bypass", int80)}`, {
    suggestions,
  });
}

/**
 * What the run left unpatched beyond what the start notice said: `runtime` are the runtime's
 * reports (parseUnpatchedFile), `ahead` the modules planned before start (their refused sites
 * were reported then). Null when there is nothing new.
 */
export function exitGaps(
  runtime: readonly ModuleGap[],
  ahead: readonly string[],
  stats: StatsSnapshot | null,
): string | null {
  const known = new Set(ahead);
  const later = runtime.filter((g) => g.refused > 0 && !known.has(g.path));
  const fell = runtime.filter((g) => g.fell > 0);
  const noPlan = runtime.filter((g) => g.noPlan);
  const parts: string[] = [];
  if (later.length > 0) {
    const n = later.reduce((s, g) => s + g.refused, 0);
    parts.push(
      `${plural(n, "site")} every strategy refused in modules loaded after start (${list(later.map((g) => `${g.path} ${g.refused}`))})`,
    );
  }
  if (fell.length > 0) {
    const n = fell.reduce((s, g) => s + g.fell, 0);
    const whose = Object.entries(stats?.strategies ?? {})
      .map(([name, s]) => [name, s.fellThrough + s.mismatched] as const)
      .filter(([, k]) => k > 0)
      .map(([name, k]) => `${name} ${k}`);
    const failed = whose.length > 0 ? `; options that failed: ${whose.join(", ")}` : "";
    parts.push(
      `${plural(n, "site")} whose planned strategies all failed at run time (${list(fell.map((g) => `${g.path} ${g.fell}`))}${failed})`,
    );
  }
  if (noPlan.length > 0) {
    parts.push(`${plural(noPlan.length, "module")} without a usable plan (${list(noPlan.map((g) => g.path))})`);
  }
  if (parts.length === 0) return null;
  return `left unpatched during the run: ${parts.join("; ")}: system calls made there bypassed the hook`;
}

/** The line `sysi run` prints at exit, or null. */
export function exitNotice(sentence: string | null): string | null {
  return sentence === null ? null : `sysi: ${sentence}\n`;
}

/** --strict at exit: the run left sites unpatched that the plans made before start did not. */
export function exitError(sentence: string | null): SysiError | null {
  return sentence === null ? null : new SysiError("RUN_FELL_THROUGH", `--strict: ${sentence}`);
}
