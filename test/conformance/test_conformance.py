#!/usr/bin/env python3
"""Conformance tests of ferryd against docs/PROTOCOL.md.

Written from the document alone (no C++ source was read), with the Python
standard library only. Each test class starts its own ferryd on a free
loopback port with a temporary served folder; tests that need special
limits or a fresh server start their own.

    python3 test/conformance/test_conformance.py --ferryd build/server/ferryd
    FERRYD=build/server/ferryd python3 test/conformance/test_conformance.py
    ... -v            one line per test
    ... -k resume     only tests whose name contains "resume"

Ends with one line "N passed, M failed" and exits non-zero if M > 0.

Where the document is silent or ambiguous, the tests follow what the
conformance report proposes it should say; those places are marked
"DOC:" in the test modules.

This file is the runner: the tests live in one module per area (MODULES
below), the server and client they share in conformance.py, and the check
that every documented error code was provoked, which runs last, here.
"""

import argparse
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402
from conformance import OBSERVED_CODES, PROTOCOL_MD, REPO, UNPROVOKABLE  # noqa: E402

# The suite's modules, one per area of the protocol; each holds the
# unittest.TestCase classes of its area.
MODULES = ["test_vectors", "test_framing", "test_list", "test_get", "test_hash",
           "test_put", "test_auth", "test_limits", "test_lifecycle", "test_tree"]


# ---------------------------------------------------------------- coverage
def documented_codes():
    with open(PROTOCOL_MD) as f:
        text = f.read()
    section = text.split("## 6. Error codes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.M)


class ZzErrorCodeCoverage(unittest.TestCase):
    """Runs last: every code of section 6 was received at least once."""

    def test_every_provokable_code_was_seen(self):
        if not FULL_RUN:
            self.skipTest("only meaningful when the whole suite runs")
        codes = documented_codes()
        self.assertGreaterEqual(len(codes), 20)
        for code in UNPROVOKABLE:
            self.assertIn(code, codes)
        missing = [c for c in codes
                   if c not in OBSERVED_CODES and c not in UNPROVOKABLE]
        if os.environ.get("FERRY_SANITIZED"):
            # io_error is provoked only by the descriptor-exhaustion test,
            # which the sanitizer run skips (see DiskErrorTests); a shrinking
            # file, which used to give io_error, is file_changed now.
            missing = [c for c in missing if c != "io_error"]
        self.assertEqual(missing, [], "codes never provoked")
        unknown = OBSERVED_CODES - set(codes)
        self.assertEqual(unknown, set(), "codes the document does not list")


# ---------------------------------------------------------------- main

FULL_RUN = True



def load_suite(loader):
    """Every test class of MODULES, then the coverage test. The classes run
    in the order of their names, as they did when they shared one file."""
    classes = []
    for name in MODULES:
        module = __import__(name)
        classes += [obj for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                    and obj.__module__ == name]
    classes.sort(key=lambda cls: cls.__name__)
    classes.append(ZzErrorCodeCoverage)
    return unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in classes)

def main():
    global FULL_RUN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ferryd", default=os.environ.get("FERRYD"),
                    help="path of the ferryd executable (or env FERRYD)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-k", dest="patterns", action="append",
                    help="only tests whose name contains this")
    args = ap.parse_args()
    ferryd = args.ferryd or os.path.join(REPO, "build", "server", "ferryd")
    if not os.access(ferryd, os.X_OK):
        print("ferryd not found at %s (use --ferryd or FERRYD)" % ferryd,
              file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    conformance.FERRYD = os.path.abspath(ferryd)
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
        FULL_RUN = False
    suite = load_suite(loader)
    t = time.time()
    result = unittest.TextTestRunner(verbosity=2 if args.verbose else 1,
                                     stream=sys.stderr).run(suite)
    # In test cases: each failed subTest is an entry of result.failures of
    # its own, and counting entries counted one test case several times.
    failed = len({getattr(test, "test_case", test).id()
                  for test, _ in result.failures + result.errors} |
                 {test.id() for test in result.unexpectedSuccesses})
    passed = result.testsRun - failed - len(result.skipped)
    sys.stderr.write("conformance suite took %.1f s\n" % (time.time() - t))
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
