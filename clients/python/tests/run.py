#!/usr/bin/env python3
"""Runs the ferry_client tests (test_*.py here) against the ferryd given by
--ferryd (or env FERRYD); ends with one line "N passed, M failed".

    python3 clients/python/tests/run.py --ferryd build/server/ferryd [test_tls.py]
"""

import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "test"))
import harness  # noqa: E402

if __name__ == "__main__":
    sys.exit(harness.run_folder(here, ["ferryd"]))
