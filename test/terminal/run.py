"""Runs every test_*.py here: the ferry client at a terminal (a pseudo-
terminal of a set size) and in scripts, against a real ferryd. --ferryd and
--ferry (or env FERRYD, FERRY) name the binaries; ends with one line
"N passed, M failed"."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import harness  # noqa: E402


if __name__ == "__main__":
    sys.exit(harness.run_folder(here, ["ferryd", "ferry"]))
