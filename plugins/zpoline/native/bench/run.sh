#!/bin/sh
# Builds and runs the zpoline micro-benchmark under libsysi (needs page 0: root).
#   plugins/zpoline/native/bench/run.sh [N]
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
make -s -C "$here/.." all bench
make -s -C "$root/packages/core/native" >/dev/null
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT
bun "$root/scripts/plan-dir.ts" -s zpoline -o "$plans" "$here/../build/zpbench" >/dev/null
LD_LIBRARY_PATH="$here/../build" LD_PRELOAD="$root/packages/core/native/build/libsysi.so" \
SYSI_PLAN_DIR="$plans" SYSI_HOOK="$here/../build/zpbench-hook.so" \
SYSI_RUNTIMES="$here/../build/libsysi-zpoline.so#sysi_zpoline_entry" \
	taskset -c 1 "$here/../build/zpbench" "$@"
