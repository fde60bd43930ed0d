/**
 * The segmentation probe, run for real: its JSON is checked for internal consistency (derived
 * facts recomputed from the raw values, rows against each other, the page-0 bytes against the
 * far pointer they encode), never against remembered answers.
 */
import { describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRuntime } from "@sysi/core/runtime";
import { farPointerAt, page0Pattern } from "../src/encode.ts";
import { EXPERIMENTS, interpret, type ProbeReport, type ProbeRow, parseLines, runProbe } from "../src/probe.ts";

const cache = mkdtempSync(join(tmpdir(), "seg-probe-cache-"));
const report: ProbeReport = await runProbe((dir, target) => ensureRuntime(dir, target, { cacheDir: cache }));
rmSync(cache, { recursive: true, force: true });
const row = (id: string): ProbeRow => {
  const r = report.rows.find((x) => x.id === id);
  if (r === undefined) throw new Error(`no row ${id}`);
  return r;
};
const big = (r: ProbeRow, k: string) => BigInt(r.raw[k] as string);
const RAX: Record<string, bigint> = {
  "page0-even": 110n,
  "page0-odd": 39n,
  "page0-600": 600n,
  "page0-4090": 4090n,
  "page0-4092": 4092n,
  "page0-64k": 0x10000n,
  "page0-minus1": (1n << 64n) - 1n,
  "page0-noncanonical": 1n << 63n,
};
const page0 = row("page0-even").outcome !== "skipped";

describe("sysi segmentation probe: internal consistency", () => {
  it("runs every experiment once, each ending ok or in a contained fault", () => {
    expect(report.rows.map((r) => r.id)).toEqual([...EXPERIMENTS]);
    for (const r of report.rows) expect(["ok", "fault", "skipped"]).toContain(r.outcome);
    expect(report.cpu.vendor).not.toBe("unknown");
  });

  it("derives every fact of a reached target from its raw values", () => {
    for (const r of report.rows.filter((x) => x.outcome === "ok" && x.id !== "ldt-lbit")) {
      const width = Number(big(r, "rsp_before") - big(r, "rsp_after"));
      expect(r.facts.pushedBytes).toBe(width);
      expect([8, 16]).toContain(width);
      const ret = big(r, "ret");
      const p0 = big(r, "pushed0");
      if (width === 8) {
        // 4-byte EIP then 4-byte CS: the caller's CS
        expect(p0 >> 32n).toBe(BigInt(r.raw.caller_cs as string));
        expect(r.facts.returnTruncated).toBe((p0 & 0xffffffffn) === (ret & 0xffffffffn) && ret > 0xffffffffn);
      } else {
        expect(big(r, "pushed1")).toBe(BigInt(r.raw.caller_cs as string));
        expect(r.facts.returnFull).toBe(p0 === ret);
      }
    }
  });

  it("reports faults at the far call with what the kernel said", () => {
    for (const r of report.rows.filter((x) => x.outcome === "fault")) {
      expect(r.facts.restartable).toBe(big(r, "rip") === big(r, "site") && big(r, "rsp") === big(r, "rsp_before"));
      expect(r.facts.exception).toBe(r.raw.trapno === "13" ? "#GP" : r.raw.trapno === "14" ? "#PF" : r.facts.exception);
    }
  });

  it("ties the L-bit row to the far-call rows: a cleared L leaves only 16/32-bit LDT segments", () => {
    const l = row("ldt-lbit");
    expect(l.outcome).toBe("ok");
    expect(l.facts.lCleared).toBe(l.raw.l === "0");
    expect(report.summary.ldtLongModeKept).toBe(l.raw.l === "1");
    // the LDT target, when reached, runs with the LDT selector, never 0x33
    const low = row("ldt32-lowstack");
    if (low.outcome === "ok") expect(big(low, "cs") & 4n).toBe(4n); // TI bit: an LDT selector
    // on a normal stack the only fault is the frame's push at the truncated stack pointer
    const st = row("ldt32-stack");
    if (st.outcome === "fault") {
      expect(st.raw.trapno).toBe("14");
      expect(big(st, "si_addr")).toBe((big(st, "rsp_before") & 0xffffffffn) - 4n);
    }
  });

  it("reads the REX.W operand width from which of two targets ran", () => {
    const r = row("rexw-farcall");
    if (r.outcome !== "ok") return;
    expect(r.facts.operand).toBe(r.raw.which === "1" ? "m16:32" : "m16:64");
    expect(report.summary.rexwOperand).toBe(r.facts.operand as "m16:32" | "m16:64");
    // with page 0's 33 00 pattern an m16:64 read is the non-canonical 0x0033003300330033: it faults
    const p = row("page0-rexw");
    if (page0) expect(p.outcome).toBe(r.facts.operand === "m16:32" ? "ok" : "fault");
  });

  it.skipIf(!page0)("matches each page-0 row to the far pointer its bytes encode (needs page 0)", () => {
    const pattern = page0Pattern();
    for (const [id, rax] of Object.entries(RAX)) {
      const r = row(id);
      const fp = rax < 4096n ? farPointerAt(pattern, Number(rax)) : null;
      if (fp === null) {
        // the 6-byte read leaves page 0: a page fault at the first unmapped byte, or #GP for a
        // non-canonical address
        expect(r.outcome).toBe("fault");
        if (r.raw.trapno === "14") {
          const first = rax < 4096n ? 4096n : rax;
          expect(big(r, "si_addr")).toBe(first);
        }
      } else if (fp.selector === 0x33) {
        expect(r.outcome).toBe("ok");
        expect(r.facts.target).toBe(`0x${fp.offset.toString(16)}`);
      } else {
        // a #GP whose error code is the selector read (its RPL bits cleared)
        expect(r.outcome).toBe("fault");
        expect(Number(big(r, "err"))).toBe(fp.selector & ~3);
      }
      if (r.outcome === "fault") expect(r.facts.restartable).toBe(true);
    }
    expect(report.summary.page0Even).toBe(row("page0-even").outcome === "ok" ? "works" : "faults");
    expect(report.summary.page0Odd).toBe(row("page0-odd").outcome === "ok" ? "works" : "faults");
  });

  it("interprets lines without running anything (pure)", () => {
    const lines = parseLines(report.rows.map((r) => JSON.stringify(r.raw)).join("\n"));
    expect(interpret(lines, report.cpu, report.kernel)).toEqual(report);
  });
});

describe("sysi segmentation probe (the command)", () => {
  it("prints the report as JSON, one row per experiment", () => {
    const cli = join(import.meta.dir, "../../../packages/cli/bin/run.js");
    const r = Bun.spawnSync(["bun", cli, "segmentation", "probe", "--json"], { stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout.toString()) as ProbeReport;
    expect(out.rows.map((x) => x.id)).toEqual([...EXPERIMENTS]);
    expect(out.summary).toEqual(report.summary); // the same machine answers the same
  });
});
