"""Ingest of real files into a project, serial and parallel, with catalogues and bad files beside good ones."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from galdesk.io.resample import resample_planes
from galdesk.project import Project
from galdesk.services.ingest import ingest
from galdesk.tasks import Cancelled, RecordingContext


def _gz_files(shared, n):
    return sorted((shared / "images/gz1/jpeg").glob("*.jpeg"))[:n]


def test_ingest_real_jpegs_and_spectra(tmp_path, shared_data):
    jpegs = _gz_files(shared_data, 12)
    specs = sorted((shared_data / "spectra/sdss").glob("spec-*.fits"))[:3]
    res = ingest(jpegs + specs, tmp_path / "p", workers=1)
    assert (res.images, res.spectra, res.problems) == (12, 3, [])
    proj = Project.open(tmp_path / "p.galdesk")
    # stack = the JPEG, flipped so row 0 is the bottom, padded/area-averaged to 64 px; decoded at a reduced DCT
    # scale and averaged in 8 bits (io/formats/pil_image.py), so within about a level of the float average of a
    # full decode, never a shifted or flipped image
    from PIL import Image

    raw = np.asarray(Image.open(jpegs[0]).convert("RGB"), dtype=np.float32)[::-1].transpose(2, 0, 1)
    stored, exact = proj.thumbnail_planes(0), resample_planes(raw, 64)
    assert np.all(stored == np.round(stored))                       # 8-bit levels
    assert np.mean(np.abs(stored - exact)) < 1.2
    assert np.corrcoef(stored.ravel(), exact.ravel())[0, 1] > 0.99
    assert np.mean(np.abs(stored - exact[:, ::-1])) > 3 * np.mean(np.abs(stored - exact))
    # spectrum as astropy reads it
    row = proj.find(specs[0].stem, "spectrum")
    s = proj.spectrum(row)
    with fits.open(specs[0]) as h:
        assert np.allclose(s.wavelength, 10 ** h[1].data["loglam"].astype(np.float64), rtol=1e-7)
        assert s.redshift == pytest.approx(float(h[2].data["Z"][0]), rel=1e-6)


def test_parallel_ingest_equals_serial(tmp_path, shared_data):
    files = _gz_files(shared_data, 70)  # above the parallel threshold
    serial = ingest(files, tmp_path / "a", workers=1)
    parallel = ingest(files, tmp_path / "b", workers=2)
    assert serial.images == parallel.images == 70
    a, b = Project.open(tmp_path / "a.galdesk"), Project.open(tmp_path / "b.galdesk")
    assert list(a.objects["id"]) == list(b.objects["id"])
    assert np.array_equal(a.stack("c3"), b.stack("c3"))


def test_catalog_drives_files_and_joins_columns(tmp_path, shared_data):
    labels = Table.read(shared_data / "images/gz1/labels.csv", format="ascii.csv")[:10]
    cat = tmp_path / "cat.csv"
    labels["file"] = [str(shared_data / "images/gz1" / f) for f in labels["file"]]
    labels.add_row([1, 0, "elliptical", str(tmp_path / "missing.jpeg")])
    labels.write(cat, format="ascii.csv")
    res = ingest([], tmp_path / "p", catalog=cat, workers=1)
    assert res.images == 10
    assert any("missing.jpeg" in p.path or "missing.jpeg" in p.error for p in res.problems)
    objs = Project.open(tmp_path / "p.galdesk").objects
    assert list(objs["id"]) == [str(i) for i in labels["objid"][:10]]
    assert list(objs["gz1_label"]) == list(labels["gz1_label"][:10])


def test_bad_file_beside_good_ones(tmp_path, shared_data):
    good = _gz_files(shared_data, 2)
    bad = tmp_path / "broken.fits"
    bad.write_text("this is not a FITS file")
    res = ingest([*good, bad], tmp_path / "p", workers=1)
    assert res.images == 2
    assert len(res.problems) == 1 and "broken.fits" in res.problems[0].path


def test_cancel_writes_nothing(tmp_path, shared_data):
    ctx = RecordingContext(cancel_after=2)
    with pytest.raises(Cancelled):
        ingest(_gz_files(shared_data, 80), tmp_path / "p", ctx=ctx, workers=1)
    assert not (tmp_path / "p.galdesk").exists()  # a new project is made only once something is to be written
    old = ingest(_gz_files(shared_data, 1), tmp_path / "p", workers=1)
    with pytest.raises(Cancelled):
        ingest(_gz_files(shared_data, 80), tmp_path / "p", ctx=RecordingContext(cancel_after=2), workers=1)
    assert old.created and Project.open(tmp_path / "p.galdesk").n_images == 1  # an existing one is left as it was


def test_cli_ingest_json_and_exit_codes(tmp_path, shared_data):
    src = tmp_path / "in"
    src.mkdir()
    for f in _gz_files(shared_data, 3):
        shutil.copy(f, src)
    (src / "junk.fits").write_bytes(b"\x00" * 100)
    out = subprocess.run([sys.executable, "-m", "galdesk", "ingest", str(src), "-o", str(tmp_path / "p"), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["objects"] == 3 and doc["spectra"] == 0
    assert [p["path"].endswith("junk.fits") for p in doc["problems"]] == [True]
    info = subprocess.run([sys.executable, "-m", "galdesk", "info", str(tmp_path / "p.galdesk"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(info.stdout)["objects"] == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "junk.fits").write_bytes(b"\x00" * 100)
    out = subprocess.run([sys.executable, "-m", "galdesk", "ingest", str(empty), "-o", str(tmp_path / "q"), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert len(json.loads(out.stdout)["problems"]) == 1


def test_catalog_rows_pointing_into_one_stamp_file(tmp_path, shared_data):
    """The GalSim AEGIS catalogue names three stamps (GAL_HDU 0, 1, 2) of one multi-extension file (and two of a
    file that is not in the data folder)."""
    src = shared_data / "images/fits/galsim_hst"
    res = ingest([], tmp_path / "p", catalog=src / "AEGIS_F606w_catalog.fits", workers=1)
    cat = Table.read(src / "AEGIS_F606w_catalog.fits")
    present = np.array([str(f).strip() == "AEGIS_F606w_images_01.fits" for f in cat["GAL_FILENAME"]])
    assert present.sum() == 3
    assert [p.error.endswith("AEGIS_F606w_images_02.fits") for p in res.problems] == [True] * 2
    cat = cat[present]
    assert res.images == 3
    objs = Project.open(tmp_path / "p.galdesk").objects
    assert sorted(objs["id"]) == sorted(str(i) for i in cat["IDENT"])
    # each object is the stamp its row names, with the row's coordinates
    for ident, hdu, ra in zip(cat["IDENT"], cat["GAL_HDU"], cat["RA"]):
        k = list(objs["id"]).index(str(ident))
        assert objs["hdu"][k] == hdu and objs["ra"][k] == pytest.approx(ra)
        with fits.open(src / "AEGIS_F606w_images_01.fits") as h:
            assert objs["bands"][k] in ("F606W", "")
            assert h[int(hdu)].data.shape[0] > 0


def _h5_stack(path, n=300, size=40, seed=0):
    import h5py

    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f["images"] = imgs
        f["ans"] = (np.arange(n) % 10).astype(np.uint8)
        f["ids"] = np.array([f"G{i:05d}".encode() for i in range(n)])
    return imgs


def test_large_hdf5_stack_is_streamed_with_its_labels(tmp_path, monkeypatch):
    """A stack above the one-read limit (here lowered to 1 MB) is refused by read() but ingested slice by slice,
    with the same pixels as an ordinary ingest, its ids and its labels (a catalogue column for training)."""
    import galdesk.services.ingest as ingest_mod
    from galdesk.io import fitshead, reading
    from galdesk.io.formats import hdf5 as img_io
    from galdesk.io.model import ReadError
    from galdesk.project import Project

    _h5_stack(tmp_path / "galaxy10_like.h5")
    ingest([tmp_path / "galaxy10_like.h5"], tmp_path / "plain", workers=1)
    ref = Project.open(tmp_path / "plain.galdesk")

    monkeypatch.setattr(fitshead, "MAX_DATA_BYTES", 1024**2)
    monkeypatch.setattr(ingest_mod, "STREAM_BYTES", 512 * 1024)
    slices = []
    real = img_io.iter_hdf5_stack
    monkeypatch.setattr(img_io, "iter_hdf5_stack",
                        lambda path, slice_bytes: (slices.append(len(part)) or part for part in real(path, 200_000)))
    with pytest.raises(ReadError, match="streams such stacks"):
        reading.read(tmp_path / "galaxy10_like.h5")
    res = ingest([tmp_path / "galaxy10_like.h5"], tmp_path / "streamed", workers=1)
    assert res.images == 300 and not res.problems
    assert len(slices) > 5 and sum(slices) == 300
    got = Project.open(tmp_path / "streamed.galdesk")
    assert np.array_equal(got.stack("c3"), ref.stack("c3"))
    assert list(got.objects["id"]) == [f"G{i:05d}" for i in range(300)] == list(ref.objects["id"])
    assert list(got.objects["label"][:12]) == [str(i % 10) for i in range(12)]
    assert list(ref.objects["label"]) == list(got.objects["label"])
    # the full-resolution cut-out of one object comes from its own slice of the stack, even above the limit
    imgs = _h5_stack(tmp_path / "check.h5")
    full = got.load_full_image(got.find("G00123"))
    assert not full.meta.get("from_stack") and full.id == "G00123"
    assert np.array_equal(full.pixels, np.moveaxis(imgs[123], -1, 0)[:, ::-1, :].astype(np.float32))
    from galdesk.ml.service import catalogue_labels

    rows = np.arange(5)
    assert catalogue_labels(got, "label", rows) == ["0", "1", "2", "3", "4"]


def test_streamed_stack_reports_progress_and_cancels(tmp_path, monkeypatch):
    import galdesk.services.ingest as ingest_mod
    from galdesk.tasks import Cancelled, RecordingContext

    _h5_stack(tmp_path / "big.h5", n=120)
    monkeypatch.setattr(ingest_mod, "STREAM_BYTES", 100_000)
    ctx = RecordingContext()
    ingest([tmp_path / "big.h5"], tmp_path / "p", workers=1, ctx=ctx)
    seen = [m for _, m in ctx.reports if m.startswith("Reading big.h5:")]
    assert len(seen) > 3 and seen[-1].endswith("/120 images")

    class CancelMidway(RecordingContext):
        def report(self, fraction, message, eta):
            super().report(fraction, message, eta)
            if message.startswith("Reading big.h5:") and not message.startswith("Reading big.h5: 0/"):
                self.cancel()  # the user presses Cancel while the stack streams in

    with pytest.raises(Cancelled):
        ingest([tmp_path / "big.h5"], tmp_path / "q", workers=1, ctx=CancelMidway())
    assert not (tmp_path / "q.galdesk").exists()  # nothing written: not even an empty project


def test_name_with_and_without_suffix_is_one_project(tmp_path, shared_data):
    files = _gz_files(shared_data, 4)
    first = ingest(files[:2], tmp_path / "p", workers=1)
    assert first.created and first.project == str(tmp_path / "p.galdesk")
    again = ingest(files[2:], tmp_path / "p", workers=1)              # -o NAME extends what -o NAME created
    also = ingest(files[:1], tmp_path / "p.galdesk", workers=1, again=True)   # and so does -o NAME.galdesk
    assert not again.created and not also.created
    assert Project.open(tmp_path / "p").n_images == 5
    assert [p.name for p in tmp_path.iterdir()] == ["p.galdesk"]


def test_an_ingest_that_reads_nothing_or_fails_leaves_no_project(tmp_path, shared_data, monkeypatch):
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"\x00" * 100)
    res = ingest([junk], tmp_path / "q", workers=1)
    assert (res.images, res.spectra, len(res.problems), res.created) == (0, 0, 1, False)
    assert not (tmp_path / "q.galdesk").exists()
    # the retry with a good file is not blocked by an empty project
    assert ingest(_gz_files(shared_data, 1), tmp_path / "q", workers=1).images == 1

    def disk_full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Project, "add", disk_full)
    with pytest.raises(OSError):
        ingest(_gz_files(shared_data, 2), tmp_path / "r", workers=1)
    assert not (tmp_path / "r.galdesk").exists()
    assert Project.open(tmp_path / "q").n_images == 1                 # an existing project is never removed
    with pytest.raises(OSError):
        ingest(_gz_files(shared_data, 2), tmp_path / "q", workers=1)
    assert Project.open(tmp_path / "q").n_images == 1


def test_a_repeated_ingest_adds_nothing_twice(tmp_path, shared_data, monkeypatch):
    files = _gz_files(shared_data, 6)
    first = ingest(files[:4], tmp_path / "p", workers=1)
    assert first.images == 4 and first.known_files == 0
    again = ingest(files, tmp_path / "p", workers=1)                # two new, four already there
    assert again.images == 2 and again.known_files == 4
    # the same files named by a relative path are recognised too
    monkeypatch.chdir(files[0].parent)
    rel = ingest([files[0].name], tmp_path / "p", workers=1)
    assert rel.images == 0 and rel.known_files == 1
    assert Project.open(tmp_path / "p.galdesk").n_images == 6
    forced = ingest(files[:1], tmp_path / "p", workers=1, again=True)
    assert forced.images == 1 and forced.known_files == 0
    assert Project.open(tmp_path / "p.galdesk").n_images == 7
    out = subprocess.run([sys.executable, "-m", "galdesk", "ingest", *map(str, files), "-o", str(tmp_path / "p")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr                         # nothing new is not an error
    assert "6 file(s) already in the project left out (--again adds them again)" in out.stdout
