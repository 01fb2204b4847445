#!/usr/bin/env bash
# Issue 15, target 6: the --workers curve (1, 2, 4, 8, 16) of C and of 200
# concurrent uploads, for a many-core machine, in one bounded run of
# bench/curves.sh parts (about 6 minutes on 16 cores; root).
#
#   bench/multicore.sh                       # builds build-bench first
#   BUILD=/abs/release SKIP_BUILD=1 bench/multicore.sh   # a prebuilt release
#   SMALL=1 bench/multicore.sh               # a rehearsal with small counts (~1 minute on 2 cores)
#
# Parts, each capped by `timeout` so that one stuck part cannot eat the run:
#   uploads-disk   200 uploads × 4 MiB into the disk (SHA-256, fsync), and C (200 × 4 MiB)
#   uploads-tmpfs  the same uploads into a tmpfs folder: no disk, the protocol's cost
#   uploads-big    200 × 32 MiB into tmpfs, SHA-256 then xxh3-128: long enough to read CPU from
#   burst          C with 2,000 clients (1 s or more per run), --verify none then xxh3-128
#   idle           E at 10,000 connections with one worker per core
#   burst-most     C at 9,000 clients (10,000 needs more than a 20,000-descriptor limit)
# Every table and JSON line goes to OUT (bench/results/multicore-<date>/).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
export BUILD=${BUILD:-build-bench} WHO=ferry
OUT=${OUT:-$REPO/bench/results/multicore-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
if [[ -z ${SKIP_BUILD:-} ]]; then
    if ! { [[ -f $BUILD/build.ninja ]] || meson setup "$BUILD" --buildtype=release; } >"$OUT/build.log" 2>&1 ||
        ! nice ninja -C "$BUILD" server/ferryd client/ferry bench/ferry-loadgen >>"$OUT/build.log" 2>&1; then
        echo "multicore.sh: the release build failed (see $OUT/build.log)" >&2
        exit 1
    fi
fi
export SKIP_BUILD=1
{
    echo "- $(nproc) cores: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); Linux $(uname -r)"
    echo "- memory $(free -g | awk '/^Mem:/ { print $2 }') GiB; served disk: $(df -h /tmp | awk 'NR == 2 { print $1 }'), $(findmnt -no FSTYPE -T /tmp 2>/dev/null)"
    echo "- ulimit -Hn $(ulimit -Hn); local ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range); somaxconn $(cat /proc/sys/net/core/somaxconn)"
} >"$OUT/machine.md"

part() { # NAME SECONDS VAR=VALUE...
    local name=$1 secs=$2 res
    shift 2
    echo "[$(date +%T)] $name" >&2
    touch "$OUT/.stamp"
    sleep 1
    env "$@" timeout -k 5 "$secs" bash bench/curves.sh >>"$OUT/log.txt" 2>&1 || echo "multicore.sh: $name failed (see $OUT/log.txt)" >&2
    res=$(find bench/results -maxdepth 1 -name 'curves-*' -newer "$OUT/.stamp" | head -n 1)
    if [[ -z $res ]]; then
        echo "## $name: no results" >>"$OUT/tables.md"
        return
    fi
    { echo "## $name: $*"; echo; cat "$res/table.md"; echo; } >>"$OUT/tables.md"
    sed "s/^/{\"part\": \"$name\", \"r\": /; s/\$/}/" "$res/curves.jsonl" >>"$OUT/curves.jsonl"
}

if [[ -n ${SMALL:-} ]]; then
    W=1,2 R=1 R3=1 U=20 B=50 BB=100 M=8 I=2000 BBB=300 T=2
else
    W=1,2,4,8,16 R=5 R3=3 U=200 B=200 BB=2000 M=32 I=10000 BBB=9000 T=8
fi
MANY="FERRYD_ARGS=--max-transfers 20000 --max-transfers-per-address 20000"
TMPFS=/dev/shm/ferry-multicore-work
part uploads-disk 150 ONLY=uploads,burst WORKERS=$W REPS=$R UPLOADS=$U BURST=$B LOADGEN_THREADS=$T
part uploads-tmpfs 80 ONLY=uploads WORKERS=$W REPS=$R UPLOADS=$U WORK=$TMPFS
part uploads-big 150 ONLY=uploads WORKERS=$W REPS=$R3 UPLOADS=$U UP_MIB=$M WORK=$TMPFS
part uploads-big-xxh3 150 ONLY=uploads WORKERS=$W REPS=$R3 UPLOADS=$U UP_MIB=$M HASH=xxh3-128 WORK=$TMPFS
part burst 80 ONLY=burst WORKERS=$W REPS=$R3 BURST=$BB LOADGEN_THREADS=$T "$MANY"
part burst-xxh3 80 ONLY=burst WORKERS=$W REPS=$R3 BURST=$BB LOADGEN_THREADS=$T C_VERIFY=xxh3-128 "$MANY"
part idle 40 ONLY=idle IDLE_SIZES=$I
part burst-most 40 ONLY=burst WORKERS="$(nproc)" REPS=1 BURST=$BBB LOADGEN_THREADS=$T "$MANY"
rm -rf "$TMPFS" "$OUT/.stamp"
cat "$OUT/machine.md" "$OUT/tables.md"
echo "[$(date +%T)] tables and JSON lines: $OUT" >&2
