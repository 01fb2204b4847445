#!/usr/bin/env python3
"""Issue 14's tree workloads, ferry sync beside rsync's daemon, in one run (bench/tree.sh runs it).

Steps, each timed from the outside around the whole client process:
  push         the reference tree (../shared/bench-anchors/tree/maketree.py, same SEED) into an empty server folder
  no_change    the same push again
  one_percent  after maketree.py --touch 1 (1% of the files rewritten in place)
  pull         the server's folder into an empty local folder
rsync's side is ../shared/bench-anchors/tree/rsync.sh (called, never copied), run twice per repetition: as it is,
and with every rsync it starts given --fsync (a shim named rsync ahead of Debian's on its PATH), rsync's own option
to fsync each file it writes (on a push the daemon's receiver, on a pull the client), as ferry makes each file
durable before it reports it (rsync does not sync the folders that gain the names). Ferry's side runs on the disk
(the server's folder and the pull's target under WORK) and, to show what durability costs, with both on tmpfs
(TMPFS), where fsync is free. After each run the trees are compared byte for byte (diff -r, untimed).

Then: files/s for FTP_FILES files of 1 KiB up and down, ferry sync vs vsftpd and pyftpdlib (one FTP session,
STOR/RETR one after another, as the anchors' configs serve them); and how list (sync --dry-run of an
unchanged tree: the recursive list, the local scan and the plan) and sync grow with SCALE files of 1 KiB.

Prints one JSON line per measurement on stdout and the report (markdown) at the end; bench/tree.sh keeps both.
Environment: FERRY FERRYD ANCHORS WORK TMPFS REPS SEED FILES JOBS HASHES ONLY SCALE SCALE_PUSH_MAX FTP_FILES
FTP_REPS.
"""
import ftplib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

