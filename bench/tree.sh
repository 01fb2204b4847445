#!/usr/bin/env bash
# Issue 14's tree benchmark: ferry sync beside rsync's daemon on 127.0.0.1, in one run.
#
#   bench/tree.sh                         # everything, REPS=3 (about 15 minutes on 2 cores, root)
#   REPS=1 ONLY=rsync,rsync_fsync,ferry bench/tree.sh # the tree steps only, once
#   SKIP_BUILD=1 bench/tree.sh            # measure what build-bench holds
#
# 1. builds a release ferryd and ferry in build-bench (as compare.sh does);
# 2. runs bench/tree_bench.py (see its docstring for every step and knob): rsync's side is
#    ../shared/bench-anchors/tree/rsync.sh, called from there, never copied; the FTP anchors are
#    their own configs (vsftpd, pyftpdlib), installed from Debian when missing;
# 3. prints the tables and keeps them with the raw JSON lines in bench/results/tree-<date>/ (git-ignored).
# Every child runs in its own process group under `timeout`, stopped by its id on exit or Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
export ANCHORS=${ANCHORS:-$REPO/../shared/bench-anchors}
BUILD=${BUILD:-build-bench}
case "$BUILD" in /*) BUILD_DIR=$BUILD ;; *) BUILD_DIR=$REPO/$BUILD ;; esac
export REPS=${REPS:-3} WORK=${WORK:-/tmp/ferry-tree-bench} TMPFS=${TMPFS:-/dev/shm/ferry-tree-bench}
PY=/usr/bin/python3

die() { echo "tree.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root: rsync's daemon, vsftpd and the packages need it"
[[ -f $ANCHORS/tree/rsync.sh ]] || die "no anchors at $ANCHORS (set ANCHORS=...)"
avail=$(df -Pk "$(dirname "$WORK")" | awk 'NR == 2 { print int($4 / 1048576) }')
# Every tree stays until the end (tree_bench.py: LEFT_FOR_THE_END): per rep three for each rsync run (plain
# and --fsync) and two per ferry hash, plus ferry's source; about 0.14 MB per file of the tree, so 1.4 GB at
# 10,000 files.
nhashes=$(awk -F, '{ print NF }' <<<"${HASHES:-sha256,xxh3-128}")
nrsyncs=0
for r in rsync rsync_fsync; do [[ ,${ONLY:-rsync,rsync_fsync},  == *,$r,* ]] && nrsyncs=$((nrsyncs + 1)); done
need=$(( (3 * nrsyncs * REPS + 2 * nhashes * REPS + 1) * ${FILES:-10000} * 140 / 1048576 + 1 ))  # KB per file -> GiB
(( avail >= need )) || die "$(dirname "$WORK") has $avail GiB free; needs $need (every tree is kept until the end)"

missing=""
for p in rsync vsftpd python3-pyftpdlib; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [[ -n $missing ]]; then
    log "installing:$missing"
    made_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then   # keeps apt from starting vsftpd as a service
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
fi

STAMP=$(date +%Y%m%d-%H%M%S)
RES=$REPO/bench/results/tree-$STAMP
mkdir -p "$RES"

CHILD=
cleanup() {
    local rc=$?
    trap - INT TERM EXIT
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM -- "-$CHILD" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    rm -rf "$TMPFS"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export FERRYD=$BUILD_DIR/server/ferryd FERRY=$BUILD_DIR/client/ferry
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building a release ferry in $BUILD_DIR"
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        meson setup "$BUILD_DIR" "$REPO" --buildtype=release >"$RES/build.log" 2>&1 ||
            { tail -n 30 "$RES/build.log" >&2; die "meson setup failed"; }
    fi
    nice ninja -C "$BUILD_DIR" server/ferryd client/ferry >>"$RES/build.log" 2>&1 ||
        { grep -E 'error|FAILED' "$RES/build.log" | head -n 20 >&2; die "build failed (see $RES/build.log)"; }
fi
[[ -x $FERRYD && -x $FERRY ]] || die "no ferryd/ferry in $BUILD_DIR"
{
    echo "date: $(date -u +%FT%TZ); commit: $(git -C "$REPO" rev-parse --short HEAD)"
    echo "kernel: $(uname -r); cores: $(nproc); $(df -PT "$(dirname "$WORK")" | awk 'NR == 2 { print $2 }') under $WORK"
    dpkg-query -W -f='${Package} ${Version}\n' rsync vsftpd python3-pyftpdlib
} >"$RES/versions.txt"

setsid timeout -k 10 "${TIMEOUT:-5400}" "$PY" "$REPO/bench/tree_bench.py" >"$RES/results.jsonl" &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=
[[ -f $WORK/table.md ]] && cp "$WORK/table.md" "$RES/table.md"
log "results in $RES"
exit "$rc"
