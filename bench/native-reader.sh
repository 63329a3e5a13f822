#!/usr/bin/env bash
# Compile bench/native-reader.c (cc -O2) into bench/.work/ and run it:
#   bench/native-reader.sh [passes=20]
# Prints "key value" lines: mode, cgroups, files_read, files_missing, bytes,
# dirs_listed, fd_dirs, readlinks, stats, pids, passes, ms_min, ms_median, ms_p95,
# ms_max, ms_all (one pass = what one podvisor gather reads; see native-reader.c).
set -euo pipefail

die() { printf 'native-reader: FAILED: %s\n' "$*" >&2; exit 1; }

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$BENCH/.work/native-reader
mkdir -p "$BENCH/.work"
if [[ ! -x $BIN || $BENCH/native-reader.c -nt $BIN ]]; then
	cc -O2 -Wall -Wextra -o "$BIN" "$BENCH/native-reader.c" || die "cc -O2 native-reader.c failed"
fi
"$BIN" "${1:-20}"