FERRY = os.environ["FERRY"]
FERRYD = os.environ["FERRYD"]
ANCHORS = os.environ["ANCHORS"]
WORK = os.environ.get("WORK", "/tmp/ferry-tree-bench")
TMPFS = os.environ.get("TMPFS", "/dev/shm/ferry-tree-bench")
REPS = int(os.environ.get("REPS", "3"))
SEED = int(os.environ.get("SEED", "42"))
FILES = int(os.environ.get("FILES", "10000"))
JOBS = int(os.environ.get("JOBS", "8"))
HASHES = os.environ.get("HASHES", "sha256,xxh3-128").split(",")
ONLY = set(os.environ.get("ONLY", "rsync,rsync_fsync,ferry,tmpfs,ftp,scale").split(","))
SCALE = [int(n) for n in os.environ.get("SCALE", "1000,10000,100000").split(",") if n]
SCALE_PUSH_MAX = int(os.environ.get("SCALE_PUSH_MAX", "100000"))
FTP_FILES = int(os.environ.get("FTP_FILES", "10000"))
# The FTP references once by default: vsftpd retrieves about 100 small files a second here (a data connection
# per file), so three rounds of 10,000 would take a quarter of an hour.
FTP_REPS = int(os.environ.get("FTP_REPS", "1"))
STEPS = ["push", "no_change", "one_percent", "pull"]
RESULTS = []


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def emit(record):
    RESULTS.append(record)
    print(json.dumps(record), flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# Trees on the disk are removed only once every timed step has run. This disk's ext4 has no journal, and there
# a new inode is never one freed in the last minutes (ext4's recently_deleted(), fs/ext4/ialloc.c): the allocator
# walks past every such inode, so whichever tool ran right after the harness deleted a tree of 10,000 files paid
# for it (perf put a third of the client's samples there). Each rep gets its own folders instead.
LEFT_FOR_THE_END = []


def later(path):
    """PATH, to be removed when the run ends (see LEFT_FOR_THE_END)."""
    LEFT_FOR_THE_END.append(path)
    return path


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run(argv, timeout=1800, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ferryd:
    """A ferryd on a free loopback port serving ROOT; stopped by its PID."""

    def __init__(self, root, *args):
        self.log = open(os.path.join(WORK, "ferryd.log"), "ab")
        self.process = subprocess.Popen([FERRYD, "--root", root, "--listen", "127.0.0.1:0", *args],
                                        stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("ferryd did not start: " + line)
        self.address = line.split()[-1]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.log.close()


def timed_sync(address, hash_name, *args, expect_sent=None):
    """ferry --json sync ARGS, timed around the process after a `sync` of the page cache's dirty pages
    (as rsync.sh does before each step)."""
    os.sync()
    start = time.monotonic()
    result = run([FERRY, "--server", address, "--json", "--hash", hash_name, "sync", "-j", str(JOBS), *args])
    seconds = time.monotonic() - start
    lines = result.stdout.decode().splitlines()
    if result.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"ferry sync {args} failed ({result.returncode}): {result.stdout[-2000:]!r} "
                           f"{result.stderr[-2000:]!r}")
    summary = json.loads(lines[0])["sync"]
    if expect_sent is not None and summary["sent"] != expect_sent:
        raise RuntimeError(f"ferry sync {args}: sent {summary['sent']}, expected {expect_sent}")
    return seconds, summary


def same_trees(a, b):
    result = run(["diff", "-rq", "--no-dereference", a, b])
    if result.returncode != 0:
        raise RuntimeError(f"{a} and {b} differ: {result.stdout[:2000]!r}")


def maketree(dest, files=FILES, touch=None):
    argv = [sys.executable, os.path.join(ANCHORS, "tree", "maketree.py"), dest, "--seed", str(SEED)]
    argv += ["--touch", str(touch)] if touch is not None else ["--files", str(files)]
    result = run(argv)
    if result.returncode != 0:
        raise RuntimeError(f"maketree failed: {result.stderr!r}")
    return json.loads(result.stdout)


# ---- rsync's daemon ----------------------------------------------------------------------

def fsync_shim():
    """A folder holding `rsync`, a script that runs Debian's rsync with --fsync added (not to the daemon, which
    takes it from the client)."""
    folder = os.path.join(WORK, "rsync-fsync-shim")
    os.makedirs(folder, exist_ok=True)
    real = shutil.which("rsync", path="/usr/bin:/bin") or "/usr/bin/rsync"
    with open(os.path.join(folder, "rsync"), "w") as shim:
        shim.write("#!/bin/sh\n"
                   f'case " $* " in *" --daemon "*) exec {real} "$@" ;; esac\n'
                   f'exec {real} --fsync "$@"\n')
    os.chmod(os.path.join(folder, "rsync"), 0o755)
    return folder


def rsync_rep(rep, fsync=False):
    who = "rsync_fsync" if fsync else "rsync"
    log(f"rsync daemon{' --fsync' if fsync else ''}, repetition {rep + 1} of {REPS} (load {load()})")
    env = dict(os.environ, SEED=str(SEED), FILES=str(FILES))
    if fsync:
        env["PATH"] = fsync_shim() + os.pathsep + env.get("PATH", "")
    result = run(["bash", os.path.join(ANCHORS, "tree", "rsync.sh"), later(os.path.join(WORK, f"{who}-{rep}"))],
                 env=env)
    if result.returncode != 0:
        raise RuntimeError(f"rsync.sh failed: {result.stderr[-2000:]!r}")
    for line in result.stdout.decode().splitlines():
        record = json.loads(line)
        emit({"w": "tree", "who": who, "where": "disk", "step": record["step"], "rep": rep,
              "seconds": record["ms"] / 1000, "files": record["tree"]["files"], "bytes": record["tree"]["bytes"],
              "load": load()})


# ---- ferry sync --------------------------------------------------------------------------

def ferry_rep(where, src, base, hash_name, rep):
    """One repetition of ferry's four steps with HASH_NAME, its server's folder under BASE (`where`: disk or
    tmpfs); the pull lands beside it."""
    log(f"ferry sync on {where}, --hash {hash_name}, repetition {rep + 1} of {REPS} (load {load()})")
    # On the disk, folders of their own, removed at the end; tmpfs has no such allocator, and
    # the memory matters more there.
    name = f"-{hash_name}-{rep}" if where == "disk" else ""
    dst, pull = fresh(os.path.join(base, "dst" + name)), os.path.join(base, "pull" + name)
    shutil.rmtree(pull, ignore_errors=True)
    if where == "disk":
        later(dst), later(pull)
    server = Ferryd(dst)
    try:
        steps = {}
        steps["push"] = timed_sync(server.address, hash_name, src, ":", expect_sent=FILES)
        steps["no_change"] = timed_sync(server.address, hash_name, src, ":", expect_sent=0)
        changed = maketree(src, touch=1)["changed"]
        steps["one_percent"] = timed_sync(server.address, hash_name, src, ":", expect_sent=changed)
        steps["pull"] = timed_sync(server.address, hash_name, ":", pull, expect_sent=FILES)
    finally:
        server.stop()
    same_trees(src, dst)
    same_trees(src, pull)
    for step, (seconds, summary) in steps.items():
        emit({"w": "tree", "who": "ferry", "where": where, "hash": hash_name, "step": step, "rep": rep,
              "seconds": seconds, "sent": summary["sent"], "skipped": summary["skipped"],
              "bytes": summary["bytes"], "jobs": JOBS, "load": load()})
    if where != "disk":
        shutil.rmtree(pull, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)


def tree_reps():
    """Each repetition runs rsync and every ferry variant once, the order turned by one each time: what the
    machine does over the run (the writeback and page-cache reclaim that earlier runs leave, the inode
    allocator's walk past recently freed inodes) then falls on every runner alike, not on whichever came
    last (rsync ran all its repetitions first until 2026-11-30; a run after fresh deletions had rsync's push
    at 5.3 s, the next at 1.3 s)."""
    runners = []
    if "rsync" in ONLY:
        runners.append(("rsync", None, None))
    if "rsync_fsync" in ONLY:
        runners.append(("rsync_fsync", None, None))
    src = None
    if "ferry" in ONLY or "tmpfs" in ONLY:
        src = os.path.join(WORK, "src")
        shutil.rmtree(src, ignore_errors=True)
        log(f"making the tree ({FILES} files, SEED {SEED})")
        maketree(later(src))
        for hash_name in HASHES:
            if "ferry" in ONLY:
                runners.append(("disk", hash_name, WORK))
            if "tmpfs" in ONLY:
                os.makedirs(TMPFS, exist_ok=True)
                runners.append(("tmpfs", hash_name, TMPFS))
    for rep in range(REPS):
        turned = runners[rep % len(runners):] + runners[:rep % len(runners)] if runners else []
        for where, hash_name, base in turned:
            if where in ("rsync", "rsync_fsync"):
                rsync_rep(rep, fsync=where == "rsync_fsync")
            else:
                ferry_rep(where, src, base, hash_name, rep)


# ---- many small files: ferry vs FTP ------------------------------------------------------

def small_tree(dest, count, flat=False):
    rng = random.Random(SEED)
    for i in range(count):
        folder = dest if flat else os.path.join(dest, f"d{i % 10}", f"e{(i // 10) % 10}", f"f{(i // 100) % 10}")
        if not flat:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"s{i:06d}.bin"), "wb") as f:
            f.write(rng.randbytes(1024))


