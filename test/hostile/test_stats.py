"""The stats operation counts what clients did, as they did it."""

import os
import shutil
import unittest

from wire import Peer, Server, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


class Stats(unittest.TestCase):
    def test_counters_match_the_traffic(self):
        root = temp_root()
        with open(os.path.join(root, "a.bin"), "wb") as f:
            f.write(b"x" * 1000)
        try:
            with Server(FERRYD, root, "--max-connections", "2") as server:
                first = server.peer()
                first.get("a.bin")
                first.get("a.bin", offset=400, prefix=b"x" * 400)
                first.put("b.bin", b"y" * 300)
                first.get("nothing")
                second = server.peer()
                refused = Peer(server.port, hello=False)
                self.assertEqual(refused.reply()["error"]["code"], "server_full")
                refused.close()
                stats = second.request({"op": "stats"})
                self.assertTrue(stats["ok"], stats)
                self.assertEqual(stats["connections"], {"now": 2, "total": 2})
                self.assertEqual(stats["transfers"], {"now": 0, "total": 3})
                self.assertEqual(stats["bytes"], {"in": 300, "out": 1000 + 600})
                self.assertEqual(stats["errors"], {"not_found": 1, "server_full": 1})
                self.assertGreaterEqual(stats["uptime_seconds"], 0)
                first.close()
                self.assertTrue(wait_until(
                    lambda: second.request({"op": "stats"})["connections"]["now"] == 1))
        finally:
            shutil.rmtree(root)


if __name__ == "__main__":
    unittest.main()
