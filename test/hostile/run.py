"""Runs the test_*.py here against the ferryd given by --ferryd (or env
FERRYD) and ends with one line "N passed, M failed".

--group splits the folder in two, so that meson can run most of it beside
the other suites and only what measures time or memory alone:
  timing  the modules below, which assert on elapsed time, RSS or a soak's
          throughput: another suite's load on the same cores could push them
          past their bounds, so meson runs them with nothing else (is_parallel
          false);
  shared  every other module: they wait on the server but bound nothing that
          load can stretch, so they run beside the other suites;
  all     both (the default, as when run by hand).
--share K/N takes every Nth module of the group from the Kth on (sorted by
name), so that meson runs the shared group as N tests side by side."""

import argparse
import fnmatch
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import harness  # noqa: E402

TIMING = {
    "test_commit_races.py", # publishes held tens of ms against a commit's 100 ms wait
    "test_fairness.py",     # a slow reader loses its slot within a deadline
    "test_faults.py",       # RSS under a flood, a bounded recovery time
    "test_limits.py",       # limits answered within seconds, RSS growth
    "test_memory.py",       # RSS per connection and under floods
    "test_slow_frames.py",  # a trickled frame is cut within its deadline
    "test_soak.py",         # SOAK_SECONDS of load, then rates and RSS
    "test_space.py",        # a trickle's space handed over within a put's 4 tries a second apart
    "test_tls.py",          # the handshake deadline, measured
}


def modules(group):
    every = sorted(name for name in os.listdir(here) if name.startswith("test_") and name.endswith(".py"))
    missing = TIMING - set(every)
    if missing:
        sys.exit(f"run.py: TIMING names modules that are not here: {', '.join(sorted(missing))}")
    if group == "timing":
        return [name for name in every if name in TIMING]
    if group == "shared":
        return [name for name in every if name not in TIMING]
    return every


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    harness.add_binaries(parser, ["ferryd"])
    parser.add_argument("--group", choices=("timing", "shared", "all"), default="all")
    parser.add_argument("--share", default="1/1", help="K/N: the Kth of N shares of the group's modules")
    parser.add_argument("pattern", nargs="?", default="test_*.py",
                        help="only the modules whose file name matches this pattern")
    args = parser.parse_args()
    harness.export_binaries(parser, args, ["ferryd"])
    sys.path.insert(0, here)
    share, shares = (int(part) for part in args.share.split("/"))
    if not 1 <= share <= shares:
        parser.error(f"--share {args.share}: K must be 1 to N")
    suite = unittest.TestSuite()
    for name in modules(args.group)[share - 1::shares]:
        if fnmatch.fnmatch(name, args.pattern):
            suite.addTests(unittest.defaultTestLoader.discover(here, pattern=name))
    sys.exit(harness.report(unittest.TextTestRunner(verbosity=2).run(suite)))
