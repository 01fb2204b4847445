#!/usr/bin/python3
"""Runs workloads A-F of issue 5 on ferryd; called by bench/compare.sh.

Appends one JSON line per measurement to OUT (the same shape as the
anchors' results.jsonl: "w" is the workload, "anchor" is "ferry" or a ferry
variant), so compare_report.py can put ferry and the references side by side.

Environment (compare.sh sets all of them):
  FERRYD, FERRY      the binaries under test
  SRV                the served folder (the anchors' /tmp/anchors/root/srv)
  OUT                the JSON-lines file to append to
  RUN                a scratch folder for logs, downloads and the F root
  REPS (3)           repetitions of every workload
  DUR (10)           seconds per D run
  NCLIS (200,2000)   client counts for C
  NIDLES (10000,2000) connection counts for E (2,000 is the anchors' count)
  STALL (20)         seconds the F reader stops reading
  C_VERIFY (sha256)  "none": C's clients only count bytes (with LOADGEN=python
                     the Python SHA-256 otherwise bounds the aggregate figure);
                     the C++ generator also takes "xxh3-128" (asks for it in get)
  LOADGEN (cpp)      C, D and E clients: "cpp" = ferry-loadgen (bench/ferry_loadgen.cpp,
                     one libuv loop; LOADGEN_BIN is its path), "python" = ferry_load.py
  D_CONNS (8)        D's persistent sessions (8, like the anchors' wrk -c8)
  E_SOURCES (auto)   source addresses 127.0.0.1..127.0.0.K for E's connections;
                     auto: one per 20,000 connections (ephemeral ports run short)
  F_GIB (4)          size of the F file
  ONLY (A,B,C,D,E,F,S) workloads to run (S = openssl speed sha256); B also
                     runs Bt (the same upload into a second ferryd serving a
                     tmpfs folder: the protocol's cost without the disk) and
                     W (`dd bs=1M conv=fsync` of big.bin into SRV: the disk's
                     durable write speed, which B is held to)
  TMPFS_DIR          where Bt's served folder goes (default under /dev/shm)
  FERRYD_ARGS        more ferryd flags for every ferryd started, e.g. "--workers 1"
  FAST_HASH_ARGS     client arguments for the fast integrity option; by default
                     "--hash xxh3-128" when the client's help mentions --hash
  DL_DIR             where A downloads land when the client has no `-o -`
                     (default a folder under /dev/shm: tmpfs, no disk)
Every process it starts is stopped by PID (SIGTERM, then SIGKILL) on the way
out; every client call has a timeout.
"""
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
LOAD = os.path.join(HERE, "ferry_load.py")
FERRYD, FERRY = os.environ["FERRYD"], os.environ["FERRY"]
SRV, OUT, RUN = os.environ["SRV"], os.environ["OUT"], os.environ["RUN"]
REPS = int(os.environ.get("REPS", 3))
DUR = float(os.environ.get("DUR", 10))
NCLIS = [int(x) for x in os.environ.get("NCLIS", "200,2000").split(",") if x]
NIDLES = [int(x) for x in os.environ.get("NIDLES", "10000,2000").split(",") if x]
STALL = float(os.environ.get("STALL", 20))
F_GIB = int(os.environ.get("F_GIB", 4))
C_VERIFY = os.environ.get("C_VERIFY", "sha256")   # "none": C's clients count bytes only
ONLY = set(os.environ.get("ONLY", "A,B,C,D,E,F,S").split(","))
LOADGEN_BIN = os.environ.get("LOADGEN_BIN", "")
LOADGEN = os.environ.get("LOADGEN") or ("cpp" if LOADGEN_BIN and os.access(LOADGEN_BIN, os.X_OK) else "python")
D_CONNS = int(os.environ.get("D_CONNS", 8))
E_SOURCES = os.environ.get("E_SOURCES", "auto")
GIB, M4 = 1 << 30, 4 << 20
TCK = os.sysconf("SC_CLK_TCK")
# Raised for the run (the defaults are 4096 connections, 512 per address and
# 256 transfers: C with 2,000 clients and E with 10,000 need more).
# C's and E's largest counts decide (E at 50,000 needs 50,000 connections;
# C at 10,000, as many transfers from one address).
_MAXCONN = str(max([20000] + [n + 1000 for n in NIDLES + NCLIS]))
_MAXXFER = str(max([4096] + NCLIS))
LIMIT_ARGS = ["--max-connections", _MAXCONN, "--max-connections-per-address", _MAXCONN,
              "--max-transfers", _MAXXFER, "--max-transfers-per-address", _MAXXFER, "--drain-timeout", "1"]
