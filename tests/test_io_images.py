"""Image readers: every real cut-out loads, values equal plain astropy/PIL reads; synthetic cubes, band sets, stamps,
PNG modes and HDF5 stacks; the registry's rules (priority, ambiguity, identifiers that raise, folders, progress)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits
from conftest import SHARED, need
from PIL import Image

from galdesk.io import ImageData, ReadError, expand_paths, read, read_paths, registry
from galdesk.io.probe import Probe
from galdesk.io.registry import identify, register_reader, unregister_reader
from galdesk.tasks import Cancelled, RecordingContext

FITS_DIR = SHARED / "images" / "fits"
FITS_FILES = sorted(FITS_DIR.rglob("*.fits")) if FITS_DIR.is_dir() else []
JPEG_DIR = SHARED / "images" / "gz1" / "jpeg"
JPEGS = sorted(JPEG_DIR.glob("*.jpeg")) if JPEG_DIR.is_dir() else []
CHUNK = 500
JPEG_CHUNKS = [JPEGS[i:i + CHUNK] for i in range(0, len(JPEGS), CHUNK)]


def _conventions(img: ImageData) -> None:
    assert img.pixels.dtype == np.float32 and img.pixels.ndim == 3
    assert len(img.bands) == img.pixels.shape[0]
    assert np.isfinite(img.pixels).any()


# ------------------------------------------------------------------------------------------------------------------
# real files
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", FITS_FILES, ids=lambda p: p.name)
def test_every_real_fits_image_loads_and_catalogues_are_refused(path, shared_data):
    with fits.open(path) as h:
        images = [i for i, hdu in enumerate(h) if hdu.is_image and hdu.data is not None]
        arrays = [np.array(h[i].data, dtype=np.float32) for i in images]
    if not images:  # a catalogue: the image identifier must not claim it, and the message must say so
        with pytest.raises(ReadError, match="only tables.*catalogue"):
            read(path)
        assert not any(e.name == "fits-image" and e.identifier(Probe(path)) for e in registry.readers("image"))
        return
    out = read(path, kind="image")
    assert len(out) == len(images)
    for img, i, arr in zip(out, images, arrays):
        _conventions(img)
        np.testing.assert_array_equal(img.pixels[0], arr)
        assert img.source == str(path)
        if len(images) > 1:
            assert img.id == f"{path.stem}[{i}]" and img.hdu == i


@pytest.mark.parametrize("chunk", range(len(JPEG_CHUNKS)), ids=lambda k: f"gz1-jpeg-{k * CHUNK}")
def test_every_gz1_jpeg_loads(chunk, shared_data):
    files = JPEG_CHUNKS[chunk]
    res = read_paths(files)
    assert res.problems == []
    assert len(res.images) == len(files)
    assert [im.id for im in res.images] == [p.stem for p in files]
    for im in res.images:
        assert im.pixels.shape == (3, 423, 423) and im.pixels.dtype == np.float32
        assert im.rgb and im.bands == ["r", "g", "b"]
    # pixel-exact against PIL for one file per chunk: flipped so row 0 is the bottom
    ref = np.asarray(Image.open(files[0]).convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(res.images[0].pixels, ref[::-1].transpose(2, 0, 1))
    assert res.images[0].pixels[0, 0, 0] == ref[-1, 0, 0]


def test_hst_stamp_wcs_band_and_scale(shared_data):
    path = need(shared_data / "images/fits/galsim_hst/100610.img.fits")
    (img,) = read(path)
    assert img.id == "100610.img" and img.bands == ["F814W"] and img.hdu is None
    assert img.wcs is not None and img.wcs.has_celestial
    assert img.meta["pixel_scale_arcsec"] == pytest.approx(0.03, rel=1e-3)
    with fits.open(path) as h:
        from astropy.wcs import WCS

        ref = WCS(h[0].header, naxis=2).pixel_to_world(10, 20)
    got = img.wcs.pixel_to_world(10, 20)
    assert got.separation(ref).arcsec < 1e-6
    (psf,) = read(need(shared_data / "images/fits/galsim_hst/100610.psf.fits"))
    assert psf.wcs is None and psf.bands == [""]


def test_aegis_stamp_collection(shared_data):
    path = need(shared_data / "images/fits/galsim_hst/AEGIS_F606w_images_01.fits")
    out = read(path)
    assert [im.id for im in out] == [f"AEGIS_F606w_images_01[{i}]" for i in range(3)]
    assert [im.shape for im in out] == [(46, 70), (156, 142), (50, 48)]
    assert all(im.bands == ["F606W"] for im in out)  # from the file name: the headers have no filter


# ------------------------------------------------------------------------------------------------------------------
# synthetic FITS layouts
# ------------------------------------------------------------------------------------------------------------------
def test_cube_band_names(tmp_path):
    cube = np.random.default_rng(0).normal(size=(3, 20, 30)).astype(np.float32)
    h = fits.Header()
    h["BAND1"], h["BAND2"], h["BAND3"] = "g", "r", "i"
    fits.PrimaryHDU(cube, header=h).writeto(tmp_path / "cube.fits")
    (img,) = read(tmp_path / "cube.fits")
    assert img.bands == ["g", "r", "i"] and img.pixels.shape == (3, 20, 30)
    np.testing.assert_array_equal(img.pixels, cube)
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube2.fits")
    assert read(tmp_path / "cube2.fits")[0].bands == ["b0", "b1", "b2"]


def test_band_extensions_become_one_multiband_image(tmp_path):
    rng = np.random.default_rng(1)
    planes = rng.normal(size=(3, 16, 16)).astype(np.float32)
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(planes[k], name=b) for k, b in enumerate(["g", "r", "z"])]
    fits.HDUList(hdus).writeto(tmp_path / "grz.fits")
    (img,) = read(tmp_path / "grz.fits")
    assert img.bands == ["G", "R", "Z"] and img.id == "grz" and img.pixels.shape == (3, 16, 16)
    np.testing.assert_array_equal(img.pixels, planes)
    # same shapes but no band-like names: stamps
    hdus = [fits.PrimaryHDU(planes[0])] + [fits.ImageHDU(planes[k], name=f"OBJ{k}") for k in (1, 2)]
    fits.HDUList(hdus).writeto(tmp_path / "stamps.fits")
    out = read(tmp_path / "stamps.fits")
    assert [im.id for im in out] == ["stamps[0]", "stamps[1]", "stamps[2]"]
    # band names but different shapes: stamps too
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(planes[0], name="HSC-G"), fits.ImageHDU(planes[1][:8], name="HSC-R")]
    fits.HDUList(hdus).writeto(tmp_path / "mixed.fits")
    assert len(read(tmp_path / "mixed.fits")) == 2


def test_sci_err_dq_reads_science_only(tmp_path):
    sci = np.ones((10, 12), np.float32)
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(sci * 0.1, name="ERR"),
            fits.ImageHDU(np.zeros((10, 12), np.int16), name="DQ")]
    fits.HDUList(hdus).writeto(tmp_path / "flt.fits")
    (img,) = read(tmp_path / "flt.fits")
    assert img.hdu == 1 and np.all(img.pixels == 1)


def test_degenerate_axes_blank_and_bad_wcs(tmp_path):
    data = np.arange(64, dtype=np.int16).reshape(1, 1, 8, 8)
    h = fits.Header()
    h["BLANK"] = 5
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = 150.0, 2.0
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = 0.0, 0.0, 0.0, 0.0  # singular matrix
    h["PV2_1"] = "not-a-number"
    fits.PrimaryHDU(data, header=h).writeto(tmp_path / "radio.fits")
    (img,) = read(tmp_path / "radio.fits")
    assert img.pixels.shape == (1, 8, 8)
    assert np.isnan(img.pixels[0, 0, 5]) and img.pixels[0, 0, 4] == 4
    assert img.wcs is None or img.meta.get("wcs_warning") is not None


def test_png_modes_and_16bit(tmp_path):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[0, :, 0] = 255  # top row red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    (img,) = read(tmp_path / "a.png")
    assert img.pixels.shape == (3, 5, 7) and img.rgb
    assert np.all(img.pixels[0, -1] == 255) and np.all(img.pixels[0, 0] == 0)  # top row is now the last row
    grey = (np.arange(35).reshape(5, 7) * 3).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    (g,) = read(tmp_path / "g.png")
    assert g.pixels.shape == (1, 5, 7) and not g.rgb and g.bands == ["grey"]
    np.testing.assert_array_equal(g.pixels[0], grey[::-1])
    deep = (np.arange(35).reshape(5, 7) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    (d,) = read(tmp_path / "d.png")
    assert d.pixels.max() == 34000 and not d.rgb


# ------------------------------------------------------------------------------------------------------------------
# HDF5 stacks
# ------------------------------------------------------------------------------------------------------------------
def test_hdf5_nhwc_uint8_with_labels_and_ids(tmp_path):
    imgs = np.random.default_rng(2).integers(0, 255, (4, 12, 10, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "gal10.h5", "w") as f:
        f["images"] = imgs
        f["ans"] = np.array([0, 3, 3, 9], np.uint8)
        f["ids"] = np.array([b"a1", b"a2", b"a3", b"a4"])
    out = read(tmp_path / "gal10.h5")
    assert [im.id for im in out] == ["a1", "a2", "a3", "a4"]
    assert [im.meta["label"] for im in out] == [0, 3, 3, 9]
    assert out[1].pixels.shape == (3, 12, 10) and out[1].rgb
    np.testing.assert_array_equal(out[1].pixels, imgs[1][::-1].transpose(2, 0, 1))


def test_hdf5_nchw_and_nhw_float(tmp_path):
    nchw = np.random.default_rng(3).normal(size=(2, 2, 9, 9)).astype(np.float32)
    with h5py.File(tmp_path / "s.hdf5", "w") as f:
        f["cutouts/stack"] = nchw
    out = read(tmp_path / "s.hdf5")
    assert [im.id for im in out] == ["s:0", "s:1"] and out[0].bands == ["b0", "b1"]
    np.testing.assert_array_equal(out[1].pixels, nchw[1])  # float stacks are not flipped
    with h5py.File(tmp_path / "nhw.h5", "w") as f:
        f["images"] = nchw[:, 0]
        f["labels"] = np.array([1, 2])
    out = read(tmp_path / "nhw.h5")
    assert out[0].pixels.shape == (1, 9, 9) and out[1].meta["label"] == 2


def test_hdf5_without_stack_is_refused_clearly(tmp_path):
    with h5py.File(tmp_path / "table.h5", "w") as f:
        f["x"] = np.arange(10)
        f["y"] = np.ones((10, 2))
    with pytest.raises(ReadError, match="not an image stack.*datasets: x"):
        read(tmp_path / "table.h5")


# ------------------------------------------------------------------------------------------------------------------
# registry rules
# ------------------------------------------------------------------------------------------------------------------
def test_priority_ambiguity_and_raising_identifiers(tmp_path):
    p = tmp_path / "thing.xyz"
    p.write_bytes(b"XYZ1 some payload")

    def make(tag):
        return lambda probe: [ImageData(np.ones((1, 2, 2), np.float32), [tag], str(probe.path), tag)]

    def boom(probe):
        raise RuntimeError("identifier bug")

    try:
        register_reader("t-boom", "image", boom, make("boom"), priority=99)
        register_reader("t-low", "image", lambda pr: pr.head.startswith(b"XYZ1"), make("low"), priority=1)
        assert read(p)[0].id == "low"  # the raising identifier counts as "no"
        register_reader("t-high", "image", lambda pr: pr.suffix == ".xyz", make("high"), priority=7)
        assert read(p)[0].id == "high"
        register_reader("t-high2", "image", lambda pr: True, make("high2"), priority=7)
        with pytest.raises(ReadError, match="ambiguous.*t-high.*t-high2"):
            read(p)
        with pytest.raises(ReadError, match="is an image .*not a spectrum"):
            identify(Probe(p), kind="spectrum")  # kinds are separate: no spectrum reader claims it, says why
    finally:
        for name in ("t-boom", "t-low", "t-high", "t-high2"):
            unregister_reader(name)


def test_expand_paths_and_read_paths_progress(tmp_path, shared_data):
    src = need(shared_data / "images/fits/galsim_hst/100610.img.fits")
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    (d / "b.fits").write_bytes(src.read_bytes())
    (d / "sub" / "a.fits").write_bytes(src.read_bytes())
    (d / ".hidden" / "c.fits").write_bytes(src.read_bytes())
    (d / ".DS_Store").write_bytes(b"junk")
    (d / "README.md").write_text("# notes")
    (d / "meta.json").write_text("{}")
    (d / "spec.txt").write_text("".join(f"{4000 + i} {1 + i}\n" for i in range(20)))
    (d / "cat.csv").write_text("id,file\n1,b.fits\n")
    files = expand_paths([d])
    assert [f.relative_to(d).as_posix() for f in files] == ["b.fits", "cat.csv", "spec.txt", "sub/a.fits"]
    assert expand_paths([d / "README.md"]) == [d / "README.md"]  # explicit files are kept
    ctx = RecordingContext()
    res = read_paths([d], ctx=ctx)
    assert len(res.images) == 2 and len(res.spectra) == 1
    assert [p.path for p in res.problems] == [str(d / "cat.csv")]
    assert "catalogue" in res.problems[0].error
    fractions = [f for f, _ in ctx.reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 5
    with pytest.raises(Cancelled):
        read_paths([d], ctx=RecordingContext(cancel_after=2))


def test_tile_compressed_fits_and_kind_mismatch(tmp_path, shared_data):
    data = np.arange(64 * 80, dtype=np.int32).reshape(64, 80)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, name="SCI")]).writeto(tmp_path / "tile.fits.fz")
    (img,) = read(tmp_path / "tile.fits.fz")
    assert img.id == "tile" and img.hdu == 1
    np.testing.assert_array_equal(img.pixels[0], data)  # integer tiles are lossless
    spec = need(shared_data / "spectra/sdss/spec-0266-51602-0013.fits")
    with pytest.raises(ReadError, match="is a spectrum .*sdss-spec.*not an image"):
        read(spec, kind="image")
    with pytest.raises(ReadError, match="is an image .*not a spectrum"):
        read(need(shared_data / "images/fits/galsim_hst/100610.img.fits"), kind="spectrum")


def test_astropy_warnings_of_a_file_reach_its_notes_on_every_read(tmp_path):
    """A float image with an integer-only BLANK card: astropy warns while the data are read; the note is kept on
    the image each time the file is read (the old process-wide capture lost it on the first read)."""
    import numpy as np
    from astropy.io import fits

    from galdesk.io.reading import read

    h = fits.PrimaryHDU(np.ones((32, 32), np.float32))
    h.header["BLANK"] = -32768
    h.writeto(tmp_path / "blank.fits")
    for _ in range(2):
        im = read(tmp_path / "blank.fits")[0]
        assert any("BLANK" in w for w in im.meta.get("warnings", [])), im.meta.get("warnings")
