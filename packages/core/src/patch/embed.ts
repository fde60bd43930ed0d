/**
 * The sysi note's descriptor (NT_SYSI_PATCH, owner "SYSI"), read by libsysi's patch/embedded.c
 * from the running program's memory. All fields little-endian; every part starts 8-aligned:
 *
 *   header (32)   magic "SYSIPAT\0" | u32 version (1) | u32 config_size | u32 nplans |
 *                 u32 reserved (0) | u64 total_size (of the descriptor)
 *   config        config_size bytes: "NAME=value\0" strings (the runtime's SYSI_* settings;
 *                 they take precedence over the environment), zero-padded to 8
 *   nplans ×      u32 key_size (the module key and its NUL, padded to 8) | u32 reserved (0) |
 *                 u64 plan_size | key | plan (a binary plan, sysi.h), zero-padded to 8
 */
export const EMBED_MAGIC = "SYSIPAT";
export const EMBED_VERSION = 1;
const HEADER = 32;

export interface EmbeddedPlan {
  key: string;
  plan: Uint8Array;
}

export interface Embedded {
  config: Record<string, string>;
  plans: EmbeddedPlan[];
}

const pad8 = (n: number) => (n + 7) & ~7;

/** Encode config and plans (config in key order, plans in the given order: deterministic). */
export function encodeEmbedded(e: Embedded): Uint8Array {
  const enc = new TextEncoder();
  const config = enc.encode(
    Object.keys(e.config)
      .sort()
      .map((k) => `${k}=${e.config[k]}\0`)
      .join(""),
  );
  let size = HEADER + pad8(config.length);
  const keys = e.plans.map((p) => enc.encode(`${p.key}\0`));
  e.plans.forEach((p, i) => {
    size += 16 + pad8((keys[i] as Uint8Array).length) + pad8(p.plan.length);
  });
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set(enc.encode(`${EMBED_MAGIC}\0`), 0);
  dv.setUint32(8, EMBED_VERSION, true);
  dv.setUint32(12, pad8(config.length), true);
  dv.setUint32(16, e.plans.length, true);
  dv.setBigUint64(24, BigInt(size), true);
  out.set(config, HEADER);
  let o = HEADER + pad8(config.length);
  e.plans.forEach((p, i) => {
    const k = keys[i] as Uint8Array;
    dv.setUint32(o, pad8(k.length), true);
    dv.setBigUint64(o + 8, BigInt(p.plan.length), true);
    out.set(k, o + 16);
    o += 16 + pad8(k.length);
    out.set(p.plan, o);
    o += pad8(p.plan.length);
  });
  return out;
}

/** Where each plan lies inside the descriptor (for fixing a plan up after layout). */
export function embeddedPlanOffsets(desc: Uint8Array): { key: string; offset: number; size: number }[] {
  const dv = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const n = dv.getUint32(16, true);
  let o = HEADER + dv.getUint32(12, true);
  const out: { key: string; offset: number; size: number }[] = [];
  for (let i = 0; i < n; i++) {
    const ks = dv.getUint32(o, true);
    const size = Number(dv.getBigUint64(o + 8, true));
    const keyBytes = desc.subarray(o + 16, o + 16 + ks);
    const key = Buffer.from(keyBytes.subarray(0, keyBytes.indexOf(0))).toString("latin1");
    o += 16 + ks;
    out.push({ key, offset: o, size });
    o += pad8(size);
  }
  return out;
}

/** Decode a descriptor (for reports and tests); throws on a malformed one. */
export function decodeEmbedded(desc: Uint8Array): Embedded {
  const dv = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  if (desc.length < HEADER || Buffer.from(desc.subarray(0, 8)).toString("latin1") !== `${EMBED_MAGIC}\0`) {
    throw new Error("not a sysi note");
  }
  const cs = dv.getUint32(12, true);
  const config: Record<string, string> = {};
  for (const s of Buffer.from(desc.subarray(HEADER, HEADER + cs))
    .toString("latin1")
    .split("\0")) {
    const eq = s.indexOf("=");
    if (eq > 0) config[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const plans = embeddedPlanOffsets(desc).map((p) => ({
    key: p.key,
    plan: desc.slice(p.offset, p.offset + p.size),
  }));
  return { config, plans };
}

/**
 * Where `text` first occurs in the descriptor's settings (offset from the descriptor's start), or
 * null. With `setting`, `text` is a name and only "NAME=" at the start of a setting counts.
 */
export function configOffset(desc: Uint8Array, text: string, setting = false): number | null {
  const dv = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const end = HEADER + dv.getUint32(12, true);
  const needle = new TextEncoder().encode(setting ? `${text}=` : text);
  for (let o = HEADER; o + needle.length <= end; o++) {
    if (setting && o > HEADER && desc[o - 1] !== 0) continue;
    let k = 0;
    while (k < needle.length && desc[o + k] === needle[k]) k++;
    if (k === needle.length) return o;
  }
  return null;
}
