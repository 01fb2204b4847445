#!/usr/bin/python3
"""How each cost of ferry grows with its work (issue 15, targets 5 and 6); called by bench/curves.sh.

Standard library only. Appends one JSON line per measurement to OUT and
prints markdown tables (also written to TABLE) at the end:

  a        `ferry get` of one A_MIB MiB file to /dev/null (-o -) and into a file in DL,
           with xxh3-128 and SHA-256, beside one plain iperf3 stream of as many bytes:
           MB/s, ratio to iperf3, ferryd and client CPU s per GiB (issue 15, target 2).
  size     download and upload MB/s (and files/s) of SIZES files, COUNT of each
           size moved by one client session: `ferry get 'd/*' -C DIR` and
           `ferry put FILES -C d` (every file hashed on both ends, synced by
           the receiver) beside one FTP session (Python's ftplib, RETR/STOR
           one after another) against vsftpd (the anchors' conf/vsftpd.conf,
           127.0.0.1:2121) and pyftpdlib (the anchors' conf/pyftpd_server.py
           on a free port); neither FTP server hashes or syncs.
  list     ferryd CPU µs per listed entry, one persistent session sending
           paged list requests of a folder of LIST_SIZES files for LIST_SECS.
  idle     ferryd PSS per idle connection at IDLE_SIZES (E: the load generator's idle).
  uploads  ferryd RSS (sampled every 0.1 s) during UPLOADS concurrent `ferry
           put` of UP_MIB MiB each; at each of WORKERS.
  burst    C: BURST clients at once each get a 4 MiB file (the load
           generator's burst, bytes counted), at each of WORKERS (ferryd
           --workers N); the C++ generator spreads them over LOADGEN_THREADS
           loop threads, so that many workers are not measured through one
           client core.

The load generator of idle and burst is LOADGEN_BIN (bench/ferry-loadgen,
C++) when curves.sh found it built, else bench/ferry_load.py (Python);
both print the same JSON fields.

Environment (curves.sh sets the defaults; QUICK=1 smaller ones):
  FERRYD, FERRY, ANCHORS, OUT, TABLE, WORK (served folder, under the vsftpd
  chroot /tmp/anchors/root), DL (where downloads land), REPS, SIZES
  ("4K:1000,64K:500,1M:200,64M:8,1G:1" = size:count), WHO (ferry,vsftpd,pyftpdlib),
  LIST_SIZES, LIST_SECS, IDLE_SIZES, IDLE_REPS (1), UPLOADS, UP_MIB, BURST, WORKERS, FERRYD_ARGS,
  HASH (ferry's --hash; default the client's), A_MIB (1024), LOADGEN_BIN,
  LOADGEN_THREADS (1), C_VERIFY (none, sha256 or xxh3-128: C's --verify),
  PY (the Python of ferry_load.py: this one),
  ONLY (a,size,list,idle,uploads,burst).
Every process it starts is stopped by its PID; every wait is bounded.
"""
import ftplib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ferry_load  # noqa: E402  (the protocol's framing and the E/C load generators)

PY = os.environ.get("PY") or sys.executable
LOAD = os.path.join(HERE, "ferry_load.py")
LOADGEN_BIN = os.environ.get("LOADGEN_BIN", "")
LOADGEN_THREADS = int(os.environ.get("LOADGEN_THREADS", "1"))
# C's clients check nothing by default (none: ferryd still hashes what it
# sends, in SHA-256, for the trailer); sha256 or xxh3-128 makes both ends hash.
C_VERIFY = os.environ.get("C_VERIFY", "none")
GENERATOR = "ferry-loadgen" if LOADGEN_BIN else "ferry_load.py"
FERRYD, FERRY = os.environ["FERRYD"], os.environ["FERRY"]
ANCHORS = os.environ["ANCHORS"]
OUT, TABLE = os.environ["OUT"], os.environ["TABLE"]
WORK = os.environ.get("WORK", "/tmp/anchors/root/curves")
DL = os.environ.get("DL", "/dev/shm/ferry-curves-dl")
REPS = int(os.environ.get("REPS", "3"))
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
SIZES = [(s.split(":")[0], int(s.split(":")[1])) for s in
         os.environ.get("SIZES", "4K:1000,64K:500,1M:200,64M:8,1G:1").split(",") if s]
