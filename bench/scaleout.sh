#!/usr/bin/env bash
# The cost of the scale-out layers (HAProxy, FUSE, a replica-2 GlusterFS
# volume) beside one ferryd on the local disk, in one run: 200 clients'
# aggregate get and put throughput, and one client's seconds per GiB.
# Root, glusterfs-server and haproxy (scripts/setup.sh installs them);
# a few minutes. Knobs: CLIENTS, SIZE (bytes per client), BIG, ROUNDS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh >/dev/null
exec python3 bench/scaleout.py --ferryd "$FERRY_BUILD/server/ferryd" \
    --clients "${CLIENTS:-200}" --size "${SIZE:-1048576}" --big "${BIG:-268435456}" --rounds "${ROUNDS:-3}"
