/** Reading a `sysi bench --svg` chart back (bench-svg.test.ts, bench.test.ts). */
import { expect } from "bun:test";
import type { CallRow } from "../src/bench/index.ts";

export interface ParsedBar {
  id: string;
  cls: string;
  ns: number;
  value: string;
  label: string;
  x: number;
  width: number;
}

export interface ParsedSvg {
  bars: ParsedBar[];
  marks: { id: string; x: number }[];
}

/** Parse an SVG file with python3's xml.etree (fails on XML that is not well-formed). */
export function parseSvg(path: string): ParsedSvg {
  const py = `
import json, sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
bars, marks = [], []
for g in root.iter("{http://www.w3.org/2000/svg}g"):
    cls = g.get("class", "").split()
    if cls and cls[0] == "row":
        texts = g.findall("s:text", ns)
        rect = g.find("s:rect", ns)
        bars.append({"id": g.get("data-id"), "cls": cls[1], "ns": float(g.get("data-ns")),
                     "label": texts[0].text, "value": texts[1].text,
                     "x": float(rect.get("x")), "width": float(rect.get("width"))})
    elif cls and cls[0] == "mark-line":
        marks.append({"id": g.get("data-id"), "x": float(g.find("s:line", ns).get("x1"))})
print(json.dumps({"bars": bars, "marks": marks}))
`;
  const r = Bun.spawnSync(["python3", "-c", py, path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`python3 could not parse ${path}: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as ParsedSvg;
}

/** "30,000" / "88.1" / "2.01" → the number printed. */
const printed = (s: string) => Number(s.replace(/,/g, ""));

/** Every ok row is a bar with its median; the printed value reads back as it; one log scale. */
export function checkChart(svg: ParsedSvg, rows: readonly CallRow[]): void {
  const ok = rows.filter((r) => r.status === "ok" && r.median !== null);
  expect(svg.bars.map((b) => b.id)).toEqual(ok.map((r) => r.id));
  for (const [i, r] of ok.entries()) {
    const b = svg.bars[i] as ParsedBar;
    const m = r.median as number;
    expect(b.ns).toBeCloseTo(m, 2);
    expect(b.label).toBe(r.label);
    // printed with 3-4 significant digits: within 0.5% (or 0.005 ns)
    expect(Math.abs(printed(b.value) - m)).toBeLessThanOrEqual(Math.max(0.005, m * 0.005));
  }
  // a log scale: bar length = a + k·log10(ns), the same k for every pair of bars
  const distinct = svg.bars.filter((b, i, all) => all.findIndex((c) => Math.abs(c.ns - b.ns) < 1e-9) === i);
  if (distinct.length >= 3) {
    // k from the two bars farthest apart (rounding to 0.1 px matters least there)
    const byNs = [...distinct].sort((p, q) => p.ns - q.ns);
    const a = byNs[0] as ParsedBar;
    const b = byNs[byNs.length - 1] as ParsedBar;
    const k = (b.width - a.width) / (Math.log10(b.ns) - Math.log10(a.ns));
    expect(k).toBeGreaterThan(0);
    // widths are rounded to 0.1 px (0.05 each: 0.2 for c and a, and for k from b and a) and
    // data-ns to 0.01 ns, which moves log10(ns) by up to 0.005 / (ns ln 10)
    const d = (x: ParsedBar) => 0.005 / (x.ns * Math.LN10);
    for (const c of byNs)
      if (c.width > 1)
        expect(Math.abs(c.width - a.width - k * (Math.log10(c.ns) - Math.log10(a.ns)))).toBeLessThanOrEqual(
          0.2 + k * (2 * d(a) + d(b) + d(c)) + 1e-9,
        );
  }
}
