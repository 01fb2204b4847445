"""Several ferryd over one GlusterFS volume behind HAProxy, all on 127.0.0.1,
started and stopped by the scale-out suite (docs/SCALE-OUT.md).

A Cluster is: glusterd with its own working, run and log folders (never
/var/lib/glusterd), a replica-2 volume of two bricks under a temporary
folder, two FUSE mounts of it, one ferryd per mount and haproxy in TCP mode
(round robin, protocol-level health checks) on a free port. Everything it
starts carries the temporary folder's path on its command line, so a sweep
by that path finds what a killed run left behind. One run at a time per
machine (glusterd's port 24007 is fixed): a lock file serialises them.

Standard library only."""

import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from xml.etree import ElementTree

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import harness  # noqa: E402

PREFIX = "ferry-scaleout-"
LOCK_FILE = os.path.join(tempfile.gettempdir(), "ferry-scaleout.lock")
# glusterd's management port: bricks and FUSE clients find glusterd there
# (glusterd passes no other port to the bricks it starts).
GLUSTERD_PORT = 24007
VOLUME = "ferryvol"
PROGRAMS = ("glusterd", "glusterfsd", "glusterfs", "haproxy", "ferryd")

# The smallest set of options under which a get or stat through one mount
# sees, at once, what a rename through the other mount published
# (read-after-write, test 9). Found by bisection (docs/SCALE-OUT.md):
# - md-cache (performance.stat-prefetch) keeps a name's attributes and
#   its inode on each client for a second: with it on, a get through the
#   other mount returned the replaced file;
# - FUSE's entry cache maps the name to the replaced file's inode for
#   entry-timeout seconds (default 1); attribute-timeout (default 1) keeps
#   its size and times. Either at 0 made the probe hold with md-cache off;
#   both are 0 here so that stat's size and times are as fresh as the name.
VOLUME_OPTIONS = {"performance.stat-prefetch": "off"}
MOUNT_OPTIONS = ["--entry-timeout=0", "--attribute-timeout=0", "--negative-timeout=0"]


class Unavailable(Exception):
    """This machine cannot run the cluster (the reason is the message)."""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, within, step=0.1):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def run(*command, timeout=60, check=True):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=timeout, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}: {result.stdout.strip()}")
    return result.stdout


def mounts_under(marker):
    """Mount points whose path holds MARKER, deepest first."""
    points = []
    with open("/proc/mounts") as table:
        for line in table:
            point = line.split()[1].replace("\\040", " ")
            if marker in point:
                points.append(point)
    return sorted(points, key=len, reverse=True)


def processes_under(marker, sockets=None):
    """Pids of our programs whose command line holds MARKER; the unix
    sockets they name with -S (gluster puts them in /var/run/gluster
    whatever its run-directory) are added to SOCKETS."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0]:
            continue
        program = os.path.basename(argv[0].decode(errors="replace"))
        if program in PROGRAMS and marker.encode() in b"\0".join(argv):
            pids.append(int(entry))
            if sockets is not None and b"-S" in argv[:-1]:
                sockets.add(argv[argv.index(b"-S") + 1].decode(errors="replace"))
    return pids


def sweep(marker):
    """Unmounts and kills everything whose path or command line holds
    MARKER; True if anything was found."""
    found = False
    for point in mounts_under(marker):
        found = True
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sockets = set()
    for _ in range(50):
        pids = processes_under(marker, sockets)
        if not pids:
            break
        found = True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for path in sockets:
        if path.startswith("/var/run/gluster/") and path.endswith(".socket"):
            try:
                os.unlink(path)
            except OSError:
                pass
    return found


def loopback_host_name():
    """glusterd refuses 127.0.0.1 and localhost as a brick's host, so the
    bricks name this machine by a name that resolves to loopback only."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except socket.gaierror:
        addresses = set()
    if not addresses or not all(a.startswith("127.") for a in addresses):
        raise Unavailable(f"the host name {name!r} does not resolve to 127.0.0.1 only "
                          f"(it gives {sorted(addresses)}); glusterd refuses 127.0.0.1 itself as a brick's host")
    return name


