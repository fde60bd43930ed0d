/**
 * The real programs `sysi run` must handle (the `sysi run` issue's list). Each runs in its own
 * fresh temp directory with a fixed environment so that two runs print the same bytes.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Program {
  name: string;
  cmd: string[];
  /** Prepare the working directory. */
  setup?(dir: string): void;
  /** Needs this executable on PATH. */
  needs: string;
  /**
   * System calls that the program's own process makes and the processes it starts do not (a TCP
   * server's `socket`, `listen`): the count hook must have seen each one that `strace -f` sees in
   * the native run, so an uninstrumented main process cannot pass on its children's counts.
   */
  ownSyscalls?: string[];
  /** A known failure: `sysi run` tests it as a todo with this reason until it is fixed. */
  todo?: string;
  /** A known count-vs-strace mismatch: count.test.ts tests it as a todo with this reason. */
  countTodo?: string;
}

/**
 * Why the counts of a multi-threaded program that exits while other threads still make calls
 * differ now and then (Go's sysmon and netpoller, bun's HTTP client thread).
 */
const EXIT_RACE =
  "flaky under the strace oracle (1 run in 3 for Go, about 1 in 14 for bun): when exit_group kills the other threads, strace sometimes shows one call fewer than the hook counted (+1 read, nanosleep, epoll_ctl …) or a phantom exit_group for a killed thread (-1 exit_group); without strace the hook's counts equal the kernel's own sys_enter tracepoint counts (perf stat, 20 of 20 Go runs), so the gap is strace's (most likely a thread killed at its ptrace syscall-entry stop, whose call then never runs): count-perf.test.ts checks these programs against perf instead";

const FIXTURES = join(import.meta.dir, "fixtures");
let goVersion: string | null = null;

/**
 * fixtures/go-hello built static (CGO_ENABLED=0) or with cgo, once per source and toolchain: into
 * a temp-dir folder named by their hash (bun test runs no exit handlers to remove a per-run
 * folder), written to a temp name and renamed.
 */
export function goBinary(kind: "static" | "cgo"): string {
  const src = join(FIXTURES, "go-hello", "main.go");
  goVersion ??= Bun.spawnSync(["go", "version"]).stdout.toString();
  const version = goVersion;
  const hash = new Bun.CryptoHasher("sha256").update(readFileSync(src)).update(version).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), `sysi-e2e-go-${hash}`);
  const out = join(dir, `go-hello-${kind}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    CGO_ENABLED: kind === "cgo" ? "1" : "0",
  };
  if (env.GOCACHE === undefined && env.HOME === undefined) env.GOCACHE = join(dir, "cache");
  const tmp = `${out}.${process.pid}.tmp`;
  const r = Bun.spawnSync(["go", "build", "-trimpath", "-o", tmp, "main.go"], {
    cwd: join(FIXTURES, "go-hello"),
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build (${kind}) failed: ${r.stderr.toString().trim()}`);
  renameSync(tmp, out);
  return out;
}

const PY_THREADS = `
import threading, os
def work(i):
    p = f"t{i}.txt"
    with open(p, "w") as f:
        for j in range(200):
            f.write(f"{i}:{j}\\n")
    with open(p) as f:
        n = sum(1 for _ in f)
    os.unlink(p)
    results[i] = n
results = [0] * 8
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(results)
`;

const PERL_FORK = `
my @kids;
for my $i (1..4) {
  my $pid = fork();
  die "fork: $!" unless defined $pid;
  if ($pid == 0) { open(my $f, ">", "f$i") or die; print $f "x" x ($i * 100); close $f; exit $i; }
  push @kids, $pid;
}
my @st; for (@kids) { waitpid($_, 0); push @st, $? >> 8; }
print join(",", @st), "\\n";
print join(",", map { -s "f$_" } 1..4), "\\n";
`;

const HELLO_C = `#include <stdio.h>
int main(void) { for (int i = 0; i < 3; i++) printf("hello %d\\n", i); return 0; }
`;

