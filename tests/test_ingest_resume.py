"""A killed ingest continues where it stopped (services/ingest.py, project/pending.py): the same ingest run again
reopens its pending segment, does not read the files it already holds, and the project ends as after an
uninterrupted ingest; a torn segment or log starts afresh; a resumable segment is kept for RESUME_DAYS, then
cleaned like any dead writer's."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from galdesk.project import Project

KILLED = """
import sys, time
import galdesk.services.ingest as ingest_mod

target, files = sys.argv[1], sys.argv[2:]
ingest_mod.FLUSH_BYTES = 3 * 3 * 64 * 64           # a batch every ~3 cut-outs (uint8)
real_record, real_flush = ingest_mod._Sink.record, ingest_mod._Sink.flush
records = []

def record(self, files_done):
    real_record(self, files_done)
    records.append(files_done)

def flush(self):
    real_flush(self)
    if len(records) == 3:   # the fourth batch is in the segment, its log record not written: kill now
        print("killme", records[-1], flush=True)
        time.sleep(120)

ingest_mod._Sink.flush = flush
ingest_mod._Sink.record = record
ingest_mod.ingest(files, target, workers=1)
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _kill_part_way(target, files) -> int:
    """Run an ingest of ``files`` into ``target`` in a child, SIGKILL it after its third logged batch (and one more
    batch written but not logged); the number of files the log holds."""
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(target), *map(str, files)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line and line[0] == "killme", proc.stderr.read()[-2000:]
        proc.kill()
        proc.wait(10)
    finally:
        proc.kill()
    return int(line[1])


@pytest.mark.parametrize("existing", [True, False], ids=["into-a-project", "new-project"])
def test_a_killed_ingest_resumes_without_reading_its_files_again(tmp_path, shared_data, monkeypatch, existing):
    from galdesk.services import ingest as ingest_mod

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))
    base, batch = files[:4], files[4:40]
    target, ref = tmp_path / "target", tmp_path / "ref"
    if existing:
        ingest_mod.ingest(base, target, workers=1)
        ingest_mod.ingest(base, ref, workers=1)
    done = _kill_part_way(target, batch)
    assert 6 <= done < len(batch)
    folder = Project.open(target).path if (tmp_path / "target.galdesk").exists() else None
    assert folder is not None, "the killed ingest made the project before its first batch"
    logs = list(folder.glob("pending-ingest-*.json"))
    assert len(logs) == 1 and logs[0].with_suffix(".h5").exists()   # opening the project kept them

    read = []
    real_read_chunk = ingest_mod.read_chunk

    def spy(paths, size, ctx=None):
        read.extend(paths)
        return real_read_chunk(paths, size, ctx)

    monkeypatch.setattr(ingest_mod, "read_chunk", spy)
    resumed = []
    res = ingest_mod.ingest(batch, target, workers=1, on_resume=lambda d, n: resumed.append((d, n)))
    assert resumed == [(done, len(batch))] and res.resumed_files == done
    assert read == list(map(str, batch[done:]))             # nothing done before the kill is read again
    assert res.images == len(batch) and not res.problems
    assert not list(folder.glob("pending-*"))                 # committed: segment renamed, log gone

    full = ingest_mod.ingest(batch, ref, workers=1)
    assert full.images == res.images
    a, b = Project.open(target), Project.open(ref)
    n = len(base) * existing + len(batch)
    assert a.n_images == b.n_images == n
    assert list(a.objects["id"]) == list(b.objects["id"]) == [f.stem for f in (base if existing else []) + batch]
    for col in a.objects.colnames:
        x, y = np.asarray(a.objects[col]), np.asarray(b.objects[col])
        same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else x.tolist() == y.tolist()
        assert same, col
    for row in range(n):
        assert np.array_equal(a.thumbnail_planes(row), b.thumbnail_planes(row)), row
    a.close()
    b.close()


def test_the_cli_says_it_resumes(tmp_path, shared_data, capsys):
    from galdesk.cli import main

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:30]
    done = _kill_part_way(tmp_path / "p", files)
    assert main(["ingest", *map(str, files), "-o", str(tmp_path / "p"), "--workers", "1"]) == 0
    assert f"resuming: {done} of 30 files already ingested" in capsys.readouterr().err
    proj = Project.open(tmp_path / "p")
    assert list(proj.objects["id"]) == [f.stem for f in files]
    proj.close()


