"""Spectrum readers against real survey files (values read independently with plain astropy/numpy) and synthetic
files that follow the DESI, ESO Phase 3, 1-D WCS and text conventions."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import SHARED, need

from galdesk.io import ReadError, SpectrumData, read, read_paths
from galdesk.units import C_KMS, SDSS_FLUX_UNIT

SPEC_DIR = SHARED / "spectra"
#: A dead SDSS fibre (every ivar 0): refused with a reason, not loaded (test_sdss_empty_fibre_is_refused...)
EMPTY_FIBRE = "spectra/sdss/spec-0269-51581-0003.fits"
ALL_SPECTRA = sorted(p for p in SPEC_DIR.rglob("*") if p.is_file() and not str(p).endswith(EMPTY_FIBRE)) \
    if SPEC_DIR.is_dir() else []
INDEX = SHARED / "reference" / "sdss_spectra_index.csv"
INDEX_ROWS = [r for r in csv.DictReader(open(INDEX)) if r["path"] != EMPTY_FIBRE] if INDEX.is_file() else []
SIXDF = sorted((SPEC_DIR / "6dfgs").rglob("*.fits")) if SPEC_DIR.is_dir() else []
LAMOST = sorted((SPEC_DIR / "lamost").glob("*.fits")) if SPEC_DIR.is_dir() else []
PROBE_PIXELS = (0, 1, 500, 1234, -2, -1)


def _one(path) -> SpectrumData:
    out = read(path)
    assert len(out) == 1 and isinstance(out[0], SpectrumData)
    return out[0]


def _conventions(s: SpectrumData) -> None:
    n = len(s)
    assert n > 0
    assert s.wavelength.dtype == np.float64 and s.flux.dtype == np.float64 and s.ivar.dtype == np.float64
    assert s.mask.dtype == bool
    assert s.flux.shape == s.ivar.shape == s.mask.shape == (n,)
    assert np.all(np.diff(s.wavelength) > 0)
    assert np.all(s.ivar >= 0) and np.all(np.isfinite(s.ivar))
    if not s.meta.get("no_errors"):
        assert np.all(s.mask[s.ivar == 0])


# ------------------------------------------------------------------------------------------------------------------
# every real spectrum file loads
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_SPECTRA, ids=lambda p: str(p.relative_to(SPEC_DIR)))
def test_every_real_spectrum_loads(path, shared_data):
    out = read(path, kind="spectrum")
    assert len(out) == 1
    s = out[0]
    _conventions(s)
    assert s.source == str(path)
    assert s.good.sum() > 100 or s.meta.get("warnings") or s.meta.get("no_errors")


# ------------------------------------------------------------------------------------------------------------------
# SDSS / BOSS spec files
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", INDEX_ROWS, ids=lambda r: r["path"].split("/")[-1])
def test_sdss_spec_against_astropy_and_index(row, shared_data):
    path = need(shared_data / row["path"])
    s = _one(path)
    assert s.meta["format"] == "sdss-spec"
    with fits.open(path) as h:
        loglam = np.array(h["COADD"].data["loglam"], dtype=np.float64)
        flux = np.array(h["COADD"].data["flux"], dtype=np.float64)
        ivar = np.array(h["COADD"].data["ivar"], dtype=np.float64)
        wdisp = np.array(h["COADD"].data["wdisp"], dtype=np.float64)
        obj = h["SPECOBJ"].data[0] if "SPECOBJ" in h else h["SPALL"].data[0]
        z, zerr, cls, sub = float(obj["Z"]), float(obj["Z_ERR"]), obj["CLASS"].strip(), obj["SUBCLASS"].strip()
        plug_ra, plug_dec = h[0].header["PLUG_RA"], h[0].header["PLUG_DEC"]
        nlines = len(h["SPZLINE"].data)
    wave = 10.0**loglam
    assert len(s) == loglam.size == int(row["npix"])
    assert s.wavelength[0] == wave[0] and s.wavelength[-1] == wave[-1]
    assert s.wavelength[0] == pytest.approx(float(row["lam_min"]), abs=0.051)
    assert s.wavelength[-1] == pytest.approx(float(row["lam_max"]), abs=0.051)
    for i in PROBE_PIXELS:
        assert s.flux[i] == flux[i] and s.ivar[i] == ivar[i]
    np.testing.assert_array_equal(s.mask, ivar <= 0)
    assert s.vacuum is True and s.flux_unit == SDSS_FLUX_UNIT
    assert s.redshift == z and s.redshift_err == zerr
    assert s.spec_class == cls and (s.subclass or "") == sub
    if row["Z"]:  # the index covers SPECOBJ files only; SPALL files were checked against astropy above
        assert s.redshift == pytest.approx(float(row["Z"]), rel=1e-6)
        assert s.spec_class == row["CLASS"] and (s.subclass or "") == row["SUBCLASS"]
        assert s.meta["zwarning"] == int(row["ZWARNING"])
    assert (s.meta["ra"], s.meta["dec"]) == (plug_ra, plug_dec)
    assert len(s.meta["spzline"]) == nlines and "LINENAME" in s.meta["spzline"].colnames
    assert s.id == path.stem
    if (wdisp > 0).any():
        k = int(np.argmax(wdisp > 0)) + 100
        # one pixel of dloglam = 1e-4 is c * 1e-4 * ln(10) = 69.03 km/s
        assert s.resolution_kms[k] == pytest.approx(wdisp[k] * 69.0292, rel=1e-4)
        assert C_KMS * 1e-4 * math.log(10) == pytest.approx(69.0292, rel=1e-5)


def test_sdss_empty_fibre_is_refused_with_its_reason(shared_data):
    path = need(shared_data / EMPTY_FIBRE)
    with fits.open(path) as h:  # SDSS itself flags it: every ivar is 0, ZWARNING 6
        assert not (h["COADD"].data["ivar"] > 0).any() and int(h["SPECOBJ"].data["ZWARNING"][0]) == 6
    with pytest.raises(ReadError, match="no pixel has a positive inverse variance"):
        read(path)


def test_dr9_boss_spall(shared_data):
    path = need(shared_data / "spectra/sdss_old/dr9.fits")
    s = _one(path)
    with fits.open(path) as h:
        loglam = np.array(h[1].data["loglam"], dtype=np.float64)
        obj = h["SPALL"].data[0]
        assert s.redshift == float(obj["Z"]) and s.spec_class == obj["CLASS"].strip() == "GALAXY"
    assert s.wavelength[0] == 10 ** loglam[0] and len(s) == 4605
    assert s.redshift == pytest.approx(0.5106, abs=1e-4)


def test_old_spspec(shared_data):
    path = need(shared_data / "spectra/sdss_old/sample_sdss.fits")
    s = _one(path)
    assert s.meta["format"] == "sdss-spspec"
    with fits.open(path) as h:
        d = np.array(h[0].data, dtype=np.float64)
        hd = h[0].header
        wave = 10.0 ** (hd["COEFF0"] + hd["COEFF1"] * np.arange(hd["NAXIS1"]))
        assert s.redshift == pytest.approx(hd["Z"]) and s.redshift_err == pytest.approx(hd["Z_ERR"])
    assert s.wavelength[0] == pytest.approx(3798.394, abs=1e-3)
    np.testing.assert_allclose(s.wavelength, wave, rtol=1e-12)
    np.testing.assert_array_equal(s.flux, d[0])
    good = d[2] > 0
    np.testing.assert_allclose(s.ivar[good], 1 / d[2][good] ** 2)
    assert np.all(s.ivar[~good] == 0) and (~good).sum() == 41
    np.testing.assert_array_equal(s.meta["continuum_subtracted"], d[1])
    assert s.spec_class == "GALAXY" and s.vacuum is True and s.flux_unit == SDSS_FLUX_UNIT


def test_text_spectrum(shared_data):
    path = need(shared_data / "spectra/sdss_old/sample_sdss.txt")
    s = _one(path)
    ref = np.loadtxt(path, comments="#")
    assert s.meta["format"] == "text" and len(s) == ref.shape[0] == 3424
    np.testing.assert_array_equal(s.wavelength, ref[:, 0])
    np.testing.assert_array_equal(s.flux, ref[:, 1])
    assert s.wavelength[0] == 3637.390 and s.wavelength[-1] == 7999.997
    err = ref[:, 2]
    np.testing.assert_allclose(s.ivar[err > 0], 1 / err[err > 0] ** 2)
    assert np.all(s.ivar[err == 0] == 0) and np.all(s.mask[err == 0])
    assert not s.meta.get("no_errors")
    np.testing.assert_array_equal(s.meta["columns"]["tem"], ref[:, 3])
    assert s.vacuum is False and s.meta["vacuum_assumed"]


# ------------------------------------------------------------------------------------------------------------------
# 6dFGS
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SIXDF, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_6dfgs(path, shared_data):
    s = _one(path)
    assert s.meta["format"] == "6dfgs"
    with fits.open(path) as h:
        d = np.array(h[0].data, dtype=np.float64)
        hd = h[0].header
    np.testing.assert_array_equal(s.wavelength, d[3])
    np.testing.assert_array_equal(s.flux, d[0])
    var = d[1]
    ok = var > 0
    np.testing.assert_allclose(s.ivar[ok], 1 / var[ok])
    assert s.redshift == pytest.approx(hd["Z_HELIO"])
    # the wavelength row is the dopcor'ed header WCS shifted back to the observed frame
    wcs = hd["CRVAL1"] + (np.arange(hd["NAXIS1"]) + 1 - hd["CRPIX1"]) * hd["CDELT1"]
    np.testing.assert_allclose(s.rest_wavelength(), wcs, atol=0.01)
    assert s.vacuum is False and s.flux_unit == "count"
    assert s.id == path.name.split(".")[0]


# ------------------------------------------------------------------------------------------------------------------
# LAMOST
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", LAMOST, ids=lambda p: p.name)
def test_lamost(path, shared_data):
    s = _one(path)
    assert s.meta["format"] == "lamost"
    with fits.open(path) as h:
        d = np.array(h[0].data, dtype=np.float64)
        hd = h[0].header
    wave = 10.0 ** (hd["COEFF0"] + hd["COEFF1"] * np.arange(hd["NAXIS1"]))
    np.testing.assert_allclose(s.wavelength, wave, rtol=1e-13)
    assert s.wavelength[0] == pytest.approx(3699.985, abs=1e-3)
    np.testing.assert_array_equal(s.flux, d[0])
    np.testing.assert_array_equal(s.ivar, np.where(d[1] > 0, d[1], 0))
    np.testing.assert_array_equal(s.meta["subcontinuum"], d[2])
    assert s.mask[d[3] != 0].all()
    assert s.vacuum is True
    assert s.spec_class == "STAR" == hd["CLASS"].strip() and s.subclass == hd["SUBCLASS"].strip()
    assert s.redshift == pytest.approx(hd["Z"]) and s.redshift_err == pytest.approx(hd["Z_ERR"])


# ------------------------------------------------------------------------------------------------------------------
# DESI coadd (synthetic, following the DESI data model)
# ------------------------------------------------------------------------------------------------------------------
def _desi_file(path, aligned=True):
    rng = np.random.default_rng(1)
    step = 0.8
    grids = {"B": 3600.0 + step * np.arange(200), "R": 3600.0 + step * 180 + step * np.arange(200),
             "Z": 3600.0 + step * 360 + step * np.arange(150)}
    if not aligned:
        grids["R"] = grids["R"] + 0.3
    tids = np.array([39627000000000001, 39627000000000002], dtype=np.int64)
    hdus = [fits.PrimaryHDU()]
    fm = Table({"TARGETID": tids, "TARGET_RA": [150.1, 150.2], "TARGET_DEC": [2.1, 2.2]})
    hdus.append(fits.table_to_hdu(fm))
    hdus[-1].name = "FIBERMAP"
    arrays = {}
    for arm, w in grids.items():
        flux = rng.normal(10, 1, (2, w.size)).astype(np.float32)
        ivar = rng.uniform(0.5, 2, (2, w.size)).astype(np.float32)
        mask = np.zeros((2, w.size), np.int32)
        mask[0, 5] = 1
        arrays[arm] = (w, flux, ivar, mask)
        for name, data in (("WAVELENGTH", w), ("FLUX", flux), ("IVAR", ivar), ("MASK", mask)):
            hdus.append(fits.ImageHDU(data, name=f"{arm}_{name}"))
    red = Table({"TARGETID": tids[::-1], "Z": [0.5, 0.1], "ZERR": [1e-4, 2e-5], "SPECTYPE": ["QSO", "GALAXY"],
                 "SUBTYPE": ["", ""], "ZWARN": [0, 4]})
    hdus.append(fits.table_to_hdu(red))
    hdus[-1].name = "REDSHIFTS"
    fits.HDUList(hdus).writeto(path)
    return tids, arrays


def test_desi_coadd(tmp_path):
    path = tmp_path / "coadd-sv1-dark-1234.fits"
    tids, arrays = _desi_file(path)
    out = read(path)
    assert [s.id for s in out] == [str(t) for t in tids]
    s0, s1 = out
    assert s0.meta["format"] == "desi-coadd" and s0.meta["arms_aligned"]
    assert len(s0) == 510  # B 0..199, R 180..379, Z 360..509 on one 0.8 A grid
    assert s0.wavelength[0] == 3600.0 and s0.wavelength[-1] == pytest.approx(3600 + 0.8 * 509)
    assert np.allclose(np.diff(s0.wavelength), 0.8)
    wb, fb, ib, mb = arrays["B"]
    wr, fr, ir, mr = arrays["R"]
    # B-only pixel, masked pixel, and an overlap pixel (B index 190 == R index 10)
    assert s0.flux[3] == pytest.approx(fb[0, 3]) and s0.ivar[3] == pytest.approx(ib[0, 3])
    assert s0.mask[5] and s0.ivar[5] == 0
    k = 190
    expect = (fb[0, k] * ib[0, k] + fr[0, 10] * ir[0, 10]) / (ib[0, k] + ir[0, 10])
    assert s0.wavelength[k] == pytest.approx(wb[k]) == pytest.approx(wr[10])
    assert s0.flux[k] == pytest.approx(expect, rel=1e-6)
    assert s0.ivar[k] == pytest.approx(ib[0, k] + ir[0, 10], rel=1e-6)
    assert s1.flux[5] == pytest.approx(fb[1, 5])  # only target 0 was masked there
    # REDSHIFTS is in another order than FIBERMAP: matched by TARGETID
    assert (s0.redshift, s0.spec_class) == (0.1, "GALAXY") and (s1.redshift, s1.spec_class) == (0.5, "QSO")
    assert s0.meta["zwarn"] == 4 and s0.vacuum and s0.flux_unit == SDSS_FLUX_UNIT
    assert s0.meta["ra"] == 150.1


def test_desi_unaligned_arms_cut_at_overlap_midpoint(tmp_path):
    path = tmp_path / "coadd-odd.fits"
    _desi_file(path, aligned=False)
    s = read(path)[0]
    assert not s.meta["arms_aligned"]
    assert np.all(np.diff(s.wavelength) > 0)
    assert len(s) < 200 + 200 + 150


# ------------------------------------------------------------------------------------------------------------------
# ESO Phase 3
# ------------------------------------------------------------------------------------------------------------------
def test_eso_phase3(tmp_path):
    n = 300
    wave_nm = np.linspace(500.0, 600.0, n)
    flux = np.linspace(1, 2, n)
    err = np.full(n, 0.1)
    qual = np.zeros(n, np.int32)
    qual[7] = 1
    cols = [fits.Column("WAVE", f"{n}D", "nm", array=wave_nm[None]),
            fits.Column("FLUX", f"{n}D", "erg.cm**(-2).s**(-1).angstrom**(-1)", array=flux[None]),
            fits.Column("ERR", f"{n}D", array=err[None]), fits.Column("QUAL", f"{n}J", array=qual[None])]
    tab = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    tab.header["TUCD1"] = "em.wl;obs.atmos"
    path = tmp_path / "ADP.2020-01-01T00:00:00.000.fits"
    fits.HDUList([fits.PrimaryHDU(), tab]).writeto(path)
    s = _one(path)
    assert s.meta["format"] == "eso-sdp"
    np.testing.assert_allclose(s.wavelength, wave_nm * 10)
    assert s.wavelength[0] == 5000.0 and s.wavelength[-1] == 6000.0
    np.testing.assert_allclose(s.ivar[s.ivar > 0], 100.0)
    assert s.mask[7] and s.mask.sum() == 1
    assert s.vacuum is False and "erg" in s.flux_unit


# ------------------------------------------------------------------------------------------------------------------
# generic 1-D FITS with a wavelength WCS
# ------------------------------------------------------------------------------------------------------------------
def _write_1d(path, data, **cards):
    h = fits.Header()
    for k, v in cards.items():
        h[k.replace("_", "-") if k == "DC_FLAG" else k] = v
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=h).writeto(path)
    return path


def test_fits_1d_linear_air_default(tmp_path):
    p = _write_1d(tmp_path / "lin.fits", np.arange(100) + 1.0, CRVAL1=4000.0, CDELT1=2.0, CRPIX1=1.0)
    s = _one(p)
    assert s.meta["format"] == "fits-1d"
    assert s.wavelength[0] == 4000.0 and s.wavelength[-1] == 4198.0
    assert s.vacuum is False and s.meta["vacuum_assumed"] and s.meta["no_errors"]
    assert not s.mask.any()  # no errors: nothing hidden


def test_fits_1d_crpix_cd_and_units(tmp_path):
    p = _write_1d(tmp_path / "nm.fits", np.ones(50), CRVAL1=500.0, CD1_1=0.1, CRPIX1=11.0, CUNIT1="nm",
                  CTYPE1="WAVE")
    s = _one(p)
    assert s.wavelength[10] == pytest.approx(5000.0) and s.wavelength[0] == pytest.approx(4990.0)
    assert s.vacuum is True


def test_fits_1d_log10_dcflag_and_airorvac(tmp_path):
    p = _write_1d(tmp_path / "log.fits", np.ones(100), CRVAL1=3.6, CDELT1=1e-4, CRPIX1=1.0, DC_FLAG=1,
                  AIRORVAC="vac")
    s = _one(p)
    assert s.wavelength[0] == pytest.approx(10**3.6) and s.wavelength[-1] == pytest.approx(10 ** (3.6 + 99e-4))
    assert s.vacuum is True


def test_fits_1d_paper3_wave_log(tmp_path):
    p = _write_1d(tmp_path / "wlog.fits", np.ones(100), CRVAL1=5000.0, CDELT1=1.0, CRPIX1=1.0, CTYPE1="AWAV-LOG")
    s = _one(p)
    assert s.wavelength[99] == pytest.approx(5000.0 * math.exp(99.0 / 5000.0))
    assert s.vacuum is False


def test_fits_1d_multirow_with_sigma(tmp_path):
    data = np.vstack([np.full(60, 5.0), np.full(60, 4.0), np.full(60, 0.5)])
    p = _write_1d(tmp_path / "ms.fits", data, CRVAL1=6000.0, CDELT1=1.0, BANDID1="spectrum", BANDID2="sky",
                  BANDID3="sigma - error")
    s = _one(p)
    assert np.all(s.flux == 5.0) and np.allclose(s.ivar, 4.0)


def test_fits_1d_iraf_multispec(tmp_path):
    h = fits.Header()
    h["WAT0_001"] = "system=multispec"
    h["WAT1_001"] = "wtype=multispec label=Wavelength units=angstroms"
    h["WAT2_001"] = 'wtype=multispec spec1 = "1 1 0 4500.0 1.5 80 0. 1.0 80.0"'
    h["CRVAL1"], h["CDELT1"] = 1.0, 1.0
    p = tmp_path / "irafms.fits"
    fits.PrimaryHDU(np.ones((1, 80), np.float32), header=h).writeto(p)
    s = _one(p)
    assert s.wavelength[0] == 4500.0 and s.wavelength[-1] == pytest.approx(4500 + 1.5 * 79)


# ------------------------------------------------------------------------------------------------------------------
# text variants
# ------------------------------------------------------------------------------------------------------------------
def test_text_csv_with_header_nm_and_decreasing(tmp_path):
    p = tmp_path / "spec.csv"
    lines = ["# wavelengths in nm, vacuum", "wave,flux,error", "# nm,erg,erg"]
    for w in np.linspace(700, 600, 21):  # (a spectrum needs at least MIN_SPECTRUM_PIXELS)
        lines.append(f"{w:.1f},{w / 100:.3f},0.5")
    p.write_text("\n".join(lines) + "\n")
    s = _one(p)
    assert s.wavelength[0] == pytest.approx(6000.0) and s.wavelength[-1] == pytest.approx(7000.0)
    assert s.flux[0] == pytest.approx(6.0)  # reversed together with the wavelength
    assert np.allclose(s.ivar, 4.0) and s.vacuum is True


def test_text_without_errors(tmp_path):
    p = tmp_path / "noerr.txt"
    p.write_text("\n".join(f"{4000 + i} {i * 0.5} 0.0" for i in range(50)))
    s = _one(p)
    assert s.meta["no_errors"] and np.all(s.ivar == 0) and not s.mask.any()
    p2 = tmp_path / "twocol.dat"
    p2.write_text("\n".join(f"{4000 + i}\t{i * 0.5}" for i in range(50)))
    s2 = _one(p2)
    assert s2.meta["no_errors"] and len(s2) == 50


def test_catalogue_csv_is_not_a_spectrum(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("objid,class,file\n1,0,a.jpeg\n2,1,b.jpeg\n")
    with pytest.raises(ReadError, match="catalogue"):
        read(p)


def test_read_paths_on_spectrum_folder(shared_data):
    res = read_paths([shared_data / "spectra" / "lamost"])
    assert len(res.spectra) == len(LAMOST) and not res.problems and not res.images


# ------------------------------------------------------------------------------------------------------------------
# the fast paths (header keywords, one-row tables) agree with astropy on every real file
# ------------------------------------------------------------------------------------------------------------------
FAST_CHECK = ([p for p in ALL_SPECTRA if p.suffix == ".fits" and ("sdss" in p.parts[-2] or p.parent.name == "lamost")]
              + sorted((SHARED / "images" / "fits").rglob("*.fits")) if SPEC_DIR.is_dir() else [])


@pytest.mark.parametrize("path", FAST_CHECK, ids=lambda p: p.name)
def test_fast_header_and_table_parsers_match_astropy(path, shared_data):
    from galdesk.io.formats.common import fast_table as _fast_table
    from galdesk.io.probe import Probe

    probe = Probe(path)
    with fits.open(path) as hdul:
        assert len(probe.fits_summary) == len(hdul)
        for i, (info, hdu) in enumerate(zip(probe.fits_summary, hdul)):
            h = hdu.header
            for key in set(h.keys()) - {"COMMENT", "HISTORY", ""}:
                if h.count(key) == 1 and not key.startswith("HIERARCH"):
                    assert info.kw.get(key) == h[key], (i, key)
            if not isinstance(hdu, fits.BinTableHDU):
                continue
            fast = _fast_table(probe, i)
            assert fast is not None
            for name in hdu.columns.names:
                ref, got = np.asarray(hdu.data[name]), fast[name]
                assert ref.shape == got.shape, name
                if ref.dtype.kind in "SU":
                    assert np.array_equal(np.char.strip(ref.astype(str)), got), name
                else:
                    assert np.array_equal(ref, got, equal_nan=ref.dtype.kind == "f"), name


# ------------------------------------------------------------------------------------------------------------------
# Redshifts where surveys put them: header keywords, text comments; one bad target of a multi-target file
# ------------------------------------------------------------------------------------------------------------------
def test_redshift_keywords_of_eso_wcs1d_and_text(tmp_path):
    n = 200
    wave_nm = np.linspace(500.0, 600.0, n)
    cols = [fits.Column("WAVE", f"{n}D", "nm", array=wave_nm[None]),
            fits.Column("FLUX", f"{n}D", array=np.ones((1, n))), fits.Column("ERR", f"{n}D", array=np.ones((1, n)))]
    tab = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    tab.header["REDSHIFT"] = 0.0312  # in the table's header, as some Phase 3 collections put it
    fits.HDUList([fits.PrimaryHDU(), tab]).writeto(tmp_path / "eso.fits")
    assert _one(tmp_path / "eso.fits").redshift == pytest.approx(0.0312)
    primary = fits.PrimaryHDU()
    primary.header["Z"] = 0.145  # a survey's primary header; the spectrum in an extension
    ext = fits.ImageHDU(np.ones(100, np.float32))
    ext.header.update(CRVAL1=4000.0, CDELT1=2.0, CRPIX1=1.0)
    fits.HDUList([primary, ext]).writeto(tmp_path / "ext.fits")
    assert _one(tmp_path / "ext.fits").redshift == pytest.approx(0.145)
    rows = "\n".join(f"{4000 + 2 * i} 1.0 0.1" for i in range(50))
    (tmp_path / "z.txt").write_text(f"# object NGC 1234\n# Redshift: 0.0213 (NED)\n{rows}\n")
    assert _one(tmp_path / "z.txt").redshift == pytest.approx(0.0213)
    (tmp_path / "noz.txt").write_text(f"# size = 0.5 arcsec\n{rows}\n")
    assert _one(tmp_path / "noz.txt").redshift is None


def test_one_dead_fibre_does_not_lose_the_file(tmp_path):
    path = tmp_path / "coadd-dead.fits"
    _desi_file(path)
    with fits.open(path, mode="update") as f:
        for arm in "BRZ":
            f[f"{arm}_IVAR"].data[1] = 0.0  # target 2: a dead fibre
    good, dead = read(path, keep_skipped=True)
    assert "skip_reason" not in good.meta and "no pixel has a positive inverse variance" in dead.meta["skip_reason"]
    assert [s.id for s in read(path)] == [good.id]
    res = read_paths([path])
    assert [s.id for s in res.spectra] == [good.id]
    assert len(res.problems) == 1 and f"target {dead.id} skipped" in res.problems[0].error
    with fits.open(path, mode="update") as f:
        for arm in "BRZ":
            f[f"{arm}_IVAR"].data[0] = 0.0
    with pytest.raises(ReadError, match=r"no usable target \(target \d+: no pixel .*; target \d+: no pixel"):
        read(path)