# More ferryd flags for the whole run, e.g. FERRYD_ARGS="--workers 1".
LIMIT_ARGS += os.environ.get("FERRYD_ARGS", "").split()


def log(msg):
    print("[%s] ferry: %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def record(**d):
    with open(OUT, "a") as f:
        f.write(json.dumps(d) + "\n")
    short = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()
             if k != "rss_samples_kb"}
    log("  " + json.dumps(short))


def run(cmd, timeout, **kw):
    """Runs a client; never raises on failure or timeout (rc 124).
    Returns rc, stdout, stderr and the CPU seconds the child used."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, err = 124, "timeout after %ss" % timeout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return rc, out, err, cpu


def cpu_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / TCK
    except OSError:
        return 0.0


def tcpext():
    """The kernel's TcpExt counters the anchors watch (whole machine)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], map(int, vals.split()[1:])))
            return {k: d.get(k, 0) for k in ("ListenOverflows", "ListenDrops", "SyncookiesSent")}
    return {}


def tcp_delta(before):
    now = tcpext()
    return {k: now[k] - before.get(k, 0) for k in now}


class Ferryd:
    """One ferryd on a free 127.0.0.1 port (it prints the port it bound)."""

    def __init__(self, root, tag):
        self.root, self.tag = root, tag
        self.proc = None

    def start(self):
        logf = os.path.join(RUN, "ferryd-%s.log" % self.tag)
        outf = os.path.join(RUN, "ferryd-%s.out" % self.tag)
        with open(outf, "w") as out:
            self.proc = subprocess.Popen(
                [FERRYD, "--root", self.root, "--listen", "127.0.0.1:0", "--log-file", logf] + LIMIT_ARGS,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, close_fds=True)
        self.pid = self.proc.pid
        end = time.time() + 15
        while time.time() < end:
            with open(outf) as f:
                line = f.readline()
            if line.startswith("listening on 127.0.0.1:"):
                self.port = int(line.rsplit(":", 1)[1])
                log("ferryd pid %d on 127.0.0.1:%d serving %s" % (self.pid, self.port, self.root))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("ferryd did not start; see %s" % outf)

    def cpu(self):
        return cpu_of(self.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)   # drain 1 s + about 2 s for the last errors
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        log("ferryd pid %d stopped (exit %s)" % (self.pid, self.proc.returncode))
        self.proc = None


def client_help(sub):
    rc, out, err, _ = run([FERRY, sub, "--help"], 10)
    return out + err


def workload_A(d, rep, variant, extra, stdout_ok, dl_dir):
    """One 1 GiB download with the real client."""
    base = [FERRY, "--server", "127.0.0.1:%d" % d.port] + extra + ["get", "big.bin"]
    if stdout_ok:
        cmd, dest = base + ["-o", "-"], None
    else:
        dest = os.path.join(dl_dir, "big.bin")
        for p in (dest, dest + ".ferry-part", dest + ".ferry-part.state"):
            if os.path.exists(p):
                os.remove(p)
        cmd = base + [dest]
    c0 = d.cpu()
    t0 = time.monotonic()
    if dest is None:
        rc, out, err, ccpu = _run_to_devnull(cmd, 150)
    else:
        rc, out, err, ccpu = run(cmd, 150)
    secs = time.monotonic() - t0
    time.sleep(0.1)
    cpu = d.cpu() - c0
    nbytes = GIB if rc == 0 else 0
    if dest is not None:
        nbytes = os.path.getsize(dest) if rc == 0 and os.path.exists(dest) else 0
        if os.path.exists(dest):
            os.remove(dest)
    ok = rc == 0 and nbytes == GIB
    record(w="A", anchor=variant, rep=rep, ok=ok, bytes=nbytes, secs=secs,
           MBps=nbytes / secs / 1e6 if ok else 0.0, server_cpu_s=cpu, client_cpu_s=ccpu,
           sink="stdout > /dev/null" if dest is None else "file in %s" % dl_dir,
           error="" if ok else (err.strip()[-200:] or "rc=%s" % rc))


