/**
 * oclif's command_not_found hook: a mistyped command gets one error line naming the closest
 * command (`sysi: error: command scna not found (did you mean "sysi scan"?)`), exit 2.
 *
 * Not @oclif/plugin-not-found: without a terminal it names no command at all (a warning line,
 * then "Run sysi help …", exit 127), and on a terminal it asks and then runs its guess — for a
 * CLI whose main command runs programs, a guess is not something to run.
 */
import type { Hook } from "@oclif/core";
import { SysiError } from "@sysi/core/errors";

/** Levenshtein distance (insert, delete, substitute: 1 each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, (prev[j] as number) + 1, (cur[j - 1] as number) + 1));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * The command the user most likely meant: the only one `typed` is a prefix of, else the
 * closest within about a third of its length (at least 2 edits); null when none is close.
 */
export function closestCommand(typed: string, ids: readonly string[]): string | null {
  const prefixed = ids.filter((id) => id.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0] as string;
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(typed.length / 3));
  for (const id of [...ids].sort()) {
    const d = editDistance(typed, id);
    if (d < bestDistance || (d === bestDistance && best === null)) {
      best = id;
      bestDistance = d;
    }
  }
  return best;
}

const hook: Hook<"command_not_found"> = async (opts) => {
  const { config, id } = opts;
  const hidden = new Set(config.commands.filter((c) => c.hidden).map((c) => c.id));
  const ids = [...config.commandIDs, ...config.commands.flatMap((c) => c.aliases)].filter((c) => !hidden.has(c));
  const shown = (x: string) => x.replaceAll(":", config.topicSeparator);
  // oclif's id takes the argument words too (`sysi scna FILE` → "scna:FILE"): the unknown
  // command ends at the first word that is not a topic.
  const parts = id.split(":");
  let n = 1;
  while (n < parts.length && config.findTopic(parts.slice(0, n).join(":")) !== undefined) n++;
  const typed = parts.slice(0, n).join(":");
  const guess = closestCommand(typed, ids);
  throw new SysiError("COMMAND_NOT_FOUND", `command ${shown(typed)} not found`, {
    suggestions: [
      guess === null ? `${config.bin} --help lists the commands` : `did you mean "${config.bin} ${shown(guess)}"?`,
    ],
  });
};

export default hook;
