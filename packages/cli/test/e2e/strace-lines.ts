/**
 * Comparing `sysi run --hook trace` with `strace -f` line by line (strace-compare.test.ts):
 * parsing both outputs into per-process lines, joining `<unfinished ...>`/`resumed` halves,
 * normalising what differs between two runs of the same program (addresses, pids, strace's
 * column alignment), and matching the two as multisets.
 */

export interface TraceLine {
  /** Process index: 0 the first process, then in the order pids first appear. */
  proc: number;
  /** The line without pid prefix, normalised. */
  text: string;
  /** Index of the line's process image (bumped at each successful execve of that process). */
  image: number;
}

const UNFINISHED = / <unfinished \.\.\.>$/;
const RESUMED = /^<\.\.\. ([a-z0-9_]+) resumed>\s?/;
/** Calls whose return value is a new process's pid. */
const FORKS = /^(clone|clone3|fork|vfork)\(/;

/**
 * One trace's lines. `prefix` parses a raw line into [pid or null, rest]: strace -f -o writes
 * "PID  rest", sysi writes "[pid N] rest" once the first process is not alone (lines without a
 * prefix are the first process's).
 */
export function parseTrace(text: string, kind: "strace" | "sysi"): TraceLine[] {
  // (1) lines with their pid (null: no prefix, the first process's)
  const split: { pid: number | null; rest: string }[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const m = kind === "strace" ? /^(\d+)\s+(.*)$/.exec(line) : /^\[pid +(\d+)\] (.*)$/.exec(line);
    split.push(m ? { pid: Number(m[1]), rest: m[2] as string } : { pid: null, rest: line });
  }
  // (2) `<unfinished ...>` and `<... name resumed>` halves joined, at the resumed half's place
  const raw: { pid: number | null; rest: string }[] = [];
  const pending = new Map<number | null, string>();
  for (const r of split) {
    if (UNFINISHED.test(r.rest)) {
      pending.set(r.pid, r.rest.replace(UNFINISHED, ""));
      continue;
    }
    const res = RESUMED.exec(r.rest);
    const head = res ? pending.get(r.pid) : undefined;
    if (res && head !== undefined) {
      pending.delete(r.pid);
      raw.push({ pid: r.pid, rest: head + r.rest.slice(res[0].length) });
    } else raw.push(r);
  }
  for (const [pid, head] of pending) raw.push({ pid, rest: head });
  // (3) the first process's pid: the first prefix that is no fork's child (or, without any
  // prefix, what its getpid/gettid returned); then every pid numbered in order of appearance
  const forked = (rest: string) => (FORKS.test(rest) ? /\)\s+= (\d+)$/.exec(rest) : null);
  const children = new Set<number>();
  for (const r of raw) {
    const m = forked(r.rest);
    if (m) children.add(Number(m[1]));
  }
  let first = raw.find((r) => r.pid !== null && !children.has(r.pid))?.pid ?? null;
  if (first === null)
    for (const r of raw) {
      const m = r.pid === null ? /^(?:getpid|gettid)\(\)\s+= (\d+)$/.exec(r.rest) : null;
      if (m) {
        first = Number(m[1]);
        break;
      }
    }
  const index = new Map<number, number>();
  if (first !== null) index.set(first, 0);
  const idx = (pid: number | null) => {
    if (pid === null) return 0;
    let i = index.get(pid);
    if (i === undefined) {
      i = index.size + (first === null ? 1 : 0);
      index.set(pid, i);
    }
    return i;
  };
  for (const r of raw) {
    idx(r.pid);
    const m = forked(r.rest);
    if (m) idx(Number(m[1]));
  }
  // (4) normalised, with the process image (a successful execve starts the next)
  const images = new Map<number, number>();
  const out: TraceLine[] = [];
  for (const r of raw) {
    const proc = idx(r.pid);
    const text = normalise(r.rest, index);
    const image = images.get(proc) ?? 0;
    out.push({ proc, text, image });
    if (/^execve\(/.test(text) && / = 0$/.test(text)) images.set(proc, image + 1);
  }
  return out;
}

/**
 * strace's result column (its -a 40): after the call's ")" one space, then spaces up to column
 * 40 counted from the line's first byte (pid prefix and times included), then "= "; a longer
 * call gets the one space. True for lines without a result (unfinished halves, exits, signals).
 */
export function alignedAsStrace(line: string): boolean {
  if (/<unfinished \.\.\.>$/.test(line) || /^(\S+ +)*(---|\+\+\+) /.test(line)) return true;
  let last: RegExpExecArray | null = null;
  const re = /\)( +)= /g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) last = m;
  if (last === null) return true;
  const col = last.index + 1;
  return (last[1] as string).length === Math.max(1, 40 - col);
}

/**
 * Addresses to 0xADDR, pids to PIDn, and the result column to one space: the pid prefixes of
 * `strace -o` ("PID ") and sysi ("[pid N] ") differ in width, and 0xADDR is not an address's
 * width, so the padding differs once they are gone (alignedAsStrace checks the raw lines).
 */
export function normalise(line: string, pids: ReadonlyMap<number, number>): string {
  return line
    .replace(/0x[0-9a-f]{6,}/g, "0xADDR")
    .replace(/\b\d{2,7}\b/g, (n) => {
      const i = pids.get(Number(n));
      return i === undefined ? n : `PID${i}`;
    })
    .replace(/\s+= /, " = ")
    .replace(/ +/g, " ")
    .trimEnd();
}

