#!/usr/bin/env bash
# Fetches Debian bookworm's strace source package (the same archive as the system's, through a
# private apt configuration: no system sources are changed) and builds the test programs the
# trace oracle test uses (packages/cli/test/e2e/trace-oracle.test.ts) into
# ${SYSI_STRACE_TESTS:-$HOME/.cache/sysi/strace-tests}/strace-*/tests.
#   bash scripts/strace-tests.sh        (idempotent; ~1 min: configure, then make -C tests NAMES)
set -euo pipefail
dest="${SYSI_STRACE_TESTS:-$HOME/.cache/sysi/strace-tests}"
# the list may span lines (biome wraps it): join them first
names="$(tr '\n' ' ' <"$(dirname "$0")/../packages/cli/test/e2e/trace-oracle.test.ts" |
  sed -n 's/.*export const ORACLE_TESTS = *"\([^"]*\)";.*/\1/p')"
[ -n "$names" ] || { echo "strace-tests: no ORACLE_TESTS list found in trace-oracle.test.ts" >&2; exit 1; }
mkdir -p "$dest/apt/lists/partial" "$dest/apt/cache/archives/partial" "$dest/apt/parts"
cat >"$dest/apt/parts/src.sources" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$dest/apt/parts"
  -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache")
if ! ls -d "$dest"/strace-*/tests >/dev/null 2>&1; then
  apt-get "${apt[@]}" update -qq
  (cd "$dest" && apt-get "${apt[@]}" source --download-only strace >/dev/null 2>&1)
  tar -C "$dest" -xf "$dest"/strace_*.orig.tar.xz
fi
src="$(ls -d "$dest"/strace-*/ | head -1)"
[ -f "$src/tests/Makefile" ] || (cd "$src" && ./configure --enable-mpers=no >/dev/null)
make -s -C "$src/tests" scno.h >/dev/null
# shellcheck disable=SC2086
make -s -j2 -C "$src/tests" $names >/dev/null
for t in $names; do [ -x "$src/tests/$t" ] || { echo "strace-tests: $t was not built" >&2; exit 1; }; done
echo "strace-tests: built $(echo $names | wc -w) programs in ${src}tests"