def ftp_session(port, folder, names, local, pull_into):
    """STOR every file, then RETR every one, over one anonymous session; seconds for each."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=60)
    ftp.login()
    if folder:
        ftp.cwd(folder)
    os.sync()
    start = time.monotonic()
    for name in names:
        with open(os.path.join(local, name), "rb") as f:
            ftp.storbinary("STOR " + name, f)
    up = time.monotonic() - start
    start = time.monotonic()
    for name in names:
        with open(os.path.join(pull_into, name), "wb") as f:
            ftp.retrbinary("RETR " + name, f.write)
    down = time.monotonic() - start
    for name in names:
        ftp.delete(name)
    ftp.quit()
    return up, down


def wait_port(port, process, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def ftp_files_per_second():
    flat = fresh(os.path.join(WORK, "flat"))
    small_tree(flat, FTP_FILES, flat=True)
    names = sorted(os.listdir(flat))
    # ferry: sync push and pull of the same files (flat, into an empty folder).
    for rep in range(REPS):
        dst, pull = fresh(os.path.join(WORK, "flat-dst")), os.path.join(WORK, "flat-pull")
        shutil.rmtree(pull, ignore_errors=True)
        server = Ferryd(dst)
        try:
            up, _ = timed_sync(server.address, "sha256", flat, ":", expect_sent=FTP_FILES)
            down, _ = timed_sync(server.address, "sha256", ":", pull, expect_sent=FTP_FILES)
        finally:
            server.stop()
        same_trees(flat, pull)
        emit({"w": "small", "who": "ferry", "rep": rep, "files": FTP_FILES, "up_files_per_second": FTP_FILES / up,
              "down_files_per_second": FTP_FILES / down, "load": load()})
    # pyftpdlib, its anchor's own server script, on a free port, serving an empty folder.
    pyroot = fresh(os.path.join(WORK, "pyftpd"))
    pull = fresh(os.path.join(WORK, "ftp-pull"))
    port = free_port()
    process = subprocess.Popen(["/usr/bin/python3", os.path.join(ANCHORS, "conf", "pyftpd_server.py"), pyroot,
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if wait_port(port, process):
            for rep in range(FTP_REPS):
                up, down = ftp_session(port, "", names, flat, pull)
                emit({"w": "small", "who": "pyftpdlib", "rep": rep, "files": FTP_FILES,
                      "up_files_per_second": FTP_FILES / up, "down_files_per_second": FTP_FILES / down,
                      "load": load()})
        else:
            log("pyftpdlib did not start: skipped")
    finally:
        process.terminate()
        process.wait()
    # vsftpd: its anchor's config (127.0.0.1:2121, anonymous, /tmp/anchors/root/srv).
    conf = os.path.join(ANCHORS, "conf", "vsftpd.conf")
    if shutil.which("vsftpd") is None and not os.path.exists("/usr/sbin/vsftpd"):
        log("vsftpd is not installed: skipped")
        return
    try:
        socket.create_connection(("127.0.0.1", 2121), timeout=1).close()
        log("port 2121 is taken (the anchors running?): vsftpd skipped")
        return
    except OSError:
        pass
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    os.makedirs("/tmp/anchors/root/srv", exist_ok=True)
    os.chmod("/tmp/anchors", 0o755)
    os.chmod("/tmp/anchors/root", 0o755)
    os.chmod("/tmp/anchors/root/srv", 0o777)
    process = subprocess.Popen(["/usr/sbin/vsftpd", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if wait_port(2121, process):
            for rep in range(FTP_REPS):
                up, down = ftp_session(2121, "srv", names, flat, pull)
                emit({"w": "small", "who": "vsftpd", "rep": rep, "files": FTP_FILES,
                      "up_files_per_second": FTP_FILES / up, "down_files_per_second": FTP_FILES / down,
                      "load": load()})
        else:
            log("vsftpd did not start: skipped")
    finally:
        process.terminate()
        process.wait()
    shutil.rmtree(flat, ignore_errors=True)


# ---- how list and sync grow --------------------------------------------------------------

def scaling():
    for count in SCALE:
        src = fresh(os.path.join(WORK, f"scale-{count}"))
        small_tree(src, count)
        dst = fresh(os.path.join(WORK, "scale-dst"))
        server = Ferryd(dst)
        try:
            if count <= SCALE_PUSH_MAX:
                log(f"scaling: {count} files, full push (load {load()})")
                push, _ = timed_sync(server.address, "sha256", src, ":", expect_sent=count)
            else:
                # Too long for the run: the server's folder is filled locally (same mtimes), so list and
                # the no-change sync still see `count` files.
                log(f"scaling: {count} files, copied into the server's folder (no push)")
                shutil.rmtree(dst)
                shutil.copytree(src, dst)
                push = None
            for rep in range(REPS):
                listed, _ = timed_sync(server.address, "sha256", "--dry-run", src, ":", expect_sent=0)
                unchanged, _ = timed_sync(server.address, "sha256", src, ":", expect_sent=0)
                emit({"w": "scale", "who": "ferry", "files": count, "rep": rep, "push_seconds": push,
                      "list_seconds": listed, "no_change_seconds": unchanged, "load": load()})
        finally:
            server.stop()
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)


# ---- the report --------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def report():
    lines = []
    rsync = {s: median([r["seconds"] for r in RESULTS if r["w"] == "tree" and r["who"] == "rsync"
                        and r["step"] == s]) for s in STEPS}
    rsync_fsync = {s: median([r["seconds"] for r in RESULTS if r["w"] == "tree" and r["who"] == "rsync_fsync"
                              and r["step"] == s]) for s in STEPS}
    rows = [("rsync daemon (disk)", rsync)]
    if any(v is not None for v in rsync_fsync.values()):
        rows.append(("rsync daemon, rsync --fsync (disk)", rsync_fsync))
    for where in ("disk", "tmpfs"):
        for hash_name in HASHES:
            values = {s: median([r["seconds"] for r in RESULTS if r["w"] == "tree" and r["who"] == "ferry"
                                 and r["where"] == where and r["hash"] == hash_name and r["step"] == s])
                      for s in STEPS}
            if any(v is not None for v in values.values()):
                rows.append((f"ferry sync -j {JOBS} --hash {hash_name} ({where})", values))
    lines.append(f"### Tree of {FILES} files (seconds, median of {REPS}; ratio = ferry ÷ rsync)\n")
    lines.append("| who | " + " | ".join(STEPS) + " |")
    lines.append("|---|" + "---|" * len(STEPS))
    for name, values in rows:
        cells = []
        for s in STEPS:
            v = values[s]
            if v is not None and not name.startswith("rsync daemon (") and rsync[s]:
                cells.append(f"{fmt(v)} ({v / rsync[s]:.2f}×)")
            else:
                cells.append(fmt(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    goals = {"push": 1.0, "no_change": 0.5, "one_percent": 1.0, "pull": 1.0}
    lines.append("\n### Goals (ferry on disk, default hash sha256, ÷ rsync)\n")
    lines.append("| step | goal | ferry | rsync | ratio | verdict |")
    lines.append("|---|---|---|---|---|---|")
    disk = dict(rows).get(f"ferry sync -j {JOBS} --hash {HASHES[0]} (disk)", {})
    for s in STEPS:
        v, r = disk.get(s), rsync[s]
        ratio = v / r if v is not None and r else None
        verdict = "–" if ratio is None else ("met" if ratio <= goals[s] else "**missed**")
        lines.append(f"| {s} | ≤ {goals[s]} × rsync | {fmt(v)} | {fmt(r)} | {fmt(ratio)} | {verdict} |")
    if any(v is not None for v in rsync_fsync.values()):
        lines.append("\n### Beside rsync asked for durability too (ferry on disk ÷ rsync --fsync)\n")
        lines.append("| who | " + " | ".join(STEPS) + " |")
        lines.append("|---|" + "---|" * len(STEPS))
        for name, values in rows:
            if name.startswith("ferry") and name.endswith("(disk)"):
                lines.append(f"| {name} | " + " | ".join(
                    f"{values[s] / rsync_fsync[s]:.2f}×" if values[s] is not None and rsync_fsync[s] else "–"
                    for s in STEPS) + " |")
    # durability: disk minus tmpfs, same hash
    lines.append("\n### What durability costs (ferry, disk − tmpfs, seconds)\n")
    lines.append("| hash | " + " | ".join(STEPS) + " |")
    lines.append("|---|" + "---|" * len(STEPS))
    table = dict(rows)
    for hash_name in HASHES:
        d = table.get(f"ferry sync -j {JOBS} --hash {hash_name} (disk)")
        t = table.get(f"ferry sync -j {JOBS} --hash {hash_name} (tmpfs)")
        if d and t:
            lines.append(f"| {hash_name} | " + " | ".join(
                fmt(d[s] - t[s]) if d[s] is not None and t[s] is not None else "–" for s in STEPS) + " |")
    small = [r for r in RESULTS if r["w"] == "small"]
    if small:
        lines.append(f"\n### {FTP_FILES} files of 1 KiB, files per second (ferry: median of {REPS}; FTP: {FTP_REPS})\n")
        lines.append("| who | up | down |")
        lines.append("|---|---|---|")
        for who in ("ferry", "vsftpd", "pyftpdlib"):
            up = median([r["up_files_per_second"] for r in small if r["who"] == who])
            down = median([r["down_files_per_second"] for r in small if r["who"] == who])
            if up is not None:
                label = f"ferry sync -j {JOBS}" if who == "ferry" else who + " (one session)"
                lines.append(f"| {label} | {fmt(up, 0)} | {fmt(down, 0)} |")
    scale = [r for r in RESULTS if r["w"] == "scale"]
    if scale:
        lines.append(f"\n### Growth with the number of files (1 KiB each, seconds, median of {REPS})\n")
        lines.append("| files | push (into empty) | list (sync --dry-run, unchanged) | sync, nothing changed |")
        lines.append("|---|---|---|---|")
        for count in SCALE:
            rs = [r for r in scale if r["files"] == count]
            if rs:
                lines.append(f"| {count} | {fmt(rs[0]['push_seconds']) if rs[0]['push_seconds'] else 'not run'} | "
                             f"{fmt(median([r['list_seconds'] for r in rs]))} | "
                             f"{fmt(median([r['no_change_seconds'] for r in rs]))} |")
    return "\n".join(lines)


def main():
    os.makedirs(WORK, exist_ok=True)
    started = load()
    log(f"load average at the start: {started}")
    try:
        tree_reps()
        if "ftp" in ONLY:
            ftp_files_per_second()
        if "scale" in ONLY:
            scaling()
    finally:
        shutil.rmtree(TMPFS, ignore_errors=True)
        for path in LEFT_FOR_THE_END:
            shutil.rmtree(path, ignore_errors=True)
        text = report()
        print("\n" + text + f"\n\nload average: {started} at the start, {load()} at the end\n", file=sys.stderr)
        with open(os.path.join(WORK, "table.md"), "w") as f:
            f.write(text + f"\n\nload average: {started} at the start, {load()} at the end\n")


if __name__ == "__main__":
    main()