WHO = os.environ.get("WHO", "ferry,vsftpd,pyftpdlib").split(",")
LIST_SIZES = [int(n) for n in os.environ.get("LIST_SIZES", "100,10000,100000").split(",") if n]
LIST_SECS = float(os.environ.get("LIST_SECS", "5"))
IDLE_REPS = int(os.environ.get("IDLE_REPS", "1"))
IDLE_SIZES = [int(n) for n in os.environ.get("IDLE_SIZES", "1000,10000,50000").split(",") if n]
UPLOADS = int(os.environ.get("UPLOADS", "200"))
UP_MIB = int(os.environ.get("UP_MIB", "4"))
BURST = int(os.environ.get("BURST", "200"))
WORKERS = [int(n) for n in os.environ.get("WORKERS", "1,2").split(",") if n]
HASH = os.environ.get("HASH", "")
A_MIB = int(os.environ.get("A_MIB", "1024"))
ONLY = set(os.environ.get("ONLY", "a,size,list,idle,uploads,burst").split(","))
LIMIT_ARGS = ["--max-connections", "60000", "--max-connections-per-address", "60000",
              "--max-transfers", "4096", "--drain-timeout", "1"] + os.environ.get("FERRYD_ARGS", "").split()
TCK = os.sysconf("SC_CLK_TCK")
RESULTS = []


def log(text):
    print("[%s] curves: %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def emit(**record):
    RESULTS.append(record)
    with open(OUT, "a") as f:
        f.write(json.dumps(record) + "\n")
    log(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}))


def size_bytes(label):
    return int(label[:-1]) * UNITS[label[-1]] if label[-1] in UNITS else int(label)


def fresh(path, mode=0o755):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    os.chmod(path, mode)
    return path


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TCK


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_port(port, process, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def server_log(name):
    return open(os.path.join(os.path.dirname(OUT), name + ".log"), "ab")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process, seconds=10):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Ferryd:
    """A ferryd on a free 127.0.0.1 port serving ROOT; stopped by its PID."""

    def __init__(self, root, *extra):
        self.log = open(os.path.join(os.path.dirname(OUT), "ferryd.log"), "ab")
        self.process = subprocess.Popen([FERRYD, "--root", root, "--listen", "127.0.0.1:0", *LIMIT_ARGS, *extra],
                                        stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("ferryd did not start: " + line)
        self.port = int(line.rsplit(":", 1)[1])
        self.pid = self.process.pid

    def cpu(self):
        return proc_cpu(self.pid)

    def stop(self):
        stop(self.process, 30)
        self.process.stdout.close()
        self.log.close()


def ferry(port, *args, timeout=900):
    chosen = ["--hash", HASH] if HASH and "--hash" not in args else []
    argv = [FERRY, "--server", "127.0.0.1:%d" % port] + chosen + list(args)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError("ferry %s: %s" % (" ".join(args[:2]), p.stderr.decode(errors="replace")[-300:]))
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


# ------------------------------------------------------------------ size: MB/s by file size
def make_files(folder, label, count):
    """COUNT random files of LABEL bytes in FOLDER (kept between runs when complete)."""
    size = size_bytes(label)
    os.makedirs(folder, exist_ok=True)
    names = ["f%06d.bin" % i for i in range(count)]
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.exists(path) or os.path.getsize(path) != size:
            with open(path, "wb") as f:
                left = size
                while left:
                    n = min(left, 64 << 20)
                    f.write(os.urandom(n))
                    left -= n
    return names


def ftp_session(port, cwd):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=120)
    ftp.login()
    if cwd:
        ftp.cwd(cwd)
    return ftp


