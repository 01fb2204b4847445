#!/usr/bin/env bash
# Loopback throughput of ferry next to the limits that bound it, in one run:
#   ferry get / ferry put of one random file (default 1 GiB) through ferryd,
#   iperf3 single stream (plain and -Z zero copy) on 127.0.0.1,
#   single-core SHA-256 (openssl speed), which both ends of ferry compute,
#   a durable local copy (dd conv=fsync) on the same file system: both ends of
#   ferry fsync what they write, so the disk can bound a transfer too.
# Each is run REPS times; medians in MB/s (1 MB = 10^6 bytes) and ratios go to
# stdout as a markdown table and to bench/results/loopback-<date>.md.
#
# Env: SIZE_MB (MiB in the test file, default 1024), REPS (default 3),
#      BUILD (build dir, relative to the repo or absolute; default build),
#      XFER_TIMEOUT (seconds allowed per transfer; default 60 + SIZE_MB/5),
#      SHA_SECONDS (seconds per openssl speed run, default 3),
#      BENCH_TMP (where the temp folder goes, default /tmp; /dev/shm takes the
#      disk out of the picture).
# Loopback only. Needs no root, except to install iperf3 when it is missing.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) BUILD_DIR=$BUILD ;; *) BUILD_DIR=$REPO/$BUILD ;; esac
SIZE_MB=${SIZE_MB:-1024}
REPS=${REPS:-3}
SHA_SECONDS=${SHA_SECONDS:-3}
XFER_TIMEOUT=${XFER_TIMEOUT:-$((60 + SIZE_MB / 5))}
FERRYD=$BUILD_DIR/server/ferryd
FERRY=$BUILD_DIR/client/ferry

