/**
 * bun bench/run.ts [--rounds N] [--json] [--only GROUPS] [--target-ms T] [--reps K] [--tiny] [-v]
 *
 * The same as `sysi bench` (the logic lives in packages/cli/src/bench/): ns per getppid under
 * every strategy and hook, interleaved, plus the startup cost of `sysi run -- /bin/true`.
 * See docs/benchmarks.md.
 */
import { benchMain } from "../packages/cli/src/bench/main.ts";

await benchMain(process.argv.slice(2));
