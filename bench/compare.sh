#!/usr/bin/env bash
# Issue 5's benchmark in one command: ferry beside vsftpd, nginx, pyftpdlib,
# the fork-per-client seed server and iperf3, in one run, on 127.0.0.1.
#
#   1. builds a release ferryd and ferry in build-bench (its own build folder);
#   2. runs the reference servers through ../shared/bench-anchors/run.sh
#      (called, not copied; it installs its Debian packages and makes the test
#      files in /tmp/anchors/root/srv: big.bin 1 GiB, m4.bin 4 MiB, 98 small);
#   3. starts ferryd on a free port serving the same folder and runs the same
#      workloads on it (bench/ferry_bench.py): A 1 GiB get, B 1 GiB put
#      (also into a tmpfs-served folder, beside dd conv=fsync),
#      C 200 and 2,000 clients at once x 4 MiB, D list req/s from 8 clients,
#      E 10,000 (and 2,000) idle sessions, F a 4 GiB get to a stalled reader;
#   4. prints one markdown report (medians (min-max), ratios, the issue's
#      targets met or missed) and keeps it with the raw JSON lines in
#      bench/results/compare-<date>/ (git-ignored).
#
# Env: REPS (3) repetitions; DUR (10) seconds per D run; NCLIS (200,2000);
#      NIDLES (10000,2000) idle sessions for ferry; NIDLE_ANCHORS (2000);
#      STALL (20) seconds the F reader stalls; F_GIB (4);
#      ONLY (A,B,C,D,E,F,S) ferry workloads; ANCHOR_ONLY (A,B,C,D,E,I);
#      SKIP_ANCHORS=1 ferry only (quick iterations); ANCHORS (path of
#      bench-anchors, default ../shared/bench-anchors beside the repo);
#      BUILD (build-bench); SKIP_BUILD=1 use what is built there;
#      REV=<commit> (e.g. HEAD) build and measure that commit, not the working tree;
#      FERRYD_ARGS (more ferryd flags, e.g. "--workers 1");
#      FAST_HASH_ARGS (client flags of the fast integrity option; default
#      "--hash xxh3-128" when the client has --hash);
#      LOADGEN (cpp) C/D/E clients: cpp = bench/ferry-loadgen (built here, one
#      libuv loop), python = bench/ferry_load.py (asyncio / processes);
#      D_CONNS (8) D's sessions; E_SOURCES (auto: one source address
#      127.0.0.K per 20,000 idle connections).
# Needs root (the anchors install packages and run vsftpd), bash 5,
# python3 (standard library), meson and ninja. About 12 minutes on 2 cores.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$REPO/../shared/bench-anchors}
# REV=<commit> measures a committed revision instead of the working tree:
# its files are exported (git archive) to /tmp/ferry-bench-src-<sha> and
# built in build-bench-<sha>, so edits in progress cannot break the run.
SOURCE=$REPO
if [[ -n ${REV:-} ]]; then
    rev=$(git -C "$REPO" rev-parse --short "$REV^{commit}") || { echo "compare.sh: no commit '$REV'" >&2; exit 1; }
    SOURCE=/tmp/ferry-bench-src-$rev
    BUILD=${BUILD:-build-bench-$rev}
