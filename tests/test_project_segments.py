"""The arrays of a project grow in place (galdesk.project.segments): an append writes one new segment and the index,
never the cut-outs already stored; segments are merged as they accumulate, every row keeps its number and pixels;
a project made before segments (one arrays.h5) is read and extended."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from galdesk.io.model import ImageData, SpectrumData
from galdesk.project import Project
from galdesk.project.segments import MAX_SEGMENTS, ArrayStore

S = 16


def _img(oid, bands=3, value=None):
    """A cut-out at the working size whose pixels encode its id (the stack keeps them as they are)."""
    rng = np.random.default_rng(abs(hash(oid)) % 2**32)
    pix = rng.random((bands, S, S), dtype=np.float32) if value is None else np.full((bands, S, S), value, np.float32)
    return ImageData(pix, ["g", "r", "i"][:bands], f"/data/{oid}.fits", oid)


def _spec(oid, n):
    w = np.linspace(4000, 9000, n)
    return SpectrumData(w, np.full(n, float(n)), np.ones(n), np.zeros(n, bool), f"/data/{oid}.fits", oid,
                        redshift=0.1)


def _files(proj):
    return sorted(p.name for p in proj.path.glob("arrays*.h5"))


def test_appends_keep_every_row_and_merge_the_tail(tmp_path):
    proj = Project.create(tmp_path / "p", working_size=S)
    added: dict[str, np.ndarray] = {}
    sizes = [40, 3, 5, 1, 2, 30, 1, 1, 1, 8, 2, 70, 1]
    for k, n in enumerate(sizes):
        imgs = [_img(f"a{k}_{i}", bands=1 if i % 4 == 0 else 3) for i in range(n)]
        proj.add(imgs, [_spec(f"s{k}_{i}", 50 + k) for i in range(k % 3)])
        added.update({im.id: im.pixels for im in imgs})
        segs = proj.arrays.segments()
        assert len(segs) <= MAX_SEGMENTS
        assert _files(proj) == sorted(s.file for s in segs)      # merged files are deleted, nothing unlisted
        # the binary-counter policy: each segment is more than twice as big as everything after it
        for i in range(len(segs) - 1):
            assert segs[i].size() > 2 * sum(s.size() for s in segs[i + 1:])
    again = Project.open(proj.path)
    objs = again.objects
    assert again.n_images == sum(sizes) and again.n_spectra == sum(k % 3 for k in range(len(sizes)))
    for row in range(len(objs)):
        if objs["kind"][row] == "image":
            assert np.array_equal(again.thumbnail_planes(row), added[str(objs["id"][row])])
        else:
            s = again.spectrum(row)
            k = int(str(objs["id"][row])[1:].split("_")[0])
            assert len(s) == 50 + k and s.flux[0] == 50 + k
    # rows read in any order, with repeats, across segments; the same as the whole stack
    c3 = again.stack("c3")
    rows = np.array([len(c3) - 1, 0, 5, 5, 47, 2])
    assert np.array_equal(ArrayStore(proj.path, S).read_rows("c3", rows), c3[rows])
    with pytest.raises(IndexError):
        again.arrays.read_rows("c3", [len(c3)])


def test_a_small_append_does_not_rewrite_what_is_stored(tmp_path):
    """Adding 5 cut-outs to 400 writes a segment of 5: the big segment file is not touched."""
    proj = Project.create(tmp_path / "p", working_size=S)
    proj.add([_img(f"g{i}") for i in range(400)])
    big = proj.arrays.paths()[0]
    before = os.stat(big)
    proj.add([_img(f"h{i}") for i in range(5)])
    after = os.stat(big)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    segs = proj.arrays.segments()
    assert [s.stacks["c3"] for s in segs] == [400, 5]
    assert os.path.getsize(proj.arrays.paths()[1]) < before.st_size / 20


def test_a_project_made_before_segments_is_read_and_extended(tmp_path):
    from galdesk.project.arrays import write_arrays

    proj = Project.create(tmp_path / "old", working_size=S)
    imgs = [_img(f"o{i}", value=float(i)) for i in range(6)]
    proj.add(imgs, [_spec("os", 80)])
    # turn it into what an older galdesk wrote: one arrays.h5 and no index
    planes = {"c3": [im.pixels for im in imgs]}
    for p in proj.path.glob("arrays*"):
        p.unlink()
    write_arrays(proj.path / "arrays.h5", S, planes, [_spec("os", 80)])
    old = Project.open(proj.path)
    assert _files(old) == ["arrays.h5"] and not old.arrays.index_path.exists() and not old.cleaned
    assert old.thumbnail_planes(3).mean() == 3.0 and len(old.spectrum(6)) == 80
    old.add([_img("n0", value=100.0)])          # 1 after 7: listed after arrays.h5, which stays as it is
    index = json.loads(old.arrays.index_path.read_text())
    assert [s["file"] for s in index["segments"]] == ["arrays.h5", "arrays-000001.h5"]
    assert old.thumbnail_planes(old.find("n0")).mean() == 100.0
    old.add([_img(f"m{i}", value=200.0 + i) for i in range(10)])   # big enough to merge everything
    assert _files(old) == ["arrays-000003.h5"]                        # arrays.h5 merged, then deleted
    again = Project.open(old.path)
    assert [again.thumbnail_planes(r).mean() for r in range(6)] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert again.thumbnail_planes(again.find("m9")).mean() == 209.0 and len(again.spectrum(6)) == 80


def test_a_reader_with_a_stale_index_retries_once(tmp_path, monkeypatch):
    """Another process merged the segments after this reader read the index: the files it names are gone, it reads
    the index again."""
    proj = Project.create(tmp_path / "p", working_size=S)
    proj.add([_img("a", value=1.0)] * 4)
    proj.add([_img("b", value=2.0)])
    store = ArrayStore(proj.path, S)
    stale = store.segments()
    store.merge(store.segments(), 2)
    calls = []
    real = ArrayStore.segments

    def segments(self):
        calls.append(1)
        return stale if len(calls) == 1 else real(self)

    monkeypatch.setattr(ArrayStore, "segments", segments)
    assert store.read_rows("c3", [4])[0].mean() == 2.0 and len(calls) == 2


def test_object_rows_are_appended_and_committed_with_the_segments(tmp_path):
    """New objects are lines appended to objects.ecsv (the file is not rewritten), committed by the index; rows
    after the commit (a writer that died before committing) are not read and are cut off at the next open; a
    catalogue join rewrites the table whole and commits that."""
    from astropy.table import Table

    proj = Project.create(tmp_path / "p", working_size=S)
    proj.add([_img(f"g{i}") for i in range(30)])
    table = proj.path / "objects.ecsv"
    before = os.stat(table)
    proj.add([_img(f"h{i}") for i in range(3)], [_spec("s0", 60)])
    after = os.stat(table)
    assert after.st_ino == before.st_ino and after.st_size > before.st_size          # appended in place
    assert len(Table.read(table)) == 34 and list(Project.open(proj.path).objects["id"][-4:]) == \
        ["h0", "h1", "h2", "s0"]
    # a writer that appended rows and died before its commit: the rows are not read, then cut off
    committed = table.read_bytes()
    with open(table, "ab") as fh:
        fh.write(b"zombie image /x.fits -1 g,r,i c3 999 nan nan nan \"\" \"\"\n")
    reader = Project(proj.path, proj.manifest)
    assert len(reader.objects) == 34
    again = Project.open(proj.path)
    assert table.read_bytes() == committed and any("after its last commit" in c for c in again.cleaned)
    # a catalogue join rewrites the file whole (a new file), committed too; appends go on after it
    cat = Table({"id": ["g1", "h2"], "mag": [17.5, 18.25]})
    assert again.join_catalog(cat) == 2
    assert os.stat(table).st_ino != after.st_ino
    again.add([_img("k0")])
    final = Project.open(proj.path)
    assert len(final.objects) == 35 and final.objects["mag"][final.find("h2")] == 18.25
    assert np.ma.is_masked(final.objects["mag"][final.find("k0")])


def test_a_failed_append_leaves_the_table_byte_for_byte(tmp_path, monkeypatch):
    """The disk fills (or the index cannot be written) after the new rows were appended: they are cut off again,
    the segment is not listed, and the project is as it was, also for a project made before commits existed."""
    import errno

    import galdesk.project.segments as segments

    proj = Project.create(tmp_path / "p", working_size=S)
    proj.add([_img(f"g{i}") for i in range(10)])
    for legacy in (False, True):
        if legacy:   # an older project: no commit recorded for the table
            index = json.loads(proj.arrays.index_path.read_text())
            index["objects"] = None
            proj.arrays.index_path.write_text(json.dumps(index))
        table = (proj.path / "objects.ecsv").read_bytes()
        index = proj.arrays.index_path.read_bytes()

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(segments, "atomic_write", full)
        with pytest.raises(OSError):
            proj.add([_img("h0")])
        monkeypatch.undo()
        assert (proj.path / "objects.ecsv").read_bytes() == table and proj.arrays.index_path.read_bytes() == index
        assert Project.open(proj.path).n_images == 10


def test_a_stack_view_reads_slices_from_the_segments(tmp_path):
    """Project.stack_view: the rows asked for, in their order, read a slice at a time across segments; the same
    numbers as the whole stack indexed."""
    proj = Project.create(tmp_path / "p", working_size=S)
    proj.add([_img(f"a{i}") for i in range(30)])
    proj.add([_img(f"b{i}") for i in range(4)])
    index = np.array([33, 0, 31, 5, 5, 12])
    view = proj.stack_view("c3", index)
    whole = proj.stack("c3")
    assert view.shape == (6, 3, S, S) and len(view) == 6 and np.shape(view) == (6, 3, S, S)
    assert np.array_equal(view[1:4], whole[index[1:4]]) and np.array_equal(view[0], whole[33])
    assert np.array_equal(np.asarray(view), whole[index]) and view[6:].shape == (0, 3, S, S)
