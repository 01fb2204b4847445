#!/usr/bin/env bash
# Quick start: install, build, and serve ./files on 127.0.0.1:7021.
# Extra arguments go to ferryd (see: build/server/ferryd --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec "$FERRY_BUILD/server/ferryd" "$@"
