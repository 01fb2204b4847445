"""clients/python/README.md as a user meets it: the install it describes
(Debian's pip, in a virtual environment, nothing downloaded) and the backup
example, run exactly as written against a real ferryd."""

import os
import re
import shutil
import subprocess
import sys
import unittest

from support import FERRYD, PACKAGE_ROOT, ServerCase, harness, read, write

README = os.path.join(PACKAGE_ROOT, "README.md")
# The README speaks of Debian 12's python3 (which CI runs); another
# interpreter is used only where that one is absent.
PYTHON = os.environ.get("FERRY_INSTALL_PYTHON") or (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)


def readme_block(after):
    """The first ```python block after the heading `after`."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split(after, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


class InstallTests(unittest.TestCase):
    def test_pip_installs_the_package_as_the_readme_says(self):
        scratch = harness.Scratch("ferry-pylib-install-")
        self.addCleanup(scratch.remove)
        source = os.path.join(scratch.base, "python")
        shutil.copytree(PACKAGE_ROOT, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                                            "__pycache__"))
        venv = os.path.join(scratch.base, "venv")
        made = run([PYTHON, "-m", "venv", "--system-site-packages", venv])
        self.assertEqual(made.returncode, 0, made.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
        pip = os.path.join(venv, "bin", "pip")
        installed = run([pip, "install", "--no-build-isolation", "--no-index", source], env=env)
        self.assertEqual(installed.returncode, 0, installed.stdout + installed.stderr)
        probe = ("import ferry_client, os; "
                 "print(ferry_client.__version__, os.path.isfile(os.path.join(os.path.dirname("
                 "ferry_client.__file__), 'py.typed')), ferry_client.__file__)")
        shown = run([os.path.join(venv, "bin", "python"), "-c", probe], env=env, cwd=scratch.local)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        version, typed, where = shown.stdout.split()
        self.assertEqual((version, typed), ("0.1.0", "True"))
        self.assertTrue(where.startswith(venv), where)


class BackupExampleTests(ServerCase):
    def test_the_backup_example_runs_as_written(self):
        script = os.path.join(self.local, "backup.py")
        with open(script, "w") as f:
            f.write(readme_block("## Example: back up a folder"))
        folder = os.path.join(self.local, "photos")
        write(os.path.join(folder, "a.jpg"), os.urandom(300000), 1700000000)
        write(os.path.join(folder, "b.txt"), b"notes")
        write(os.path.join(folder, "trip", "c.jpg"), b"in a folder")
        env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
        env.pop("FERRY_TOKEN", None)
        first = run([sys.executable, script, folder, self.address], env=env)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertEqual(read(os.path.join(self.root, "a.jpg")), read(os.path.join(folder, "a.jpg")))
        with ferry_client_for(self.address) as c:
            tree = c.version >= 2
        expected = 3 if tree else 2
        self.assertIn(f"{expected} new files uploaded and checked", first.stdout)
        if tree:
            self.assertEqual(read(os.path.join(self.root, "trip", "c.jpg")), b"in a folder")
            self.assertEqual(int(os.stat(os.path.join(self.root, "a.jpg")).st_mtime), 1700000000)
        again = run([sys.executable, script, folder, self.address], env=env)
        self.assertIn("0 new files uploaded and checked", again.stdout)
        write(os.path.join(folder, "d.txt"), b"new since")
        third = run([sys.executable, script, folder, self.address], env=env)
        self.assertIn("sent d.txt", third.stdout)
        self.assertIn("1 new files uploaded and checked", third.stdout)

    def test_the_backup_example_reports_a_refusal(self):
        script = os.path.join(self.local, "backup-ro.py")
        with open(script, "w") as f:
            f.write(readme_block("## Example: back up a folder"))
        scratch = harness.Scratch("ferry-pylib-ro-")
        self.addCleanup(scratch.remove)
        folder = os.path.join(scratch.local, "docs")
        write(os.path.join(folder, "x.txt"), b"x")
        with harness.Server(FERRYD, scratch.root, "--read-only") as server:
            refused = run([sys.executable, script, folder, server.address],
                          env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("backup failed: forbidden", refused.stderr)


def ferry_client_for(address):
    import ferry_client
    return ferry_client.connect(address)


if __name__ == "__main__":
    unittest.main()
