#!/usr/bin/env bash
# Install, build and run every test (units and integration), then print one
# line "N passed, M failed" counting the test cases of every suite.
set -euo pipefail
# Development and CI build with -Werror; packagers and serve.sh do not.
export FERRY_MESON_OPTIONS="-Dwerror=true ${FERRY_MESON_OPTIONS:-}"
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# Suites spend most of their time waiting on servers, clients and deadlines,
# not computing: two at a time per core keep the cores busy (on 2 cores,
# every suite under the sanitizers took 0.82x the time of one per core). The
# suites that measure time or memory run alone whatever this says.
export MESON_TESTTHREADS=${MESON_TESTTHREADS:-$((2 * $(nproc)))}

status=0
meson test -C "$FERRY_BUILD" --print-errorlogs || status=$?

# Each suite prints a summary: doctest's "test cases: N | P passed | F failed"
# or a plain "N passed, M failed". A suite that failed without a summary (a
# crash) counts as one failed test case.
awk -f "$FERRY_ROOT/scripts/count-tests.awk" "$FERRY_BUILD/meson-logs/testlog.json"
exit "$status"
