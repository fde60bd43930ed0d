// Generates the x86-64 syscall number table from the installed kernel headers:
//   packages/core/src/syscalls/table.ts   (TypeScript: name → number, max number)
//   packages/core/native/syscall-names.h  (C: sysi_syscall_names[nr], SYSI_NSYSCALLS)
// and the names of the x32 numbers (0x40000000 + n, from unistd_x32.h beside the header) as strace
// 6.1 gives them: the x32 name, else the 64-bit name of n with "#64" (a 64-bit-only call made
// with the x32 bit), else none (strace: syscall_0x4000…, left out of its -c table); and the names
// of the i386 numbers (unistd_32.h beside the header), which strace 6.1 gives `int $0x80` calls of
// a 64-bit process (equal to its names for 0..469, checked with strace -e inject=all@32).
//
// Usage: bun scripts/gen-syscalls.ts [--header PATH] [--check]
//   --header PATH  unistd_64.h to read (default: /usr/include/x86_64-linux-gnu/asm/unistd_64.h)
//   --check        write nothing; exit 1 if the committed files differ from what would be generated
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

const DEFAULT_HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
const ROOT = join(dirname(new URL(import.meta.url).pathname), "..");
const TS_OUT = join(ROOT, "packages/core/src/syscalls/table.ts");
const C_OUT = join(ROOT, "packages/core/native/syscall-names.h");

/** The x32 syscall bit (__X32_SYSCALL_BIT). */
export const X32_BIT = 0x40000000;

export interface SyscallEntry {
  name: string;
  nr: number;
}