HOLDER = """
import os, sys
import numpy as np
from galdesk.project import Project
seg = Project.open(sys.argv[1]).pending_segment(resume_key="k")
seg.add({"3": [np.ones((3, 64, 64), np.float32)] * 5})
seg.record({"files_done": 5})
seg.add({"3": [np.ones((3, 64, 64), np.float32)] * 2})
seg.record({"files_done": 7})
seg.add({"3": [np.zeros((3, 64, 64), np.float32)] * 2})   # written after the log: discarded on a resume
os._exit(0)                                                # as killed: the file, its log, no lock held
"""


def _left_by_a_dead_writer(folder):
    out = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    seg = list(folder.glob("pending-ingest-*.h5"))
    assert len(seg) == 1 and seg[0].with_suffix(".json").exists()
    return seg[0]


def test_a_resumable_segment_is_kept_for_resume_days_then_cleaned(tmp_path, shared_data):
    from galdesk.project.pending import RESUME_DAYS
    from galdesk.services.ingest import ingest

    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3], tmp_path / "p", workers=1)
    folder = tmp_path / "p.galdesk"
    seg = _left_by_a_dead_writer(folder)
    proj = Project.open(folder)
    assert not any("pending" in c for c in proj.cleaned) and seg.exists()
    proj.close()
    old = time.time() - (RESUME_DAYS + 1) * 86400
    os.utime(seg.with_suffix(".json"), (old, old))
    proj = Project.open(folder)
    assert any(seg.name in c for c in proj.cleaned) and not list(folder.glob("pending-*"))
    assert proj.n_images == 3
    proj.close()


def test_a_resume_discards_what_was_written_after_the_last_log(tmp_path, shared_data):
    from galdesk.services.ingest import ingest

    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3], tmp_path / "p", workers=1)
    folder = tmp_path / "p.galdesk"
    _left_by_a_dead_writer(folder)
    proj = Project.open(folder)
    seg = proj.pending_segment(resume_key="k")
    assert seg.resumed == [{"files_done": 5}, {"files_done": 7}] and seg.counts == {"3": 7}
    seg.add({"3": [np.full((3, 64, 64), 2, np.float32)]})
    assert seg.counts == {"3": 8}                       # appended after the 7 logged ones, not after 9
    seg.discard()
    assert not list(folder.glob("pending-*"))
    proj.close()


def test_a_torn_last_log_line_resumes_from_the_line_before(tmp_path, shared_data):
    from galdesk.services.ingest import ingest

    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3], tmp_path / "p", workers=1)
    folder = tmp_path / "p.galdesk"
    log = _left_by_a_dead_writer(folder).with_suffix(".json")
    text = log.read_text()
    log.write_text(text[:-12])                          # killed while appending the second record
    proj = Project.open(folder)
    with proj.pending_segment(resume_key="k") as seg:
        assert seg.resumed == [{"files_done": 5}] and seg.counts == {"3": 5}
        seg.record({"files_done": 6})                   # appended after the whole lines, the torn piece gone
        assert len([ln for ln in log.read_text().split("\n") if ln]) == 3
    proj.close()


@pytest.mark.parametrize("torn", ["log", "segment"])
def test_a_torn_segment_or_log_starts_afresh(tmp_path, shared_data, torn):
    from galdesk.services.ingest import ingest

    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3], tmp_path / "p", workers=1)
    folder = tmp_path / "p.galdesk"
    path = _left_by_a_dead_writer(folder)
    victim = path.with_suffix(".json") if torn == "log" else path
    data = victim.read_bytes()
    cut = data.index(b"\n") + 10 if torn == "log" else len(data) // 2   # the log: no whole record left
    victim.write_bytes(data[:cut])
    proj = Project.open(folder)
    with proj.pending_segment(resume_key="k") as seg:
        assert seg.resumed is None and seg.counts == {} and seg.path == path
        seg.add({"3": [np.ones((3, 64, 64), np.float32)]})
        assert seg.counts == {"3": 1}
        assert not seg.log_path.exists()                # no stale log beside the fresh file
    assert not list(folder.glob("pending-*"))
    proj.close()
