import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSysiError } from "../errors.ts";
import { createStatsFile, parseStatsFile, readStatsFile, STATS_FILE_SIZE, syscallName } from "./stats-file.ts";

const dir = mkdtempSync(join(tmpdir(), "sysi-stats-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stats file", () => {
  it("is created zero-filled with the sysi.h header and size", () => {
    const p = join(dir, "a");
    createStatsFile(p);
    const b = readFileSync(p);
    expect(b.length).toBe(17760); // sizeof(struct sysi_stats_file), sysi.h
    expect(STATS_FILE_SIZE).toBe(17760);
    expect(b.subarray(0, 8).toString("latin1")).toBe("SYSISTA\0");
    const s = readStatsFile(p);
    expect(s).toMatchObject({ version: 1, syscalls: [], strategies: {}, processes: 0, forks: 0 });
  });

  it("reads counters at the offsets libsysi writes", () => {
    const p = join(dir, "b");
    createStatsFile(p);
    const b = new Uint8Array(readFileSync(p));
    const dv = new DataView(b.buffer);
    dv.setBigUint64(16, 3n, true); // processes
    dv.setBigUint64(24, 2n, true); // forks
    dv.setBigUint64(32, 5n, true); // modules_planned
    dv.setBigUint64(48, 1n, true); // plans_corrupt
    dv.setBigUint64(80, 7n, true); // other.calls
    dv.setBigUint64(96 + 1 * 16, 10n, true); // write calls
    dv.setBigUint64(96 + 1 * 16 + 8, 1n, true); // write errors
    const st = 96 + 1024 * 16 + 80; // strategies[1]
    dv.setUint32(st, 2, true);
    b.set(new TextEncoder().encode("ud2"), st + 8);
    dv.setBigUint64(st + 40, 11n, true);
    dv.setBigUint64(st + 48, 12n, true);
    dv.setBigUint64(st + 56, 13n, true);
    dv.setBigUint64(st + 64, 14n, true);
    writeFileSync(p, b);
    const s = readStatsFile(p);
    expect(s.processes).toBe(3);
    expect(s.forks).toBe(2);
    expect(s.modules).toEqual({ planned: 5, unplanned: 0, corrupt: 1 });
    expect(s.other).toEqual({ calls: 7, errors: 0 });
    expect(s.syscalls).toEqual([{ nr: 1, name: "write", calls: 10, errors: 1 }]);
    expect(s.strategies).toEqual({ ud2: { calls: 11, patched: 12, fellThrough: 13, mismatched: 14 } });
  });

  it("rejects a wrong size, magic or version with STATS_FILE_BAD", () => {
    const good = new Uint8Array(STATS_FILE_SIZE);
    good.set(new TextEncoder().encode("SYSISTA"), 0);
    new DataView(good.buffer).setUint32(8, 1, true);
    new DataView(good.buffer).setUint32(12, STATS_FILE_SIZE, true);
    expect(() => parseStatsFile(good)).not.toThrow();
    const cases = [good.subarray(0, 100), Uint8Array.from(good).fill(0x41, 0, 7), Uint8Array.from(good).fill(9, 8, 9)];
    for (const c of cases) {
      try {
        parseStatsFile(c);
        throw new Error("accepted");
      } catch (e) {
        expect(isSysiError(e) && e.code).toBe("STATS_FILE_BAD");
      }
    }
  });

  it("throws FILE_READ for a missing file", () => {
    expect(() => readStatsFile(join(dir, "missing"))).toThrow(/cannot read stats file/);
  });

  it("names syscalls from the kernel table", () => {
    expect(syscallName(0)).toBe("read");
    expect(syscallName(435)).toBe("clone3");
    expect(syscallName(1000)).toBeNull();
  });
});
