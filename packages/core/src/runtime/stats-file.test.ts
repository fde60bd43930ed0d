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
    expect(b.length).toBe(7397376); // sizeof(struct sysi_stats_file), sysi.h
    expect(STATS_FILE_SIZE).toBe(7397376);
    expect(b.subarray(0, 8).toString("latin1")).toBe("SYSISTA\0");
    const s = readStatsFile(p);
    expect(s).toMatchObject({ version: 4, syscalls: [], x32: [], i386: [], strategies: {}, processes: 0, forks: 0 });
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
    dv.setBigUint64(7372800 + 39 * 16, 4n, true); // x32[39] calls (0x40000027: getpid)
    dv.setBigUint64(7372800 + 39 * 16 + 8, 4n, true); // x32[39] errors
    dv.setBigUint64(7372800 + 13 * 16, 1n, true); // x32[13] calls (a 64-bit-only number)
    dv.setBigUint64(7389184 + 20 * 16, 2n, true); // i386[20] calls (int $0x80 getpid)
    dv.setBigUint64(7389184 + 33 * 16, 1n, true); // i386[33] calls (access)
    dv.setBigUint64(7389184 + 33 * 16 + 8, 1n, true); // i386[33] errors
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
    expect(s.other).toEqual({ calls: 7, errors: 0, nanos: 0 });
    expect(s.syscalls).toEqual([{ nr: 1, name: "write", calls: 10, errors: 1, nanos: 0 }]);
    expect(s.x32).toEqual([
      { nr: 0x4000000d, name: "rt_sigaction#64", calls: 1, errors: 0 },
      { nr: 0x40000027, name: "getpid", calls: 4, errors: 4 },
    ]);
    expect(s.i386).toEqual([
      { nr: 20, name: "getpid", calls: 2, errors: 0 },
      { nr: 33, name: "access", calls: 1, errors: 1 },
    ]);
    expect(s.strategies).toEqual({ ud2: { calls: 11, patched: 12, fellThrough: 13, mismatched: 14 } });
  });

  it("adds the per-thread slabs whose owner is not 0 (sysi.h STATS FILE)", () => {
    const p = join(dir, "c");
    createStatsFile(p);
    const b = new Uint8Array(readFileSync(p));
    const dv = new DataView(b.buffer);
    dv.setBigUint64(96 + 1 * 16, 10n, true); // totals: write calls
    dv.setBigUint64(17760 + 1 * 8, 500n, true); // totals: write nanos
    const st = 96 + 1024 * 16; // strategies[0]
    dv.setUint32(st, 2, true);
    b.set(new TextEncoder().encode("zpoline"), st + 8);
    dv.setBigUint64(st + 40, 4n, true);
    const slab = (i: number) => 32768 + i * 28672;
    // slab 0: owned by tid 77 (a thread killed before it merged): 3 writes, 1 error, 2 via zpoline
    dv.setInt32(28672 + 0 * 16, 77, true);
    dv.setBigUint64(slab(0) + 256 + 1 * 16, 3n, true);
    dv.setBigUint64(slab(0) + 256 + 1 * 16 + 8, 1n, true);
    dv.setBigUint64(slab(0) + 16640 + 1 * 8, 250n, true);
    dv.setBigUint64(slab(0) + 0, 2n, true);
    // slab 5: owner -1 (being merged when the reader looks): counted too
    dv.setInt32(28672 + 5 * 16, -1, true);
    dv.setBigUint64(slab(5) + 256 + 0 * 16, 1n, true);
    // slab 9: free (owner 0): never read, whatever it holds
    dv.setBigUint64(slab(9) + 256 + 1 * 16, 1000n, true);
    writeFileSync(p, b);
    const s = readStatsFile(p);
    expect(s.syscalls).toEqual([
      { nr: 0, name: "read", calls: 1, errors: 0, nanos: 0 },
      { nr: 1, name: "write", calls: 13, errors: 1, nanos: 750 },
    ]);
    expect(s.strategies.zpoline?.calls).toBe(6);
  });

  it("rejects a wrong size, magic or version with STATS_FILE_BAD", () => {
    const good = new Uint8Array(STATS_FILE_SIZE);
    good.set(new TextEncoder().encode("SYSISTA"), 0);
    new DataView(good.buffer).setUint32(8, 4, true);
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
