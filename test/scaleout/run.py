"""Runs the scale-out suite (test_*.py here) against the ferryd and ferry
given by --ferryd and --ferry (or env FERRYD, FERRY) and ends with one line
"N passed, M failed". Needs root, /dev/fuse, glusterfs-server and haproxy;
without them every test is skipped with the reason."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import harness  # noqa: E402


if __name__ == "__main__":
    sys.exit(harness.run_folder(here, ["ferryd", "ferry"]))
