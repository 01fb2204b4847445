#!/usr/bin/env python3
"""What making small uploads durable costs per file, one at a time against in groups (issue 14).

    bench/durability_batch.py                      # in WORK (default /tmp/ferry-durability), on its disk
    WORK=/srv/x FILES=2000 SIZE=20000 GROUPS=1,4,8 REPS=3 bench/durability_batch.py

Each way of publishing a file does what ferryd's commit does to a partial before its reply: write it (one
write of SIZE bytes), make the data durable, rename it into its folder, make the folder durable:
  - fsync:       fsync(2) the file, rename, fsync the folder: what ferryd does per upload today;
  - syncfs-G:    G files written, one syncfs(2), G renames, one more syncfs: the group commit a server could
                 do when G commits wait at once (syncfs writes every dirty inode of the file system, so its
                 cost also depends on what else is dirty there).
Prints, per way and repetition, wall and CPU seconds per 1,000 files as JSON lines, then a table of medians
with each way's ratio to fsync. The ways alternate within each repetition, so the machine's load moves them
alike. Every folder it makes is under WORK and removed at the end (slowly on an ext4 without a journal, which
is why a fresh folder is used per run and the removal comes last).
Environment: WORK FILES SIZE GROUPS REPS.
"""
import ctypes
import json
import os
import shutil
import statistics
import sys
import time

WORK = os.environ.get("WORK", "/tmp/ferry-durability")
FILES = int(os.environ.get("FILES", "1000"))
SIZE = int(os.environ.get("SIZE", "20000"))
GROUPS = [int(g) for g in os.environ.get("GROUPS", "2,4,8").split(",") if g]
REPS = int(os.environ.get("REPS", "3"))

libc = ctypes.CDLL(None, use_errno=True)


def syncfs(fd):
    if libc.syncfs(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def publish(folder, group):
    """Publishes FILES files into FOLDER, `group` at a time (0: fsync each); returns (wall, cpu) seconds."""
    data = os.urandom(SIZE)
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    waiting = []
    wall, cpu = time.monotonic(), time.process_time()
    for i in range(FILES):
        partial = f".partial-{i}"
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600, dir_fd=folder_fd)
        os.write(fd, data)
        if group == 0:
            os.fsync(fd)
            os.rename(partial, f"f{i}", src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            os.fsync(folder_fd)
            os.close(fd)
            continue
        waiting.append((fd, partial, f"f{i}"))
        if len(waiting) == group or i == FILES - 1:
            syncfs(folder_fd)
            for _, old, new in waiting:
                os.rename(old, new, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            syncfs(folder_fd)
            for fd_waiting, _, _ in waiting:
                os.close(fd_waiting)
            waiting = []
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    os.close(folder_fd)
    return wall, cpu


def main():
    os.makedirs(WORK, exist_ok=True)
    run_folder = os.path.join(WORK, f"run-{os.getpid()}")
    os.mkdir(run_folder)
    ways = [("fsync", 0)] + [(f"syncfs-{g}", g) for g in GROUPS]
    results = {name: [] for name, _ in ways}
    try:
        for rep in range(REPS):
            for name, group in ways:
                folder = os.path.join(run_folder, f"{name}-{rep}")
                os.mkdir(folder)
                syncfs(os.open(folder, os.O_RDONLY | os.O_DIRECTORY))  # nothing of the last way left dirty
                wall, cpu = publish(folder, group)
                per_k = 1000.0 / FILES
                record = {"way": name, "rep": rep + 1, "files": FILES, "size": SIZE,
                          "wall_s_per_1000": round(wall * per_k, 4), "cpu_s_per_1000": round(cpu * per_k, 4)}
                results[name].append(record)
                print(json.dumps(record), flush=True)
        base_wall = statistics.median(r["wall_s_per_1000"] for r in results["fsync"])
        base_cpu = statistics.median(r["cpu_s_per_1000"] for r in results["fsync"])
        print(f"\n{FILES} files of {SIZE} bytes in {WORK}, medians of {REPS}", file=sys.stderr)
        print("| way | wall s per 1,000 files | ÷ fsync | CPU s per 1,000 files | ÷ fsync |", file=sys.stderr)
        print("|---|---|---|---|---|", file=sys.stderr)
        for name, _ in ways:
            wall = statistics.median(r["wall_s_per_1000"] for r in results[name])
            cpu = statistics.median(r["cpu_s_per_1000"] for r in results[name])
            print(f"| {name} | {wall:.3f} | {wall / base_wall:.2f}× | {cpu:.3f} | {cpu / base_cpu:.2f}× |",
                  file=sys.stderr)
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
