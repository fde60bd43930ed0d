import { lastAtOrBelow } from "./decode.ts";

/** Sorted ranges with a prefix maximum of `end`, for "which range contains v" queries. */
export class RangeIndex<T extends { start: number; end: number }> {
  readonly items: readonly T[];
  private readonly starts: Float64Array;
  private readonly maxEnd: number[];

  constructor(items: readonly T[]) {
    let sorted = true;
    for (let i = 1; i < items.length && sorted; i++) {
      const a = items[i - 1] as T;
      const b = items[i] as T;
      sorted = a.start < b.start || (a.start === b.start && a.end >= b.end);
    }
    this.items = sorted ? (items as T[]) : [...items].sort((a, b) => a.start - b.start || b.end - a.end);
    this.starts = Float64Array.from(this.items, (r) => r.start);
    this.maxEnd = [];
    let m = Number.NEGATIVE_INFINITY;
    for (const r of this.items) {
      m = Math.max(m, r.end);
      this.maxEnd.push(m);
    }
  }

  /** The range containing v with the largest start (innermost when nested), or null. */
  find(v: number): T | null {
    for (let j = lastAtOrBelow(this.starts, v); j >= 0 && (this.maxEnd[j] as number) > v; j--) {
      const r = this.items[j] as T;
      if (r.end > v) return r;
    }
    return null;
  }

  /** Largest end ≤ v among ranges starting at or before v (−∞ if none). */
  lastEndBefore(v: number): number {
    const j = lastAtOrBelow(this.starts, v);
    if (j < 0) return Number.NEGATIVE_INFINITY;
    const m = this.maxEnd[j] as number;
    return m <= v ? m : Number.NEGATIVE_INFINITY;
  }
}
