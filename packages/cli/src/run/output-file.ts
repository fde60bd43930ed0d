/**
 * `sysi run -o FILE`: checked before the program starts, written after it exits, never through
 * something another user planted. A regular file is replaced atomically (an exclusive temp file
 * with an unpredictable name, then rename: a symlink at FILE is replaced, never followed); a
 * character device or FIFO (e.g. /dev/stderr, /dev/null, a named pipe) is written in place; a
 * symlink at FILE that someone else owns is refused, as the trace hook would append through it.
 */
import { accessSync, closeSync, constants, lstatSync, openSync, type Stats, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { SysiError } from "@sysi/core/errors";
import { writeAll, writeFileAtomic } from "@sysi/core/internal";

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Fail before the program runs, not after, when the output cannot (or must not) be written. */
export function checkOutput(path: string): void {
  const target = resolve(path);
  const link = lstatOrNull(target);
  const me = process.geteuid?.() ?? -1;
  if (link?.isSymbolicLink() && link.uid !== 0 && link.uid !== me) {
    throw new SysiError(
      "RUN_OUTPUT",
      `refusing to write ${path}: it is a symlink owned by uid ${link.uid}, not by you (uid ${me}) or root`,
    );
  }
  try {
    if (statSync(target).isDirectory()) throw new SysiError("RUN_OUTPUT", `cannot write ${path}: is a directory`);
  } catch (e) {
    if (e instanceof SysiError) throw e;
  }
  try {
    accessSync(dirname(target), constants.W_OK);
  } catch (e) {
    throw new SysiError("RUN_OUTPUT", `cannot write ${path}: ${code(e)}`);
  }
}

/** Write `text` to the output FILE (see the file comment). */
export function writeOutput(path: string, text: string): void {
  let inPlace = false;
  try {
    const st = statSync(path);
    inPlace = st.isCharacterDevice() || st.isFIFO();
  } catch {
    // does not exist yet: a regular file
  }
  try {
    if (!inPlace) {
      writeFileAtomic(path, text, 0o666);
      return;
    }
    const fd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY);
    try {
      writeAll(fd, text);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const cause = (e as Error).cause ?? e;
    throw new SysiError("RUN_OUTPUT", `cannot write ${path}: ${code(cause)}`);
  }
}
