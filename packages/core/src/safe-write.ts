/**
 * Writing files without trusting the directory's other entries: a temp file gets an
 * unpredictable name (96 random bits) and is created with O_CREAT | O_EXCL | O_NOFOLLOW, so a
 * symlink or file someone planted under any name is never opened, followed or truncated; the
 * finished file is renamed over the target (rename replaces a symlink there, never its target).
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { FileError } from "./errors.ts";

const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * A new, empty file `<dir>/.<prefix>.<24 random hex digits>.tmp`, opened for writing: never an
 * entry that existed before. The mode is subject to the umask.
 */
export function createExclusive(dir: string, prefix: string, mode = 0o600): { fd: number; path: string } {
  for (let tries = 0; ; tries++) {
    const path = join(dir, `.${prefix}.${randomBytes(12).toString("hex")}.tmp`);
    try {
      return { fd: openSync(path, EXCLUSIVE, mode), path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && tries < 8) continue;
      throw e;
    }
  }
}

/** Write all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array | string): void {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * Write `data` to `path` atomically: an exclusive temp file in the same directory, then rename.
 * `mode` (default 0644, less what the umask removes) is the new file's. FileError FILE_WRITE.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  let tmp: string | null = null;
  try {
    const made = createExclusive(dirname(path), basename(path).slice(0, 64), mode);
    tmp = made.path;
    try {
      writeAll(made.fd, data);
    } finally {
      closeSync(made.fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (tmp !== null) rmSync(tmp, { force: true });
    throw new FileError("FILE_WRITE", `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      cause: e,
    });
  }
}
