/** Small helpers for human-readable CLI output (no colours, no dependencies). */

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

export function mark(ok: boolean): string {
  return ok ? "✓" : "✗";
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Left-aligned columns separated by two spaces; `right` lists the right-aligned column indexes. */
export function table(rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        return right.includes(i) ? cell.padStart(w) : i === row.length - 1 ? cell : cell.padEnd(w);
      })
      .join("  ")
      .trimEnd(),
  );
}

/** A one-line progress indicator on stderr, shown only when stderr is a terminal. */
export class Progress {
  private readonly enabled: boolean;
  private last = 0;
  private shown = false;

  constructor(private readonly label: string) {
    this.enabled = process.stderr.isTTY === true;
  }

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const pct = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
    process.stderr.write(`\r${this.label} ${String(pct).padStart(3)}%`);
    this.shown = true;
  }

  done(): void {
    if (this.enabled && this.shown) process.stderr.write("\r\u001b[K");
    this.shown = false;
  }
}
