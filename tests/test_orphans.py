"""No orphans: worker processes end with the command that started them, also after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from astropy.table import Table

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _workers_of(pid: int, want: int, timeout: float = 60.0) -> list[psutil.Process]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        kids = [c for c in psutil.Process(pid).children(recursive=True) if "resource_tracker" not in " ".join(
            c.cmdline())]
        if len(kids) >= want:
            return kids
        time.sleep(0.1)
    raise AssertionError(f"fewer than {want} workers appeared")


def test_killed_ingest_leaves_no_worker_processes(tmp_path, shared_data):
    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:2000]
    parent = subprocess.Popen([sys.executable, "-m", "galdesk", "ingest", *map(str, files), "-o", str(tmp_path / "p"),
                               "--workers", "2", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = _workers_of(parent.pid, 2)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == [], [p.cmdline()[:3] for p in alive]
    finally:
        parent.kill()


def test_a_worker_initialised_by_die_with_parent_ends_when_the_parent_dies(tmp_path):
    code = ("import os, sys, time; from galdesk.procutil import worker_pool\n"
            "pool = worker_pool(1); f = pool.submit(os.getpid); print(f.result(), flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        worker = psutil.Process(int(parent.stdout.readline()))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        worker.wait(10)  # psutil.TimeoutExpired here would be an orphan
    finally:
        parent.kill()


CHILD = """
import sys, time
import galdesk.project.arrays as arrays, galdesk.project.segments as segments, galdesk.project.store as store
import galdesk.project.pending as pending
from galdesk.services.ingest import ingest

target, which, files = sys.argv[1], sys.argv[2], sys.argv[3:]
for mod in (arrays, segments, store):
    real = mod.atomic_write

    def slow(path, write, real=real):
        def w(tmp):
            write(tmp)
            if str(path).endswith(which) and not str(path).endswith("000001.h5"):
                print("writing", flush=True)  # the temporary file is complete, the rename not done: kill now
                time.sleep(120)
        return real(path, w)

    mod.atomic_write = slow
real_append = store.append_rows

def slow_append(*args, **kwargs):
    out = real_append(*args, **kwargs)
    if which == "objects.ecsv":
        print("writing", flush=True)  # the new rows are in the file, the index does not commit them yet: kill now
        time.sleep(120)
    return out

store.append_rows = slow_append
real_add = pending.PendingSegment.add

def slow_add(self, *args, **kwargs):
    real_add(self, *args, **kwargs)
    if which == ".h5":
        print("writing", flush=True)  # the ingest's pending segment holds cut-outs, nothing commits it: kill now
        time.sleep(120)

pending.PendingSegment.add = slow_add
ingest(files, target, workers=1)
"""


@pytest.mark.parametrize("which", [".h5", "arrays.json", "objects.ecsv"])
def test_kill_9_in_the_middle_of_an_ingest_write_leaves_the_old_project(tmp_path, shared_data, which):
    """Killed while the new arrays segment or the index that commits it is being written, or after the new object
    rows were appended to the table but before the index committed them, an ingest leaves the project as it was:
    opening it removes the interrupted write's temporary file, a segment the index does not list and table rows
    after the commit, and every object still shows its own galaxy."""
    import numpy as np

    from galdesk.io.reading import read
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))
    target = tmp_path / "p"
    ingest(files[:20], target, workers=1)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(target), which, *map(str, files[20:60])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()[-2000:]
        if which == ".h5":
            assert list((tmp_path / "p.galdesk").glob("pending-*.h5")), "the ingest's pending segment"
        elif which != "objects.ecsv":
            assert list((tmp_path / "p.galdesk").glob(".*.tmp")), "the interrupted write's temporary file"
        proc.kill()
        proc.wait(10)
    finally:
        proc.kill()
    proj = Project.open(target)
    assert proj.cleaned and not list(proj.path.rglob(".*.tmp")) and not list(proj.path.glob("pending-*"))
    if which != ".h5":      # the segment was complete, but nothing listed it: removed too
        assert any(p.endswith("arrays-000002.h5") for p in proj.cleaned)
    if which == "objects.ecsv":
        assert any("rows after its last commit" in p for p in proj.cleaned)
    assert [p.name for p in proj.arrays.paths()] == ["arrays-000001.h5"]
    assert sorted(p.name for p in proj.path.glob("arrays*.h5")) == ["arrays-000001.h5"]
    assert proj.n_images == 20 and len(Table.read(proj.path / "objects.ecsv")) == 20   # TOPCAT sees 20 too
    assert proj.unreferenced_rows() == 0
    objs = proj.objects
    for row in range(0, 20, 4):
        as_ingested = read(str(objs["source"][row]), light=True, size=64)[0].pixels   # an ingest's own read
        assert np.allclose(proj.thumbnail_planes(row), as_ingested, atol=1e-3)
    # and the next ingest adds after the orphan rows, each object with its own pixels
    ingest(files[60:64], target, workers=1)
    proj = Project.open(target)
    row = proj.find(files[63].stem)
    assert np.allclose(proj.thumbnail_planes(row), read(files[63], light=True, size=64)[0].pixels, atol=1e-3)
