import { describe, expect, it } from "bun:test";
import type { PlanResult, Site } from "@sysi/core/strategy";
import { checkOptions, planSite } from "../src/plan.ts";

function site(kind: Site["kind"], bytes: number[], nr: number | null): Site {
  return { vaddr: 0x1000, length: 2, kind, bytes: Uint8Array.from(bytes), nr, uncertain: false } as unknown as Site;
}
const outcome = (r: PlanResult) => ("reason" in r ? r.reason : Buffer.from(r.patch.bytes).toString("hex"));

describe("int3trap planner", () => {
  const table: [string, Site, string][] = [
    ["a known, complete call", site("syscall", [0x0f, 0x05], 39), "cc90"],
    ["an unknown number", site("syscall", [0x0f, 0x05], null), "unknown-number"],
    ["rt_sigreturn", site("syscall", [0x0f, 0x05], 15), "in-context-call"],
    ["clone", site("syscall", [0x0f, 0x05], 56), "in-context-call"],
    ["vfork", site("syscall", [0x0f, 0x05], 58), "in-context-call"],
    ["clone3", site("syscall", [0x0f, 0x05], 435), "in-context-call"],
    ["ptrace", site("syscall", [0x0f, 0x05], 101), "traceme-path"],
    ["execve", site("syscall", [0x0f, 0x05], 59), "traceme-path"],
    ["kill", site("syscall", [0x0f, 0x05], 62), "traceme-path"],
    ["sysenter", site("sysenter", [0x0f, 0x34], 39), "not-syscall"],
    ["other bytes", site("syscall", [0x0f, 0x0b], 39), "unexpected-bytes"],
  ];
  for (const [what, s, want] of table)
    it(`plans ${what} as ${want}`, () => expect(outcome(planSite(s, { options: {} }))).toBe(want));

  it("patches exactly the site's two bytes, over its old bytes", () => {
    const r = planSite(site("syscall", [0x0f, 0x05], 1), { options: {} });
    expect(r).toEqual({
      patch: { vaddr: 0x1000, old: Uint8Array.of(0x0f, 0x05), bytes: Uint8Array.of(0xcc, 0x90) },
      tactic: "int3",
    });
  });

  it("takes no options", () => {
    expect(checkOptions({})).toBeNull();
    expect(checkOptions({ variant: "fast" })).toContain("takes no options");
  });
});
