#!/usr/bin/env python3
"""ferryd's cost per uploaded file on a first push (issue 14), several builds side by side in one short run.

    bench/push_cost.py OLD_BUILD NEW_BUILD          # folders holding server/ferryd and client/ferry
    FILES=1000 REPS=3 WHERE=disk,tmpfs bench/push_cost.py build /tmp/base

For each repetition, each place (WHERE: `disk` under WORK, `tmpfs` under TMPFS) and each build in turn
(alternating, so that the machine's load moves all of them alike), a fresh ferryd serves an empty folder and
`ferry sync -j JOBS TREE :` pushes a tree of FILES files (../shared/bench-anchors/tree/maketree.py: 3 levels of
folders, 1 KiB to 1 MiB, the same SEED; made once) into it, twice:
  - plain: wall seconds of the client, ferryd's CPU seconds (user + system, from wait4 once it stopped), and
    the client's;
  - under `strace -f -c` (ferryd only): system calls per file and fsyncs (fsync + fdatasync) per file.
Every push is checked: the client reports FILES files sent, and the served tree equals the source (diff -r).
Prints one JSON line per run on stdout and a table of medians on stderr. Measures little on a busy machine
beyond the CPU and call counts: compare walls only within one run.
Environment: ANCHORS WORK TMPFS FILES REPS SEED JOBS WHERE HASH STRACE (0: skip the strace runs) FERRYD_ARGS.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("ANCHORS", os.path.join(REPO, "..", "shared", "bench-anchors"))
WORK = os.environ.get("WORK", "/tmp/ferry-push-cost")
TMPFS = os.environ.get("TMPFS", "/dev/shm/ferry-push-cost")
FILES = int(os.environ.get("FILES", "2000"))
REPS = int(os.environ.get("REPS", "3"))
SEED = int(os.environ.get("SEED", "42"))
JOBS = int(os.environ.get("JOBS", "8"))
WHERE = os.environ.get("WHERE", "disk,tmpfs").split(",")
HASH = os.environ.get("HASH", "sha256")
STRACE = os.environ.get("STRACE", "1") != "0"
FERRYD_ARGS = os.environ.get("FERRYD_ARGS", "").split()


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def start_ferryd(ferryd, root, strace_out=None):
    argv = [ferryd, "--root", root, "--listen", "127.0.0.1:0", *FERRYD_ARGS]
    if strace_out:
        argv = ["strace", "-f", "-c", "-o", strace_out, *argv]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    line = process.stdout.readline().decode()
    if not line.startswith("listening on "):
        stop(process)
        raise RuntimeError(f"{ferryd} did not start: {line!r}")
    return process, line.split()[-1]


def stop(process):
    """SIGTERM, then ferryd's CPU seconds (all its threads), from wait4. Under strace the signal goes to ferryd,
    strace's child (strace itself would only detach)."""
    target = process.pid
    if os.path.basename(process.args[0]) == "strace":
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as f:
            target = int(f.read().split()[0])
    os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = status
    process.stdout.close()
    return usage.ru_utime + usage.ru_stime


def push(ferry, address, tree):
    os.sync()
    start = time.monotonic()
    child = subprocess.Popen([ferry, "--server", address, "--json", "--hash", HASH, "sync", "-j", str(JOBS),
                              tree, ":"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=1800)
    seconds = time.monotonic() - start
    lines = out.decode().splitlines()
    if child.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"ferry sync failed ({child.returncode}): {out[-2000:]!r} {err[-2000:]!r}")
    sent = json.loads(lines[0])["sync"]["sent"]
    if sent != FILES:
        raise RuntimeError(f"ferry sync sent {sent} files, expected {FILES}")
    return seconds


def strace_counts(path):
    """(all calls, fsync + fdatasync calls) from strace -c's table."""
    calls = syncs = 0
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5:
                continue
            name = fields[-1]
            if name in ("total", "syscall"):
                continue
            # "% time seconds usecs/call calls [errors] syscall"
            try:
                count = int(fields[3])
            except ValueError:
                continue
            calls += count
            if name in ("fsync", "fdatasync"):
                syncs += count
    return calls, syncs


def same_trees(a, b):
    result = subprocess.run(["diff", "-rq", "--no-dereference", a, b], stdout=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"{a} and {b} differ: {result.stdout[:2000]!r}")


def one_run(build, where, tree, traced):
    base = WORK if where == "disk" else TMPFS
    dst = fresh(os.path.join(base, "dst"))
    strace_out = os.path.join(base, "strace.txt") if traced else None
    process, address = start_ferryd(os.path.join(build, "server", "ferryd"), dst, strace_out)
    cpu_before = os.times()
    try:
        seconds = push(os.path.join(build, "client", "ferry"), address, tree)
    finally:
        server_cpu = stop(process)
    cpu_after = os.times()
    client_cpu = (cpu_after.children_user - cpu_before.children_user) + \
        (cpu_after.children_system - cpu_before.children_system) - server_cpu
    same_trees(tree, dst)
    record = {"build": build, "where": where, "files": FILES, "traced": traced, "seconds": round(seconds, 3),
              "ferryd_cpu": round(server_cpu, 3), "client_cpu": round(client_cpu, 3),
              "load": open("/proc/loadavg").read().split()[0]}
    if traced:
        calls, syncs = strace_counts(strace_out)
        record["syscalls_per_file"] = round(calls / FILES, 1)
        record["fsyncs_per_file"] = round(syncs / FILES, 2)
        os.unlink(strace_out)
    shutil.rmtree(dst, ignore_errors=True)
    print(json.dumps(record), flush=True)
    return record


def main():
    builds = sys.argv[1:]
    if not builds:
        sys.exit(__doc__)
    os.makedirs(WORK, exist_ok=True)
    tree = os.path.join(WORK, f"tree-{FILES}-{SEED}")
    if not os.path.isdir(tree):
        log(f"making the tree of {FILES} files in {tree}")
        subprocess.run([sys.executable, os.path.join(ANCHORS, "tree", "maketree.py"), tmp := tree + ".tmp",
                        "--files", str(FILES), "--seed", str(SEED)], check=True, stdout=subprocess.DEVNULL)
        os.rename(tmp, tree)
    records = []
    try:
        for rep in range(REPS):
            for where in WHERE:
                for build in builds:
                    log(f"rep {rep + 1}/{REPS}, {where}, {build}")
                    records.append(one_run(build, where, tree, False))
                    if STRACE and rep == 0:
                        records.append(one_run(build, where, tree, True))
    finally:
        shutil.rmtree(TMPFS, ignore_errors=True)
    print(f"\n{FILES} files, -j {JOBS}, --hash {HASH}, medians of {REPS} (strace figures: one traced run)",
          file=sys.stderr)
    print("| build | where | wall s | ferryd CPU s | client CPU s | syscalls/file | fsyncs/file |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for where in WHERE:
        for build in builds:
            plain = [r for r in records if r["build"] == build and r["where"] == where and not r["traced"]]
            traced = [r for r in records if r["build"] == build and r["where"] == where and r["traced"]]
            med = lambda key: statistics.median(r[key] for r in plain)
            print(f"| {build} | {where} | {med('seconds'):.2f} | {med('ferryd_cpu'):.2f} | {med('client_cpu'):.2f} "
                  f"| {traced[0]['syscalls_per_file'] if traced else '-'} "
                  f"| {traced[0]['fsyncs_per_file'] if traced else '-'} |", file=sys.stderr)


if __name__ == "__main__":
    main()
