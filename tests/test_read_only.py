"""A read-only project (a colleague's, a DVD, a read-only share) opens for viewing, ``info``, ``vet-log`` and export
elsewhere; anything that would save says "read-only" in one line instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from galdesk.project import Project


@pytest.fixture
def read_only_project(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    r = subprocess.run([sys.executable, "-m", "galdesk", "demo", "-o", str(src / "d")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([sys.executable, "-m", "galdesk", "vet", str(src / "d.galdesk"), "--id", "demo-gal-000",
                           "--label", "spiral"], capture_output=True, timeout=120).returncode == 0
    if os.geteuid() != 0:  # an ordinary user: permissions make it read-only
        for p in [src, *src.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        yield src / "d.galdesk"
        for p in [src, *src.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
        return
    mnt = tmp_path / "ro"  # root ignores permissions: a read-only bind mount, as a read-only share is
    mnt.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True).returncode == 0 and \
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True).returncode == 0
    if not ok:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        pytest.skip("running as root without the right to make a read-only mount")
    try:
        yield mnt / "d.galdesk"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)  # lazy: open handles cannot keep it


def _run(*args):
    return subprocess.run([sys.executable, "-m", "galdesk", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_a_read_only_project_can_be_looked_at_and_exported_elsewhere(read_only_project, tmp_path):
    proj = Project.open(read_only_project)
    assert proj.read_only and proj.journal.read_only and proj.n_images == 48
    assert len(proj.journal.records("decision")) == 1
    proj.close()
    assert '"decisions": 1' in _run("info", read_only_project, "--json").stdout
    assert "1 record(s)" in _run("vet-log", read_only_project).stdout
    out = tmp_path / "elsewhere.fits"
    r = _run("export", read_only_project, "-o", out)
    assert r.returncode == 0 and out.is_file(), r.stderr


@pytest.mark.parametrize("command", [["vet", "--id", "demo-gal-001", "--label", "spiral"], ["fit-lines", "--jobs", "1"],
                                     ["classify"], ["cluster", "--n-clusters", "3"]])
def test_saving_into_a_read_only_project_is_one_clear_line(read_only_project, command):
    args = [command[0], read_only_project, *command[1:]]
    r = _run(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"galdesk {command[0]}: ") and "read-only" in last and str(read_only_project) in last


def test_ingest_into_a_read_only_project_refuses_before_reading(read_only_project, shared_data):
    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3]
    r = _run("ingest", *files, "-o", read_only_project)
    assert r.returncode == 2 and "read-only" in r.stderr and "Traceback" not in r.stderr