fi
BUILD=${BUILD:-build-bench}
case "$BUILD" in /*) BUILD_DIR=$BUILD ;; *) BUILD_DIR=$REPO/$BUILD ;; esac
export REPS=${REPS:-3} DUR=${DUR:-10}
export NCLIS=${NCLIS:-200,2000} NIDLES=${NIDLES:-10000,2000} STALL=${STALL:-20} F_GIB=${F_GIB:-4}
NIDLE_ANCHORS=${NIDLE_ANCHORS:-2000}
ANCHOR_ONLY=${ANCHOR_ONLY:-A,B,C,D,E,I}
export ONLY=${ONLY:-A,B,C,D,E,F,S}
SRV=/tmp/anchors/root/srv          # fixed by the anchors' configs
PY=/usr/bin/python3                # the interpreter the anchors use too

die() { echo "compare.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer (got '$REPS')"
[[ $(id -u) -eq 0 ]] || die "run as root: the anchors install packages and start vsftpd"
[[ -x $PY ]] || die "$PY is needed"
[[ -n ${SKIP_ANCHORS:-} || -x $ANCHORS/run.sh ]] || die "no anchors at $ANCHORS (set ANCHORS=...)"
# E holds its idle sockets in one process and as many in ferryd; C its
# clients. Raised as far as the hard limit allows (raising that needs
# CAP_SYS_RESOURCE, which a container may not have).
# A C client costs ferryd up to three descriptors while its get runs (the
# socket, the file, the dup'd one that waits for room): 10,000 clients with
# a limit of 20,000 lost 27 gets to EMFILE here.
max_idle=$(tr ',' '\n' <<<"$NIDLES" | sort -n | tail -n 1)
max_cli3=$(( 3 * $(tr ',' '\n' <<<"$NCLIS" | sort -n | tail -n 1) ))
(( max_cli3 > ${max_idle:-0} )) && max_idle=$max_cli3
want_fds=$(( ${max_idle:-0} + 1000 > 20000 ? ${max_idle:-0} + 1000 : 20000 ))
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# An E count past the limit is skipped (and said so in the report); C's are needed.
max_cli=$(tr ',' '\n' <<<"$NCLIS" | sort -n | tail -n 1)
(( $(ulimit -n) > ${max_cli:-0} + 100 )) || die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)): too low for $max_cli clients"
export LOADGEN=${LOADGEN:-cpp}
avail_tmp=$(df -Pk /tmp | awk 'NR == 2 { print int($4 / 1048576) }')
(( avail_tmp >= 4 )) || die "/tmp has ${avail_tmp} GiB free; needs 4 (test files, one upload)"
if [[ ,$ONLY, == *,B,* ]]; then
    avail_shm=$(df -Pk /dev/shm | awk 'NR == 2 { print int($4 / 1048576) }')
    (( avail_shm >= 2 )) || die "/dev/shm has ${avail_shm} GiB free; B's upload into tmpfs (Bt) needs 2"
fi

STAMP=$(date +%Y%m%d-%H%M%S)
RES=$REPO/bench/results/compare-$STAMP
RUN=$(mktemp -d /tmp/ferry-compare.XXXXXX)
mkdir -p "$RES"

# Every child runs in its own session (setsid), so cleanup can stop it and
# everything it started by its process-group id, and nothing else.
CHILD=
cleanup() {
    local rc=$?
    trap - INT TERM EXIT
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        log "stopping process group $CHILD"
        kill -TERM -- "-$CHILD" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    rm -rf "$RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_group LOG TIMEOUT CMD...: runs CMD in a new session, output to LOG and stderr.
run_group() {
    local logf=$1 limit=$2
    shift 2
    setsid timeout -k 10 "$limit" "$@" > >(tee -a "$logf" >&2) 2>&1 &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    # a signal can end the wait while the child still runs: keep its id for
    # cleanup then; forget it once it is gone (never signal a reused id)
    kill -0 "$CHILD" 2>/dev/null || CHILD=
    return "$rc"
}

T0=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. build ------------------------------------------------------------------
FERRYD=$BUILD_DIR/server/ferryd FERRY=$BUILD_DIR/client/ferry
if [[ -z ${SKIP_BUILD:-} ]]; then
    if [[ $SOURCE != "$REPO" && ! -f $SOURCE/meson.build ]]; then
        log "exporting $rev to $SOURCE"
        rm -rf "$BUILD_DIR"   # it may point at an older export of this revision
        mkdir -p "$SOURCE"
        git -C "$REPO" archive "$rev" | tar -x -C "$SOURCE" || die "git archive $rev failed"
    fi
    log "building a release ferry from $SOURCE in $BUILD_DIR"
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        meson setup "$BUILD_DIR" "$SOURCE" --buildtype=release >"$RES/build.log" 2>&1 ||
            { tail -n 30 "$RES/build.log" >&2; die "meson setup failed"; }
    fi
    targets=(server/ferryd client/ferry)
    [[ $LOADGEN == python ]] || targets+=(bench/ferry-loadgen)
    nice ninja -C "$BUILD_DIR" "${targets[@]}" >>"$RES/build.log" 2>&1 ||
        { grep -E 'error|FAILED' "$RES/build.log" | head -n 20 >&2; die "build failed (see $RES/build.log)"; }
fi
[[ -x $FERRYD && -x $FERRY ]] || die "no ferryd/ferry in $BUILD_DIR"
export FERRYD FERRY LOADGEN_BIN=$BUILD_DIR/bench/ferry-loadgen
[[ $LOADGEN == python || -x $LOADGEN_BIN ]] || die "no $LOADGEN_BIN (LOADGEN=python uses ferry_load.py)"

# ---- 2. the references ---------------------------------------------------------
if [[ -z ${SKIP_ANCHORS:-} ]]; then
    log "anchors: REPS=$REPS DUR=$DUR NCLI=200 NIDLE=$NIDLE_ANCHORS ONLY=$ANCHOR_ONLY"
    # (variables go through env rather than VAR=... before the function name)
    run_group "$RES/anchors.log" 1500 env REPS="$REPS" DUR="$DUR" NCLI=200 NIDLE="$NIDLE_ANCHORS" \
        ONLY="$ANCHOR_ONLY" bash "$ANCHORS/run.sh" || die "the anchors failed (see $RES/anchors.log)"
    cp /tmp/anchors/out/results.jsonl "$RES/anchors.jsonl"
    cp /tmp/anchors/out/versions.txt "$RES/versions.txt" 2>/dev/null || true
else
    log "SKIP_ANCHORS: ferry only"
    [[ -f $SRV/m4.bin && -f $SRV/big.bin ]] || die "no test files in $SRV: run once without SKIP_ANCHORS"
    : >"$RES/anchors.jsonl"
fi
n=$(find "$SRV" -maxdepth 1 -type f ! -name '.*' | wc -l)
[[ $n == 100 ]] || die "$SRV holds $n visible files, expected 100"

# ---- 3. ferry --------------------------------------------------------------------
log "ferry: REPS=$REPS ONLY=$ONLY NCLIS=$NCLIS NIDLES=$NIDLES STALL=$STALL F_GIB=$F_GIB"
run_group "$RES/ferry.log" 1500 env SRV="$SRV" OUT="$RES/ferry.jsonl" RUN="$RUN" \
    "$PY" "$REPO/bench/ferry_bench.py" || die "ferry workloads failed (see $RES/ferry.log)"

# ---- 4. report ---------------------------------------------------------------------
if [[ $SOURCE != "$REPO" ]]; then
    commit=$rev dirty=
else
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git -C "$REPO" status --porcelain -- server client protocol meson.build 2>/dev/null | head -c1)
fi
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
{
    echo "## ferry vs the references, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores (${cpu_model:-?}), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, Linux $(uname -r), Debian $(cat /etc/debian_version)"
    echo "- ferry $commit${dirty:+ (uncommitted changes in server/client/protocol)}, release build ($BUILD), $(c++ --version | head -n 1); libuv $(pkgver libuv1), OpenSSL $(openssl version | cut -d' ' -f2)"
    echo "- references: vsftpd $(pkgver vsftpd), nginx $(pkgver nginx), pyftpdlib $(pkgver python3-pyftpdlib), iperf3 $(pkgver iperf3), curl $(pkgver curl), Python $($PY --version 2>&1 | cut -d' ' -f2)"
    echo "- REPS=$REPS, DUR=${DUR}s, C clients $NCLIS (references: 200), E sessions $NIDLES (references: $NIDLE_ANCHORS), F ${F_GIB} GiB stalled ${STALL}s"
    echo "- load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg); whole run $((SECONDS - T0)) s"
    echo
    "$PY" "$REPO/bench/compare_report.py" "$RES/anchors.jsonl" "$RES/ferry.jsonl"
} >"$RES/table.md"
cat "$RES/table.md"
log "raw results and the table: $RES"
