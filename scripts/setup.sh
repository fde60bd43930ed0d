#!/usr/bin/env bash
# Installs what sysi and its tests need on a fresh Debian x86-64 machine (idempotent):
# Debian packages (C and C++ compilers, binutils for objdump, strace, perf for the count oracle without
# ptrace stops, Go for the static-binary test, setcap and setpriv for the escapes test),
# Bun 1.4.5 (the machine's Node is too old for the toolchain), and the workspace dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for p in gcc g++ make binutils strace linux-perf golang-go musl-tools python3 perl git tar gzip libcap2-bin util-linux; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || { echo "setup: need root to apt-get install ${need[*]}" >&2; exit 1; }
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v bun >/dev/null || [ "$(bun --version)" != "1.4.5" ]; then
  npm i -g bun@1.4.5 --allow-scripts=bun >/dev/null
fi
bun install --frozen-lockfile >/dev/null
# strace's own test programs, the trace hook's oracle (trace-oracle.test.ts skips without them)
bash scripts/strace-tests.sh || echo "setup: strace test programs not built: trace-oracle.test.ts will skip" >&2