export interface Comparison {
  /** strace's lines, all of them (classify needs their order). */
  straceAll: readonly TraceLine[];
  sysi: number;
  strace: number;
  identical: number;
  sysiOnly: TraceLine[];
  straceOnly: TraceLine[];
}

/** Multiset match of the normalised lines (keyed by process, process image and text). */
export function compareTraces(sysi: readonly TraceLine[], strace: readonly TraceLine[]): Comparison {
  const key = (l: TraceLine) => `${l.proc}/${l.image} ${l.text}`;
  const pool = new Map<string, number>();
  for (const l of strace) pool.set(key(l), (pool.get(key(l)) ?? 0) + 1);
  const sysiOnly: TraceLine[] = [];
  let identical = 0;
  for (const l of sysi) {
    const n = pool.get(key(l)) ?? 0;
    if (n > 0) {
      pool.set(key(l), n - 1);
      identical++;
    } else sysiOnly.push(l);
  }
  const left = new Map(pool);
  const straceOnly: TraceLine[] = [];
  for (const l of strace) {
    const n = left.get(key(l)) ?? 0;
    if (n > 0) {
      left.set(key(l), n - 1);
      straceOnly.push(l);
    }
  }
  return { straceAll: strace, sysi: sysi.length, strace: strace.length, identical, sysiOnly, straceOnly };
}

/**
 * A class of differences between the two traces: a rewrite that makes lines of both sides
 * equal when they differ only in that respect, with why they differ.
 */
export interface DiffClass {
  name: string;
  why: string;
  /** Lines of both sides equal after this (and the earlier classes') rewrite are explained. */
  rewrite?(text: string, proc: number): string;
  /** Or: lines only one side prints at all, explained wherever they are. */
  only?: { side: "sysi" | "strace"; test(text: string): boolean };
}

/** Sort the names of every `A|B|C` flag set (the decoder's order is not strace's). */
const sortFlags = (t: string) =>
  t.replace(/\b[A-Z][A-Z0-9_]*(?:\|(?:[A-Z][A-Z0-9_]*|0x[0-9a-fA-F]+|ADDR))+/g, (set) =>
    set.split("|").sort().join("|"),
  );

export interface Classified {
  /** Lines matched after each class's rewrite, by class name (sysi's side). */
  byClass: Record<string, number>;
  /** strace's lines of each process image before sysi's first line for that image. */
  beforeRuntime: number;
  beforeLines: TraceLine[];
  /** What no class explains. */
  sysiOnly: TraceLine[];
  straceOnly: TraceLine[];
}

/**
 * Attribute the unmatched lines: strace's lines of a process image before the first line sysi
 * printed for it are the loader's and libc's start-up (sysi's runtime starts in a constructor);
 * the rest are matched again under each class's rewrite, cumulatively, in order.
 */
export function classify(c: Comparison, sysiAll: readonly TraceLine[], classes: readonly DiffClass[]): Classified {
  // the process images sysi printed lines for
  const seen = new Set(sysiAll.map((l) => `${l.proc}/${l.image}`));
  const beforeLines: TraceLine[] = [];
  let straceOnly: TraceLine[] = [];
  // a process image's runtime has started at strace's first line of it that sysi printed too
  const started = new Set<string>();
  const unmatched = new Set(c.straceOnly);
  for (const l of c.straceAll) {
    const k = `${l.proc}/${l.image}`;
    if (!unmatched.has(l)) {
      started.add(k);
      continue;
    }
    if (!started.has(k) && seen.has(k) && l.image > 0) beforeLines.push(l);
    else straceOnly.push(l);
  }
  let sysiOnly = [...c.sysiOnly];
  const byClass: Record<string, number> = {};
  const applied: DiffClass[] = [];
  for (const cls of classes) {
    const only = cls.only;
    if (only !== undefined) {
      const side = only.side === "sysi" ? sysiOnly : straceOnly;
      const keep = side.filter((l) => !only.test(l.text));
      byClass[cls.name] = side.length - keep.length;
      if (only.side === "sysi") sysiOnly = keep;
      else straceOnly = keep;
      continue;
    }
    applied.push(cls);
    const norm = (l: TraceLine) => applied.reduce((t, a) => (a.rewrite ? a.rewrite(t, l.proc) : t), l.text);
    const pool = new Map<string, TraceLine[]>();
    for (const l of straceOnly) {
      const k = `${l.proc}/${l.image} ${norm(l)}`;
      pool.set(k, [...(pool.get(k) ?? []), l]);
    }
    const usedStrace = new Set<TraceLine>();
    const rest: TraceLine[] = [];
    let n = 0;
    for (const l of sysiOnly) {
      const hit = pool.get(`${l.proc}/${l.image} ${norm(l)}`)?.find((x) => !usedStrace.has(x));
      if (hit === undefined) rest.push(l);
      else {
        usedStrace.add(hit);
        n++;
      }
    }
    sysiOnly = rest;
    straceOnly = straceOnly.filter((l) => !usedStrace.has(l));
    byClass[cls.name] = n;
  }
  return { byClass, beforeRuntime: beforeLines.length, beforeLines, sysiOnly, straceOnly };
}

export { sortFlags };