die() { echo "loopback.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB must be a positive integer (got '$SIZE_MB')"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer (got '$REPS')"
[[ -x $FERRYD ]] || die "no server at $FERRYD (build first: ninja -C $BUILD_DIR)"
[[ -x $FERRY ]] || die "no client at $FERRY (build first: ninja -C $BUILD_DIR)"
for tool in timeout openssl dd cmp awk ss; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 or newer is needed (EPOCHREALTIME)"

if ! command -v iperf3 >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing iperf3"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y iperf3 >/dev/null ||
            { timeout 300 apt-get update >/dev/null &&
              DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y iperf3 >/dev/null; } ||
            die "could not install iperf3"
    else
        die "iperf3 is missing: install it (sudo apt-get install -y iperf3) and run again"
    fi
fi

# --- temp dir, processes, cleanup ------------------------------------------
TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/ferry-bench.XXXXXX")
PIDS=()         # live background processes (each a `timeout` wrapper)
cleanup() {
    local rc=$? pid
    trap - INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ROOT=$TMP/root   # served by ferryd
OUT=$TMP/out     # downloads land here, same file system
mkdir -p "$ROOT" "$OUT"
SRC=$ROOT/big.bin
BYTES=$((SIZE_MB * 1024 * 1024))

# --- helpers -----------------------------------------------------------------
now() { echo "$EPOCHREALTIME"; }
# mbps BYTES START END -> MB/s
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / (e - s) / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
    done
    die "no free port found"
}
wait_listen() {  # PORT PID
    for _ in $(seq 100); do
        [[ -n $(ss -Htln "sport = :$1") ]] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# --- test file ---------------------------------------------------------------
log "making a ${SIZE_MB} MiB random file in $TMP"
timeout 600 dd if=/dev/urandom of="$SRC" bs=1M count="$SIZE_MB" status=none
[[ $(stat -c %s "$SRC") -eq $BYTES ]] || die "test file has the wrong size"
log "warm-up read"
timeout 600 cat "$SRC" >/dev/null

# --- ferryd ------------------------------------------------------------------
SERVER_TIMEOUT=$((120 + 2 * REPS * XFER_TIMEOUT))
timeout -k 5 "$SERVER_TIMEOUT" "$FERRYD" --root "$ROOT" --listen 127.0.0.1:0 --drain-timeout 1 \
    >"$TMP/ferryd.out" 2>"$TMP/ferryd.log" &
PIDS+=($!)
FERRYD_WRAPPER=$!
PORT=
for _ in $(seq 100); do
    line=$(head -n 1 "$TMP/ferryd.out" 2>/dev/null || true)
    if [[ $line == "listening on 127.0.0.1:"* ]]; then PORT=${line##*:}; break; fi
    kill -0 "$FERRYD_WRAPPER" 2>/dev/null || break
    sleep 0.05
done
if [[ -z $PORT ]]; then
    cat "$TMP/ferryd.log" >&2
    die "ferryd did not report its port"
fi
FERRYD_PID=$(awk '{ print $1 }' "/proc/$FERRYD_WRAPPER/task/$FERRYD_WRAPPER/children" 2>/dev/null || true)
FERRYD_PID=${FERRYD_PID:-$FERRYD_WRAPPER}
log "ferryd (pid $FERRYD_PID) on 127.0.0.1:$PORT"

fail_transfer() {  # WHAT LOGFILE
    echo "--- client output:" >&2; cat "$2" >&2 || true
    echo "--- ferryd log (last 20 lines):" >&2; tail -n 20 "$TMP/ferryd.log" >&2 || true
    die "$1 failed"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GET=() PUT=() IPERF=() IPERFZ=() SHA=() DISK=()
GET_CPU=() PUT_CPU=() GET_SCPU=() PUT_SCPU=()
TIMEFORMAT='%U %S'

for rep in $(seq "$REPS"); do
    # download
    rm -f "$OUT/big.bin"
    sc0=$(cpu_of "$FERRYD_PID")
    t0=$(now)
    if ! { time timeout -k 5 "$XFER_TIMEOUT" "$FERRY" --server "127.0.0.1:$PORT" get big.bin "$OUT/big.bin" \
            >"$TMP/client.log" 2>&1; } 2>"$TMP/time"; then
        fail_transfer "ferry get (rep $rep)" "$TMP/client.log"
    fi
    t1=$(now)
    sc1=$(cpu_of "$FERRYD_PID")
    cmp -s "$SRC" "$OUT/big.bin" || fail_transfer "ferry get (rep $rep): downloaded file differs" "$TMP/client.log"
    GET+=("$(mbps "$BYTES" "$t0" "$t1")")
    GET_CPU+=("$(awk '{ printf "%.2f", $1 + $2 }' "$TMP/time")")
    GET_SCPU+=("$(awk -v a="$sc0" -v b="$sc1" 'BEGIN { printf "%.2f", b - a }')")
    rm -f "$OUT/big.bin"
    log "rep $rep: get ${GET[-1]} MB/s (client CPU ${GET_CPU[-1]} s, ferryd CPU ${GET_SCPU[-1]} s)"

    # upload
    rm -f "$ROOT/up.bin"
    sc0=$(cpu_of "$FERRYD_PID")
    t0=$(now)
    if ! { time timeout -k 5 "$XFER_TIMEOUT" "$FERRY" --server "127.0.0.1:$PORT" put "$SRC" up.bin \
            >"$TMP/client.log" 2>&1; } 2>"$TMP/time"; then
        fail_transfer "ferry put (rep $rep)" "$TMP/client.log"
    fi
    t1=$(now)
    sc1=$(cpu_of "$FERRYD_PID")
    cmp -s "$SRC" "$ROOT/up.bin" || fail_transfer "ferry put (rep $rep): uploaded file differs" "$TMP/client.log"
    PUT+=("$(mbps "$BYTES" "$t0" "$t1")")
    PUT_CPU+=("$(awk '{ printf "%.2f", $1 + $2 }' "$TMP/time")")
    PUT_SCPU+=("$(awk -v a="$sc0" -v b="$sc1" 'BEGIN { printf "%.2f", b - a }')")
    rm -f "$ROOT/up.bin"
    log "rep $rep: put ${PUT[-1]} MB/s (client CPU ${PUT_CPU[-1]} s, ferryd CPU ${PUT_SCPU[-1]} s)"

    # iperf3, plain and zero copy
    for zc in "" "-Z"; do
        iport=$(free_port)
        timeout -k 5 "$XFER_TIMEOUT" iperf3 -s -1 -p "$iport" >"$TMP/iperf3-server.log" 2>&1 &
        ipid=$!
        PIDS+=("$ipid")
        wait_listen "$iport" "$ipid" || { cat "$TMP/iperf3-server.log" >&2; die "iperf3 server did not start"; }
        timeout -k 5 "$XFER_TIMEOUT" iperf3 -c 127.0.0.1 -p "$iport" -n "${SIZE_MB}M" $zc --json \
            >"$TMP/iperf3.json" 2>&1 || { cat "$TMP/iperf3.json" >&2; die "iperf3 $zc failed"; }
        wait "$ipid" || true
        PIDS=("${PIDS[@]:0:${#PIDS[@]}-1}")  # reaped: never signal a reused pid
        bps=$(awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { gsub(/[^0-9.eE+-]/, "", $2); print $2; exit }' "$TMP/iperf3.json")
        [[ -n $bps ]] || { cat "$TMP/iperf3.json" >&2; die "no receiver bits_per_second in iperf3 output"; }
        v=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 8 / 1e6 }')
        if [[ -z $zc ]]; then IPERF+=("$v"); else IPERFZ+=("$v"); fi
        log "rep $rep: iperf3 ${zc:-(plain)} $v MB/s"
    done

    # single-core SHA-256
    bps=$(timeout 60 openssl speed -mr -evp sha256 -bytes 16384 -seconds "$SHA_SECONDS" 2>/dev/null |
          awk -F: '/^\+F:/ { v = $NF } END { print v }')
    [[ -n $bps ]] || die "could not parse openssl speed output"
    SHA+=("$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')")
    log "rep $rep: sha256 ${SHA[-1]} MB/s"

    # durable copy on the same file system
    rm -f "$OUT/dd.bin"
    t0=$(now)
    timeout -k 5 "$XFER_TIMEOUT" dd if="$SRC" of="$OUT/dd.bin" bs=1M conv=fsync status=none ||
        die "dd copy failed"
    t1=$(now)
    rm -f "$OUT/dd.bin"
    DISK+=("$(mbps "$BYTES" "$t0" "$t1")")
    log "rep $rep: dd conv=fsync ${DISK[-1]} MB/s"
done

kill -0 "$FERRYD_PID" 2>/dev/null || { tail -n 20 "$TMP/ferryd.log" >&2; die "ferryd died during the run"; }

# --- report ------------------------------------------------------------------
mG=$(median "${GET[@]}") mP=$(median "${PUT[@]}")
mI=$(median "${IPERF[@]}") mZ=$(median "${IPERFZ[@]}") mS=$(median "${SHA[@]}") mD=$(median "${DISK[@]}")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | head -c1)
buildtype=$(grep -o '"name": "buildtype", "value": "[a-z]*"' "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null |
           sed 's/.*"value": "//; s/"$//' || true)
REPORT=$(cat <<EOF
## Loopback: ferry vs iperf3 vs SHA-256 ($(date -u '+%Y-%m-%d %H:%M UTC'))

$(nproc) cores, ${cpu_model:-unknown CPU}, Linux $(uname -r); ferry ${commit}${dirty:+ (dirty tree)}, ${buildtype:-unknown} build;
file ${SIZE_MB} MiB (${BYTES} bytes) from /dev/urandom in ${BENCH_TMP:-/tmp} ($(df --output=fstype "$TMP" | tail -n 1)), page cache warm; REPS=${REPS}; 1 MB = 10^6 bytes;
load average at start ${LOAD_START}, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every row).

| measurement | median MB/s | runs MB/s |
|---|---:|---|
| ferry get (download, SHA-256 checked) | $mG | ${GET[*]} |
| ferry put (upload, SHA-256 checked) | $mP | ${PUT[*]} |
| iperf3 -c 127.0.0.1, 1 stream | $mI | ${IPERF[*]} |
| iperf3 -Z (zero copy), 1 stream | $mZ | ${IPERFZ[*]} |
| openssl speed -evp sha256, 16 KiB blocks, 1 core | $mS | ${SHA[*]} |
| dd bs=1M conv=fsync, copy on the same file system | $mD | ${DISK[*]} |

| ratio | download | upload |
|---|---:|---:|
| ferry / iperf3 | $(ratio "$mG" "$mI") | $(ratio "$mP" "$mI") |
| ferry / iperf3 -Z | $(ratio "$mG" "$mZ") | $(ratio "$mP" "$mZ") |
| ferry / sha256 (1 core) | $(ratio "$mG" "$mS") | $(ratio "$mP" "$mS") |
| ferry / dd conv=fsync | $(ratio "$mG" "$mD") | $(ratio "$mP" "$mD") |

CPU seconds per transfer (user + system, per run): get: client ${GET_CPU[*]}, ferryd ${GET_SCPU[*]}; put: client ${PUT_CPU[*]}, ferryd ${PUT_SCPU[*]}.
EOF
)
echo "$REPORT"
mkdir -p "$REPO/bench/results"
RESULT=$REPO/bench/results/loopback-$(date '+%Y%m%d-%H%M%S').md
echo "$REPORT" >"$RESULT"
log "written to $RESULT"