def check_machine():
    if os.geteuid() != 0:
        raise Unavailable("needs root (glusterd, FUSE mounts)")
    missing = [p for p in ("glusterd", "gluster", "glusterfs", "haproxy") if not shutil.which(p)]
    if missing:
        raise Unavailable("not installed: " + ", ".join(missing) + " (apt-get install glusterfs-server haproxy)")
    if not os.path.exists("/dev/fuse"):
        raise Unavailable("no /dev/fuse")
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as error:
        raise Unavailable(f"/dev/fuse cannot be opened: {error.strerror}")
    return loopback_host_name()


class Backend:
    """One ferryd serving one mount on a fixed port (so haproxy's
    configuration stays right across a restart)."""

    def __init__(self, ferryd, root, port, *extra, env=None):
        self.ferryd, self.root, self.port, self.extra, self.env = ferryd, root, port, extra, env
        self.server = None
        self.start()

    def start(self):
        self.server = harness.Server(self.ferryd, self.root, "--workers", "2", *self.extra,
                                     listen=f"127.0.0.1:{self.port}", env=self.env)

    @property
    def pid(self):
        return self.server.pid

    def alive(self):
        return self.server.process.poll() is None

    def kill(self):
        self.server.process.kill()
        self.server.process.wait()
        self.server.stop()

    def stop(self):
        if self.server:
            self.server.stop(timeout=10)


