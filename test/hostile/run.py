"""Runs every test_*.py here against the ferryd given by --ferryd (or env
FERRYD) and ends with one line "N passed, M failed"."""

import argparse
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferryd", default=os.environ.get("FERRYD"))
    parser.add_argument("pattern", nargs="?", default="test_*.py")
    args = parser.parse_args()
    if not args.ferryd:
        parser.error("--ferryd PATH (or FERRYD) is required")
    os.environ["FERRYD"] = os.path.abspath(args.ferryd)
    suite = unittest.defaultTestLoader.discover(here, pattern=args.pattern)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
