"""A control frame costs the server time in proportion to its size, whatever
JSON it holds.

The parser used to check for repeated keys with nlohmann's callback parser,
which after each object it closed scanned the whole enclosing array or
object: 64 KiB of "{}," (about 21,800 empty objects in one array) took a
server loop 75 ms, so one client pipelining such frames starved every other
connection of its worker, and a larger --max-control-frame made one frame
cost hours (the client read the server's replies with the same code).

Measured as a ratio of ferryd's own CPU time (utime + stime from
/proc/PID/stat) against frames of the same size that hold numbers, sent on
the same connection in the same run, so the machine's speed and load, and a
sanitizer build's slowness, count on both sides."""

import os
import shutil
import unittest

from wire import MEMORY_CHECKS, Server, temp_root

FERRYD = os.environ.get("FERRYD", "")
FRAME_BYTES = 250_000  # under the --max-control-frame given below
FRAMES = 20
# Linear, an empty object cost about what a number does (0.7 to 1.1 times);
# the quadratic scan cost 15 times as much at 64 KiB, and it grows with the
# frame: about 60 times at this size.
MOST_TIMES_THE_NUMBERS = 5


def frame_of(element):
    """A stat request padded with an array of `element` to about FRAME_BYTES."""
    head = b'{"op":"stat","id":1,"name":"absent","pad":['
    count = (FRAME_BYTES - len(head) - 2) // (len(element) + 1)
    return head + b",".join([element] * count) + b"]}"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@unittest.skipUnless(FERRYD, "needs FERRYD")
class ParseCost(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.server = Server(FERRYD, self.root, "--max-control-frame", "262144")
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def cost_of(self, frame, limit=None):
        """ferryd's CPU seconds for FRAMES of `frame`, each answered not_found; stops early past `limit`."""
        started = cpu_seconds(self.server.pid)
        for _ in range(FRAMES):
            self.peer.send_raw(frame)
            reply = self.peer.reply()
            self.assertEqual(reply["error"]["code"], "not_found", reply)
            if limit is not None and cpu_seconds(self.server.pid) - started > limit:
                break
        return cpu_seconds(self.server.pid) - started

    def test_a_frame_of_many_objects_costs_about_what_one_of_numbers_does(self):
        objects = self.peer_frame(b"{}")
        numbers = self.peer_frame(b"0")
        self.assertLess(abs(len(objects) - len(numbers)), 64)
        # Warm up (the first frames fault in the heap), then the reference.
        self.cost_of(numbers)
        reference = max(self.cost_of(numbers), 0.05)  # a tick or two at least: /proc counts in 10 ms
        limit = MOST_TIMES_THE_NUMBERS * reference
        measured = self.cost_of(objects, limit=limit)
        self.assertLess(measured, limit,
                        f"{FRAMES} frames of empty objects cost ferryd {measured:.2f} s of CPU, "
                        f"against {reference:.2f} s for frames of numbers of the same size")

    def test_a_frame_of_many_keys_costs_about_what_one_of_numbers_does(self):
        # Objects holding objects: each closing one rescanned its parent too.
        keyed = b'{"op":"stat","id":1,"name":"absent","pad":{' + b",".join(
            b'"k%d":{}' % i for i in range(FRAME_BYTES // 12)) + b"}}"
        self.assertLess(len(keyed), 262_144)
        numbers = self.peer_frame(b"0")
        self.cost_of(numbers)
        reference = max(self.cost_of(numbers), 0.05)
        limit = MOST_TIMES_THE_NUMBERS * reference
        measured = self.cost_of(self.control(keyed), limit=limit)
        self.assertLess(measured, limit,
                        f"{FRAMES} frames of keyed objects cost ferryd {measured:.2f} s of CPU, "
                        f"against {reference:.2f} s for frames of numbers of the same size")

    def control(self, payload):
        return bytes([1]) + len(payload).to_bytes(4, "big") + payload

    def peer_frame(self, element):
        return self.control(frame_of(element))


# A frame of deeply nested arrays holding, innermost, a number a double
# cannot hold: read once, stopped there, and read again with it capped.
BIG_FRAME_BYTES = 4 * 1024 * 1024
# The second reading used to be built while the first one's part was
# still held: 1.8 to 1.9 times the memory the same frame costs with a
# plain number there (round 82). Held one at a time, about 1.1.
MOST_TIMES_THE_PLAIN_FRAME = 1.45


@unittest.skipUnless(FERRYD, "needs FERRYD")
@unittest.skipUnless(MEMORY_CHECKS, "a sanitizer's allocator holds freed memory back, so peaks say nothing")
class ParseMemory(unittest.TestCase):
    def peak_growth_kib(self, innermost):
        """How much ferryd's peak memory grows for one big frame with `innermost` at its deepest point."""
        root = temp_root()
        self.addCleanup(shutil.rmtree, root)
        server = Server(FERRYD, root, "--max-control-frame", str(BIG_FRAME_BYTES + 4096))
        self.addCleanup(server.stop)
        peer = server.peer(version=2)
        self.addCleanup(peer.close)
        head = b'{"op":"stat","id":1,"name":"absent","pad":'
        depth = (BIG_FRAME_BYTES - len(head) - len(innermost) - 1) // 2
        frame = head + b"[" * depth + innermost + b"]" * depth + b"}"
        before = server.status_kib("VmHWM")
        peer.send_raw(bytes([1]) + len(frame).to_bytes(4, "big") + frame)
        reply = peer.reply()
        self.assertEqual(reply["error"]["code"], "not_found", reply)  # read through: the pad is ignored
        return server.status_kib("VmHWM") - before

    def test_a_number_read_again_capped_costs_about_what_a_plain_one_does(self):
        plain = self.peak_growth_kib(b"0")
        capped = self.peak_growth_kib(b"1e400")
        self.assertGreater(plain, 10_000, "the plain frame should cost ferryd tens of MiB to build")
        self.assertLess(capped, MOST_TIMES_THE_PLAIN_FRAME * plain,
                        f"a frame read again with 1e400 capped grew ferryd's peak by {capped} KiB, "
                        f"against {plain} KiB for the same frame with 0")


if __name__ == "__main__":
    unittest.main()
