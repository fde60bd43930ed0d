/**
 * @sysi/ud2 — syscall/sysenter → a 2-byte trap (ud2, int3, hlt or int $4: `-s ud2:int3`,
 * `-s ud2:hlt`, `-s ud2:int4`, `-s ud2:ud2`); the runtime's signal handler emulates the call.
 * Works everywhere, slowly. Without a variant it uses this host's cheapest trap that a debugger
 * lets through (trap-choice.ts: measured once per host and cached).
 */
import { fileURLToPath } from "node:url";
import type { Site } from "@sysi/core/scan";
import type { SiteContext, Strategy, StrategyFactory, StrategyVariant } from "@sysi/core/strategy";
import { checkOptions, planSite } from "./plan.ts";
import { defaultTrap } from "./trap-choice.ts";

/** Bench goal: a trap costs at most this many times its bare kernel round trip (issue 17 item 8). */
const TRAP_RATIO = 1.1;

const VARIANT_LIST: StrategyVariant[] = [
  { name: "ud2", summary: "0f 0b, SIGILL" },
  { name: "int3", summary: "cc 90, SIGTRAP (a debugger takes it for a breakpoint: never the default)" },
  { name: "hlt", summary: "f4 90, SIGSEGV (#GP: privileged in user mode)" },
  { name: "int4", summary: "cd 04, SIGSEGV (#OF through the overflow gate)" },
];

const factory: StrategyFactory = () => {
  const choice = defaultTrap();
  // the default first (the contract: the first variant is the default), marked with the why
  const variants = [
    ...VARIANT_LIST.filter((v) => v.name === choice.variant).map((v) => ({
      name: v.name,
      summary: `${v.summary}; the default on this host: ${choice.reason}`,
    })),
    ...VARIANT_LIST.filter((v) => v.name !== choice.variant),
  ];
  const strategy: Strategy = {
    name: "ud2",
    summary: "syscall → ud2 (or int3/hlt/int $4), trapped and emulated in a signal handler",
    requires: [],
    // the default trap is part of the plan-cache key: plans made without a variant follow it
    planVersion: `ud2-2/${choice.variant}`,
    planSite: (site: Site, ctx: SiteContext) => planSite(site, ctx, choice.variant),
    checkOptions,
    // Last in the default chain: it works everywhere and takes what the others refuse.
    defaultChain: { rank: 900 },
    variants,
    // each trap named: a bare "ud2" is this host's default trap (trap-choice.ts); each one's
    // goal is a ratio to its bare kernel round trip
    bench: {
      order: 300,
      rows: [
        { spec: "ud2:ud2", trap: "ud2", goals: { trapRatio: TRAP_RATIO } },
        { spec: "ud2:int3", trap: "int3", goals: { trapRatio: TRAP_RATIO } },
        { spec: "ud2:hlt", trap: "hlt", goals: { trapRatio: TRAP_RATIO } },
        { spec: "ud2:int4", trap: "int4", goals: { trapRatio: TRAP_RATIO } },
      ],
    },
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-ud2.so",
      entry: "sysi_ud2_entry",
    },
  };
  return strategy;
};

export default factory;
