"""scripts/setup.sh (which test.sh and serve.sh source) shows what the build
prints: a compile error reaches the terminal instead of minutes of silence
and a bare exit status. Run on a copy of the script beside a one-file meson
project, so the check takes seconds, not a build of Ferry."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SETUP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "setup.sh")


class Setup(unittest.TestCase):
    def project(self, source):
        folder = tempfile.mkdtemp(prefix="ferry-setup-")
        self.addCleanup(shutil.rmtree, folder)
        os.mkdir(os.path.join(folder, "scripts"))
        shutil.copy(SETUP, os.path.join(folder, "scripts", "setup.sh"))
        with open(os.path.join(folder, "meson.build"), "w") as f:
            f.write("project('probe', 'cpp')\nexecutable('probe', 'probe.cpp')\n")
        with open(os.path.join(folder, "probe.cpp"), "w") as f:
            f.write(source)
        return folder

    def run_setup(self, folder):
        return subprocess.run(["bash", os.path.join(folder, "scripts", "setup.sh")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=300)

    def test_a_compile_error_is_shown(self):
        result = self.run_setup(self.project("int main() { return undeclared_probe_name; }\n"))
        self.assertNotEqual(result.returncode, 0)
        errors = result.stderr.decode()
        self.assertIn("undeclared_probe_name", errors)
        self.assertIn("probe.cpp", errors)
        self.assertIn("the build failed", errors)
        self.assertEqual(result.stdout, b"")

    def test_a_good_build_shows_progress_and_leaves_stdout_alone(self):
        result = self.run_setup(self.project("int main() { return 0; }\n"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Linking target probe", result.stderr.decode())
        self.assertEqual(result.stdout, b"")


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    sys.exit(1 if failed else 0)
