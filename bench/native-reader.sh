#!/usr/bin/env bash
# Compile bench/native-reader.c (cc -O2) into bench/.work/ and run it:
#   bench/native-reader.sh [passes=20]
# Prints "key value" lines: cgroups, files_read, files_missing, bytes, passes,
# ms_min, ms_median, ms_max (one pass = walk + read every file of every cgroup).
set -euo pipefail

die() { printf 'native-reader: FAILED: %s\n' "$*" >&2; exit 1; }

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$BENCH/.work/native-reader
mkdir -p "$BENCH/.work"
if [[ ! -x $BIN || $BENCH/native-reader.c -nt $BIN ]]; then
	cc -O2 -Wall -Wextra -o "$BIN" "$BENCH/native-reader.c" || die "cc -O2 native-reader.c failed"
fi
"$BIN" "${1:-20}"
