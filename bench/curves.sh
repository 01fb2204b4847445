#!/usr/bin/env bash
# Issue 15's curves: how each cost of ferry grows with its work, in one run
# on 127.0.0.1 (bench/curves.py does the measuring; bench/README.md).
#
#   bench/curves.sh                 # full: about 11 minutes on 2 cores (root)
#   QUICK=1 bench/curves.sh         # every curve, small counts: about 3 minutes
#   ONLY=size,list SKIP_BUILD=1 bench/curves.sh
#
# 1. builds a release ferryd and ferry in build-bench (as compare.sh does);
# 2. serves WORK (/tmp/anchors/root/curves: inside the anchors' vsftpd
#    chroot, so that vsftpd serves the same files) with ferryd, vsftpd (the
#    anchors' conf/vsftpd.conf) and pyftpdlib (conf/pyftpd_server.py), both
#    called from ../shared/bench-anchors, never copied;
# 3. writes the tables and the JSON lines to bench/results/curves-<date>/.
#
# Env: QUICK=1; REPS; SIZES (size:count,...); WHO; LIST_SIZES; LIST_SECS;
#      IDLE_SIZES; UPLOADS; UP_MIB; BURST; WORKERS (1,2: --workers of the
#      uploads and burst curves); FERRYD_ARGS; HASH; ONLY
#      (a,size,list,idle,uploads,burst); A_MIB; WORK; DL; BUILD; SKIP_BUILD; ANCHORS;
#      LOADGEN (cpp: bench/ferry-loadgen for C and E, built here; python:
#      bench/ferry_load.py); LOADGEN_THREADS (1: C's client loop threads);
#      C_VERIFY (none: C's clients check nothing; sha256 or xxh3-128);
#      PY (/usr/bin/python3).
#
# On a many-core machine with a prebuilt release (the multi-core curve):
#   BUILD=/abs/dir SKIP_BUILD=1 WHO=ferry ONLY=uploads,burst WORKERS=1,2,4,8,16 LOADGEN_THREADS=8 bench/curves.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
export ANCHORS=${ANCHORS:-$REPO/../shared/bench-anchors}
BUILD=${BUILD:-build-bench}
case "$BUILD" in /*) BUILD_DIR=$BUILD ;; *) BUILD_DIR=$REPO/$BUILD ;; esac
PY=${PY:-/usr/bin/python3}

die() { echo "curves.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

# The measuring runs in its own session: on exit or Ctrl-C that group is
# stopped by its id (it stops its servers by PID itself first).
CHILD= OLD_PORTS=
cleanup() {
    local rc=$?
    trap - INT TERM EXIT
    [[ -z $OLD_PORTS ]] || echo "$OLD_PORTS" >/proc/sys/net/ipv4/ip_local_port_range
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM -- "-$CHILD" 2>/dev/null || true
        for _ in $(seq 75); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$CHILD" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${QUICK:-} ]]; then
    : "${REPS:=1}" "${SIZES:=4K:200,64K:100,1M:32,64M:2}" "${LIST_SIZES:=100,1000,10000}"
    : "${LIST_SECS:=2}" "${IDLE_SIZES:=1000,5000}" "${UPLOADS:=50}" "${BURST:=50}" "${A_MIB:=256}"
fi
export REPS=${REPS:-3} SIZES=${SIZES:-4K:1000,64K:500,1M:200,64M:8,1G:1}
export LIST_SIZES=${LIST_SIZES:-100,10000,100000} LIST_SECS=${LIST_SECS:-3}
export IDLE_REPS=${IDLE_REPS:-1} IDLE_SIZES=${IDLE_SIZES:-1000,10000,50000} UPLOADS=${UPLOADS:-200} UP_MIB=${UP_MIB:-4}
export A_MIB=${A_MIB:-1024} BURST=${BURST:-200} WORKERS=${WORKERS:-1,2} WHO=${WHO:-ferry,vsftpd,pyftpdlib}
export ONLY=${ONLY:-a,size,list,idle,uploads,burst} FERRYD_ARGS=${FERRYD_ARGS:-} HASH=${HASH:-}
export WORK=${WORK:-/tmp/anchors/root/curves} DL=${DL:-/dev/shm/ferry-curves-dl}

[[ $(id -u) -eq 0 ]] || die "run as root: vsftpd, and 50,000 descriptors"
[[ -x $PY ]] || die "$PY is needed"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer (got '$REPS')"
# E holds every idle connection's two ends on this machine; in C, ferryd
# holds a socket and an open file per client. Only the curves asked for count.
max_idle=0 max_burst=0
[[ ,$ONLY, != *,idle,* ]] || max_idle=$(tr ',' '\n' <<<"$IDLE_SIZES" | sort -n | tail -n 1)
[[ ,$ONLY, != *,burst,* ]] || max_burst=$BURST
need=$(( max_idle > 2 * max_burst ? max_idle : 2 * max_burst ))
ulimit -n $((2 * need + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > need + 100 )) ||
    die "ulimit -n is $(ulimit -n): too low for $max_idle idle sessions and $max_burst clients at once"
# Every idle connection comes from 127.0.0.1 to one port: it needs a local
# port of its own. The range is widened for the run (and put back on exit)
# when the largest count needs it; PORTS=keep leaves it alone.
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
if (( hi - lo <= ${max_idle:-0} + 1000 )); then
    if [[ ${PORTS:-} == keep ]]; then
        log "note: only $((hi - lo)) local ports ($lo-$hi) for $max_idle connections from 127.0.0.1"
    else
        OLD_PORTS="$lo $hi"
        echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range
        log "local port range $lo-$hi widened to 1024-65535 for the run"
    fi
fi
if [[ ,$WHO, == *,vsftpd,* || ,$WHO, == *,pyftpdlib,* ]]; then
    [[ -f $ANCHORS/conf/vsftpd.conf ]] || die "no anchors at $ANCHORS (set ANCHORS=..., or WHO=ferry)"
    [[ -x /usr/sbin/vsftpd ]] && dpkg -s python3-pyftpdlib >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q vsftpd python3-pyftpdlib >/dev/null ||
        log "could not install vsftpd/python3-pyftpdlib: those columns will be missing"
fi
# vsftpd's chroot (the anchors' conf): /tmp/anchors/root, 0755, with WORK inside.
mkdir -p /tmp/anchors/root "$WORK"
chmod 755 /tmp/anchors /tmp/anchors/root "$WORK"

STAMP=$(date +%Y%m%d-%H%M%S)
RES=$REPO/bench/results/curves-$STAMP
mkdir -p "$RES"
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building a release ferry in $BUILD_DIR"
    [[ -f $BUILD_DIR/build.ninja ]] || meson setup "$BUILD_DIR" "$REPO" --buildtype=release >"$RES/build.log" 2>&1 ||
        { tail -n 30 "$RES/build.log" >&2; die "meson setup failed"; }
    nice ninja -C "$BUILD_DIR" server/ferryd client/ferry bench/ferry-loadgen >>"$RES/build.log" 2>&1 ||
        { grep -E 'error|FAILED' "$RES/build.log" | head -n 20 >&2; die "build failed (see $RES/build.log)"; }
fi
export FERRYD=$BUILD_DIR/server/ferryd FERRY=$BUILD_DIR/client/ferry
[[ -x $FERRYD && -x $FERRY ]] || die "no ferryd/ferry in $BUILD_DIR"
export PY LOADGEN_BIN='' LOADGEN_THREADS=${LOADGEN_THREADS:-1} C_VERIFY=${C_VERIFY:-none}
case ${LOADGEN:-cpp} in
cpp) LOADGEN_BIN=$BUILD_DIR/bench/ferry-loadgen
     [[ -x $LOADGEN_BIN ]] || die "no $LOADGEN_BIN (LOADGEN=python uses ferry_load.py)" ;;
python) ;;
*) die "LOADGEN is cpp or python (got '$LOADGEN')" ;;
esac
export OUT=$RES/curves.jsonl TABLE=$RES/table.md


commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "## ferry's curves, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r); ferry $commit, release build ($BUILD)"
    echo "- REPS=$REPS SIZES=$SIZES LIST_SIZES=$LIST_SIZES IDLE_SIZES=$IDLE_SIZES UPLOADS=$UPLOADS×${UP_MIB}MiB A_MIB=$A_MIB BURST=$BURST WORKERS=$WORKERS FERRYD_ARGS='$FERRYD_ARGS' HASH='${HASH:-the client default}'"
    echo "- load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
} >"$TABLE"
T0=$SECONDS
setsid timeout -k 10 3000 "$PY" "$REPO/bench/curves.py" &
CHILD=$!
wait "$CHILD"
CHILD=
echo "- load average at end $(cut -d' ' -f1-3 /proc/loadavg); whole run $((SECONDS - T0)) s" >>"$TABLE"
log "tables and raw results: $RES"
