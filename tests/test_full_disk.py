"""A full disk gives one clear line and leaves the project as it was (every write is atomic, the journal
transactional)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from galdesk.project import Project


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("a small tmpfs needs root on Linux")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("running as root without the right to mount a tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)  # lazy: open handles cannot keep it


def _run(*args):
    return subprocess.run([sys.executable, "-m", "galdesk", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_ingest_and_vet_on_a_full_disk(small_disk, shared_data, tmp_path):
    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))
    proj_path = small_disk / "p.galdesk"
    assert _run("ingest", *files[:5], "-o", proj_path, "--size", "64").returncode == 0
    before = {p.name: p.read_bytes() for p in proj_path.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk (unbuffered: nothing left to fail at close)
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    r = _run("ingest", *files[5:300], "-o", proj_path, "--size", "64")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "full" in r.stderr.strip().splitlines()[-1]
    after = {p.name: p.read_bytes() for p in proj_path.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    assert after == before and not list(proj_path.glob(".*.tmp"))   # the previous state, byte for byte
    proj = Project.open(proj_path)
    assert proj.n_images == 5
    proj.close()
    r = _run("vet", proj_path, "--id", files[0].stem, "--label", "spiral")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "full" in r.stderr.strip().splitlines()[-1]
    assert '"objects": 5' in _run("info", proj_path, "--json").stdout   # still readable
