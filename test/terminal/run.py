"""Runs every test_*.py here: the ferry client at a terminal (a pseudo-
terminal of a set size) and in scripts, against a real ferryd. --ferryd and
--ferry (or env FERRYD, FERRY) name the binaries; ends with one line
"N passed, M failed"."""

import argparse
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "hostile"))  # wire.Server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferryd", default=os.environ.get("FERRYD"))
    parser.add_argument("--ferry", default=os.environ.get("FERRY"))
    parser.add_argument("pattern", nargs="?", default="test_*.py")
    args = parser.parse_args()
    if not args.ferryd or not args.ferry:
        parser.error("--ferryd PATH and --ferry PATH (or FERRYD, FERRY) are required")
    os.environ["FERRYD"] = os.path.abspath(args.ferryd)
    os.environ["FERRY"] = os.path.abspath(args.ferry)
    suite = unittest.defaultTestLoader.discover(here, pattern=args.pattern)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