def _run_to_devnull(cmd, timeout):
    """`ferry get NAME -o - > /dev/null`: stdout straight to /dev/null."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        with open(os.devnull, "wb") as devnull:
            p = subprocess.run(cmd, stdout=devnull, stderr=subprocess.PIPE, timeout=timeout)
        rc, err = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        rc, err = 124, "timeout after %ss" % timeout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return rc, "", err, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def workload_B(d, rep, variant, extra, put_as, w="B"):
    """One 1 GiB upload with `ferry put` (the client always sends a hash; the
    server fsyncs and checks it before the rename) into the folder `d` serves:
    SRV for B, a tmpfs folder for Bt."""
    name = "up_ferry.bin"
    dest = os.path.join(d.root, name)
    if os.path.exists(dest):
        os.remove(dest)
    c0 = d.cpu()
    t0 = time.monotonic()
    # newer clients name the remote file with --as (put takes several LOCALs)
    target = ["--as", name] if put_as else [name]
    rc, out, err, ccpu = run([FERRY, "--server", "127.0.0.1:%d" % d.port] + extra
                             + ["put", os.path.join(SRV, "big.bin")] + target, 150)
    secs = time.monotonic() - t0
    time.sleep(0.1)
    cpu = d.cpu() - c0
    on_disk = os.path.getsize(dest) if os.path.exists(dest) else 0
    if os.path.exists(dest):
        os.remove(dest)
    # a failed upload may leave a hidden partial: the folder must keep 100 files
    for f in os.listdir(d.root):
        if f.startswith(".ferry-partial-"):
            os.remove(os.path.join(d.root, f))
    ok = rc == 0 and on_disk == GIB
    record(w=w, anchor=variant, rep=rep, ok=ok, bytes=on_disk, on_disk=on_disk, secs=secs,
           MBps=on_disk / secs / 1e6 if ok else 0.0, server_cpu_s=cpu, client_cpu_s=ccpu,
           error="" if ok else (err.strip()[-200:] or "rc=%s disk=%s" % (rc, on_disk)))


def workload_W(rep):
    """The disk's durable write speed, the figure B is held to: big.bin (in
    the page cache, as for B) copied into the served folder by
    `dd bs=1M conv=fsync` (dd counts the fsync in its time, as ferryd's
    commit does)."""
    dest = os.path.join(SRV, ".dd-conv-fsync.bin")
    t0 = time.monotonic()
    rc, out, err, _ = run(["dd", "if=" + os.path.join(SRV, "big.bin"), "of=" + dest, "bs=1M", "conv=fsync"], 150)
    secs = time.monotonic() - t0
    size = os.path.getsize(dest) if os.path.exists(dest) else 0
    if os.path.exists(dest):
        os.remove(dest)
    ok = rc == 0 and size == GIB
    record(w="W", anchor="dd conv=fsync", rep=rep, ok=ok, secs=secs, MBps=size / secs / 1e6 if ok else 0.0,
           error="" if ok else err.strip()[-200:])


def workload_C(d, rep, n):
    t0d, c0 = tcpext(), d.cpu()
    deadline = 60 + n // 100   # 10,000 x 4 MiB is 42 GB
    if LOADGEN == "cpp":
        cmd = [LOADGEN_BIN, "burst", str(d.port), "m4.bin", str(n), "--deadline", str(deadline),
               "--verify", C_VERIFY]
    else:
        cmd = [PY, LOAD, "burst", str(d.port), "m4.bin", str(n), "--deadline", str(deadline), "--verify", C_VERIFY]
    rc, out, err, ccpu = run(cmd, deadline + 30)
    time.sleep(0.1)
    cpu = d.cpu() - c0
    try:
        r = json.loads(out)
    except ValueError:
        r = {"ok": 0, "bytes": 0, "wall_s": 0, "errors": {err.strip()[-200:]: n}}
    errs = ["%s (×%d)" % (k, v) for k, v in sorted(r.get("errors", {}).items())][:3]
    record(w="C", anchor="ferry", rep=rep, clients=n, verify=C_VERIFY,
           variant="burst (%s, %s)" % ("ferry-loadgen C++" if LOADGEN == "cpp" else "asyncio",
                                       "bytes counted only" if C_VERIFY == "none" else C_VERIFY + " checked"),
           ok=r["ok"], failed=n - r["ok"], bytes=r["bytes"], wall_s=r["wall_s"],
           MBps=r["bytes"] / r["wall_s"] / 1e6 if r["wall_s"] else 0.0,
           slowest_ok_s=r.get("slowest_ok_s"), median_ok_s=r.get("median_ok_s"),
           last_connect_s=r.get("last_connect_s"), slow_connects=r.get("slow_connects"),
           server_cpu_s=cpu, client_cpu_s=ccpu, tcp=tcp_delta(t0d), errors=errs)


def workload_D(d, rep):
    c0 = d.cpu()
    if LOADGEN == "cpp":
        cmd = [LOADGEN_BIN, "list", str(d.port), "--conns", str(D_CONNS), "--duration", str(DUR), "--expect", "100"]
        who = "ferry-loadgen list (C++, one loop, %d sessions)" % D_CONNS
    else:
        cmd = [PY, LOAD, "list", str(d.port), "--workers", str(D_CONNS), "--duration", str(DUR), "--expect", "100"]
        who = "ferry_load.py list (python, %d procs)" % D_CONNS
    rc, out, err, ccpu = run(cmd, DUR + 60)
    time.sleep(0.1)
    cpu = d.cpu() - c0
    try:
        r = json.loads(out)
    except ValueError:
        r = {"ok": 0, "errors": -1, "rps": 0, "first_error": err[-200:]}
    record(w="D", anchor="ferry", rep=rep, client=who,
           mode="ferry-session", ok=r["ok"], errors=r["errors"], rps=r["rps"], server_cpu_s=cpu,
           server_cpu_us_per_req=cpu / r["ok"] * 1e6 if r["ok"] else None,
           client_cpu_s=ccpu, error=r.get("first_error", ""))


def workload_E(rep, n):
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < n + 100:
        # ferryd and the client each need n descriptors; raising the hard
        # limit needs CAP_SYS_RESOURCE, which a container may lack
        log("E: %d idle sessions skipped: ulimit -n is %d" % (n, soft))
        record(w="E_skipped", anchor="ferry", rep=rep, asked_skipped=n,
               error="ulimit -n is %d, %d connections need %d" % (soft, n, n + 100))
        return
    d = Ferryd(SRV, "E%d-%d" % (n, rep)).start()   # fresh process, like the anchors
    try:
        time.sleep(1)
        t0d = tcpext()
        deadline = max(150, n // 200)
        if LOADGEN == "cpp":
            sources = (n + 19999) // 20000 if E_SOURCES == "auto" else int(E_SOURCES)
            cmd = [LOADGEN_BIN, "idle", str(d.port), str(n), "--pid", str(d.pid), "--hold", "3",
                   "--deadline", str(deadline), "--sources", str(sources)]
        else:
            cmd = [PY, LOAD, "idle", str(d.port), str(n), "--pid", str(d.pid), "--hold", "3",
                   "--deadline", str(deadline)]
        rc, out, err, _ = run(cmd, deadline + 90)
        try:
            r = json.loads(out)
        except ValueError:
            r = {"error": err[-300:]}
        record(w="E", anchor="ferry", rep=rep, tcp=tcp_delta(t0d), **r)
    finally:
        d.stop()


def zeros_sha256(nbytes):
    """SHA-256 of NBYTES zero bytes (the sparse F file), cached beside it."""
    h = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(nbytes >> 20):
        h.update(block)
    return h.hexdigest()


def workload_F(rep, d, name, size, sha):
    rc, out, err, _ = run([PY, LOAD, "stall", str(d.port), name, "--pid", str(d.pid),
                           "--first", str(64 << 20), "--stall", str(STALL), "--sample", "0.5",
                           "--sha256", sha], STALL + 180)
    try:
        r = json.loads(out)
    except ValueError:
        r = {"ok": False, "error": err[-300:]}
    r.setdefault("ok", False)
    record(w="F", anchor="ferry", rep=rep, file_bytes=size, **r)


def main():
    os.makedirs(RUN, exist_ok=True)
    def stop(_signum, _frame):
        # once only: compare.sh's cleanup may signal again, which must not
        # cut short the finally below that stops ferryd and removes files
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    helptext = client_help("get")
    top_help = run([FERRY, "--help"], 10)[1]
    put_as = "--as" in client_help("put")
    # `get -o -` (write to stdout) is being added to the client; use it once there.
    stdout_ok = re.search(r"(^|\s)-o[,\s]", helptext) is not None
    fast = os.environ.get("FAST_HASH_ARGS")
    if fast is None:
        # --hash is a global option of the client (before the subcommand)
        fast = "--hash xxh3-128" if "--hash" in helptext + top_help else ""
    fast_args = fast.split()
    dl_dir = os.environ.get("DL_DIR") or os.path.join("/dev/shm", "ferry-bench-%d" % os.getpid())
    if not stdout_ok:
        os.makedirs(dl_dir, exist_ok=True)
    record(w="meta", anchor="ferry", client_stdout=stdout_ok, fast_hash_args=fast, put_as=put_as, loadgen=LOADGEN,
           ferryd_args=" ".join(LIMIT_ARGS),
           download_sink="stdout > /dev/null" if stdout_ok else "file in %s (tmpfs)" % dl_dir)
    servers = []
    tmpfs = None
    t_start = time.monotonic()
    try:
        d = Ferryd(SRV, "main").start()
        servers.append(d)
        dt = None
        if "B" in ONLY:
            # Bt: the same upload into a tmpfs folder, so the disk's part
            # (the fsyncs, the writeback) shows apart from the protocol's
            tmpfs = os.environ.get("TMPFS_DIR") or os.path.join("/dev/shm", "ferry-bench-up-%d" % os.getpid())
            os.makedirs(tmpfs, exist_ok=True)
            dt = Ferryd(tmpfs, "tmpfs").start()
            servers.append(dt)
        variants = [("ferry", [])] + ([("ferry %s" % fast, fast_args)] if fast_args else [])
        for rep in range(1, REPS + 1):
            if "S" in ONLY:
                # single-core SHA-256 speed: what one hashing core allows
                rc, out, err, _ = run(["openssl", "speed", "-mr", "-evp", "sha256", "-bytes", "1048576",
                                       "-seconds", "3"], 60)
                v = [l for l in out.splitlines() if l.startswith("+F:")]
                if v:
                    record(w="S", anchor="openssl sha256 (1 core)", rep=rep, ok=True,
                           MBps=float(v[-1].split(":")[-1]) / 1e6)
            for name, extra in variants:
                if "A" in ONLY:
                    workload_A(d, rep, name, extra, stdout_ok, dl_dir)
            if "B" in ONLY:
                workload_W(rep)
            for name, extra in variants:
                if "B" in ONLY:
                    workload_B(d, rep, name, extra, put_as)
                    workload_B(dt, rep, name, extra, put_as, w="Bt")
        if "C" in ONLY:
            for n in NCLIS:
                for rep in range(1, REPS + 1):
                    log("C: %d clients at once, m4.bin (rep %d)" % (n, rep))
                    workload_C(d, rep, n)
                    time.sleep(1)
        if "D" in ONLY:
            for rep in range(1, REPS + 1):
                log("D: list for %gs from 8 processes (rep %d)" % (DUR, rep))
                workload_D(d, rep)
        if not d.alive():
            record(w="error", anchor="ferry", error="ferryd died during A-D")
        d.stop()
        servers.remove(d)
        if dt is not None:
            dt.stop()
            servers.remove(dt)
            for f in os.listdir(dt.root):
                os.remove(os.path.join(dt.root, f))
        if "E" in ONLY:
            for n in NIDLES:
                for rep in range(1, REPS + 1):
                    log("E: %d idle sessions (rep %d)" % (n, rep))
                    workload_E(rep, n)
        if "F" in ONLY:
            froot = os.path.join(RUN, "froot")
            os.makedirs(froot, exist_ok=True)
            name, size = "big%d.bin" % F_GIB, F_GIB * GIB
            path = os.path.join(froot, name)
            if not os.path.exists(path) or os.path.getsize(path) != size:
                with open(path, "wb") as f:
                    f.truncate(size)      # sparse: no disk, reads come from zero pages
            log("F: SHA-256 of %d GiB of zeros (for the trailer check)" % F_GIB)
            sha = zeros_sha256(size)
            fd = Ferryd(froot, "F").start()
            servers.append(fd)
            for rep in range(1, REPS + 1):
                log("F: %d GiB get, reader stalls %gs after 64 MiB (rep %d)" % (F_GIB, STALL, rep))
                workload_F(rep, fd, name, size, sha)
            fd.stop()
            servers.remove(fd)
            os.remove(path)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                log("stop: %r" % e)
        if tmpfs and not os.environ.get("TMPFS_DIR"):
            shutil.rmtree(tmpfs, ignore_errors=True)
        if not os.environ.get("DL_DIR") and not stdout_ok:
            shutil.rmtree(dl_dir, ignore_errors=True)
        log("ferry workloads done in %.0f s" % (time.monotonic() - t_start))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(143)
