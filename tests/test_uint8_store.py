"""8-bit sources stored as uint8 (issue 16): a quarter of the float32 store, read back as the same float32.

On real Galaxy Zoo SDSS JPEG cut-outs: the stored stack is uint8 and reads back equal to what the float32 store
of an older galdesk held (the same cut-outs as a plain PIL loop makes them, row 0 the bottom); FITS cut-outs added
to a uint8 stack turn it into float32 in place, values unchanged, in one ingest or across ingests (merges); an
older float32 store reads as it did and grows; predictions, features and thumbnails are identical either way.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

from galdesk.display import DisplaySettings, thumbnail_rgb8
from galdesk.io.reading import read
from galdesk.io.resample import resample_planes, working_planes
from galdesk.project import Project
from galdesk.project.arrays import SegmentWriter
from galdesk.services import ingest as ingest_mod
from galdesk.services.ingest import ingest

S = 64
HST = "images/fits/galsim_hst"


def _jpegs(shared_data, n: int) -> list:
    return sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:n]


def _pil_loop(path, size: int = S) -> np.ndarray:
    """A cut-out as an astronomer's own PIL loop makes it: decoded at a DCT scale keeping 2x the size, 8-bit BOX
    resize; (S, S, 3) uint8, row 0 the top (as the JPEG is shown)."""
    with Image.open(path) as im:
        im.draft("RGB", (2 * size, 2 * size))
        return np.asarray(im.convert("RGB").resize((size, size), Image.BOX))


def _stored(path, size: int = S) -> np.ndarray:
    """:func:`_pil_loop` in the store's convention: (3, S, S) float32, row 0 the bottom."""
    return np.ascontiguousarray(np.moveaxis(_pil_loop(path, size), -1, 0)[:, ::-1], dtype=np.float32)


def _stacks(project) -> dict:
    """``{(file, group): (dtype, origin attribute)}`` of every stack in the project's segment files."""
    out = {}
    for p in project.arrays.paths():
        with h5py.File(p, "r") as f:
            for g, ds in f["stacks"].items():
                out[(p.name, g)] = (ds.dtype, ds.attrs.get("origin"))
    return out


