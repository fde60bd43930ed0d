/**
 * Nothing silently uninstrumented: when a chain leaves system-call sites unpatched, `sysi run`
 * says how many in which modules (before start, from the plans; at exit, what fell through at
 * run time), and --strict makes each an error (exit 2): before the program starts, or at its
 * exit. The oracle for the counts is `sysi plan --json` of each module ldd lists.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeHost } from "@sysi/core/host";
import { EXIT_GAP, hasStack, lines, START_GAP, splitCoverage, sysi } from "../helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "sysi-unpatched-"));
const env = { SYSI_CACHE_DIR: join(dir, "cache") };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOUCH = "/usr/bin/touch";
const page0 = (await probeHost()).check("page0")?.ok === true;
let n = 0;
const fresh = (): string => join(dir, `made-${++n}`);

/** The modules `prog` loads at start (the dynamic loader's own list), real paths. */
function lddModules(prog: string): string[] {
  const out = Bun.spawnSync(["ldd", prog]).stdout.toString();
  const paths = [...out.matchAll(/(\/\S+) \(0x/g)].map((m) => realpathSync(m[1] as string));
  return [realpathSync(prog), ...new Set(paths)];
}

interface PlanSite {
  taken: string | null;
  uncertain: boolean;
}

/** Per module, the sites no strategy of `spec` takes (not counting uncertain ones), from `sysi plan --json`. */
async function refusedByPlan(spec: string, modules: string[]): Promise<Map<string, number>> {
  const r = await sysi(["plan", "--json", "-s", spec, ...modules], env);
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.stdout) as { plans: { sites: PlanSite[] }[] };
  return new Map(
    modules.map((m, i) => [m, (doc.plans[i]?.sites ?? []).filter((s) => s.taken === null && !s.uncertain).length]),
  );
}

describe("sysi run says which sites its chain leaves unpatched", () => {
  const why = page0 ? "zpoline refuses red-zone sites" : "page 0 cannot be mapped here: zpoline refuses every site";
  test(`-s zpoline: one line before the program's output names each module with the plan's count (${why})`, async () => {
    const expected = await refusedByPlan("zpoline", lddModules(TOUCH));
    const named = [...expected].filter(([, k]) => k > 0);
    expect(named.length).toBeGreaterThan(0);
    const made = fresh();
    const r = await sysi(["run", "-s", "zpoline", "--hook", "passthrough", "--", TOUCH, made], env);
    expect(r.code).toBe(0);
    expect(existsSync(made)).toBe(true);
    const { start, exit, rest } = splitCoverage(r.stderr);
    expect(rest).toBe("");
    expect(exit).toBeNull();
    expect(start).toMatch(START_GAP);
    const total = named.reduce((s, [, k]) => s + k, 0);
    expect(start).toContain(`chain zpoline leaves ${total} system-call site${total === 1 ? "" : "s"} unpatched`);
    for (const [path, k] of expected) {
      if (k > 0) expect(start).toContain(`${path} (${k})`);
      else expect(start).not.toContain(path);
    }
  });

  test("-s zpoline --strict: exit 2 with one error line before the program starts (it would create a file)", async () => {
    for (const extra of [{}, { SYSI_NO_FAST_RUN: "1" }] as Record<string, string>[]) {
      const made = fresh();
      const r = await sysi(["run", "-s", "zpoline", "--strict", "--", TOUCH, made], { ...env, ...extra });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/^sysi: error: --strict: chain zpoline leaves \d+ system-call sites? unpatched, in /);
      expect(r.stderr).toContain("libc.so.6 (");
      expect(hasStack(r.stderr)).toBe(false);
      expect(existsSync(made)).toBe(false);
    }
  });

  // zpoline,ud2 is fully covered on any host: ud2 takes what zpoline refuses (everything, without page 0)
  test(`-s zpoline,ud2 and -s ud2: nothing on stderr, with or without --strict (${page0 ? "zpoline and ud2" : "ud2 alone: no page 0 here"} patch every site)`, async () => {
    for (const spec of ["zpoline,ud2", "ud2"]) {
      const refused = await refusedByPlan(spec, lddModules(TOUCH));
      expect([...refused.values()].every((k) => k === 0)).toBe(true);
      for (const strict of [[], ["--strict"]]) {
        const made = fresh();
        const r = await sysi(["run", "-s", spec, ...strict, "--hook", "passthrough", "--", TOUCH, made], env);
        expect({ spec, strict, code: r.code, stderr: r.stderr }).toEqual({ spec, strict, code: 0, stderr: "" });
        expect(existsSync(made)).toBe(true);
      }
    }
  });
});