/** Parses `#define __NR_<name> <nr>` lines; throws on duplicates or a header with no entries. */
export function parseUnistd(text: string): SyscallEntry[] {
  const out: SyscallEntry[] = [];
  const seenName = new Set<string>();
  const seenNr = new Set<number>();
  for (const m of text.matchAll(/^#define\s+__NR_([A-Za-z0-9_]+)\s+(\d+)\s*$/gm)) {
    const name = m[1] as string;
    const nr = Number(m[2]);
    if (seenName.has(name) || seenNr.has(nr)) throw new Error(`duplicate syscall ${name} = ${nr}`);
    seenName.add(name);
    seenNr.add(nr);
    out.push({ name, nr });
  }
  if (out.length === 0) throw new Error("no __NR_ definitions found");
  return out.sort((a, b) => a.nr - b.nr);
}

/** Parses `#define __NR_<name> (__X32_SYSCALL_BIT + <n>)` lines: entries with nr = n. */
export function parseUnistdX32(text: string): SyscallEntry[] {
  const out: SyscallEntry[] = [];
  for (const m of text.matchAll(/^#define\s+__NR_([A-Za-z0-9_]+)\s+\(__X32_SYSCALL_BIT \+ (\d+)\)\s*$/gm))
    out.push({ name: m[1] as string, nr: Number(m[2]) });
  if (out.length === 0) throw new Error("no x32 __NR_ definitions found");
  return out.sort((a, b) => a.nr - b.nr);
}

/**
 * The name of x32 number X32_BIT + n for n in 0..max x32 n, as strace names it (null: none): the
 * x32 name, else the 64-bit name of n (below 512, the 64-bit-only range) with "#64".
 */
export function x32Names(x64: SyscallEntry[], x32: SyscallEntry[]): (string | null)[] {
  const max = x32[x32.length - 1]?.nr ?? -1;
  const names: (string | null)[] = new Array(max + 1).fill(null);
  for (const e of x64) if (e.nr < 512 && e.nr <= max) names[e.nr] = `${e.name}#64`;
  for (const e of x32) names[e.nr] = e.name;
  return names;
}

/** "6.1.187" from linux/version.h next to the header (or the system one), else "unknown". */
export function kernelHeadersVersion(header: string): string {
  const v = join(dirname(dirname(dirname(header))), "linux/version.h");
  const alt = "/usr/include/linux/version.h";
  const file = existsSync(v) ? v : existsSync(alt) ? alt : null;
  if (!file) return "unknown";
  const m = /LINUX_VERSION_CODE\s+(\d+)/.exec(readFileSync(file, "utf8"));
  if (!m) return "unknown";
  const code = Number(m[1]);
  return `${code >> 16}.${(code >> 8) & 0xff}.${code & 0xff}`;
}

function renderTs(
  entries: SyscallEntry[],
  x32: (string | null)[],
  i386: SyscallEntry[],
  header: string,
  version: string,
): string {
  const max = entries[entries.length - 1]?.nr ?? 0;
  const i386Names: (string | null)[] = new Array((i386[i386.length - 1]?.nr ?? -1) + 1).fill(null);
  for (const e of i386) i386Names[e.nr] = e.name;
  const lines = [
    "// GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-syscalls.ts",
    `// Source: ${header} (kernel headers ${version}), x86-64 syscall numbers.`,
    "",
    "/** x86-64 syscall name → number, from the kernel headers. */",
    "export const SYSCALL_NUMBERS = {",
    ...entries.map((e) => `  ${e.name}: ${e.nr},`),
    "} as const;",
    "",
    "/** Largest syscall number in the table. */",
    `export const SYSCALL_MAX = ${max};`,
    "",
    "/** LINUX_VERSION_CODE of the kernel headers the table was generated from. */",
    `export const SYSCALL_HEADERS_VERSION = ${JSON.stringify(version)};`,
    "",
    "/**",
    " * Names of the x32 numbers 0x40000000 + n (index n) as strace 6.1 names them: the x32 name,",
    ' * else the 64-bit name with "#64"; null: none. From unistd_x32.h beside the source header.',
    " */",
    "export const SYSCALL_X32_NAMES: readonly (string | null)[] = [",
    ...x32.map((n) => `  ${n === null ? "null" : JSON.stringify(n)},`),
    "];",
    "",
    "/**",
    " * Names of the i386 numbers (index nr), which strace 6.1 gives `int $0x80` calls; null: none.",
    " * From unistd_32.h beside the source header.",
    " */",
    "export const SYSCALL_I386_NAMES: readonly (string | null)[] = [",
    ...i386Names.map((n) => `  ${n === null ? "null" : JSON.stringify(n)},`),
    "];",
    "",
  ];
  return lines.join("\n");
}

function renderC(
  entries: SyscallEntry[],
  x32: (string | null)[],
  i386: SyscallEntry[],
  header: string,
  version: string,
): string {
  const max = entries[entries.length - 1]?.nr ?? 0;
  const lines = [
    "/* GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-syscalls.ts",
    ` * Source: ${header} (kernel headers ${version}).`,
    " * sysi_syscall_names[nr] is the x86-64 syscall name, or NULL for an unassigned number. */",
    "#ifndef SYSI_SYSCALL_NAMES_H",
    "#define SYSI_SYSCALL_NAMES_H",
    "",
    `#define SYSI_NSYSCALLS ${max + 1}`,
    "",
    "static const char *const sysi_syscall_names[SYSI_NSYSCALLS] = {",
    ...entries.map((e) => `\t[${e.nr}] = "${e.name}",`),
    "};",
    "",
    "/* sysi_x32_names[n] names the x32 number SYSI_X32_BIT + n as strace 6.1 does (the x32 name, else",
    ' * the 64-bit name with "#64"), or NULL. Source: unistd_x32.h beside the header above. */',
    `#define SYSI_X32_BIT 0x${X32_BIT.toString(16)}`,
    `#define SYSI_NX32 ${x32.length}`,
    "",
    "static const char *const sysi_x32_names[SYSI_NX32] = {",
    ...x32.flatMap((n, i) => (n === null ? [] : [`\t[${i}] = "${n}",`])),
    "};",
    "",
    "/* sysi_i386_names[nr] names the i386 number nr (an `int $0x80` call), or NULL. Source:",
    " * unistd_32.h beside the header above. */",
    `#define SYSI_NI386 ${(i386[i386.length - 1]?.nr ?? -1) + 1}`,
    "",
    "static const char *const sysi_i386_names[SYSI_NI386] = {",
    ...i386.map((e) => `\t[${e.nr}] = "${e.name}",`),
    "};",
    "",
    "#endif",
    "",
  ];
  return lines.join("\n");
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function main(argv: string[]): number {
  let header = DEFAULT_HEADER;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--check") check = true;
    else if (a === "--header" && argv[i + 1] !== undefined) header = argv[++i] as string;
    else {
      process.stderr.write(
        `gen-syscalls: unknown argument ${a}\nusage: bun scripts/gen-syscalls.ts [--header PATH] [--check]\n`,
      );
      return 2;
    }
  }
  const entries = parseUnistd(readFileSync(header, "utf8"));
  const x32 = x32Names(entries, parseUnistdX32(readFileSync(join(dirname(header), "unistd_x32.h"), "utf8")));
  const i386 = parseUnistd(readFileSync(join(dirname(header), "unistd_32.h"), "utf8"));
  const version = kernelHeadersVersion(header);
  const outputs: [string, string][] = [
    [TS_OUT, renderTs(entries, x32, i386, header, version)],
    [C_OUT, renderC(entries, x32, i386, header, version)],
  ];
  if (check) {
    const stale = outputs.filter(([p, t]) => !existsSync(p) || readFileSync(p, "utf8") !== t).map(([p]) => p);
    for (const p of stale) process.stderr.write(`gen-syscalls: ${p} is out of date\n`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const [p, t] of outputs) writeAtomic(p, t);
  process.stdout.write(`gen-syscalls: ${entries.length} syscalls (max ${entries[entries.length - 1]?.nr})\n`);
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
