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
--share K/N takes the Kth of N shares of the group's modules, dealt so that
each takes about as long (SHARED_SECONDS), so that meson runs the shared
group as N tests side by side."""

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


# Seconds each long module of the shared group took (debug build, two at a
# time, 2026-12-06), so that --share deals them out evenly: dealt round
# by name, one share of two got 211 s of 318 and held every other suite's
# end back by two minutes. Only the balance depends on these; a module not
# named counts as 3 s.
SHARED_SECONDS = {
    "test_replaced_meanwhile.py": 69,
    "test_moved_meanwhile.py": 35,
    "test_publish_record.py": 32,
    "test_stats.py": 23,
    "test_tree_confinement.py": 18,
    "test_races.py": 14,
    "test_access.py": 12,
    "test_mounted_meanwhile.py": 11,
    "test_shrunk_meanwhile.py": 10,
    "test_config.py": 7,
    "test_systemd.py": 7,
    "test_logging.py": 6,
}


def shares_of(names, shares):
    """NAMES dealt into SHARES lists, longest first, each to the share with
    the fewest seconds so far (ties: the first): every share computes the
    same deal."""
    dealt = [[] for _ in range(shares)]
    seconds = [0] * shares
    for name in sorted(names, key=lambda name: (-SHARED_SECONDS.get(name, 3), name)):
        least = seconds.index(min(seconds))
        dealt[least].append(name)
        seconds[least] += SHARED_SECONDS.get(name, 3)
    return [sorted(share) for share in dealt]


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
    for name in shares_of(modules(args.group), shares)[share - 1]:
        if fnmatch.fnmatch(name, args.pattern):
            suite.addTests(unittest.defaultTestLoader.discover(here, pattern=name))
    sys.exit(harness.report(unittest.TextTestRunner(verbosity=2).run(suite)))
