#!/usr/bin/python3
"""Load generators that speak the Ferry protocol (docs/PROTOCOL.md), for bench/compare.sh.

Standard library only. Each subcommand prints one JSON object on stdout.

  burst PORT NAME N [--deadline 60] [--verify sha256|none]
      C: opens N connections at once (one asyncio loop, every connect issued
      before the first reply is read), each pipelines hello + get NAME, reads
      the data frames and checks their SHA-256 against the trailer.
  list PORT [--workers 8] [--duration 10] [--expect 100]
      D: W forked processes, each one persistent session sending list
      requests back to back for DURATION seconds; every reply must list
      EXPECT files.
  idle PORT N --pid SERVERPID [--hold 3] [--deadline 150]
      E: opens N connections one after another, each sends hello at once
      (pipelined, like an FTP client reading the 220 greeting), then waits
      for every hello reply, holds HOLD seconds, and takes the server's
      memory (Pss/Rss from /proc/PID/smaps_rollup) while they are held.
  stall PORT NAME --pid SERVERPID [--first 67108864] [--stall 20]
        [--sample 0.5] [--sha256 HEX]
      F: starts a get of NAME, reads the first FIRST bytes, then stops
      reading for STALL seconds while sampling the server's RSS every
      SAMPLE seconds, then reads the rest and checks the trailer.

Every wait is bounded (socket timeouts, --deadline), so a stuck server
makes a failed measurement, never a hung benchmark.
"""
import argparse
import asyncio
import hashlib
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time

CONTROL, DATA = 1, 2


def frame(obj):
    """One control frame: kind 0x01, big-endian length, compact JSON."""
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">BI", CONTROL, len(payload)) + payload


HELLO = {"op": "hello", "id": 0, "version": 1, "client": "ferry-bench/1"}


def raise_fd_limit():
    """10,000 idle connections need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def proc_mem(pid):
    """Server memory in KiB: VmRSS (status) and Pss (smaps_rollup)."""
    out = {"rss_kb": 0, "pss_kb": 0}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_kb"] = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["pss_kb"] = int(line.split()[1])
    except OSError:
        pass
    return out


def proc_cpu(pid):
    """utime + stime of PID in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def established_held(pid, port):
    """ESTABLISHED sockets on local PORT that PID holds as descriptors:
    connections the server really accepted, not just the kernel's queue."""
    est = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "01" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        est.add(p[9])
        except OSError:
            pass
    held = 0
    d = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(d):
            try:
                t = os.readlink(d + "/" + fd)
            except OSError:
                continue
            if t.startswith("socket:[") and t[8:-1] in est:
                held += 1
    except OSError:
        pass
    return held


class FrameReader:
    """Incremental frame parser: feed() bytes as they arrive; data payloads
    go to on_data(memoryview) piece by piece (never buffered whole), each
    control frame to on_control(dict) once complete."""

    def __init__(self, on_data, on_control):
        self.on_data, self.on_control = on_data, on_control
        self.head = bytearray()
        self.kind = None
        self.left = 0
        self.ctl = bytearray()

    def feed(self, data):
        mv = memoryview(data)
        i, n = 0, len(mv)
        while i < n:
            if self.kind is None:
                take = min(5 - len(self.head), n - i)
                self.head += mv[i:i + take]
                i += take
                if len(self.head) < 5:
                    return
                self.kind, self.left = struct.unpack(">BI", self.head)
                self.head = bytearray()
                if self.kind not in (CONTROL, DATA):
                    raise ValueError("bad frame kind %d" % self.kind)
                if self.left == 0:
                    self._end()
                continue
            take = min(self.left, n - i)
            if self.kind == DATA:
                self.on_data(mv[i:i + take])
            else:
                self.ctl += mv[i:i + take]
            self.left -= take
            i += take
            if self.left == 0:
                self._end()

    def _end(self):
        if self.kind == CONTROL:
            msg = json.loads(self.ctl)
            self.ctl = bytearray()
            self.kind = None
            self.on_control(msg)
        else:
            self.kind = None


