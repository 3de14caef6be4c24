"""Pending segments (project/pending.py): an ingest streams into one while it reads, nobody sees it before the
commit, a live writer's file is never cleaned away, a dead writer's is."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from galdesk.project import Project
from galdesk.project.pending import stale_pending

HOLDER = """
import sys, time
import numpy as np
from galdesk.project import Project
p = Project.open(sys.argv[1])
seg = p.pending_segment()
seg.add({"3": [np.ones((3, 64, 64), np.float32)] * 5})
print(seg.path.name, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_live_writers_pending_segment_is_kept_and_a_dead_ones_cleaned(tmp_path, shared_data):
    from galdesk.services.ingest import ingest

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:6]
    ingest(files, tmp_path / "p", workers=1)
    folder = tmp_path / "p.galdesk"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        name = holder.stdout.readline().strip()
        assert name.startswith("pending-"), holder.stderr.read()[-2000:]
        assert stale_pending(folder) == []              # its writer holds its lock
        proj = Project.open(folder)
        assert not any("pending" in c for c in proj.cleaned) and (folder / name).exists()
        assert proj.n_images == 6                       # nothing of it is visible before a commit
        proj.close()
        holder.kill()
        holder.wait(10)
        stale = {p.name for p in stale_pending(folder)}
        assert stale == {name, name + ".lock"}
        proj = Project.open(folder)
        assert not list(folder.glob("pending-*")) and proj.n_images == 6
        proj.close()
    finally:
        holder.kill()


def test_an_ingest_in_many_batches_stores_what_one_batch_stores(tmp_path, shared_data, monkeypatch):
    """Flushing every ~3 cut-outs (instead of every 64 MB) gives the same project: same rows, same pixels, in
    file order; and each flushed cut-out's pixels leave memory."""
    from galdesk.services import ingest as ingest_mod

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:20]
    one = ingest_mod.ingest(files, tmp_path / "one", workers=1)
    seen = []
    real_flush = ingest_mod._Sink.flush

    def spy(self):
        real_flush(self)
        seen.append(max((im.pixels.size for im in self.images), default=0))

    monkeypatch.setattr(ingest_mod, "FLUSH_BYTES", 3 * 3 * 64 * 64)     # 3 cut-outs, uint8 (JPEG)
    monkeypatch.setattr(ingest_mod._Sink, "flush", spy)
    many = ingest_mod.ingest(files, tmp_path / "many", workers=1)
    assert one.images == many.images == 20
    assert len(seen) >= 6 and max(seen) == 0           # after each flush no cut-out keeps its pixels
    a, b = Project.open(one.project), Project.open(many.project)
    assert list(a.objects["id"]) == list(b.objects["id"]) == [f.stem for f in files]
    for row in range(20):
        assert np.array_equal(a.thumbnail_planes(row), b.thumbnail_planes(row))
    assert not list(b.path.glob("pending-*"))
    a.close()
    b.close()


def test_a_cancelled_ingest_leaves_no_pending_file_and_no_new_objects(tmp_path, shared_data):
    from galdesk.services.ingest import ingest
    from galdesk.tasks import Cancelled, RecordingContext

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))
    ingest(files[:4], tmp_path / "p", workers=1)
    ctx = RecordingContext(cancel_after=3)      # after some files were read and written to the pending segment
    with pytest.raises(Cancelled):
        ingest(files[4:100], tmp_path / "p", workers=1, ctx=ctx)
    proj = Project.open(tmp_path / "p")
    assert any("Read" in m for _, m in ctx.reports)
    assert proj.n_images == 4 and not list(proj.path.glob("pending-*"))
    proj.close()
