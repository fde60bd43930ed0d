/**
 * Where `sysi run`'s own output goes (the count summary, the trace): only where the user said,
 * through a descriptor sysi opens before the program starts, never the program's fd 2 of the
 * moment.
 *
 *   no -o     the stderr sysi was started with (for the trace: sysi's fd 2, handed to the
 *             program's processes under a hidden number, see origin.ts hiddenFd)
 *   -o -      the stdout sysi was started with
 *   -o FILE   FILE, opened before the program starts, the same way for every hook: created if
 *             missing, truncated if it is a regular file (a FIFO or device is written in place),
 *             appended to (O_APPEND, so lines of the processes of the tree never overwrite each
 *             other); a symlink there is followed only when you or root own it (checkOutput).
 *             The count summary is written to it at exit, the trace as the calls happen.
 *
 * A stdout or stderr the caller closed stays closed: the output is dropped (fd null).
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { SysiError } from "@sysi/core/errors";
import { writeAll } from "@sysi/core/internal";
import { writeStderr } from "../format-error.ts";
import type { Origin } from "./origin.ts";
import { checkOutput } from "./output-file.ts";

export interface Sink {
  /** The descriptor in sysi's process, or null: the output is dropped. */
  fd: number | null;
  /** sysi opened it (closed at the end) rather than using its own stdout or stderr. */
  owned: boolean;
}

/** The sink for `-o` (undefined: stderr), opened now. SysiError RUN_OUTPUT when it cannot be. */
export function openSink(output: string | undefined, origin: Origin): Sink {
  if (output === undefined) return { fd: origin.fds.includes(2) ? 2 : null, owned: false };
  if (output === "-") return { fd: origin.fds.includes(1) ? 1 : null, owned: false };
  checkOutput(output);
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND | constants.O_NOCTTY;
    return { fd: openSync(output, flags, 0o666), owned: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EISDIR" ? "is a directory" : (code ?? String(e));
    throw new SysiError("RUN_OUTPUT", `cannot write ${output}: ${why}`);
  }
}

/** Write `text` to the sink (stderr is written as writeStderr does). */
export function writeSink(sink: Sink, text: string): void {
  if (sink.fd === null) return;
  if (sink.fd === 2 && !sink.owned) {
    writeStderr(text);
    return;
  }
  if (sink.fd === 1 && !sink.owned) {
    // as writeStderr: directly, or through the stream if the fd refuses (EAGAIN on a pipe)
    const buf = Buffer.from(text);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(1, buf, off);
    } catch {
      process.stdout.write(buf.subarray(off));
    }
    return;
  }
  try {
    writeAll(sink.fd, text);
  } catch (e) {
    throw new SysiError("RUN_OUTPUT", `cannot write the output: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export function closeSink(sink: Sink): void {
  if (sink.owned && sink.fd !== null) {
    try {
      closeSync(sink.fd);
    } catch {
      // already gone
    }
  }
}
