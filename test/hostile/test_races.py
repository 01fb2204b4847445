"""Races: many uploads of one name, downloads while the file is replaced."""

import os
import shutil
import threading
import unittest

from wire import Server, hidden_entries, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


class Races(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_ten_uploads_of_one_name_leave_one_whole_file(self):
        contents = [os.urandom(2 << 20) for _ in range(10)]
        with Server(FERRYD, self.root) as server:
            results = [None] * 10
            barrier = threading.Barrier(10)

            def upload(index):
                peer = server.peer()
                barrier.wait()
                results[index] = peer.put("same.bin", contents[index])
                peer.close()

            threads = [threading.Thread(target=upload, args=(i,)) for i in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            # PROTOCOL.md 4.5: while one upload of a name and size runs, a
            # plain put of the same name and size is busy; never a mix.
            self.assertTrue(all(r and (r["ok"] or r["error"]["code"] == "busy") for r in results), results)
            published = [contents[i] for i, r in enumerate(results) if r["ok"]]
            self.assertTrue(published, results)
            with open(os.path.join(self.root, "same.bin"), "rb") as f:
                final = f.read()
            self.assertIn(final, published)
            self.assertEqual(hidden_entries(self.root), [])

    def test_a_digest_of_a_file_replaced_while_it_is_hashed_is_the_new_files(self):
        # PROTOCOL.md 4.9: the server hashes the file the name holds once the
        # hash is done, not file_changed for an upload published meanwhile.
        moving = os.path.join(self.root, "moving.bin")
        with open(moving, "wb") as f:
            f.truncate(2 << 30)  # sparse: seconds of hashing, no disk
        new = os.urandom(1000)
        staged = os.path.join(self.root, ".staged")
        with open(staged, "wb") as f:
            f.write(new)
        with Server(FERRYD, self.root) as server:
            peer = server.peer(version=2)
            peer.send({"op": "digest", "name": "moving.bin"})

            def hashing():
                for fd in os.listdir(f"/proc/{server.pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{server.pid}/fd/{fd}") == moving:
                            return True
                    except OSError:
                        pass
                return False
            self.assertTrue(wait_until(hashing, within=20, step=0.002), "ferryd never opened the file")
            os.rename(staged, moving)
            reply = peer.reply()
            self.assertTrue(reply["ok"], reply)
            self.assertEqual((reply["size"], reply["sha256"]), (len(new), sha256(new)))
            peer.close()

    def test_a_download_sees_the_old_or_the_new_file_or_file_changed_never_a_mix(self):
        versions = [os.urandom(8 << 20) for _ in range(4)]
        hashes = {sha256(v) for v in versions}
        with open(os.path.join(self.root, "moving.bin"), "wb") as f:
            f.write(versions[0])
        with Server(FERRYD, self.root) as server:
            stop = threading.Event()

            def replace():
                peer = server.peer()
                index = 1
                while not stop.is_set():
                    peer.put("moving.bin", versions[index % len(versions)])
                    index += 1
                peer.close()

            replacer = threading.Thread(target=replace)
            replacer.start()
            try:
                reader = server.peer()
                for _ in range(15):
                    reply, data, trailer = reader.get("moving.bin")
                    # A replaced file is the kind of change PROTOCOL.md 4.4
                    # ends with file_changed; a trailer vouches for one version.
                    if not trailer["ok"]:
                        self.assertEqual(trailer["error"]["code"], "file_changed", trailer)
                        continue
                    self.assertEqual(sha256(data), trailer["sha256"])
                    self.assertIn(trailer["sha256"], hashes)
                    self.assertEqual(len(data), reply["size"])
            finally:
                stop.set()
                replacer.join(60)


if __name__ == "__main__":
    unittest.main()
