// Runs `bun test` with a JUnit report, prints "N passed, N failed, N skipped" on its own line,
// and fails when no test passed (bun test alone exits 0 for files with zero tests).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "sysi-test-"));
const report = join(dir, "junit.xml");
const args = process.argv.slice(2);
const proc = Bun.spawn(
  ["bun", "test", "--timeout=120000", "--reporter=junit", `--reporter-outfile=${report}`, ...args],
  { stdio: ["inherit", "inherit", "inherit"] },
);
const code = await proc.exited;
let tests = 0;
let failures = 0;
let skipped = 0;
try {
  const xml = readFileSync(report, "utf8");
  const head = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(head)?.[1] ?? 0);
  tests = attr("tests");
  failures = attr("failures") + attr("errors");
  skipped = attr("skipped");
} catch {
  failures = Math.max(failures, 1);
}
rmSync(dir, { recursive: true, force: true });
const passed = Math.max(0, tests - failures - skipped);
console.log(`${passed} passed, ${failures} failed, ${skipped} skipped`);
process.exit(code !== 0 ? code : passed === 0 ? 1 : 0);