/*
 * A site that falls through at run time: the program (non-PIE, so its code is at the same
 * address in every run) started with --deny-patch installs a seccomp filter under which
 * mprotect of its own code pages fails with EPERM, then executes itself again: that image's
 * plan is whole and matches, but the runtime cannot make the page writable, so its one site's
 * option fails (libc's sites are patched as usual). A stale plan cannot be used for this: a
 * plan whose expected bytes differ from memory is refused whole (plan.c), never applied.
 */
const SRC = `#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int text_page(struct dl_phdr_info *info, size_t size, void *out)
{
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_X)) {
			*(unsigned long *)out = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr) & ~4095UL;
			return 1;
		}
	return 0;
}

/* mprotect(<this program's code page>, …) fails with EPERM from now on, across execve */
static void deny_patch(void)
{
	unsigned long text = 0;
	dl_iterate_phdr(text_page, &text);
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)text, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof *f, f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		perror("seccomp");
}

int main(int argc, char **argv)
{
	long r;
	if (argc > 1 && !strcmp(argv[1], "--deny-patch")) {
		deny_patch();
		argv[1] = argv[0];
		execv("/proc/self/exe", argv + 1);
		return 127;
	}
	/* the marker mov (41 bb ef be ad de) finds the site in the file; r11 is clobbered anyway */
	__asm__ volatile("movl $0xdeadbeef, %%r11d\\n\\tsyscall" : "=a"(r) : "0"(110L) : "rcx", "r11", "memory");
	FILE *f = fopen(argv[1], "w");
	fprintf(f, "ran %d\\n", r > 0);
	fclose(f);
	return argc > 2;
}
`;

function buildProg(): string | null {
  const src = join(dir, "deny.c");
  const prog = join(dir, "deny");
  writeFileSync(src, SRC);
  const cc = Bun.spawnSync(["cc", "-O2", "-no-pie", "-Wl,--build-id", "-o", prog, src], { stderr: "pipe" });
  return cc.exitCode === 0 ? prog : null;
}

const built = Bun.which("cc") !== null ? buildProg() : null;

describe.skipIf(built === null)("sysi run says which sites fell through at run time (needs cc)", () => {
  const prog = built ?? "";

  test("a site whose options all fail at run time: one line at exit naming the module and whose options failed", async () => {
    const first = await sysi(["run", "-s", "ud2", "--strict", "--hook", "passthrough", "--", prog, fresh()], env);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: "" }); // planned, all patched
    const made = fresh();
    const r = await sysi(["run", "-s", "ud2", "--hook", "passthrough", "--", prog, "--deny-patch", made], env);
    expect(r.code).toBe(0);
    expect(readFileSync(made, "utf8")).toBe("ran 1\n"); // the unpatched getppid ran natively
    const { start, exit, rest } = splitCoverage(r.stderr);
    expect({ start, rest }).toEqual({ start: null, rest: "" });
    expect(exit).toMatch(EXIT_GAP);
    expect(exit).toBe(
      `sysi: left unpatched during the run: 1 site whose planned strategies all failed at run time (${realpathSync(prog)} 1; options that failed: ud2 1): system calls made there bypassed the hook`,
    );
  });

  test("--strict: the program runs, then exit 2 with one error line naming the module", async () => {
    for (const extra of [{}, { SYSI_NO_FAST_RUN: "1" }] as Record<string, string>[]) {
      const made = fresh();
      const r = await sysi(["run", "-s", "ud2", "--strict", "--", prog, "--deny-patch", made, "exit-1"], {
        ...env,
        ...extra,
      });
      expect(existsSync(made)).toBe(true); // it ran
      expect(r.code).toBe(2); // not the program's 1
      const l = lines(r.stderr);
      // the count summary (default hook) comes first, the error line last
      expect(l.at(-1)).toBe(
        `sysi: error: --strict: left unpatched during the run: 1 site whose planned strategies all failed at run time (${realpathSync(prog)} 1; options that failed: ud2 1): system calls made there bypassed the hook`,
      );
      expect(l.filter((x) => x.startsWith("sysi: error"))).toHaveLength(1);
      expect(hasStack(r.stderr)).toBe(false);
    }
  });
});
