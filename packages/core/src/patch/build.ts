/**
 * Building a patched executable from its composite plan (the same plan `sysi run` applies at
 * load time): the taken option of every site is written into the file, the runtime becomes the
 * first DT_NEEDED, and the sysi note carries the runtime's configuration, the output's own plan
 * (the input's plan, naming the output's key and size: at start libsysi puts the original bytes
 * back and applies it as at load time, so strategies build their trampolines from the original
 * instructions and fall through in chain order) and the plans of the libraries it will load.
 */
import type { ElfFile } from "../elf/types.ts";
import { encodePlan, PLAN_HEADER, sealPlan } from "../plan/binary.ts";
import type { PatchPlan, PlannedSite } from "../plan/types.ts";
import { isRefusal, type SitePatch } from "../strategy.ts";
import { type AddedSegment, type BytePatchAt, PatchError, rewriteElf } from "./elf-writer.ts";
import { type EmbeddedPlan, embeddedPlanOffsets, encodeEmbedded } from "./embed.ts";
import { type StandaloneInput, standaloneRequest } from "./standalone.ts";
import { rewriteStatic } from "./static-writer.ts";

export interface BuildPatchedInput {
  elf: ElfFile;
  /** The input's composite plan. */
  plan: PatchPlan;
  /** Plans of the modules the program loads (interpreter, DT_NEEDED closure), by module key. */
  libraryPlans: EmbeddedPlan[];
  /** Absolute paths of the runtime libraries to load first (libsysi). */
  needed: string[];
  /** The runtime's settings (SYSI_RUNTIMES, SYSI_HOOK, …). */
  config: Record<string, string>;
  /** A statically linked input: the static runtime image linked into the output (static-writer.ts). */
  staticRuntime?: ElfFile;
  /**
   * A shared library: its code is kept as it is (the runtime applies the embedded plan when it
   * sees the library, which may be after the library's constructors ran: docs/patch.md).
   */
  library?: boolean;
  /** Carry the runtime inside the output (sysi patch --standalone; `needed` is then empty). */
  standalone?: StandaloneInput;
}

export interface PatchReport {
  /** A shared library: its code is kept, `patched` counts the sites its plan patches at load. */
  library: boolean;
  sites: number;
  patched: number;
  byStrategy: Record<string, number>;
  refused: { vaddr: string; function: string | null; uncertain: boolean; reasons: Record<string, string> }[];
  trampolines: number;
  segments: (AddedSegment & { offset: number })[];
  inputSize: number;
  outputSize: number;
  growth: number;
  embeddedPlans: string[];
}

export interface BuildPatchedResult {
  bytes: Uint8Array;
  report: PatchReport;
}

function taken(ps: PlannedSite): { strategy: string; patch: SitePatch } | null {
  if (ps.taken === null) return null;
  const d = ps.decisions.find((x) => x.strategy === ps.taken && !isRefusal(x.result));
  return d === undefined ? null : { strategy: d.strategy, patch: d.result as SitePatch };
}

const page = (v: number) => Math.floor(v / 4096) * 4096;

export function buildPatched(input: BuildPatchedInput): BuildPatchedResult {
  const { elf, plan } = input;
  const patches: BytePatchAt[] = [];
  const byStrategy: Record<string, number> = {};
  const refused: PatchReport["refused"] = [];
  for (const ps of plan.sites) {
    const t = taken(ps);
    if (t === null) {
      const reasons: Record<string, string> = {};
      for (const d of ps.decisions) if (isRefusal(d.result)) reasons[d.strategy] = d.result.reason;
      refused.push({
        vaddr: `0x${ps.site.vaddr.toString(16)}`,
        function: ps.site.function,
        uncertain: ps.site.uncertain,
        reasons,
      });
      continue;
    }
    const p = t.patch.patch;
    const now = elf.bytesAt(p.vaddr, p.old.length);
    if (now === null || !Buffer.from(now).equals(Buffer.from(p.old))) {
      throw new PatchError("PATCH_STALE_PLAN", `the plan does not match the file at 0x${p.vaddr.toString(16)}`);
    }
    patches.push({ vaddr: p.vaddr, bytes: p.bytes });
    byStrategy[t.strategy] = (byStrategy[t.strategy] ?? 0) + 1;
  }
  // A static program without a build-id gets one (a hash of the input) in the output's note.
  const buildId =
    elf.buildId ??
    (input.staticRuntime === undefined ? null : new Bun.CryptoHasher("sha1").update(elf.bytes).digest("hex"));
  if (patches.length > 0 && buildId === null) {
    throw new PatchError("PATCH_NO_BUILD_ID", "the file has system-call sites but no build-id", {
      suggestions: ["link it with -Wl,--build-id"],
    });
  }
  const reserved = plan.trampolines
    .filter((t) => t.vaddr !== null)
    .map((t) => ({ lo: page(t.vaddr as number), hi: page((t.vaddr as number) + t.code.length + 4095) }));

  // The output's key names its size, which depends on the key's length: lay out until stable.
  const ownFor = (size: number): EmbeddedPlan[] =>
    buildId === null
      ? []
      : [
          {
            key: `${buildId}-${size}`,
            plan: encodePlan({ ...plan, module: { ...plan.module, buildId, size, key: `${buildId}-${size}` } }),
          },
        ];
  let guess = elf.bytes.length;
  for (let round = 0; round < 4; round++) {
    const plans = [...ownFor(guess), ...input.libraryPlans];
    const desc = encodeEmbedded({ config: input.config, plans });
    const r =
      input.staticRuntime === undefined
        ? rewriteElf(elf, {
            patches: input.library === true ? [] : patches,
            needed: input.needed,
            noteDesc: desc,
            reserved,
            library: input.library === true,
            ...(input.standalone === undefined ? {} : { standalone: standaloneRequest(input.standalone, desc) }),
          })
        : rewriteStatic(elf, {
            patches,
            noteDesc: desc,
            runtime: input.staticRuntime,
            reserved,
            buildId: buildId as string,
          });
    if (buildId !== null && r.bytes.length !== guess) {
      guess = r.bytes.length;
      continue;
    }
    const report: PatchReport = {
      library: input.library === true,
      sites: plan.sites.length,
      patched: patches.length,
      byStrategy,
      refused,
      trampolines: plan.trampolines.length,
      segments: r.segments,
      inputSize: elf.bytes.length,
      outputSize: r.bytes.length,
      growth: r.bytes.length - elf.bytes.length,
      embeddedPlans: plans.map((p) => p.key),
    };
    checkOwnPlan(r.bytes, r.noteDescOffset, plans[0]?.key ?? "", r.bytes.length);
    return { bytes: r.bytes, report };
  }
  throw new PatchError("PATCH_LAYOUT", "the output's size did not settle");
}

/** The embedded own plan names the output's size (sanity check of the layout loop). */
function checkOwnPlan(out: Uint8Array, descOff: number, key: string, size: number): void {
  if (key === "") return;
  const desc = out.subarray(descOff);
  for (const p of embeddedPlanOffsets(desc)) {
    if (p.key !== key) continue;
    const plan = desc.subarray(p.offset, p.offset + p.size);
    const dv = new DataView(plan.buffer, plan.byteOffset, plan.byteLength);
    if (Number(dv.getBigUint64(PLAN_HEADER.moduleSize, true)) !== size) {
      throw new PatchError("PATCH_LAYOUT", "the embedded plan names another size");
    }
    sealPlan(plan);
  }
}
