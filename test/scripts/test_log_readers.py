"""The test suites read a running ferryd's log while ferryd writes to it:
harness.Server.log_text() (cli, terminal, hostile) and Ferryd.read_log()
(conformance). ferryd's stderr is the very open file the suite reads, one
file offset shared by both. Each test here has "ferryd" write a line at the
worst moment, right after the reader moved that offset, and checks that the
reader still sees the whole log."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
import conformance  # noqa: E402


class WritesAfterEachSeek:
    """A log file whose "child" (a second descriptor on the same open file,
    as ferryd's inherited stderr is) writes a line right after every seek."""

    def __init__(self, log, line):
        self.log = log
        self.child = os.dup(log.fileno())
        self.line = line

    def seek(self, *args):
        position = self.log.seek(*args)
        os.write(self.child, self.line)
        return position

    def close(self):
        os.close(self.child)

    def __getattr__(self, name):
        return getattr(self.log, name)


class LogReaders(unittest.TestCase):
    def log_written_by_a_child(self):
        log = harness.append_only_log()
        self.addCleanup(log.close)
        child = WritesAfterEachSeek(log, b"disconnect peer=1\n")
        self.addCleanup(child.close)
        os.write(child.child, b"start listen=127.0.0.1:7021\nwarning no --token-file\n")
        return child

    def test_the_harness_reads_the_whole_log_while_ferryd_writes(self):
        server = object.__new__(harness.Server)
        server.log = self.log_written_by_a_child()
        text = server.log_text()
        self.assertTrue(text.startswith("start listen=127.0.0.1:7021\nwarning no --token-file\n"), text)

    def test_the_conformance_suite_reads_the_whole_log_while_ferryd_writes(self):
        ferryd = object.__new__(conformance.Ferryd)
        ferryd.log = self.log_written_by_a_child()
        text = ferryd.read_log()
        self.assertTrue(text.startswith("start listen=127.0.0.1:7021\nwarning no --token-file\n"), text)

    def test_reading_leaves_the_shared_offset_where_the_child_left_it(self):
        log = self.log_written_by_a_child()
        before = os.lseek(log.child, 0, os.SEEK_CUR)
        harness.read_whole_log(log)
        self.assertEqual(os.lseek(log.child, 0, os.SEEK_CUR), before)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(harness.report(result))
