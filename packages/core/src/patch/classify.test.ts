/**
 * classifyElf against this machine's files: every ELF program in /usr/bin and /usr/sbin is an
 * executable kind unless its real file is a library (ld.so and musl's libc are installed there
 * as links to their .so), and every *.so* in the system library directory is a shared library;
 * readelf (the outside oracle) says which programs carry DF_1_PIE. A PIE without DF_1_PIE (an
 * older linker's) is in packages/cli/test/e2e/patch-libraries.test.ts.
 */
import { describe, expect, it } from "bun:test";
import { closeSync, existsSync, openSync, readdirSync, readSync, realpathSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { buildElf } from "../../test/fixtures/elf-builder.ts";
import { parseElf, readElfFile } from "../elf/index.ts";
import { classifyElf, type ElfKind } from "./classify.ts";

const EXECUTABLE: ElfKind[] = ["executable", "pie", "static", "static-pie"];
const isLibName = (p: string) => /\.so(\.|$)/.test(basename(p));

function isElf(p: string): boolean {
  try {
    const fd = openSync(p, "r");
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    closeSync(fd);
    return b.toString("latin1") === "\x7fELF";
  } catch {
    return false;
  }
}

function elfFiles(d: string, filter: (p: string) => boolean): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .map((n) => join(d, n))
    .filter((p) => {
      try {
        return statSync(p).isFile() && filter(p) && isElf(p);
      } catch {
        return false;
      }
    });
}

describe("classifyElf", () => {
  it("takes every program in /usr/bin and /usr/sbin for an executable, and no library", () => {
    const files = [...elfFiles("/usr/bin", () => true), ...elfFiles("/usr/sbin", () => true)];
    expect(files.length).toBeGreaterThan(20);
    const wrong: string[] = [];
    for (const p of files) {
      const kind = classifyElf(readElfFile(p));
      const lib = isLibName(realpathSync(p));
      if (EXECUTABLE.includes(kind) === lib) wrong.push(`${p}: ${kind}`);
    }
    expect(wrong).toEqual([]);
  });

  it("takes every library in the system library directory for a shared library", () => {
    const files = elfFiles("/usr/lib/x86_64-linux-gnu", isLibName);
    expect(files.length).toBeGreaterThan(20);
    const wrong = files.map((p) => [p, classifyElf(readElfFile(p))]).filter(([, k]) => k !== "shared-library");
    expect(wrong).toEqual([]);
  });

  it("says pie exactly where readelf shows DF_1_PIE and a PT_INTERP", () => {
    for (const p of ["/bin/ls", "/usr/bin/git", "/usr/bin/python3", "/lib/x86_64-linux-gnu/libc.so.6"]) {
      if (!existsSync(p)) continue;
      const d = Bun.spawnSync(["readelf", "-d", "-l", p]).stdout.toString();
      const pie = /FLAGS_1\).*\bPIE\b/.test(d) && d.includes("Requesting program interpreter");
      expect(classifyElf(readElfFile(p)) === "pie").toBe(pie);
    }
  });

  it("without DF_1_PIE or DT_DEBUG: a library, with a PT_INTERP and a DT_SONAME or without", () => {
    const text = new Uint8Array(16).fill(0x90);
    const interp = "/lib64/ld-linux-x86-64.so.2";
    const k = (o: Parameters<typeof buildElf>[0]) => classifyElf(parseElf(buildElf(o), null));
    expect(k({ type: "dyn", text, interpreter: interp, soname: "libx.so.1", needed: ["libc.so.6"] })).toBe(
      "shared-library",
    );
    expect(k({ type: "dyn", text, interpreter: interp, needed: ["libc.so.6"] })).toBe("shared-library");
    expect(k({ type: "dyn", text, needed: ["libc.so.6"] })).toBe("shared-library");
    expect(k({ type: "dyn", text, soname: "libx.so.1" })).toBe("shared-library");
    expect(k({ type: "dyn", text })).toBe("other");
    expect(k({ type: "exec", text, interpreter: interp, needed: ["libc.so.6"] })).toBe("executable");
    expect(k({ type: "exec", text })).toBe("static");
  });
});