def _as_float32_store(src, dst):
    """A copy of project ``src`` with its stacks as an older galdesk wrote them: float32, no attributes."""
    shutil.copytree(src, dst)
    proj = Project.open(dst)
    for p in proj.arrays.paths():
        tmp = p.with_name(p.name + ".old")
        with h5py.File(p, "r") as f, h5py.File(tmp, "w") as g:
            g.attrs.update(f.attrs)
            for key in f:
                if key != "stacks":
                    f.copy(key, g)
            for name, ds in f["stacks"].items():
                data = ds[...].astype(np.float32)
                per = max(1, 256 * 1024 // data[0].nbytes)    # the chunks of the float32 writer
                g.create_dataset(f"stacks/{name}", data=data, maxshape=(None, *data.shape[1:]),
                                 chunks=(per, *data.shape[1:]))
        tmp.replace(p)
    return Project.open(dst)


@pytest.fixture(scope="module")
def jpeg_project(tmp_path_factory, shared_data):
    """48 SDSS JPEG cut-outs ingested by galdesk, and the same project with a float32 store (older galdesk)."""
    tmp = tmp_path_factory.mktemp("u8")
    files = _jpegs(shared_data, 48)
    ingest(files, tmp / "u8", workers=1)
    u8 = Project.open(tmp / "u8.galdesk")
    f32 = _as_float32_store(u8.path, tmp / "f32.galdesk")
    return files, u8, f32


def test_a_jpeg_ingest_stores_uint8_and_reads_back_the_float32_cutouts(jpeg_project):
    files, u8, f32 = jpeg_project
    assert set(_stacks(u8).values()) == {(np.dtype(np.uint8), "lower")}
    assert set(_stacks(f32).values()) == {(np.dtype(np.float32), None)}
    expected = np.stack([_stored(p) for p in files])
    assert list(u8.objects["id"]) == [p.stem for p in files]
    for proj in (u8, f32):
        stack = proj.arrays.read_stack("c3")
        assert stack.dtype == np.float32 and np.array_equal(stack, expected)
        rows = proj.arrays.read_rows("c3", [47, 3, 3, 0])
        assert rows.dtype == np.float32 and np.array_equal(rows, expected[[47, 3, 3, 0]])
        view = proj.stack_view("c3", np.arange(48))
        assert view[10:20].dtype == np.float32 and np.array_equal(view[10:20], expected[10:20])
        assert np.array_equal(proj.thumbnail_planes(5), expected[5])
    # the cut-outs are what the float path of the light read makes, and a quarter of its size on disk
    light = read(files[7], light=True, size=S)[0].pixels
    assert light.dtype == np.uint8
    assert np.array_equal(resample_planes(light.astype(np.float32), S), expected[7])
    size_u8 = sum(p.stat().st_size for p in u8.arrays.paths())
    size_f32 = sum(p.stat().st_size for p in f32.arrays.paths())
    # 4.0x at 4,988 cut-outs (benchmarks/bench_ingest.py); at 48 the whole chunks (21 cut-outs in 8 bits, 5 in
    # float32) are a larger share
    assert 3.0 < size_f32 / size_u8 < 4.1


def test_a_uint8_store_is_not_shown_upside_down(jpeg_project):
    """A thumbnail of a stored JPEG cut-out has the JPEG's top row at the top."""
    files, u8, _ = jpeg_project
    for row in (0, 11, 29):
        thumb = thumbnail_rgb8(u8.thumbnail_planes(row), DisplaySettings(), rgb8=True)
        assert np.array_equal(thumb, _pil_loop(files[row]))
        assert not np.array_equal(thumb, _pil_loop(files[row])[::-1])


def test_predictions_and_features_are_identical_on_uint8_and_float32_stores(jpeg_project):
    from galdesk.cluster.features import extract_features
    from galdesk.ml.service import classify_project

    _, u8, f32 = jpeg_project
    probs = []
    for proj in (u8, f32):
        res = classify_project(proj)
        assert res["classified"] == 48
        probs.append(proj.load_result("predictions")[0]["prob"])
    assert probs[0].shape == (48, 2) and np.array_equal(probs[0], probs[1])
    assert probs[0].std(axis=0).min() > 0.01          # real predictions, not one constant
    (r1, x1), (r2, x2) = (extract_features(p, save=False) for p in (u8, f32))
    assert np.array_equal(r1, r2) and x1.shape[0] == 48 and np.array_equal(x1, x2)


def test_an_older_float32_project_reads_as_before_and_grows_with_jpegs(jpeg_project, shared_data, tmp_path):
    files, _, f32 = jpeg_project
    old = _as_float32_store(f32.path, tmp_path / "old.galdesk")
    more = _jpegs(shared_data, 80)[48:]
    ingest(more, old.path, workers=1)          # 32 after 48: the new uint8 segment is merged into float32
    proj = Project.open(old.path)
    assert proj.n_images == 80 and len(proj.arrays.segments()) == 1
    assert set(_stacks(proj).values()) == {(np.dtype(np.float32), "lower")}
    assert np.array_equal(proj.arrays.read_stack("c3"), np.stack([_stored(p) for p in [*files, *more]]))


def test_jpeg_appends_merge_into_uint8(jpeg_project, shared_data, tmp_path):
    files, u8, _ = jpeg_project
    shutil.copytree(u8.path, tmp_path / "p.galdesk")
    more = _jpegs(shared_data, 80)[48:]
    ingest(more, tmp_path / "p.galdesk", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    assert proj.n_images == 80 and len(proj.arrays.segments()) == 1
    assert set(_stacks(proj).values()) == {(np.dtype(np.uint8), "lower")}
    assert np.array_equal(proj.arrays.read_stack("c3"), np.stack([_stored(p) for p in [*files, *more]]))


@pytest.fixture
def grey_and_fits(shared_data, tmp_path):
    """A folder of 6 greyscale PNG cut-outs (real SDSS JPEGs in grey) named to come first, then 2 real HST FITS
    files (4 one-band stamps): one stack group, 8-bit and float sources mixed."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, p in enumerate(_jpegs(shared_data, 6)):
        with Image.open(p) as im:
            im.convert("L").save(folder / f"a{i}.png")
    for name in ("100610.img.fits", "AEGIS_F814w_images_01.fits"):
        shutil.copy(shared_data / HST / name, folder / f"z_{name}")
    return folder


def _alone(folder, pattern, dest) -> np.ndarray:
    """The c1 stack of a project made of ``folder``'s files matching ``pattern`` only."""
    src = dest.parent / (dest.name + "-files")
    src.mkdir(exist_ok=True)
    for p in sorted(folder.glob(pattern)):
        shutil.copy(p, src / p.name)
    ingest([src], dest, workers=1)
    return Project.open(dest.with_name(dest.name + ".galdesk")).arrays.read_stack("c1")


def test_fits_after_jpeg_in_one_ingest_turns_the_stack_into_float32(grey_and_fits, tmp_path, monkeypatch):
    png = _alone(grey_and_fits, "a*.png", tmp_path / "png")
    fits = _alone(grey_and_fits, "z_*.fits", tmp_path / "fits")
    assert png.shape[0] == 6 and fits.shape[0] == 4
    assert np.array_equal(png, np.round(png)) and not np.array_equal(fits, np.round(fits))
    monkeypatch.setattr(ingest_mod, "FLUSH_BYTES", 1)   # every file its own batch: uint8 first, then float
    res = ingest([grey_and_fits], tmp_path / "mix", workers=1)
    assert res.images == 10 and not res.problems
    proj = Project.open(res.project)
    assert set(_stacks(proj).values()) == {(np.dtype(np.float32), "lower")}
    assert np.array_equal(proj.arrays.read_stack("c1"), np.concatenate([png, fits]))


def test_fits_ingested_into_a_jpeg_project_is_merged_as_float32(grey_and_fits, tmp_path):
    png = _alone(grey_and_fits, "a*.png", tmp_path / "p")
    proj = Project.open(tmp_path / "p.galdesk")
    assert set(_stacks(proj).values()) == {(np.dtype(np.uint8), "lower")}
    fits = _alone(grey_and_fits, "z_*.fits", tmp_path / "fits")
    ingest([tmp_path / "fits-files"], proj.path, workers=1)       # 4 after 6: the two segments are merged
    proj = Project.open(proj.path)
    assert len(proj.arrays.segments()) == 1 and set(_stacks(proj).values()) == {(np.dtype(np.float32), "lower")}
    assert np.array_equal(proj.arrays.read_stack("c1"), np.concatenate([png, fits]))


def test_segment_writer_upgrades_in_place_either_order(shared_data, tmp_path):
    u8 = np.stack([read(p, light=True, size=S)[0].pixels for p in _jpegs(shared_data, 5)])
    f32 = u8.astype(np.float32) + 0.25              # not representable in uint8
    assert u8.dtype == np.uint8
    for name, parts in (("uf", [u8, f32, u8]), ("fu", [f32, u8])):
        with SegmentWriter(tmp_path / f"{name}.h5", S) as w:
            for part in parts:
                w.add_planes("c3", part)
        with h5py.File(tmp_path / f"{name}.h5", "r") as f:
            ds = f["stacks/c3"]
            assert ds.dtype == np.float32 and ds.attrs["origin"] == "lower" and list(f["stacks"]) == ["c3"]
            assert np.array_equal(ds[...], np.concatenate(parts).astype(np.float32))


def test_working_planes_resamples_8bit_planes_in_8_bits(shared_data):
    """A uint8 cut-out that is not yet at the working size (not square, larger) is padded and shrunk in 8 bits:
    within one count of the float path."""
    with Image.open(_jpegs(shared_data, 1)[0]) as im:
        full = np.moveaxis(np.asarray(im.convert("RGB")), -1, 0)[:, ::-1][:, 40:340, :]   # 300 x 423
    out = working_planes(full, S)
    ref = resample_planes(full.astype(np.float32), S)
    assert out.dtype == np.uint8 and out.shape == (3, S, S)
    assert np.abs(out.astype(np.float32) - ref).max() <= 1.0
    assert working_planes(full.astype(np.float32), S).dtype == np.float32
    assert read(_jpegs(shared_data, 1)[0])[0].pixels.dtype == np.float32     # a plain read stays float32