# ----------------------------------------------------------------- C: burst
class GetClient(asyncio.Protocol):
    """hello + get NAME, pipelined in the first write; SHA-256 of the data
    checked against the trailer. Resolves `done` with a result dict."""

    def __init__(self, name, t0, done, verify=True):
        self.name, self.t0, self.done = name, t0, done
        # verify=False counts bytes only: shows what ferryd serves when the
        # Python checker (one core of SHA-256) would otherwise bound the figure
        self.verify = verify
        self.sha = hashlib.sha256()
        self.nbytes = 0
        self.replies = 0
        self.reader = FrameReader(self._data, self._control)
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.t_conn = time.monotonic()
        transport.write(frame(HELLO) + frame({"op": "get", "id": 1, "name": self.name, "offset": 0}))

    def _data(self, piece):
        if self.verify:
            self.sha.update(piece)
        self.nbytes += len(piece)

    def _control(self, msg):
        if not msg.get("ok"):
            self._finish(False, "error %s" % (msg.get("error") or {}).get("code"))
            return
        self.replies += 1
        if msg.get("done"):
            good = msg.get("size") == self.nbytes and (
                not self.verify or msg.get("sha256") == self.sha.hexdigest())
            self._finish(good, "" if good else "sha256 or size mismatch")

    def _finish(self, ok, err):
        if not self.done.done():
            self.done.set_result({"ok": ok, "error": err, "bytes": self.nbytes,
                                  "connected_at": self.t_conn - self.t0,
                                  "secs": time.monotonic() - self.t0})
        if self.transport:
            self.transport.close()

    def data_received(self, data):
        try:
            self.reader.feed(data)
        except ValueError as e:
            self._finish(False, "protocol: %s" % e)

    def connection_lost(self, exc):
        self._finish(False, "connection lost: %r" % (exc,) if exc else "closed by server")


async def burst_async(port, name, n, deadline, verify=True):
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()

    async def one():
        done = loop.create_future()
        try:
            tr, _ = await loop.create_connection(lambda: GetClient(name, t0, done, verify), "127.0.0.1", port)
        except OSError as e:
            return {"ok": False, "error": "connect: %s" % e.strerror, "bytes": 0}
        try:
            return await asyncio.wait_for(done, deadline - (time.monotonic() - t0))
        except asyncio.TimeoutError:
            tr.abort()
            return {"ok": False, "error": "timeout", "bytes": 0}

    # gather() starts every coroutine before any of them runs to its first
    # await, so all N connect() calls go out in one burst.
    res = await asyncio.gather(*(one() for _ in range(n)))
    return res, time.monotonic() - t0


