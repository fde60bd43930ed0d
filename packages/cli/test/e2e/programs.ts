/**
 * The real programs `sysi run` must handle (the `sysi run` issue's list). Each runs in its own
 * fresh temp directory with a fixed environment so that two runs print the same bytes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Program {
  name: string;
  cmd: string[];
  /** Prepare the working directory. */
  setup?(dir: string): void;
  /** Needs this executable on PATH. */
  needs: string;
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
