/*
 * bench.h — what getppid.c and hooks/self-answer.c agree on.
 *
 * The self-answering hook answers every syscall number listed in SYSI_BENCH_ANSWER (comma list
 * of decimal numbers, default "110" = getppid) with SYSI_BENCH_ANSWER_BASE + nr and performs no
 * system call; every other number is passed on with sysi_syscall(). The harness then runs
 * `getppid inline --nr N --expect <SYSI_BENCH_ANSWER_BASE + N>`, so a result that did not come
 * from the hook counts as bad.
 */
#ifndef SYSI_BENCH_H
#define SYSI_BENCH_H

#define SYSI_BENCH_ANSWER_ENV "SYSI_BENCH_ANSWER"
#define SYSI_BENCH_ANSWER_BASE 0x51510000L
#define SYSI_BENCH_ANSWER_MAXNR 512

/* What the indirect-call floor's function returns. */
#define SYSI_BENCH_FLOOR_VALUE 0x5151L

#endif
