"""A bounded soak: 100 clients doing a random mix of list, get, put and
aborted transfers for SOAK_SECONDS (default 60). Afterwards every completed
upload is byte-exact, no descriptor or temporary file has leaked, and the
server's memory is back near its baseline."""

import os
import random
import shutil
import threading
import time
import unittest

from wire import (MEMORY_CHECKS, Closed, Server, hidden_entries, settled_descriptors, sha256, temp_root,
                  wait_until)

FERRYD = os.environ.get("FERRYD", "")
CLIENTS = 100
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))


class Soak(unittest.TestCase):
    def test_random_mix(self):
        root = temp_root()
        seeds = {}
        rng = random.Random(7)
        for index in range(20):
            data = rng.randbytes(rng.choice([0, 1, 4096, 300_000, 2_000_000]))
            name = f"seed{index}.bin"
            seeds[name] = sha256(data)
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        try:
            with Server(FERRYD, root, "--max-connections-per-address", "1000") as server:
                self.run_soak(server, root, seeds)
        finally:
            shutil.rmtree(root)

    def run_soak(self, server, root, seeds):
        warm = server.peer()
        warm.request({"op": "list"})
        with_warm = server.open_descriptors()
        warm.close()
        # Once ferryd has closed its end, not after a guess at how long that takes.
        self.assertTrue(wait_until(lambda: server.open_descriptors() < with_warm), "the warm connection stays open")
        descriptors = settled_descriptors(server)
        baseline_rss = server.rss_kib()

        uploaded = {}  # name -> sha256 of a committed upload
        kept = []  # uploads interrupted on purpose, kept for resume
        errors = []
        counts = {"list": 0, "get": 0, "put": 0, "aborted put": 0, "aborted get": 0}
        lock = threading.Lock()
        deadline = time.time() + SECONDS
        peak_rss = [baseline_rss]

        def client(number):
            rng = random.Random(number)
            peer = server.peer()
            sequence = 0
            op = "connect"
            try:
                while time.time() < deadline:
                    op = rng.choices(list(counts), weights=[2, 3, 3, 1, 1])[0]
                    sequence += 1
                    if op == "list":
                        reply = peer.request({"op": "list"})
                        assert reply["ok"], reply
                    elif op == "get":
                        name = rng.choice(list(seeds))
                        _, data, trailer = peer.get(name)
                        assert trailer["ok"] and sha256(data) == seeds[name] == trailer["sha256"], name
                    elif op == "put":
                        name = f"c{number}-{sequence}.bin"
                        data = rng.randbytes(rng.choice([0, 100, 70_000, 600_000]))
                        reply = peer.put(name, data)
                        assert reply["ok"], reply
                        with lock:
                            uploaded[name] = sha256(data)
                    elif op == "aborted put":
                        name = f"a{number}-{sequence}.bin"
                        data = rng.randbytes(500_000)
                        reply = peer.request({"op": "put", "name": name, "size": len(data)})
                        assert reply["ok"], reply
                        peer.send_data(data[:100_000])
                        if rng.random() < 0.5:
                            reply = peer.request({"op": "abort", "id": peer.next_id - 1, "discard": True})
                            assert reply["ok"] and not reply["kept"], reply
                        else:
                            peer.reset()
                            with lock:
                                kept.append(name)
                            peer = server.peer()
                    else:  # aborted get
                        name = rng.choice([n for n in seeds if n.startswith("seed")])
                        peer.send({"op": "get", "name": name})
                        peer.frame()
                        peer.reset()
                        peer = server.peer()
                    with lock:
                        counts[op] += 1
                    if number == 0:
                        peak_rss[0] = max(peak_rss[0], server.rss_kib())
            except (AssertionError, Closed, OSError) as error:
                with lock:
                    errors.append(f"client {number} during {op}: {error!r}")
            finally:
                peer.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 120)
        print(f"\n  soak: {CLIENTS} clients for {SECONDS:.0f} s: {counts}, "
              f"RSS baseline {baseline_rss} KiB, peak {peak_rss[0]} KiB")
        self.assertEqual(errors, [])
        self.assertGreater(sum(counts.values()), CLIENTS)

        for name, digest in uploaded.items():
            with open(os.path.join(root, name), "rb") as f:
                self.assertEqual(sha256(f.read()), digest, name)
        for name in kept:
            self.assertFalse(os.path.exists(os.path.join(root, name)))
        # Kept interrupted uploads are a data file and a state file each;
        # nothing else hidden may remain.
        self.assertTrue(wait_until(lambda: len(hidden_entries(root)) == 2 * len(kept)),
                        f"{len(hidden_entries(root))} hidden files for {len(kept)} kept uploads")
        self.assertTrue(wait_until(lambda: server.open_descriptors() == descriptors),
                        f"{server.open_descriptors()} descriptors open, baseline {descriptors}")
        if MEMORY_CHECKS:
            self.assertTrue(wait_until(lambda: server.rss_kib() < baseline_rss + 16 * 1024, within=5),
                            f"RSS {server.rss_kib()} KiB, baseline {baseline_rss} KiB")
        print(f"  after: RSS {server.rss_kib()} KiB, descriptors {server.open_descriptors()}")


if __name__ == "__main__":
    unittest.main()
