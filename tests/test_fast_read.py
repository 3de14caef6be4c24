"""An ingest's fast read (``read(..., light=True, size=S)``) gives the numbers of the full read: the centre and
pixel scale from the bare wcslib core equal the full astropy WCS's, fitsio's pixels equal astropy's, and the
HDUs fitsio must not read (scaled, BLANK, tile-compressed) go through astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from galdesk.io.reading import read
from galdesk.io.wcscore import centre_and_scale, wcs_cards

ASTROPY_WCS_DATA = Path(fits.__file__).parents[2] / "wcs" / "tests" / "data"


def _full(header: fits.Header, ny: int, nx: int):
    """The reference: what the full astropy WCS says (as the non-light read does)."""
    w = WCS(header, naxis=2)
    ra, dec = w.all_pix2world([[(nx - 1) / 2, (ny - 1) / 2]], 0)[0]
    return ra, dec, float(np.mean(proj_plane_pixel_scales(w.celestial) * 3600))


def _tan(ra=150.1, dec=2.2, scale=0.05, rot=30.0, n=64, **extra) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [n / 2 - 3.7, n / 2 + 5.2]   # off centre: the centre pixel must be converted, not read off
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * scale / 3600
    h = w.to_header()
    h.update(extra)
    return h


@pytest.mark.parametrize("header", [
    _tan(),
    _tan(ra=359.99, dec=-89.5, scale=0.262, rot=-170),        # near the pole and across RA = 0
    _tan(ra=10.0, dec=45.0, scale=1.0, rot=0.0, n=424),
    _tan(RADESYS="FK5", EQUINOX=2000.0),
], ids=["tan-rotated", "near-pole", "sdss-like", "fk5"])
def test_centre_and_scale_equal_the_full_wcs(header):
    for ny, nx in [(64, 64), (50, 70), (1, 1)]:
        got = centre_and_scale(header.tostring(), ny, nx)
        ra, dec, scale = _full(header, ny, nx)
        assert got["ra"] == pytest.approx(ra, abs=1e-9) and got["dec"] == pytest.approx(dec, abs=1e-9)
        assert got["pixel_scale_arcsec"] == pytest.approx(scale, rel=1e-9)


def test_a_sip_distorted_header_goes_through_the_full_wcs():
    h = _tan(n=512)
    h["CRPIX1"], h["CRPIX2"] = 1.0, 1.0     # SIP grows away from CRPIX: the centre is 255 pixels from it
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    h.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-5, "A_0_2": -1e-5, "B_1_1": 3e-5, "B_0_2": 1e-5})
    assert wcs_cards(h.tostring())[1] is True
    got = centre_and_scale(h.tostring(), 512, 512)
    ra, dec, _ = _full(h, 512, 512)
    core = WCS(h, naxis=2)
    core.sip = None
    plain = core.wcs_pix2world([[255.5, 255.5]], 0)[0]
    assert abs(plain[1] - dec) * 3600 > 0.05           # the distortion moves the centre measurably ...
    assert got["ra"] == pytest.approx(ra, abs=1e-10) and got["dec"] == pytest.approx(dec, abs=1e-10)   # ... applied


def test_no_position_without_an_equatorial_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval, w.wcs.cdelt, w.wcs.crpix = [120.0, 3.0], [-0.01, 0.01], [10, 10]
    assert centre_and_scale(w.to_header().tostring(), 20, 20) == {}      # galactic: not taken for RA/Dec
    assert centre_and_scale(fits.Header({"NAXIS": 2}).tostring(), 20, 20) == {}
    broken = _tan()
    broken["CTYPE1"] = "RA---XYZ"
    assert centre_and_scale(broken.tostring(), 20, 20) == {}            # never raises


@pytest.mark.parametrize("name", ["sip.fits", "sip2.fits", "j94f05bgq_flt.fits", "dss.14.29.56-62.41.05.fits.gz",
                                  "3d_cd.hdr", "tpvonly.hdr", "irac_sip.hdr", "siponly.hdr", "zpn-hole.hdr"])
def test_centre_and_scale_on_astropys_own_wcs_test_headers(name):
    """Real instrument headers (HST ACS with SIP and lookup tables, DSS plate solution, Spitzer IRAC SIP, TPV,
    a 3-D CD cube): the fast path agrees with the full WCS wherever the full WCS gives a position."""
    path = ASTROPY_WCS_DATA / name
    if not path.exists():
        pytest.skip(f"astropy's test data is not installed ({path})")
    if path.suffix == ".hdr":
        header = fits.Header.fromstring(path.read_bytes().decode("ascii", "replace"))
    else:
        with fits.open(path) as hdul:
            header = hdul[1 if name.startswith("j94") else 0].header.copy()
    ny, nx = int(header.get("NAXIS2", 100) or 100), int(header.get("NAXIS1", 100) or 100)
    try:
        ra, dec, scale = _full(header, ny, nx)
    except Exception:  # noqa: BLE001 - where astropy cannot convert either, the fast path gives nothing
        assert centre_and_scale(header.tostring(), ny, nx) == {}
        return
    got = centre_and_scale(header.tostring(), ny, nx)
    if not np.isfinite([ra, dec]).all() or WCS(header, naxis=2).wcs.lngtyp != "RA":
        assert "ra" not in got
        return
    assert got["ra"] == pytest.approx(ra, abs=1e-8) and got["dec"] == pytest.approx(dec, abs=1e-8)
    assert got["pixel_scale_arcsec"] == pytest.approx(scale, rel=1e-6)


def _write(path, data, header=None, **kw):
    fits.PrimaryHDU(data, header=header).writeto(path, **kw)
    return path


def _pixels(path, light):
    return [im.pixels for im in read(path, light=light, size=32)]


def test_light_fits_read_gives_the_pixels_and_position_of_the_full_read(tmp_path, shared_data):
    """On the shared HST cut-outs (a single image with WCS, and a multi-extension stamp file)."""
    for name in ["100610.img.fits", "147246.0_150.416558_1.998697_masknoise.fits", "AEGIS_F606w_images_01.fits"]:
        path = shared_data / "images/fits/galsim_hst" / name
        full, light = read(path), read(path, light=True, size=64)
        assert [im.id for im in full] == [im.id for im in light]
        for a, b in zip(full, light):
            assert np.array_equal(a.pixels, b.pixels, equal_nan=True) and a.bands == b.bands
            assert b.header is None and b.wcs is None
            if a.wcs is not None:
                ra, dec = a.wcs.all_pix2world([[(a.pixels.shape[2] - 1) / 2, (a.pixels.shape[1] - 1) / 2]], 0)[0]
                assert b.meta["ra"] == pytest.approx(ra, abs=1e-9) and b.meta["dec"] == pytest.approx(dec, abs=1e-9)


@pytest.mark.parametrize("case", ["int16-bscale", "uint16", "blank", "compressed", "big-endian-int32", "cube"])
def test_fits_the_fast_reader_must_not_read_alone_give_astropys_values(tmp_path, case):
    rng = np.random.default_rng(3)
    raw = rng.integers(-3000, 3000, (40, 48)).astype(np.int16)
    path = tmp_path / f"{case}.fits"
    if case == "int16-bscale":
        h = fits.Header({"BSCALE": 0.5, "BZERO": 100.0})
        hdu = fits.PrimaryHDU(raw, header=h)
        hdu.scale("int16", bscale=0.5, bzero=100.0)
        hdu.writeto(path)
    elif case == "uint16":
        _write(path, (raw.astype(np.int32) + 3000).astype(np.uint16))
    elif case == "blank":
        hdu = fits.PrimaryHDU(raw)
        hdu.header["BLANK"] = int(raw[5, 5])
        hdu.writeto(path)
    elif case == "compressed":
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(raw.astype(np.float32))]).writeto(path)
    elif case == "big-endian-int32":
        _write(path, (raw.astype(">i4") * 1000))
    else:
        _write(path, rng.normal(size=(3, 40, 48)).astype(">f4"))
    full, light = _pixels(path, False), _pixels(path, True)
    assert len(full) == len(light) == 1
    assert np.array_equal(full[0], light[0], equal_nan=True), case
    if case == "blank":
        assert np.isnan(light[0][0, 40 - 1 - 5, 5]) or np.isnan(light[0]).any()
    if case == "int16-bscale":   # the physical values, not the stored integers
        with fits.open(path, do_not_scale_image_data=True) as hdul:
            stored, h = hdul[0].data.astype(np.float64), hdul[0].header
            assert h["BSCALE"] != 1 and h["BZERO"] != 0
            assert np.allclose(light[0][0], stored * h["BSCALE"] + h["BZERO"])


def test_without_fitsio_the_light_read_uses_astropy(tmp_path, monkeypatch):
    import builtins

    path = _write(tmp_path / "a.fits", np.arange(48 * 40, dtype=">f4").reshape(40, 48), header=_tan(n=48))
    with_fitsio = read(path, light=True, size=32)[0]
    real_import = builtins.__import__

    def no_fitsio(name, *args, **kw):
        if name == "fitsio":
            raise ImportError("no fitsio here (as on Windows)")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_fitsio)
    without = read(path, light=True, size=32)[0]
    assert np.array_equal(with_fitsio.pixels, without.pixels)
    assert with_fitsio.meta["ra"] == without.meta["ra"] and with_fitsio.meta["dec"] == without.meta["dec"]