def size_curve():
    srcs = {}
    for label, count in SIZES:
        log("making %d files of %s" % (count, label))
        srcs[label] = make_files(os.path.join(WORK, "d" + label), label, count)
    os.sync()
    vs = None
    servers = {}
    try:
        if "ferry" in WHO:
            servers["ferry"] = Ferryd(WORK)
        if "pyftpdlib" in WHO:
            port = free_port()
            p = subprocess.Popen([PY, os.path.join(ANCHORS, "conf", "pyftpd_server.py"), WORK, str(port)],
                                 stdout=subprocess.DEVNULL, stderr=server_log("pyftpdlib"), stdin=subprocess.DEVNULL,
                                 start_new_session=True)
            servers["pyftpdlib"] = (p, port, "")
            if not wait_port(port, p):
                log("pyftpdlib did not start: skipped")
                del servers["pyftpdlib"]
                stop(p)
        if "vsftpd" in WHO:
            busy = True
            try:
                socket.create_connection(("127.0.0.1", 2121), timeout=1).close()
            except OSError:
                busy = False
            if busy or not os.path.exists("/usr/sbin/vsftpd"):
                log("vsftpd not installed or port 2121 taken: skipped")
            else:
                os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
                vs = subprocess.Popen(["/usr/sbin/vsftpd", os.path.join(ANCHORS, "conf", "vsftpd.conf")],
                                      stdout=server_log("vsftpd"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
                if wait_port(2121, vs):
                    # its chroot is /tmp/anchors/root: WORK must be inside it
                    servers["vsftpd"] = (vs, 2121, os.path.relpath(WORK, "/tmp/anchors/root"))
                else:
                    log("vsftpd did not start: skipped")
        for rep in range(1, REPS + 1):
            for label, count in SIZES:
                names = srcs[label]
                src = os.path.join(WORK, "d" + label)
                total = size_bytes(label) * count
                for who in [w for w in WHO if w in servers]:   # alternated within each size
                    up_rel = "up-%s-%s" % (who, label)
                    up = fresh(os.path.join(WORK, up_rel), 0o777)
                    dl = fresh(os.path.join(DL, who))
                    try:
                        if who == "ferry":
                            d = servers["ferry"]
                            c0 = d.cpu()
                            t0 = time.monotonic()
                            ccpu = ferry(d.port, "get", "d%s/*" % label, "-C", dl)
                            down = time.monotonic() - t0
                            c1 = d.cpu()
                            os.sync()
                            t0 = time.monotonic()
                            ccpu2 = ferry(d.port, "put", *[os.path.join(src, n) for n in names], "-C", up_rel)
                            upt = time.monotonic() - t0
                            extra = {"server_cpu_down_s": c1 - c0, "server_cpu_up_s": d.cpu() - c1,
                                     "client_cpu_down_s": ccpu, "client_cpu_up_s": ccpu2}
                        else:
                            _, port, cwd = servers[who]
                            ftp = ftp_session(port, cwd)
                            t0 = time.monotonic()
                            for n in names:
                                with open(os.path.join(dl, n), "wb") as f:
                                    ftp.retrbinary("RETR d%s/%s" % (label, n), f.write, blocksize=1 << 20)
                            down = time.monotonic() - t0
                            os.sync()
                            ftp.cwd(up_rel)
                            t0 = time.monotonic()
                            for n in names:
                                with open(os.path.join(src, n), "rb") as f:
                                    ftp.storbinary("STOR " + n, f, blocksize=1 << 20)
                            upt = time.monotonic() - t0
                            ftp.quit()
                            extra = {}
                        got = sum(os.path.getsize(os.path.join(dl, n)) for n in names)
                        put = sum(os.path.getsize(os.path.join(up, n)) for n in names)
                        ok = got == total and put == total
                        emit(w="size", who=who, rep=rep, size=label, files=count, bytes=total, ok=ok,
                             down_s=down, up_s=upt, down_MBps=total / down / 1e6, up_MBps=total / upt / 1e6,
                             down_files_s=count / down, up_files_s=count / upt, **extra)
                    except Exception as e:  # noqa: BLE001 - a failed point is recorded, the curve goes on
                        emit(w="size", who=who, rep=rep, size=label, files=count, ok=False, error=repr(e)[-300:])
                    finally:
                        shutil.rmtree(up, ignore_errors=True)
                        shutil.rmtree(dl, ignore_errors=True)
    finally:
        for who, s in servers.items():
            if who == "ferry":
                s.stop()
            else:
                stop(s[0])


# ------------------------------------------------------------------ a: one big download beside iperf3
def iperf3_mbps(nbytes):
    """One plain iperf3 stream of NBYTES on a free loopback port (the loopback limit): MB/s, or None."""
    if not shutil.which("iperf3"):
        return None
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # (no probe connection: it would be the one test `-1` serves)
        for _ in range(20):
            time.sleep(0.25)
            p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-n", str(nbytes), "-J"],
                               capture_output=True, text=True, timeout=120)
            if p.returncode == 0:
                return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 8e6
            if server.poll() is not None:
                return None
        return None
    except (ValueError, KeyError, subprocess.TimeoutExpired):
        return None
    finally:
        stop(server)


def a_curve():
    """`ferry get BIG -o -` (to /dev/null) and into a file in DL, SHA-256 and xxh3-128, beside iperf3."""
    label = "%dM" % A_MIB
    names = make_files(os.path.join(WORK, "a"), label, 1)
    nbytes = size_bytes(label)
    d = Ferryd(WORK)
    try:
        ferry(d.port, "--hash", "sha256", "get", "a/" + names[0], "-o", "-")   # warm the digest caches, untimed
        ferry(d.port, "--hash", "xxh3-128", "get", "a/" + names[0], "-o", "-")
        for rep in range(1, REPS + 1):
            emit(w="a", who="iperf3", rep=rep, bytes=nbytes, MBps=iperf3_mbps(nbytes))
            for hash_name in ("xxh3-128", "sha256"):
                for sink in ("stdout", "file"):
                    dest = os.path.join(DL, "a.bin")
                    c0, t0 = d.cpu(), time.monotonic()
                    ccpu = ferry(d.port, "--hash", hash_name, "get", "a/" + names[0], "-o",
                                 "-" if sink == "stdout" else dest)
                    secs = time.monotonic() - t0
                    time.sleep(0.1)
                    if sink == "file":
                        os.remove(dest)
                    emit(w="a", who="ferry", rep=rep, hash=hash_name, sink=sink, bytes=nbytes, secs=secs,
                         MBps=nbytes / secs / 1e6, server_cpu_s=d.cpu() - c0, client_cpu_s=ccpu)
    finally:
        d.stop()


# ------------------------------------------------------------------ list: µs per entry
class Session2(ferry_load.Session):
    """ferry_load's blocking session, speaking version 2 (list of a folder's path)."""

    def __init__(self, port, timeout=120):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.id = 0
        reply = self.call({"op": "hello", "version": 2, "client": "ferry-curves/1"})
        if reply.get("version") != 2:
            raise RuntimeError("ferryd speaks version %s, not 2" % reply.get("version"))


def list_paged(session, path):
    """One paged list of PATH on a Session2: the number of entries."""
    session.id += 1
    session.s.sendall(ferry_load.frame({"op": "list", "id": session.id, "path": path, "paged": True}))
    entries = 0
    while True:
        kind, n = struct.unpack(">BI", session._exact(5))
        msg = json.loads(session._exact(n))
        if kind != ferry_load.CONTROL or not msg.get("ok"):
            raise RuntimeError("list %s: %r" % (path, msg.get("error")))
        entries += len(msg.get("files", []))
        if not msg.get("more"):
            return entries


def list_curve():
    root = os.path.join(WORK, "lists")
    os.makedirs(root, exist_ok=True)
    for n in LIST_SIZES:
        folder = os.path.join(root, "l%d" % n)
        if not os.path.isdir(folder) or len(os.listdir(folder)) != n:
            log("making a folder of %d files" % n)
            fresh(folder)
            for i in range(n):
                with open(os.path.join(folder, "e%07d" % i), "wb") as f:
                    f.write(b"x" * (i % 100))
    d = Ferryd(root)
    try:
        for n in LIST_SIZES:
            for rep in range(1, REPS + 1):
                s = Session2(d.port)
                list_paged(s, "l%d" % n)  # warm the dentry cache, untimed
                c0, t0, lists = d.cpu(), time.monotonic(), 0
                while time.monotonic() - t0 < LIST_SECS or lists == 0:
                    got = list_paged(s, "l%d" % n)
                    if got != n:
                        raise RuntimeError("listed %d of %d" % (got, n))
                    lists += 1
                secs = time.monotonic() - t0
                time.sleep(0.1)
                cpu = d.cpu() - c0
                s.s.close()
                emit(w="list", who="ferry", rep=rep, entries=n, lists=lists, secs=secs, server_cpu_s=cpu,
                     us_per_list=cpu / lists * 1e6, us_per_entry=cpu / lists / n * 1e6,
                     wall_us_per_entry=secs / lists / n * 1e6)
    finally:
        d.stop()


# ------------------------------------------------------------------ idle: PSS per connection
def idle_curve():
    for n in IDLE_SIZES:
        for rep in range(1, IDLE_REPS + 1):
            d = Ferryd(WORK)
            try:
                time.sleep(1)
                argv = ["idle", str(d.port), str(n), "--pid", str(d.pid), "--hold", "3", "--deadline", "300"]
                if LOADGEN_BIN:
                    # one source address has about 64,000 ephemeral ports to one port
                    argv = [LOADGEN_BIN] + argv + ["--sources", str((n + 19999) // 20000)]
                else:
                    argv = [PY, LOAD] + argv
                p = subprocess.run(argv, capture_output=True, text=True, timeout=420)
                try:
                    r = json.loads(p.stdout)
                except ValueError:
                    r = {"error": p.stderr[-300:]}
                emit(w="idle", who="ferry", rep=rep, sessions=n, **r)
            finally:
                d.stop()


# ------------------------------------------------------------------ uploads and burst at N workers
def uploads_at(workers, rep):
    src = os.path.join(WORK, "upsrc")
    names = make_files(src, "%dM" % UP_MIB, UPLOADS)
    dest = fresh(os.path.join(WORK, "upn"), 0o777)
    d = Ferryd(WORK, "--workers", str(workers))
    try:
        time.sleep(0.5)
        rss0 = proc_rss_kb(d.pid)
        c0 = d.cpu()
        t0 = time.monotonic()
        procs = [subprocess.Popen([FERRY, "--server", "127.0.0.1:%d" % d.port] + (["--hash", HASH] if HASH else [])
                                  + ["put", os.path.join(src, n), "--as", "upn/" + n],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in names]
        peak = rss0
        deadline = time.monotonic() + 600
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            peak = max(peak, proc_rss_kb(d.pid))
            time.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        secs = time.monotonic() - t0
        cpu = d.cpu() - c0
        ok = sum(1 for p in procs if p.returncode == 0)
        stored = sum(os.path.getsize(os.path.join(dest, n)) for n in names if os.path.exists(os.path.join(dest, n)))
        emit(w="uploads", who="ferry", rep=rep, workers=workers, uploads=UPLOADS, mib_each=UP_MIB, ok=ok,
             secs=secs, MBps=stored / secs / 1e6, server_cpu_s=cpu, rss_kb_before=rss0, rss_kb_peak=peak,
             rss_kb_peak_minus_before=peak - rss0)
    finally:
        d.stop()
        shutil.rmtree(dest, ignore_errors=True)


def burst_at(workers, rep):
    with open(os.path.join(WORK, "m4.bin"), "ab") as f:
        if f.tell() != 4 << 20:
            f.truncate(0)
            f.write(os.urandom(4 << 20))
    d = Ferryd(WORK, "--workers", str(workers))
    try:
        time.sleep(0.5)
        c0 = d.cpu()
        argv = ["burst", str(d.port), "m4.bin", str(BURST), "--deadline", "60", "--verify", C_VERIFY]
        if LOADGEN_BIN:
            argv = [LOADGEN_BIN] + argv + ["--threads", str(LOADGEN_THREADS)]
        else:
            argv = [PY, LOAD] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        cpu = d.cpu() - c0
        try:
            r = json.loads(p.stdout)
        except ValueError:
            r = {"ok": 0, "bytes": 0, "wall_s": 0, "errors": {p.stderr[-200:]: BURST}}
        emit(w="burst", who="ferry", rep=rep, workers=workers, clients=BURST, ok=r["ok"], bytes=r["bytes"],
             wall_s=r["wall_s"], MBps=r["bytes"] / r["wall_s"] / 1e6 if r["wall_s"] else 0.0,
             slowest_ok_s=r.get("slowest_ok_s"), server_cpu_s=cpu, client_cpu_s=r.get("client_cpu_s"),
             generator=r.get("client", "ferry_load.py"), client_threads=r.get("threads", 1),
             slow_connects=r.get("slow_connects"), errors=r.get("errors"), verify=C_VERIFY)
    finally:
        d.stop()


# ------------------------------------------------------------------ report
def med(records, key):
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=None):
    """Three significant figures or so, unless DIGITS says."""
    if value is None:
        return "–"
    if digits is None:
        digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return ("{:,.%df}" % digits).format(value)


def report():
    lines = []
    size = [r for r in RESULTS if r["w"] == "size"]
    if size:
        who = [w for w in WHO if any(r["who"] == w for r in size)]
        lines += ["### Download and upload by file size (one session; median of %d; MB = 10^6 B)" % REPS, "",
                  "ferry hashes every file on both ends and the receiver syncs it before publishing; "
                  "the FTP servers neither hash nor sync. Downloads land in %s." % DL, "",
                  "| size × files | " + " | ".join("%s down MB/s (files/s)" % w for w in who) + " | "
                  + " | ".join("%s up MB/s (files/s)" % w for w in who) + " |",
                  "|---|" + "---|" * (2 * len(who))]
        for label, count in SIZES:
            cells = []
            for way in ("down", "up"):
                for w in who:
                    rs = [r for r in size if r["who"] == w and r["size"] == label and r["ok"]]
                    cells.append("%s (%s)" % (fmt(med(rs, way + "_MBps")), fmt(med(rs, way + "_files_s")))
                                 if rs else "failed")
            lines.append("| %s × %d | %s |" % (label, count, " | ".join(cells)))
        fs = [r for r in size if r["who"] == "ferry" and r["ok"]]
        if fs:
            lines += ["", "ferry's CPU (user + system): per GiB, and per file in ms.", "",
                      "| size | ferryd s/GiB down | up | client s/GiB down | up | ferryd ms/file down | up "
                      "| client ms/file down | up |", "|---|---|---|---|---|---|---|---|---|"]
            for label, count in SIZES:
                rs = [r for r in fs if r["size"] == label]
                if rs:
                    g = rs[0]["bytes"] / (1 << 30)
                    keys = ("server_cpu_down_s", "server_cpu_up_s", "client_cpu_down_s", "client_cpu_up_s")
                    lines.append("| %s | %s | %s |" % (label, " | ".join(fmt(med(rs, k) / g) for k in keys),
                                                       " | ".join(fmt(med(rs, k) / count * 1e3) for k in keys)))
        lines.append("")
    a = [r for r in RESULTS if r["w"] == "a"]
    if a:
        ip = med([r for r in a if r["who"] == "iperf3"], "MBps")
        g = A_MIB / 1024
        lines += ["### One %d MiB download beside iperf3 (plain, one stream; median of %d)" % (A_MIB, REPS), "",
                  "iperf3: %s MB/s. The file lands in %s; ferry syncs it before the rename." % (fmt(ip), DL), "",
                  "| hash | sink | MB/s | ÷ iperf3 | ferryd CPU s/GiB | client CPU s/GiB |", "|---|---|---|---|---|---|"]
        for hash_name in ("xxh3-128", "sha256"):
            for sink in ("stdout", "file"):
                rs = [r for r in a if r["who"] == "ferry" and r["hash"] == hash_name and r["sink"] == sink]
                m = med(rs, "MBps")
                lines.append("| %s | %s | %s | %s | %s | %s |" % (
                    hash_name, "-o - > /dev/null" if sink == "stdout" else "file", fmt(m),
                    fmt(m / ip) if m and ip else "–", fmt(med(rs, "server_cpu_s") / g if rs else None),
                    fmt(med(rs, "client_cpu_s") / g if rs else None)))
        lines.append("")
    lst = [r for r in RESULTS if r["w"] == "list"]
    if lst:
        lines += ["### List: ferryd CPU per entry (one session, paged lists back to back for %gs)" % LIST_SECS, "",
                  "| entries | lists | ferryd µs per list | ferryd µs per entry | wall µs per entry |",
                  "|---|---|---|---|---|"]
        for n in LIST_SIZES:
            rs = [r for r in lst if r["entries"] == n]
            lines.append("| %s | %s | %s | %s | %s |" % (fmt(n, 0), fmt(med(rs, "lists"), 0), fmt(med(rs, "us_per_list")),
                                                         fmt(med(rs, "us_per_entry"), 2),
                                                         fmt(med(rs, "wall_us_per_entry"), 2)))
        lines.append("")
    idle = [r for r in RESULTS if r["w"] == "idle"]
    if idle:
        lines += ["### Idle connections: ferryd memory per connection (%s idle)" % GENERATOR, "",
                  "| asked | held (greeted) | PSS KiB per connection | RSS KiB per connection |", "|---|---|---|---|"]
        for n in IDLE_SIZES:
            rs = [r for r in idle if r["sessions"] == n]
            lines.append("| %s | %s | %s | %s |" % (fmt(n, 0), fmt(med(rs, "greeted"), 0), fmt(med(rs, "pss_kb_per_conn"), 2),
                                                    fmt(med(rs, "rss_kb_per_conn"), 2)))
        lines.append("")
    ups = [r for r in RESULTS if r["w"] == "uploads"]
    bur = [r for r in RESULTS if r["w"] == "burst"]
    if ups or bur:
        lines += ["### By --workers: %d concurrent uploads of %d MiB, and C (%d clients × 4 MiB at once, %s%s)"
                  % (UPLOADS, UP_MIB, BURST, GENERATOR,
                     (", %d loop threads" % LOADGEN_THREADS if LOADGEN_BIN else "") + ", --verify " + C_VERIFY), "",
                  "| workers | uploads ok | uploads MB/s | ferryd RSS before → peak MiB | ferryd CPU s (uploads) "
                  "| C ok | C MB/s | ferryd CPU s (C) | client CPU s (C) |", "|---|---|---|---|---|---|---|---|---|"]
        for w in WORKERS:
            u = [r for r in ups if r["workers"] == w]
            b = [r for r in bur if r["workers"] == w]
            lines.append("| %d | %s/%d | %s | %s → %s | %s | %s/%d | %s | %s | %s |" % (
                w, fmt(med(u, "ok"), 0), UPLOADS, fmt(med(u, "MBps")),
                fmt((med(u, "rss_kb_before") or 0) / 1024, 1) if u else "–",
                fmt((med(u, "rss_kb_peak") or 0) / 1024, 1) if u else "–",
                fmt(med(u, "server_cpu_s"), 2), fmt(med(b, "ok"), 0), BURST, fmt(med(b, "MBps")),
                fmt(med(b, "server_cpu_s"), 2), fmt(med(b, "client_cpu_s"), 2)))
        lines.append("")
    text = "\n".join(lines)
    with open(TABLE, "a") as f:
        f.write(text + "\n")
    print(text)


def main():
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(DL, exist_ok=True)
    t0 = time.monotonic()
    try:
        if "a" in ONLY:
            a_curve()
        if "size" in ONLY:
            size_curve()
        if "list" in ONLY:
            list_curve()
        if "idle" in ONLY:
            idle_curve()
        for w in WORKERS:
            for rep in range(1, REPS + 1):
                if "uploads" in ONLY:
                    uploads_at(w, rep)
                if "burst" in ONLY:
                    burst_at(w, rep)
    finally:
        shutil.rmtree(DL, ignore_errors=True)
        log("done in %.0f s" % (time.monotonic() - t0))
    report()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(143)
