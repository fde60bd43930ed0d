/**
 * The files of a new strategy plugin (`sysi strategy new NAME [DIR]`): a trap strategy that
 * works as generated — `syscall` becomes `int3; nop` at sites whose number is known and that
 * need no in-context handling, its runtime's SIGTRAP handler emulates the call through libsysi's
 * dispatcher — with its unit tests and the testkit's checks. docs/writing-a-strategy.md walks
 * through these files.
 */

export interface ScaffoldVars {
  /** Strategy name: lowercase letters, digits and '-'. */
  name: string;
  /** The @sysi/core version the plugin is written against. */
  coreVersion: string;
}

/** The C identifier of a strategy name (`my-trap` → `my_trap`). */
export function cName(name: string): string {
  return name.replace(/-/g, "_");
}

export function scaffoldFiles(v: ScaffoldVars): Record<string, string> {
  const n = v.name;
  const c = cName(n);
  const range = `^${v.coreVersion}`;
  return {
    "package.json": `${JSON.stringify(
      {
        name: `sysi-strategy-${n}`,
        version: "0.1.0",
        description: `sysi strategy ${n}: syscall -> int3; nop, emulated in a SIGTRAP handler`,
        type: "module",
        license: "MIT",
        exports: { ".": "./src/index.ts", "./package.json": "./package.json" },
        sysi: { strategy: "./src/index.ts", core: range },
        oclif: {},
        files: ["src", "native/*.c", "native/*.h", "native/Makefile", "README.md"],
        keywords: ["sysi", "sysi-strategy"],
        peerDependencies: { "@sysi/core": range },
        peerDependenciesMeta: { "@sysi/core": { optional: true } },
        devDependencies: { "@sysi/core": range },
        scripts: { test: "bun test --timeout=600000" },
      },
      null,
      2,
    )}\n`,

    "README.md": `# sysi-strategy-${n}

A [sysi](https://github.com/sysi-dev/sysi) strategy plugin: each \`syscall\` whose number the
planner knows becomes \`int3; nop\` (\`cc 90\`); the runtime's SIGTRAP handler hands the call to
sysi's dispatcher and resumes after the site. Sites it refuses (unknown number, calls that must
run in the site's own context: rt_sigreturn, clone, vfork, clone3; ptrace and the exec and
kill calls a debugger's vfork child makes after PTRACE_TRACEME) go to the next strategy of the
chain, e.g. \`-s ${n},ud2\`.

    sysi plugins link .            # or: sysi plugins install sysi-strategy-${n}
    sysi strategies                # lists ${n}, linked
    sysi run -s ${n},ud2 -- ls

## Files

- \`src/index.ts\` — the strategy: name, summary, host requirements, planner, runtime location.
- \`src/plan.ts\` — the planner: a pure function from a site to a patch or a refusal.
- \`native/${n}.c\`, \`native/Makefile\` — the runtime libsysi loads into the program.
- \`test/plan.test.ts\` — the planner on tables of sites.
- \`test/testkit.test.ts\` — the checks every sysi strategy passes (@sysi/core/testing).

## Test

    bun install                    # @sysi/core (dev dependency) for the testkit
    sysi plugins link .            # the run checks go through your sysi
    bun test --timeout=600000      # SYSI_CLI="bun /path/to/run.js" to use another sysi

The package declares the @sysi/core it was written against (\`"sysi": { "core": "${range}" }\`):
a sysi whose core is outside that range refuses to load it and says so in one line.
`,

    "src/index.ts": `/**
 * ${n} — syscall → int3; nop (cc 90), emulated by the runtime's SIGTRAP handler.
 * Wiring only: the planner is in plan.ts, the runtime in native/.
 */
import { fileURLToPath } from "node:url";
import type { Strategy, StrategyFactory } from "@sysi/core/strategy";
import { checkOptions, planSite } from "./plan.ts";

const factory: StrategyFactory = () => {
  const strategy: Strategy = {
    name: "${n}",
    summary: "syscall → int3; nop, emulated in a SIGTRAP handler (known, complete calls only)",
    requires: [], // host checks that must pass, e.g. ["page0"]
    planVersion: "1", // bump when the planner's output changes (part of the plan-cache key)
    planSite, // stateless; keep per-module state in planModule(ctx) → { planSite, finish }
    checkOptions,
    // no defaultChain: used only when named with -s (add { rank } to join the default chain)
    runtime: {
      nativeDir: fileURLToPath(new URL("../native", import.meta.url)),
      lib: "libsysi-${n}.so",
      entry: "sysi_${c}_entry",
    },
  };
  return strategy;
};

export default factory;
`,

    "src/plan.ts": `/**
 * The ${n} planner: a pure function from a decoded site to a 2-byte patch or a refusal with a
 * stable reason code. No I/O, no globals.
 */
import type { PlanResult, Site, SiteContext } from "@sysi/core/strategy";

// Calls the kernel must make in the site's own context (a new stack, the parent's stack, the
// signal frame): a signal handler cannot make them, so the next strategy takes those sites.
const SYS_rt_sigreturn = 15;
const SYS_clone = 56;
const SYS_vfork = 58;
const SYS_clone3 = 435;
const IN_CONTEXT = new Set([SYS_rt_sigreturn, SYS_clone, SYS_vfork, SYS_clone3]);

// A debugger starts a program with vfork, PTRACE_TRACEME in the child, exec: once traced, the
// child's next trap stops it for a tracer that sleeps in vfork until the exec (both hang).
// ud2's runtime defers the TRACEME to the child's exec or kill-family call; leave those calls,
// and ptrace itself, to it (or another strategy that makes no trap there).
const SYS_ptrace = 101;
const SYS_execve = 59;
const SYS_execveat = 322;
const SYS_kill = 62;
const SYS_tkill = 200;
const SYS_tgkill = 234;
const TRACEME_PATH = new Set([SYS_ptrace, SYS_execve, SYS_execveat, SYS_kill, SYS_tkill, SYS_tgkill]);

/** int3; nop — #BP → SIGTRAP with RIP = site + 1. */
export const TRAP = Uint8Array.of(0xcc, 0x90);

/** Strategy.checkOptions: this strategy takes no options. */
export function checkOptions(options: Readonly<Record<string, string>>): string | null {
  const given = Object.entries(options).map(([k, v]) => (k === "variant" ? v : \`\${k}=\${v}\`));
  return given.length === 0 ? null : \`takes no options (got "\${given.join(":")}")\`;
}

export function planSite(site: Site, _ctx: Pick<SiteContext, "options">): PlanResult {
  // Step (1): only the 64-bit \`syscall\` (0f 05) is emulated.
  if (site.kind !== "syscall") return { reason: "not-syscall", detail: site.kind };
  if (site.bytes[0] !== 0x0f || site.bytes[1] !== 0x05)
    return { reason: "unexpected-bytes", detail: \`expected 0f 05 at 0x\${site.vaddr.toString(16)}\` };
  // Step (2): the number must be known, and a call the handler can complete.
  if (site.nr === null) return { reason: "unknown-number" };
  if (IN_CONTEXT.has(site.nr)) return { reason: "in-context-call", detail: \`syscall \${site.nr}\` };
  if (TRACEME_PATH.has(site.nr)) return { reason: "traceme-path", detail: \`syscall \${site.nr}\` };
  // Step (3): the patch covers exactly the site's 2 bytes: 0f 05 → cc 90.
  return { patch: { vaddr: site.vaddr, old: site.bytes.slice(0, 2), bytes: TRAP.slice() }, tactic: "int3" };
}
`,

    "native/Makefile": `# The ${n} strategy runtime.   make [CC=cc] [OUT=build] [SYSI_INCLUDE=<dir of sysi.h>]
# sysi builds it on first use with CC, OUT and SYSI_INCLUDE set.
CC ?= cc
OUT ?= build
SYSI_INCLUDE ?= $(error set SYSI_INCLUDE to the directory holding sysi.h)

CFLAGS = -O2 -fPIC -fvisibility=hidden -mgeneral-regs-only -fno-stack-protector \\
	-fno-builtin -fno-tree-loop-distribute-patterns -fcf-protection=none \\
	-Wall -Wextra -std=gnu11 -I$(SYSI_INCLUDE)
LDFLAGS = -shared -nostdlib -Wl,-z,now -Wl,--build-id -Wl,-z,noexecstack

all: $(OUT)/libsysi-${n}.so

$(OUT)/libsysi-${n}.so: ${n}.c $(SYSI_INCLUDE)/sysi.h
	mkdir -p $(OUT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ ${n}.c

clean:
	rm -rf $(OUT)

.PHONY: all clean
`,

    [`native/${n}.c`]: `/*
 * ${n}.c — the ${n} runtime. Sites are patched with int3; nop (cc 90); the SIGTRAP that int3
 * raises reaches on_trap() through libsysi's master handler (claim_signal), with RIP = site + 1.
 * on_trap builds a struct sysi_call from the program's registers, lets libsysi's dispatcher run
 * the hook (which performs the call), and resumes after the site as \`syscall\` would: rax = the
 * result, rcx = the return address, r11 = rflags. The handler returns through rt_sigreturn (the
 * master's frame), so a signal libsysi deferred is delivered there, in the program's context.
 * Never calls libc: the address set lives in pages mapped with api->syscall6.
 */
#define _GNU_SOURCE /* REG_RIP and friends */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sysi.h>

#define SLOTS (1u << 16) /* power of two; at most SLOTS / 2 sites, later ones fall through */

static const struct sysi_runtime_api *api;
static uint32_t strategy_id;
static int claimed;
static uintptr_t *sites; /* open addressing by address; 0 = empty; only ever grows */
static uint32_t nsites;

static uint32_t slot_of(uintptr_t a)
{
	return (uint32_t)((a * 0x9e3779b97f4a7c15ull) >> 40) & (SLOTS - 1);
}

/* Async-signal-safe, lock-free: an address is stored before libsysi writes its patch. */
static int is_site(uintptr_t a)
{
	uint32_t i = slot_of(a), n;
	for (n = 0; sites && n < SLOTS; n++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = __atomic_load_n(&sites[i], __ATOMIC_ACQUIRE);
		if (v == a)
			return 1;
		if (v == 0)
			return 0;
	}
	return 0;
}

static int add_site(uintptr_t a)
{
	uint32_t i = slot_of(a);
	if (nsites >= SLOTS / 2)
		return -ENOSPC;
	while (sites[i] != 0 && sites[i] != a)
		i = (i + 1) & (SLOTS - 1);
	if (sites[i] == 0)
		nsites++;
	__atomic_store_n(&sites[i], a, __ATOMIC_RELEASE);
	return 0;
}

static int on_trap(int sig, void *info, void *ucontext)
{
	greg_t *g = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
	uintptr_t site = (uintptr_t)g[REG_RIP] - 1; /* int3 reports the byte after it */
	struct sysi_call c;
	(void)sig;
	(void)info;
	if (!is_site(site))
		return 0; /* not ours: the program's own int3 or SIGTRAP */
	c.nr = g[REG_RAX];
	c.args[0] = g[REG_RDI];
	c.args[1] = g[REG_RSI];
	c.args[2] = g[REG_RDX];
	c.args[3] = g[REG_R10];
	c.args[4] = g[REG_R8];
	c.args[5] = g[REG_R9];
	c.site = site;
	c.strategy = strategy_id;
	c.flags = 0;
	c.ret = 0;
	if (api->dispatch(&c) != 0) /* the planner refuses every in-context call */
		api->die("${n}: a call that needs the site's own context at a site planned without one");
	g[REG_RAX] = (greg_t)c.ret;
	g[REG_RCX] = (greg_t)(site + 2);
	g[REG_R11] = g[REG_EFL];
	g[REG_RIP] = (greg_t)(site + 2);
	/*
	 * This handler runs with the program's mask, and the rt_sigreturn that ends it restores
	 * uc_sigmask and uc_stack: carry a change the program just made over (a siglongjmp out of
	 * a SIGSEGV handler unblocks SIGSEGV this way), minus signals libsysi deferred (blocked
	 * for sysi, not by the program).
	 */
	if (c.nr == SYS_rt_sigprocmask && c.ret == 0) {
		api->syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&((ucontext_t *)ucontext)->uc_sigmask, 8, 0, 0);
		if (api->defer_pending)
			*(uint64_t *)(void *)&((ucontext_t *)ucontext)->uc_sigmask &= ~api->defer_pending();
	} else if (c.nr == SYS_sigaltstack && c.ret == 0) {
		api->syscall6(SYS_sigaltstack, 0, (long)&((ucontext_t *)ucontext)->uc_stack, 0, 0, 0, 0);
	}
	return 1;
}

static int ${c}_init(const struct sysi_runtime_api *a, uint32_t id)
{
	long p;
	if (a->abi_version != SYSI_ABI_VERSION)
		return -EINVAL; /* every site falls to its next option */
	api = a;
	strategy_id = id;
	p = a->syscall6(SYS_mmap, 0, SLOTS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096)
		return (int)p;
	sites = (uintptr_t *)p;
	return 0;
}

/* Per site, before libsysi writes cc 90 there: refuse what this runtime cannot serve. */
static int ${c}_prepare_site(const struct sysi_site *s)
{
	if (s->patch_addr != s->addr || s->patch_len != 2)
		return -EINVAL;
	if (!claimed) {
		if (api->claim_signal(SIGTRAP, on_trap) < 0)
			return -EPERM;
		claimed = 1;
	}
	return add_site(s->addr);
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "${n}",
	.init = ${c}_init,
	.prepare_site = ${c}_prepare_site,
	.ready = 0,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_${c}_entry(void)
{
	return &ops;
}
`,

    "test/plan.test.ts": `import { describe, expect, it } from "bun:test";
import type { PlanResult, Site } from "@sysi/core/strategy";
import { checkOptions, planSite } from "../src/plan.ts";

function site(kind: Site["kind"], bytes: number[], nr: number | null): Site {
  return { vaddr: 0x1000, length: 2, kind, bytes: Uint8Array.from(bytes), nr, uncertain: false } as unknown as Site;
}
const outcome = (r: PlanResult) => ("reason" in r ? r.reason : Buffer.from(r.patch.bytes).toString("hex"));

describe("${n} planner", () => {
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
    it(\`plans \${what} as \${want}\`, () => expect(outcome(planSite(s, { options: {} }))).toBe(want));

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
`,

    "test/testkit.test.ts": `/**
 * The checks every sysi strategy passes (@sysi/core/testing). The run checks go through the
 * sysi on PATH (or SYSI_CLI, e.g. "bun /path/to/packages/cli/bin/run.js"), which must see this
 * plugin: \`sysi plugins link .\` first.
 */
import { describe, expect, it } from "bun:test";
import { planChecks, runChecks } from "@sysi/core/testing";
import factory from "../src/index.ts";

const strategy = factory({ version: "", includeDir: "" });
const cli = (process.env.SYSI_CLI ?? "sysi").split(" ").filter((w) => w !== "");

describe("${n} through the sysi testkit", () => {
  it("plans patches that decode to int3; nop over the file's own bytes (libc, ld.so, bun)", async () => {
    const reports = await planChecks(strategy, { expectInsns: () => ["int3", "nop"] });
    expect(reports.length).toBeGreaterThan(0);
    for (const r of reports) {
      expect({ path: r.path, problems: r.problems }).toEqual({ path: r.path, problems: [] });
      expect(r.taken).toBeGreaterThan(0);
    }
  });

  it("is visible to sysi (sysi plugins link .)", () => {
    const r = Bun.spawnSync([...cli, "strategies", "--json"], { stdout: "pipe", stderr: "pipe" });
    const names = (JSON.parse(r.stdout.toString()) as { strategies: { name: string }[] }).strategies.map((s) => s.name);
    expect(names).toContain(strategy.name);
  });

  it("runs real programs and the hard cases as natively, falls back per site, counts as strace -f", async () => {
    const checks = await runChecks({ cli, chain: \`\${strategy.name},ud2\`, strategy: strategy.name });
    expect(checks.length).toBeGreaterThan(5);
    // every check ran and found nothing (a skipped one fails too: it proved nothing)
    expect(checks.filter((c) => c.problems.length > 0 || c.skipped !== undefined)).toEqual([]);
  });
});
`,
  };
}
