#!/usr/bin/env python3
"""The Python library (clients/python/ferry_client) beside the ferry client,
in one run: a get and a put of one random file (default 1 GiB) through one
ferryd on loopback, each REPS times, alternating the two clients so that a
busy moment of the machine falls on both. Prints a markdown table of the
medians (MB/s, 1 MB = 10^6 bytes) with the ratio library / ferry, and
writes it to bench/results/python-lib-<date>.md.

    python3 bench/python_lib.py                    # xxh3-128 if importable, else sha256
    HASHES=sha256,xxh3-128 SIZE_MB=256 REPS=5 python3 bench/python_lib.py

Env: SIZE_MB (default 1024), REPS (default 3), HASHES (comma-separated;
default xxh3-128 when the xxhash module is importable, else sha256),
BUILD (build folder, default build), BENCH_TMP (where the files go,
default /tmp; /dev/shm takes the disk out). Loopback only; the library is
imported from the tree. Both clients verify every byte and fsync what
they write, as in real use.
"""

import datetime
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))
sys.path.insert(0, os.path.join(REPO, "test"))
import ferry_client  # noqa: E402
import harness  # noqa: E402


def env_int(name, default):
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"python_lib.py: {name} must be a positive integer (got {value!r})")
    return int(value)


def main():
    size_mb = env_int("SIZE_MB", 1024)
    reps = env_int("REPS", 3)
    build = os.environ.get("BUILD", "build")
    build = build if os.path.isabs(build) else os.path.join(REPO, build)
    ferryd, ferry = os.path.join(build, "server", "ferryd"), os.path.join(build, "client", "ferry")
    for binary in (ferryd, ferry):
        if not os.access(binary, os.X_OK):
            sys.exit(f"python_lib.py: no {binary} (build first: meson compile -C {build})")
    available = ferry_client.hashes.available()
    wanted = os.environ.get("HASHES") or ("xxh3-128" if "xxh3-128" in available else "sha256")
    hash_names = [h.strip() for h in wanted.split(",") if h.strip()]
    for name in hash_names:
        if name not in available:
            sys.exit(f"python_lib.py: this Python cannot compute {name} (xxh3-128 needs python3-xxhash)")

    base = tempfile.mkdtemp(prefix="ferry-pybench-", dir=os.environ.get("BENCH_TMP", "/tmp"))
    try:
        root, out = os.path.join(base, "root"), os.path.join(base, "out")
        os.mkdir(root)
        os.mkdir(out)
        src = os.path.join(base, "big.bin")
        size = size_mb << 20
        with open(src, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
        shutil.copyfile(src, os.path.join(root, "big.bin"))
        rows = []
        with harness.Server(ferryd, root) as server:
            for hash_name in hash_names:
                rows.append(run_hash(server, ferry, hash_name, src, out, root, size, reps))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    load = open("/proc/loadavg").read().split()[:3]
    lines = [f"Python library vs ferry, {size_mb} MiB, {reps} reps, medians in MB/s; "
             f"{sys.executable} {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {' '.join(load)} at the end",
             "",
             "| hash | op | ferry MB/s | ferry_client MB/s | ratio | ferry CPU s | ferry_client CPU s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for hash_name, results in rows:
        for op in ("get", "put"):
            native, library, native_cpu, library_cpu = results[op]
            lines.append(f"| {hash_name} | {op} | {native:.0f} | {library:.0f} | {library / native:.2f} | "
                         f"{native_cpu:.2f} | {library_cpu:.2f} |")
    table = "\n".join(lines)
    print(table)
    results_dir = os.path.join(REPO, "bench", "results")
    os.makedirs(results_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(results_dir, f"python-lib-{stamp}.md"), "w") as f:
        f.write(table + "\n")


def mbps(size, seconds):
    return size / seconds / 1e6


def same(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def cpu_now(who):
    """CPU seconds (user + system) spent so far by this process (the
    library) or by the waited-for children (the ferry client)."""
    usage = resource.getrusage(resource.RUSAGE_SELF if who == "lib" else resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_hash(server, ferry, hash_name, src, out, root, size, reps):
    timings = {("get", "ferry"): [], ("get", "lib"): [], ("put", "ferry"): [], ("put", "lib"): []}
    cpu = {key: [] for key in timings}
    address = server.address
    timeout = 60 + size / 5e6
    for rep in range(reps):
        # get: ferry, then the library
        dest = os.path.join(out, "big.bin")
        started, cpu0 = time.monotonic(), cpu_now("ferry")
        subprocess.run([ferry, "--server", address, "--hash", hash_name, "--no-progress", "-q", "get", "big.bin",
                        "-o", dest], check=True, timeout=timeout)
        timings["get", "ferry"].append(mbps(size, time.monotonic() - started))
        cpu["get", "ferry"].append(cpu_now("ferry") - cpu0)
        assert same(src, dest), "ferry get: the file differs"
        os.unlink(dest)
        with ferry_client.connect(address, timeout=60) as c:
            started, cpu0 = time.monotonic(), cpu_now("lib")
            c.get("big.bin", dest, resume=False, hash=hash_name)
            timings["get", "lib"].append(mbps(size, time.monotonic() - started))
            cpu["get", "lib"].append(cpu_now("lib") - cpu0)
        assert same(src, dest), "ferry_client get: the file differs"
        os.unlink(dest)
        # put: ferry, then the library
        for who in ("ferry", "lib"):
            name = f"up-{who}.bin"
            started, cpu0 = time.monotonic(), cpu_now(who)
            if who == "ferry":
                subprocess.run([ferry, "--server", address, "--hash", hash_name, "--no-progress", "-q", "put",
                                "--no-resume", src, "--as", name], check=True, timeout=timeout)
            else:
                with ferry_client.connect(address, timeout=60) as c:
                    c.put(src, name, resume=False, hash=hash_name)
            timings["put", who].append(mbps(size, time.monotonic() - started))
            cpu["put", who].append(cpu_now(who) - cpu0)
            assert same(src, os.path.join(root, name)), f"{who} put: the file differs"
            os.unlink(os.path.join(root, name))
        print(f"== {hash_name} rep {rep + 1}: get ferry {timings['get', 'ferry'][-1]:.0f} lib "
              f"{timings['get', 'lib'][-1]:.0f}, put ferry {timings['put', 'ferry'][-1]:.0f} lib "
              f"{timings['put', 'lib'][-1]:.0f} MB/s", file=sys.stderr)
    medians = {op: (statistics.median(timings[op, "ferry"]), statistics.median(timings[op, "lib"]),
                    statistics.median(cpu[op, "ferry"]), statistics.median(cpu[op, "lib"]))
               for op in ("get", "put")}
    return hash_name, medians


if __name__ == "__main__":
    main()