export const PROGRAMS: Program[] = [
  { name: "ls -la /usr/lib", cmd: ["ls", "-la", "/usr/lib"], needs: "ls" },
  { name: "python3 8 threads file I/O", cmd: ["python3", "-c", PY_THREADS], needs: "python3" },
  { name: "perl forking children", cmd: ["perl", "-e", PERL_FORK], needs: "perl" },
  {
    name: "git init/add/commit/log",
    cmd: [
      "sh",
      "-c",
      "set -e; git init -q -b main .; echo hello > a.txt; git add a.txt; git commit -q -m first; echo more >> a.txt; git commit -q -am second; git log --format='%H %s'",
    ],
    needs: "git",
  },
  { name: "3-stage sh pipeline", cmd: ["sh", "-c", "seq 1 30000 | grep 7 | wc -l"], needs: "sh" },
  {
    name: "gcc compiling a C file",
    cmd: ["sh", "-c", "gcc -O1 -o hello hello.c && ./hello"],
    setup: (dir) => writeFileSync(join(dir, "hello.c"), HELLO_C),
    needs: "gcc",
  },
  {
    name: "tar czf then tar xzf",
    cmd: [
      "sh",
      "-c",
      "set -e; mkdir d; seq 1 5000 > d/a; tar czf x.tgz d; rm -r d; tar xzf x.tgz; wc -c d/a; tar tzf x.tgz",
    ],
    needs: "tar",
  },
  {
    name: "node: fs, spawnSync, worker thread, http on localhost",
    cmd: ["node", join(FIXTURES, "node-io.cjs")],
    needs: "node",
    ownSyscalls: ["socket", "listen"],
    countTodo:
      "flaky: in one full-suite run from a fresh clone the hook saw one openat fewer than strace under all three chains (43 vs 42); it did not recur in 10 runs of this test alone, with or without CPU load, nor in a full run of count.test.ts; cause not found yet",
  },
  {
    name: "bun: fs, Bun.spawnSync, Bun.serve and fetch on localhost",
    cmd: ["bun", join(FIXTURES, "bun-io.mjs")],
    needs: "bun",
    ownSyscalls: ["socket", "listen"],
    countTodo: EXIT_RACE,
  },
  {
    name: "static Go binary: goroutines, os/exec, net/http on localhost",
    cmd: ["./go-hello"],
    setup: (dir) => copyFileSync(goBinary("static"), join(dir, "go-hello")),
    needs: "go",
    ownSyscalls: ["socket", "listen"],
    todo: "sysi run runs a static executable as a patched copy, validated under -s ud2 only (run-static.test.ts); punning and zpoline do not yet give new threads of a static program their own runtime state (issue 15 slice C)",
  },
  {
    name: "Go binary with cgo (dynamic): raw runtime syscalls beside libc",
    cmd: ["./go-hello"],
    setup: (dir) => copyFileSync(goBinary("cgo"), join(dir, "go-hello")),
    needs: "go",
    ownSyscalls: ["socket", "listen"],
    countTodo: EXIT_RACE,
  },
  {
    name: "make with a recursive make",
    cmd: ["make", "-s"],
    setup: (dir) => {
      copyFileSync(join(FIXTURES, "Makefile"), join(dir, "Makefile"));
      writeFileSync(join(dir, "in.txt"), "1\n2\n3\n4\n5\n");
    },
    needs: "make",
  },
  {
    name: "find | sort | sed -n 1,10p (reads all: head would race sort's EPIPE)",
    cmd: ["sh", "-c", "find /usr/lib -maxdepth 3 -name '*.so' | sort | sed -n 1,10p"],
    needs: "find",
  },
  {
    name: "yes | head -n 3 (yes killed by SIGPIPE, no handler)",
    cmd: ["sh", "-c", "yes | head -n 3"],
    needs: "yes",
  },
  {
    name: "seq | sort | head -n 1 (sort's SIGPIPE handler re-raises)",
    cmd: ["sh", "-c", "seq 1 200000 | sort -n | head -n 1"],
    needs: "sort",
  },
  {
    name: "awk and sort pipeline",
    cmd: [
      "sh",
      "-c",
      "seq 1 20000 | awk '{print $1 % 97, $1}' | sort -n -k1,1 -k2,2 | awk '{s[$1]+=$2} END {for (k in s) print k, s[k]}' | sort -n | tail -5",
    ],
    needs: "awk",
  },
  {
    name: "sqlite3 insert, index, query, integrity check",
    cmd: [
      "sqlite3",
      "t.db",
      "create table t(a integer, b text); with recursive c(x) as (select 1 union all select x+1 from c where x<2000) insert into t select x, hex(x) from c; create index ib on t(b); select count(*), sum(a), max(b) from t; pragma integrity_check;",
    ],
    needs: "sqlite3",
  },
  {
    name: "curl file://",
    cmd: [
      "sh",
      "-c",
      "curl -sS file:///etc/os-release | head -3; curl -sS -o /dev/null -w '%{http_code} %{size_download}\\n' file:///usr/share/common-licenses/GPL-3",
    ],
    needs: "curl",
  },
  {
    name: "ssh-keygen ed25519 and rsa keys",
    cmd: [
      "sh",
      "-c",
      "set -e; ssh-keygen -q -t ed25519 -N '' -C test -f k; ssh-keygen -l -f k.pub | wc -w; ssh-keygen -y -f k > y.pub; cmp k.pub y.pub; cut -d' ' -f1,3 k.pub; ssh-keygen -q -t rsa -b 2048 -N '' -C r -f r; ssh-keygen -y -f r | cut -c1-8",
    ],
    needs: "ssh-keygen",
  },
];

/** A fixed environment: same bytes natively and instrumented (git dates, locale, home). */
export function programEnv(dir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    LANG: "C",
    LC_ALL: "C",
    TZ: "UTC",
    GIT_AUTHOR_NAME: "sysi",
    GIT_AUTHOR_EMAIL: "sysi@example.invalid",
    GIT_COMMITTER_NAME: "sysi",
    GIT_COMMITTER_EMAIL: "sysi@example.invalid",
    GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z",
    GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z",
    GIT_CONFIG_NOSYSTEM: "1",
  };
}