def cmd_burst(a):
    raise_fd_limit()
    c0 = cpu_self()
    res, wall = asyncio.run(burst_async(a.port, a.name, a.n, a.deadline, a.verify == "sha256"))
    good = [r for r in res if r["ok"]]
    errors = {}
    for r in res:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    conn = [r["connected_at"] for r in res if "connected_at" in r]
    done_s = sorted(r["secs"] for r in good)
    print(json.dumps({
        "clients": a.n, "ok": len(good), "failed": a.n - len(good),
        "bytes": sum(r["bytes"] for r in good), "wall_s": wall,
        "slowest_ok_s": max((r["secs"] for r in good), default=None),
        "last_connect_s": max(conn, default=None),
        "median_ok_s": done_s[len(done_s) // 2] if done_s else None,
        # a connect that took a second or more had its SYN dropped and resent
        "slow_connects": sum(1 for c in conn if c >= 0.9),
        "client_cpu_s": cpu_self() - c0, "errors": errors}))


# ----------------------------------------------------------------- D: list
class Session:
    """A blocking, persistent session for the list load."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.id = 0
        self.call({"op": "hello", "version": 1, "client": "ferry-bench/1"})

    def _exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(max(65536, n - len(self.buf)))
            if not d:
                raise ConnectionError("closed by server")
            self.buf += d
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def call(self, obj):
        self.id += 1
        obj["id"] = self.id
        self.s.sendall(frame(obj))
        kind, n = struct.unpack(">BI", self._exact(5))
        msg = json.loads(self._exact(n))
        if kind != CONTROL or not msg.get("ok"):
            raise RuntimeError("reply %r" % (msg.get("error") if isinstance(msg, dict) else msg))
        return msg


def list_worker(port, deadline, expect, wfd):
    ok = err = 0
    first = ""
    s = None
    while time.monotonic() < deadline:
        try:
            if s is None:
                s = Session(port)
            n = len(s.call({"op": "list"})["files"])
            if n == expect:
                ok += 1
            else:
                err += 1
                first = first or "listed %d files, expected %d" % (n, expect)
        except Exception as e:  # noqa: BLE001 - count every failure, reconnect, go on
            err += 1
            first = first or repr(e)
            s = None
            time.sleep(0.01)
    os.write(wfd, (json.dumps({"ok": ok, "err": err, "first": first}) + "\n").encode())


def cmd_list(a):
    r, w = os.pipe()
    t0 = time.monotonic()
    pids = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                list_worker(a.port, t0 + a.duration, a.expect, w)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    for pid in pids:
        os.waitpid(pid, 0)
    secs = time.monotonic() - t0
    with os.fdopen(r) as f:
        res = [json.loads(line) for line in f if line.strip()]
    ok = sum(x["ok"] for x in res)
    print(json.dumps({"workers": a.workers, "ok": ok, "errors": sum(x["err"] for x in res),
                      "secs": secs, "rps": ok / secs,
                      "first_error": next((x["first"] for x in res if x["first"]), "")}))


# ----------------------------------------------------------------- E: idle
def cmd_idle(a):
    raise_fd_limit()
    before = proc_mem(a.pid)
    socks, fails, first = [], 0, ""
    hello = frame(HELLO)
    t0 = time.monotonic()
    for _ in range(a.n):
        if time.monotonic() - t0 > a.deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(hello)  # 70 bytes: always fits the socket buffer at once
            socks.append(s)
        except OSError as e:
            fails += 1
            first = first or repr(e)
    t_open = time.monotonic() - t0
    # Every hello must be answered: proof each connection is a real session.
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    greeted = refused = 0
    end = time.monotonic() + 30
    while bufs and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            bufs[s] += d
            done = len(bufs[s]) >= 5 and len(bufs[s]) >= 5 + struct.unpack(">BI", bufs[s][:5])[1]
            if not d or done:
                try:
                    ok = done and json.loads(bufs[s][5:]).get("ok") is True
                except ValueError:
                    ok = False
                if ok:
                    greeted += 1
                else:
                    refused += 1
                    first = first or "hello reply: %r" % bufs[s][:120]
                sel.unregister(s)
                del bufs[s]
    t_hello = time.monotonic() - t0
    time.sleep(a.hold)
    closed = 0
    for s in socks:
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed += 1
    after = proc_mem(a.pid)
    held = established_held(a.pid, a.port)
    for s in socks:
        s.close()
    k = max(len(socks), 1)
    print(json.dumps({
        "asked": a.n, "connected": len(socks), "connect_failed": fails,
        "greeted": greeted, "no_or_bad_greeting": len(socks) - greeted,
        "closed_by_server": closed, "server_held_estab": held,
        "open_secs": round(t_open, 2), "open_and_hello_secs": round(t_hello, 2),
        "rss_kb_before": before["rss_kb"], "rss_kb_after": after["rss_kb"],
        "pss_kb_before": before["pss_kb"], "pss_kb_after": after["pss_kb"],
        "nproc_before": 1, "nproc_after": 1,
        "rss_kb_per_conn": round((after["rss_kb"] - before["rss_kb"]) / k, 2),
        "pss_kb_per_conn": round((after["pss_kb"] - before["pss_kb"]) / k, 2),
        "first_error": first}))


# ----------------------------------------------------------------- F: stall
def cmd_stall(a):
    # Default socket buffers: the kernel's few MiB fill within the first
    # part, and they are not in the server's RSS anyway; a small SO_RCVBUF
    # would only slow the read of the rest after the stall.
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.stall + 30)
    s.sendall(frame(HELLO) + frame({"op": "get", "id": 1, "name": a.name, "offset": 0}))
    sha = hashlib.sha256()
    state = {"bytes": 0, "trailer": None, "error": ""}

    def on_data(piece):
        if a.sha256:
            sha.update(piece)
        state["bytes"] += len(piece)

    def on_control(msg):
        if not msg.get("ok"):
            state["error"] = "error %s" % (msg.get("error") or {}).get("code")
        elif msg.get("done"):
            state["trailer"] = msg

    reader = FrameReader(on_data, on_control)
    buf = bytearray(1 << 20)
    t0 = time.monotonic()
    base = proc_mem(a.pid)["rss_kb"]
    while state["bytes"] < a.first and not state["error"]:
        n = s.recv_into(buf)
        if not n:
            state["error"] = "closed by server"
            break
        reader.feed(memoryview(buf)[:n])
    t_first = time.monotonic() - t0
    samples = []
    c0 = proc_cpu(a.pid)
    end = time.monotonic() + a.stall
    while time.monotonic() < end:
        samples.append(proc_mem(a.pid)["rss_kb"])
        time.sleep(a.sample)
    stall_cpu = proc_cpu(a.pid) - c0
    t1 = time.monotonic()
    while state["trailer"] is None and not state["error"]:
        n = s.recv_into(buf)
        if not n:
            state["error"] = state["error"] or "closed by server"
            break
        reader.feed(memoryview(buf)[:n])
    t_rest = time.monotonic() - t1
    s.close()
    tr = state["trailer"] or {}
    ok = (not state["error"] and tr.get("size") == state["bytes"]
          and (not a.sha256 or (tr.get("sha256") == a.sha256 == sha.hexdigest())))
    print(json.dumps({
        "ok": ok, "bytes": state["bytes"], "error": state["error"] or ("" if ok else "trailer mismatch"),
        "first_bytes": a.first, "first_secs": t_first, "stall_secs": a.stall,
        "rest_secs": t_rest, "rss_kb_before_get": base,
        "rss_kb_first": samples[0] if samples else None, "rss_kb_last": samples[-1] if samples else None,
        "rss_kb_min": min(samples, default=None), "rss_kb_max": max(samples, default=None),
        "rss_samples_kb": samples, "server_cpu_during_stall_s": stall_cpu}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("burst")
    b.add_argument("port", type=int)
    b.add_argument("name")
    b.add_argument("n", type=int)
    b.add_argument("--deadline", type=float, default=60)
    b.add_argument("--verify", choices=("sha256", "none"), default="sha256")
    li = sub.add_parser("list")
    li.add_argument("port", type=int)
    li.add_argument("--workers", type=int, default=8)
    li.add_argument("--duration", type=float, default=10)
    li.add_argument("--expect", type=int, default=100)
    i = sub.add_parser("idle")
    i.add_argument("port", type=int)
    i.add_argument("n", type=int)
    i.add_argument("--pid", type=int, required=True)
    i.add_argument("--hold", type=float, default=3)
    i.add_argument("--deadline", type=float, default=150)
    st = sub.add_parser("stall")
    st.add_argument("port", type=int)
    st.add_argument("name")
    st.add_argument("--pid", type=int, required=True)
    st.add_argument("--first", type=int, default=64 << 20)
    st.add_argument("--stall", type=float, default=20)
    st.add_argument("--sample", type=float, default=0.5)
    st.add_argument("--sha256", default="")
    a = p.parse_args()
    {"burst": cmd_burst, "list": cmd_list, "idle": cmd_idle, "stall": cmd_stall}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