class Cluster:
    def __init__(self, ferryd, backend_args=()):
        self.ferryd = ferryd
        self.host = check_machine()
        self.lock = open(LOCK_FILE, "a+")
        # Another run of this suite (another build of the tree) holds the
        # machine's glusterd port: wait for it, bounded.
        if not wait_until(self._try_lock, within=600, step=1):
            raise RuntimeError(f"another scale-out run held {LOCK_FILE} for 10 minutes")
        self.base = None
        self.glusterd = None
        self.haproxy = None
        self.backends = []
        self.extra_backends = []
        try:
            self._sweep_stale()
            if port_in_use(GLUSTERD_PORT):
                raise Unavailable(f"port {GLUSTERD_PORT} (glusterd's) is held by a glusterd this suite did not start")
            self.base = tempfile.mkdtemp(prefix=PREFIX)
            os.chmod(self.base, 0o755)
            for sub in ("wd", "run", "log", "bricks", "m1", "m2"):
                os.mkdir(self.path(sub))
            self._start_glusterd()
            self._create_volume()
            self.mounts = [self.path("m1"), self.path("m2")]
            for point in self.mounts:
                self._mount(point)
            self.ports = [free_port(), free_port()]
            self.backends = [Backend(ferryd, m, p, *backend_args) for m, p in zip(self.mounts, self.ports)]
            self.proxy_port = free_port()
            self._start_haproxy()
        except BaseException:
            self.close()
            raise

    def _try_lock(self):
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return False

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def _sweep_stale(self):
        """What an earlier run left (killed before its cleanup): we hold the
        lock, so nothing with our prefix belongs to a live run."""
        marker = os.path.join(tempfile.gettempdir(), PREFIX)
        if sweep(marker):
            print("scaleout: swept processes and mounts left by an earlier run", file=sys.stderr)
        for name in os.listdir(tempfile.gettempdir()):
            folder = os.path.join(tempfile.gettempdir(), name)
            if name.startswith(PREFIX) and os.path.isdir(folder) and not mounts_under(folder):
                shutil.rmtree(folder, ignore_errors=True)

    # --- GlusterFS ---

    def gluster(self, *args, timeout=60, check=True):
        return run("gluster", "--mode=script", f"--glusterd-sock={self.path('run', 'glusterd.socket')}",
                   *args, timeout=timeout, check=check)

    def _start_glusterd(self):
        # Its own working, run and log folders, bound to 127.0.0.1; bricks
        # take ports from a range of their own.
        volfile = self.path("glusterd.vol")
        with open(volfile, "w") as f:
            f.write(f"""volume management
    type mgmt/glusterd
    option working-directory {self.path('wd')}
    option run-directory {self.path('run')}
    option logging-directory {self.path('log')}
    option glusterd-sockfile {self.path('run', 'glusterd.socket')}
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.address-family inet
    option transport.socket.listen-port {GLUSTERD_PORT}
    option ping-timeout 0
    option event-threads 1
end-volume
""")
        self.glusterd_log = open(self.path("log", "glusterd.stdout"), "w")
        self.glusterd = subprocess.Popen(
            ["glusterd", "-N", "-f", volfile, "-p", self.path("run", "glusterd.pid"),
             "-l", self.path("log", "glusterd.log")],
            stdout=self.glusterd_log, stderr=subprocess.STDOUT)

        def answers():
            if self.glusterd.poll() is not None:
                raise RuntimeError("glusterd exited: " + self.log_tail("glusterd.log"))
            if not os.path.exists(self.path("run", "glusterd.socket")):
                return False
            try:  # the command waits while glusterd initialises
                return self.gluster("volume", "list", timeout=20, check=False).strip() == \
                    "No volumes present in cluster"
            except subprocess.TimeoutExpired:
                return False
        if not wait_until(answers, within=90, step=0.5):
            raise RuntimeError("glusterd did not answer within 90 s: " + self.log_tail("glusterd.log"))

    def brick(self, index):
        return self.path("bricks", f"b{index + 1}")

    def _create_volume(self):
        bricks = [f"{self.host}:{self.brick(i)}" for i in range(2)]
        # force: both bricks are on one host (and under /tmp).
        self.gluster("volume", "create", VOLUME, "replica", "2", *bricks, "force")
        for key, value in VOLUME_OPTIONS.items():
            self.gluster("volume", "set", VOLUME, key, value)
        self.gluster("volume", "start", VOLUME)
        if not wait_until(lambda: all(self.brick_pid(i) for i in range(2)), within=30, step=0.3):
            raise RuntimeError("the bricks did not start: " + self.gluster("volume", "status", VOLUME, check=False))

    def set_volume_options(self, options, reset=()):
        """Sets volume options (the mounts switch to the new client graph;
        a moment later they use it) and resets RESET to their defaults."""
        for key in reset:
            self.gluster("volume", "reset", VOLUME, key)
        for key, value in options.items():
            self.gluster("volume", "set", VOLUME, key, value)
        time.sleep(2)

    def brick_pid(self, index):
        """The brick's glusterfsd pid, or None when it is not running."""
        out = self.gluster("volume", "status", VOLUME, "--xml", timeout=20, check=False)
        try:
            nodes = ElementTree.fromstring(out).iter("node")
        except ElementTree.ParseError:
            return None
        for node in nodes:
            if node.findtext("path") == self.brick(index) and node.findtext("status") == "1":
                pid = node.findtext("pid")
                return int(pid) if pid and pid.isdigit() and int(pid) > 0 else None
        return None

    def kill_brick(self, index):
        pid = self.brick_pid(index)
        if pid is None:
            raise RuntimeError(f"brick {index + 1} is not running")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), within=10)

    def restart_bricks(self):
        self.gluster("volume", "start", VOLUME, "force")
        if not wait_until(lambda: all(self.brick_pid(i) for i in range(2)), within=30, step=0.3):
            raise RuntimeError("the bricks did not restart")

    def pending_heals(self):
        """Entries either brick's index still marks for healing (besides
        the index's own base file). `gluster volume heal info` cannot be
        used: its helper asks the system's glusterd socket, not ours."""
        pending = []
        for index in range(2):
            folder = os.path.join(self.brick(index), ".glusterfs", "indices", "xattrop")
            try:
                pending += [n for n in os.listdir(folder) if not n.startswith("xattrop-")]
            except FileNotFoundError:
                pass
        return pending

    def bricks_agree(self):
        """Both bricks hold the same visible files with the same bytes."""
        names = [sorted(n for n in os.listdir(self.brick(i)) if not n.startswith(".")) for i in range(2)]
        if names[0] != names[1]:
            return False
        for name in names[0]:
            contents = []
            for index in range(2):
                with open(os.path.join(self.brick(index), name), "rb") as f:
                    contents.append(f.read())
            if contents[0] != contents[1]:
                return False
        return True

    def wait_healed(self, within=90):
        """True once no entry waits for healing and the bricks agree."""
        self.gluster("volume", "heal", VOLUME, check=False)
        return wait_until(lambda: not self.pending_heals() and self.bricks_agree(), within=within, step=1)

    def mount_another(self, name, *options):
        """A further FUSE mount of the volume at NAME under the cluster's
        folder, with MOUNT_OPTIONS and OPTIONS; returns its path. The
        cluster's close unmounts it; unmount() does so sooner."""
        point = self.path(name)
        os.mkdir(point)
        self._mount(point, *options)
        return point

    def unmount(self, point):
        subprocess.run(["umount", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if point in mounts_under(point):
            subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.rmdir(point)

    def _mount(self, point, *options):
        log = self.path("log", os.path.basename(point) + ".log")
        run("glusterfs", "--volfile-server=127.0.0.1", f"--volfile-server-port={GLUSTERD_PORT}",
            f"--volfile-id={VOLUME}", *MOUNT_OPTIONS, *options, "-l", log, point)

        def mounted():
            if point not in mounts_under(point):
                return False
            try:
                os.statvfs(point)
                return True
            except OSError:
                return False
        if not wait_until(mounted, within=30, step=0.2):
            raise RuntimeError(f"the FUSE mount {point} did not come up: " + self.log_tail(log))

    # --- HAProxy ---

    def _start_haproxy(self):
        # The health check speaks Ferry: a hello, and the reply must be ok.
        hello = b'{"op":"hello","id":1,"version":1}'
        frame = (bytes([1]) + len(hello).to_bytes(4, "big") + hello).hex()
        config = self.path("haproxy.cfg")
        servers = "\n".join(
            f"    server b{i + 1} 127.0.0.1:{port} check inter 300ms fall 2 rise 1"
            for i, port in enumerate(self.ports))
        with open(config, "w") as f:
            f.write(f"""global
    maxconn 2000
    stats socket {self.path('run', 'haproxy.sock')} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout check 2s
    retries 2
    option redispatch

frontend ferry
    bind 127.0.0.1:{self.proxy_port}
    default_backend ferryd

backend ferryd
    balance roundrobin
    option tcp-check
    tcp-check send-binary {frame}
    tcp-check expect string '"ok":true'
{servers}
""")
        self.haproxy_log = open(self.path("log", "haproxy.log"), "w")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", config],
                                        stdout=self.haproxy_log, stderr=subprocess.STDOUT)
        if not self.wait_backends({"b1": "UP", "b2": "UP"}, within=30):
            raise RuntimeError("haproxy did not see both backends up: " + self.log_tail("haproxy.log"))

    def haproxy_command(self, command):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.path("run", "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            data = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    return data.decode()
                data += piece

    def backend_states(self):
        """{'b1': 'UP', 'b2': 'DOWN', ...} as haproxy's health checks see
        them now: UP only once a check has passed (haproxy starts by
        assuming UP)."""
        states = {}
        try:
            lines = self.haproxy_command("show stat").splitlines()
        except OSError:
            return states
        header = lines[0].lstrip("# ").split(",") if lines else []
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "ferryd" and row.get("svname", "").startswith("b"):
                state = row.get("status", "").split()[0] if row.get("status") else ""
                if state == "UP" and not row.get("check_status", "").endswith("L7OK"):
                    state = "UNCHECKED"
                states[row["svname"]] = state
        return states

    def wait_backends(self, wanted, within=30):
        return wait_until(lambda: all(self.backend_states().get(k) == v for k, v in wanted.items()),
                          within=within, step=0.2)

    def restart_backend(self, index):
        """Starts a killed backend again and waits until haproxy sees it up."""
        backend = self.backends[index]
        if not backend.alive():
            backend.start()
        if not self.wait_backends({f"b{index + 1}": "UP"}, within=30):
            raise RuntimeError(f"haproxy did not see b{index + 1} up again")

    # --- logs and shutdown ---

    def log_tail(self, name, lines=20):
        try:
            with open(self.path("log", name), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"

    def close(self):
        """Stops everything; safe to call twice and from a signal handler."""
        for backend in self.extra_backends + self.backends:
            try:
                backend.stop()
            except Exception:  # noqa: BLE001 (shutting down: keep going)
                pass
        self.extra_backends, self.backends = [], []
        for process in (self.haproxy, self.glusterd):
            if process and process.poll() is None:
                process.kill()
                process.wait()
        self.haproxy = self.glusterd = None
        if self.base:
            sweep(self.base)
            if not mounts_under(self.base):
                shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        if self.lock:
            self.lock.close()
            self.lock = None
