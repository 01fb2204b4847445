#!/usr/bin/env bash
# Installs what building and testing Ferry needs from Debian's packages (when
# run as root and something is missing), then configures and builds into
# ./build. Sourced by serve.sh and test.sh; safe to run again.
set -euo pipefail

FERRY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FERRY_BUILD=${FERRY_BUILD:-$FERRY_ROOT/build}

packages=(g++ python3 openssl meson ninja-build pkg-config libuv1-dev nlohmann-json3-dev doctest-dev libssl-dev libcli11-dev libxxhash-dev libedit-dev libtomlplusplus-dev python3-jsonschema libutf8proc-dev libsystemd-dev libacl1-dev
          # the tests start ferryd under systemd-socket-activate
          systemd
          # test/cli/test_sync.py counts and orders a pull's system calls
          strace
          # setfacl: the hostile suite gives a token file an ACL entry
          acl
          # clients/python: its install test (Debian's pip, setuptools and
          # wheel in a venv), the optional xxh3-128 and its type check
          python3-pip python3-setuptools python3-wheel python3-venv python3-xxhash mypy
          # the sync and cli-folders suites: mkfs.ext4 for a scratch ext4 image
          # (a file system that clamps times; mounted on a loop device as root)
          e2fsprogs
          # ip: the hostile suite serves 0.0.0.0 and [::] in a network
          # namespace of its own, whose loopback it must bring up
          iproute2
          # test/scaleout: several ferryd over GlusterFS behind HAProxy
          glusterfs-server glusterfs-client haproxy)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: run this as root, or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# meson's progress and the compiler's errors go to stderr, so a build that
# fails says why (and stdout stays for what the sourcing script prints).
if [[ ! -f $FERRY_BUILD/build.ninja ]]; then
    # FERRY_MESON_OPTIONS: extra options, e.g. -Dwerror=true (scripts/test.sh
    # and CI set it; a plain build must not fail on a newer compiler's warning).
    echo "setup: configuring $FERRY_BUILD" >&2
    meson setup "$FERRY_BUILD" "$FERRY_ROOT" ${FERRY_MESON_OPTIONS:-} >&2
fi
echo "setup: building in $FERRY_BUILD" >&2
if ! meson compile -C "$FERRY_BUILD" >&2; then
    echo "setup: the build failed (the compiler's errors are above)" >&2
    exit 1
fi
