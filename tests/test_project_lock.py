"""One writer at a time per project: simultaneous ingests into one project keep every object with its own pixels,
a writer that cannot get the lock says who holds it, and a crashed writer never leaves the project locked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from galdesk.io.reading import read
from galdesk.project import Project
from galdesk.project.lock import ProjectBusy, ProjectLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _gz(shared, a, b):
    return sorted((shared / "images/gz1/jpeg").glob("*.jpeg"))[a:b]


def test_three_simultaneous_ingests_keep_every_object_with_its_pixels(tmp_path, shared_data):
    batches = [_gz(shared_data, 0, 10), _gz(shared_data, 10, 110), _gz(shared_data, 110, 210)]
    target = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-m", "galdesk", "ingest", *map(str, files), "-o", str(target),
                               "--workers", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for files in batches]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    proj = Project.open(target)
    objs = proj.objects
    assert proj.n_images == 210
    assert sorted(map(str, objs["source"])) == sorted(str(f) for b in batches for f in b)
    rng = np.random.default_rng(1)
    for row in rng.choice(len(objs), 25, replace=False):  # each object shows its own galaxy
        as_ingested = read(str(objs["source"][row]), light=True, size=proj.working_size)[0].pixels
        assert np.allclose(proj.thumbnail_planes(int(row)), as_ingested, atol=1e-3), objs["id"][row]


def test_a_second_writer_is_told_who_holds_the_project(tmp_path):
    proj = Project.create(tmp_path / "p")
    code = ("import sys, time; from galdesk.project import Project; p = Project.open(sys.argv[1]); "
            "h = p.writing('ingest'); h.__enter__(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(proj.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(ProjectBusy) as err:
            with ProjectLock(proj.path, timeout=0.5).hold("test"):
                pass
        assert time.monotonic() - t0 < 5
        msg = str(err.value)
        assert "busy" in msg and f"PID {holder.pid}" in msg and "ingest" in msg and str(proj.path) in msg
        # a writer killed while holding the lock leaves the project writable (the OS releases the lock)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with ProjectLock(proj.path, timeout=5).hold("test"):
            proj.set_display(stretch="log")
        assert Project.open(proj.path).display["stretch"] == "log"
    finally:
        holder.kill()


def test_writes_nest_in_one_thread(tmp_path):
    proj = Project.create(tmp_path / "p")
    with proj.writing("outer"), proj.writing("inner"):
        proj.set_display(cmap="viridis")
    assert not (proj.path / ".lock.json").exists()
    assert Project.open(proj.path).display["cmap"] == "viridis"


def test_two_threads_of_one_process_take_turns(tmp_path):
    import threading

    proj = Project.create(tmp_path / "p")
    other = Project.open(proj.path)          # a worker's own instance of the same project
    done = threading.Event()

    def worker():
        other.display["limits"] = "zscale"
        other.save_manifest()                # a write: it waits for the lock
        done.set()

    with proj.writing("window"):
        t = threading.Thread(target=worker)
        t.start()
        assert not done.wait(0.5)            # the worker waits for the window's write
    assert done.wait(10)
    t.join()
    assert Project.open(proj.path).display["limits"] == "zscale"


def test_display_settings_never_wait_for_a_writer_or_fail_on_read_only(tmp_path):
    """The window saves display settings on the GUI thread: with another writer busy it must not block."""
    import threading

    proj = Project.create(tmp_path / "p")
    other = Project.open(proj.path)
    held, release = threading.Event(), threading.Event()

    def writer():
        with other.writing("ingest"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert held.wait(10)
    t0 = time.monotonic()
    saved = proj.set_display(stretch="sqrt")
    assert time.monotonic() - t0 < 0.5 and saved is False and proj.display["stretch"] == "sqrt"
    release.set()
    t.join()
    assert proj.set_display(stretch="log") is True and Project.open(proj.path).display["stretch"] == "log"
