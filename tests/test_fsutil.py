"""Written files honour the umask and keep the mode of the file they replace (a colleague can read a shared
project or an exported catalogue), and a failed write leaves the old file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from galdesk.fsutil import atomic_write, current_umask

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _write(text):
    return lambda tmp: Path(tmp).write_text(text)


def test_new_files_honour_the_umask_and_overwrites_keep_the_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        a = tmp_path / "a.txt"
        atomic_write(a, _write("one"))
        assert _mode(a) == 0o644 and a.read_text() == "one"
        a.chmod(0o640)
        atomic_write(a, _write("two"))
        assert _mode(a) == 0o640 and a.read_text() == "two"
        os.umask(0o077)
        b = tmp_path / "b.txt"
        atomic_write(b, _write("private"))
        assert _mode(b) == 0o600
    finally:
        os.umask(old)


def test_a_project_and_its_export_are_readable_by_the_group_and_others(tmp_path):
    code = ("import os, sys; os.umask(0o022); from galdesk.cli import main; "
            "sys.exit(main(['demo', '-o', sys.argv[1]]) or main(['export', sys.argv[1], '-o', sys.argv[2]]))")
    proj, out = tmp_path / "d.galdesk", tmp_path / "cat.fits"
    r = subprocess.run([sys.executable, "-c", code, str(proj), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    files = [p for p in proj.rglob("*") if p.is_file()] + [out]
    bad = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if _mode(p) & 0o044 != 0o044}
    assert bad == {}
