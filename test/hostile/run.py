"""Runs every test_*.py here against the ferryd given by --ferryd (or env
FERRYD) and ends with one line "N passed, M failed"."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import harness  # noqa: E402


if __name__ == "__main__":
    sys.exit(harness.run_folder(here, ["ferryd"]))
