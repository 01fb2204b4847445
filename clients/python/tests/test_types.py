"""The type hints hold: mypy --strict (Debian: mypy) finds nothing in
ferry_client, so the py.typed marker promises what is true."""

import os
import shutil
import subprocess
import tempfile
import unittest

from support import PACKAGE_ROOT


class TypeTests(unittest.TestCase):
    def test_mypy_strict_is_clean(self):
        mypy = shutil.which("mypy")
        self.assertIsNotNone(mypy, "mypy is missing (Debian: apt install mypy; scripts/setup.sh installs it)")
        cache = tempfile.mkdtemp(prefix="ferry-mypy-")
        self.addCleanup(shutil.rmtree, cache, True)
        env = dict(os.environ, MYPY_CACHE_DIR=cache)
        checked = subprocess.run([mypy, "--strict", "ferry_client"], cwd=PACKAGE_ROOT, capture_output=True,
                                 text=True, timeout=300, env=env)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)


if __name__ == "__main__":
    unittest.main()
