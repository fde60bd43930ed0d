import { afterAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PlanError } from "../../src/errors.ts";
import {
  type DecodedPlan,
  decodePlan,
  encodePlan,
  PLAN_HEADER as H,
  HEADER_SIZE,
  moduleBytesHash,
  planChecksum,
  sealPlan,
} from "../../src/plan/binary.ts";
import { planModule } from "../../src/plan/composite.ts";
import type { PatchPlan } from "../../src/plan/types.ts";
import { fakeModule, fakeStrategy, nullReader, twoByte } from "./fixtures.ts";

const INCLUDE = join(import.meta.dir, "../../native/include");
const tmp = mkdtempSync(join(tmpdir(), "sysi-plan-bin-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function samplePlan(buildId: string | null = "00112233445566778899aabbccddeeff00112233"): PatchPlan {
  const { elf, scan } = fakeModule([0, 1, null, 231, 60], { uncertain: [4], buildId });
  const z = fakeStrategy("zpoline", (s) =>
    s.nr === 1
      ? { reason: "nope" }
      : ({ ...(twoByte(s, 0xff, 0xd0, "call") as object), aux: [BigInt(s.vaddr), 0xfedcba9876543210n] } as ReturnType<
          typeof twoByte
        >),
  );
  const u = fakeStrategy(
    "ud2",
    (s) =>
      ({
        ...(twoByte(s, 0x0f, 0x0b) as object),
        trampolines:
          s.nr === 231
            ? [{ vaddr: 0x7000_0000 + s.vaddr, code: new Uint8Array([0xe9, 1, 2, 3, 4]), kind: "exit-stub" }]
            : [],
      }) as ReturnType<typeof twoByte>,
  );
  const plan = planModule(
    elf,
    scan,
    [
      { strategy: z, options: {} },
      { strategy: u, options: {} },
    ],
    { checks: {} },
    { reader: nullReader },
  );
  plan.trampolines.push({ vaddr: null, code: new Uint8Array([0x90, 0xc3]), kind: "anywhere", strategy: "zpoline" });
  return plan;
}

/** The C dumper's line format, rebuilt from decodePlan's view. */
function textOf(d: DecodedPlan): string {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  const lines = [
    `header SYSIPLN ${d.version} ${HEADER_SIZE} ${d.fileSize}`,
    `identity ${d.moduleSize} ${d.moduleHash.toString(16).padStart(16, "0")} ${d.checksum.toString(16).padStart(16, "0")}`,
    `module ${d.modulePath}`,
    `chain ${d.chain}`,
    `buildid ${d.buildId ?? ""}`,
  ];
  d.strategies.forEach((s, i) => {
    lines.push(`strategy ${i} ${s}`);
  });
  for (const s of d.sites) {
    lines.push(`site 0x${s.vaddr.toString(16)} ${s.nr ?? -1} ${s.flags} ${s.options.length}`);
    for (const o of s.options)
      lines.push(
        `  option ${o.strategy} 0x${o.vaddr.toString(16)} ${hex(o.old)} ${hex(o.bytes)} 0x${o.aux[0].toString(16)} 0x${o.aux[1].toString(16)}`,
      );
  }
  for (const t of d.trampolines)
    lines.push(`tramp 0x${(t.vaddr ?? 0).toString(16)} ${t.strategy} ${t.kind} ${hex(t.code)}`);
  return `${lines.join("\n")}\n`;
}

describe("binary plan", () => {
  it("round-trips: sites sorted, accepted options in chain order, trampolines and strings", () => {
    const plan = samplePlan();
    const bin = encodePlan(plan);
    expect(bin.length % 8).toBe(0);
    const d = decodePlan(bin);
    expect(d.chain).toBe("zpoline,ud2");
    expect(d.strategies).toEqual(["zpoline", "ud2"]);
    expect(d.buildId).toBe(plan.module.buildId);
    expect(d.modulePath).toBe("/fake/module.so");
    expect(d.sites.map((s) => s.vaddr)).toEqual(plan.sites.map((p) => p.site.vaddr));
    expect(d.sites.map((s) => s.nr)).toEqual([0, 1, null, 231, 60]);
    expect(d.sites.map((s) => s.options.map((o) => o.strategy))).toEqual([
      ["zpoline", "ud2"],
      ["ud2"],
      ["zpoline", "ud2"],
      ["zpoline", "ud2"],
      [],
    ]);
    expect(d.sites[4]?.flags).toBe(1);
    const o = d.sites[0]?.options[0];
    expect([...(o?.old ?? [])]).toEqual([0x0f, 0x05]);
    expect([...(o?.bytes ?? [])]).toEqual([0xff, 0xd0]);
    expect(o?.aux).toEqual([BigInt(d.sites[0]?.vaddr ?? 0), 0xfedcba9876543210n]);
    expect(d.trampolines.map((t) => [t.strategy, t.kind, t.code.length])).toEqual([
      ["ud2", "exit-stub", 5],
      ["zpoline", "anywhere", 2],
    ]);
    expect(d.trampolines[1]?.vaddr).toBeNull();
    expect(encodePlan(plan)).toEqual(bin);
  });

  it("stores no build-id for modules without one", () => {
    const d = decodePlan(encodePlan(samplePlan(null)));
    expect(d.buildId).toBeNull();
  });

  it("rejects truncated, misaligned and out-of-range plans with PLAN_CORRUPT (checksum resealed)", () => {
    const bin = encodePlan(samplePlan());
    const bad: [string, Uint8Array][] = [];
    bad.push(["truncated", bin.slice(0, bin.length - 8)]);
    bad.push(["short", bin.slice(0, 100)]);
    const magic = bin.slice();
    magic[0] = 0x58;
    bad.push(["magic", magic]);
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const edit = (what: string, f: (d: DataView) => void) => {
      const b = bin.slice();
      f(dv(b));
      bad.push([what, sealPlan(b)]); // past the checksum: the check under test must catch it
    };
    edit("sites_off", (d) => d.setBigUint64(H.sitesOff, 1n << 40n, true));
    edit("misaligned", (d) => d.setBigUint64(H.optionsOff, dv(bin).getBigUint64(H.optionsOff, true) + 4n, true));
    edit("noptions", (d) => d.setUint32(H.noptions, 0xffffffff, true));
    edit("chain string", (d) => d.setUint32(H.chain, 0x7fffffff, true));
    edit("build_id_len", (d) => d.setUint32(H.buildIdLen, 33, true));
    edit("reserved", (d) => d.setUint32(H.reserved, 1, true));
    edit("module_hash", (d) => d.setBigUint64(H.moduleHash, dv(bin).getBigUint64(H.moduleHash, true) ^ 1n, true));
    for (const [what, bytes] of bad) {
      let err: unknown;
      try {
        decodePlan(bytes);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(PlanError);
      expect((err as PlanError).code, what).toBe("PLAN_CORRUPT");
    }
  });

  it("carries a checksum: a change to any single byte of the plan is refused", () => {
    const bin = encodePlan(samplePlan());
    expect(new DataView(bin.buffer).getBigUint64(H.checksum, true)).toBe(planChecksum(bin));
    for (let i = 0; i < bin.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const b = bin.slice();
        b[i] = (b[i] as number) ^ flip;
        let err: unknown;
        try {
          decodePlan(b);
        } catch (e) {
          err = e;
        }
        expect(err, `byte ${i} ^ ${flip}`).toBeInstanceOf(PlanError);
        // the magic is checked first, the version by value; anything else fails the checksum
        expect(["PLAN_CORRUPT", "PLAN_VERSION"], `byte ${i}`).toContain((err as PlanError).code);
      }
    }
  });

  it("names the module: its file size and the hash of the bytes every option expects", () => {
    const plan = samplePlan();
    const d = decodePlan(encodePlan(plan));
    expect(d.moduleSize).toBe(plan.module.size);
    expect(d.options.length).toBe(d.noptions);
    expect(d.moduleHash).toBe(moduleBytesHash(d.options.map((o) => o.old)));
    const other = samplePlan();
    other.module.size += 1;
    expect(decodePlan(encodePlan(other)).moduleSize).toBe(plan.module.size + 1);
  });

  const cc = spawnSync("cc", ["--version"]).status === 0;
  it.skipIf(!cc)("is read identically by C through sysi.h's structs (needs cc)", () => {
    const exe = join(tmp, "plan-dump");
    const build = spawnSync(
      "cc",
      ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-I", INCLUDE, "-o", exe, join(import.meta.dir, "plan-dump.c")],
      {
        encoding: "utf8",
      },
    );
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    for (const plan of [samplePlan(), samplePlan(null)]) {
      const bin = encodePlan(plan);
      const file = join(tmp, "x.plan");
      writeFileSync(file, bin);
      const run = spawnSync(exe, [file], { encoding: "utf8" });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(textOf(decodePlan(bin)));
      expect(run.stdout).toContain("site 0x");
      expect(run.stdout).toContain("option zpoline");
    }
  });
});
