/**
 * `sysi bench --svg FILE`: the measured rows as a horizontal bar chart, hand-written SVG.
 *
 * One bar per measured row (status ok), its length the row's median ns per call on a log scale
 * (decades from the smallest to the largest value), its value printed at its end as the table
 * prints it. Native rows, the floors (indirect call, bare traps) and strace have their own
 * colours; dashed lines mark native inline getppid and the indirect-call floor across the chart.
 * Each bar's group carries `data-id` (the row id) and `data-ns` (its median, 2 decimals) so the
 * chart can be read back. Deterministic: the same result gives the same bytes (no clock, no
 * random ids; the date printed is the result's).
 */

import { FLOOR, NATIVE_INLINE } from "./configs.ts";
import type { BenchResult, CallRow } from "./index.ts";
import { ns } from "./report.ts";

/** Colour class of a row: native, floor (indirect call, bare traps), strace, or its hook. */
export function rowKind(r: Pick<CallRow, "group" | "hook">): string {
  if (r.group === "native") return "native";
  if (r.group === "floor" || r.group === "trap-floor") return "floor";
  if (r.group === "strace") return "strace";
  return r.hook === "self" ? "self" : (r.hook ?? "other");
}

const KINDS: [string, string, string][] = [
  ["native", "#1b1b1b", "native"],
  ["floor", "#9a9a9a", "floor (no sysi)"],
  ["self", "#2a7ab0", "self-answer hook (no syscall)"],
  ["passthrough", "#5aa35a", "passthrough hook"],
  ["count", "#d08a2e", "count hook"],
  ["strace", "#c0392b", "strace -f"],
];

const W = 970;
const LABEL_W = 460;
const CHART_W = 400;
const ROW_H = 16;
const TOP = 74;
const X0 = LABEL_W;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** "1 ns", "10 ns", "100 ns", "1 µs", …: a decade's tick label. */
function decadeLabel(e: number): string {
  const units: [number, string][] = [
    [9, "s"],
    [6, "ms"],
    [3, "µs"],
    [0, "ns"],
  ];
  for (const [base, unit] of units) if (e >= base) return `${10 ** (e - base)} ${unit}`;
  return `${10 ** e} ns`;
}

const f = (v: number) => (Math.round(v * 10) / 10).toString();

export function renderBenchSvg(res: BenchResult): string {
  const rows = res.rows.filter((r) => r.status === "ok" && r.median !== null && r.median > 0);
  const values = rows.map((r) => r.median as number);
  const lo = values.length === 0 ? 0 : Math.floor(Math.log10(Math.min(...values)));
  let hi = values.length === 0 ? 1 : Math.ceil(Math.log10(Math.max(...values)));
  if (hi <= lo) hi = lo + 1;
  const x = (v: number) => X0 + ((Math.log10(v) - lo) / (hi - lo)) * CHART_W;
  const height = TOP + rows.length * ROW_H + 40;
  const axisY = TOP + rows.length * ROW_H + 6;
  const m = res.machine;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`,
    `<title>sysi bench: ns per system call, log scale (${rows.length} rows)</title>`,
    "<style>",
    ...KINDS.map(([k, c]) => `.${k} rect { fill: ${c}; }`),
    ".grid { stroke: #e2e2e2; } .mark { stroke-dasharray: 4 3; stroke-width: 1; } .value { fill: #333; }",
    "</style>",
    `<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">sysi bench: ns per system call (median of ${res.params.rounds} round${res.params.rounds === 1 ? "" : "s"}), log scale</text>`,
    `<text x="8" y="34" fill="#555">${esc(`${m.cpu}, ${m.cores} cores, Linux ${m.kernel}; load average ${res.load.start.toFixed(2)} at start, ${res.load.end.toFixed(2)} at end; ${res.date}`)}</text>`,
  ];
  // legend
  let lx = 8;
  for (const [k, , label] of KINDS) {
    out.push(
      `<g class="legend ${k}"><rect x="${lx}" y="44" width="10" height="10"/><text x="${lx + 14}" y="53">${esc(label)}</text></g>`,
    );
    lx += 24 + label.length * 6;
  }
  // decade grid and axis labels
  for (let e = lo; e <= hi; e++) {
    const gx = f(x(10 ** e));
    out.push(`<line class="grid" x1="${gx}" y1="${TOP - 4}" x2="${gx}" y2="${axisY}"/>`);
    out.push(`<text class="tick" x="${gx}" y="${axisY + 14}" text-anchor="middle">${decadeLabel(e)}</text>`);
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    const v = r.median as number;
    const end = x(v);
    const kind = rowKind(r);
    out.push(
      `<g class="row ${kind}" data-id="${esc(r.id)}" data-ns="${v.toFixed(2)}">` +
        `<text class="label" x="${LABEL_W - 6}" y="${y + 11}" text-anchor="end">${esc(r.label)}</text>` +
        `<rect x="${X0}" y="${y + 2}" width="${f(Math.max(1, end - X0))}" height="${ROW_H - 4}"/>` +
        `<text class="value" x="${f(Math.max(end, X0 + 1) + 4)}" y="${y + 11}">${ns(v)}</text></g>`,
    );
  });
  // marks across the chart: native inline getppid and the indirect-call floor
  for (const [id, label, colour] of [
    [NATIVE_INLINE, "native getppid", "#1b1b1b"],
    [FLOOR, "indirect-call floor", "#9a9a9a"],
  ] as const) {
    const r = rows.find((row) => row.id === id);
    if (r === undefined) continue;
    const mx = f(x(r.median as number));
    out.push(
      `<g class="mark-line" data-id="${id}"><line class="mark" x1="${mx}" y1="${TOP - 4}" x2="${mx}" y2="${axisY}" stroke="${colour}"/>` +
        `<text x="${mx}" y="${axisY + 28}" text-anchor="middle" fill="${colour}">${label}</text></g>`,
    );
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
