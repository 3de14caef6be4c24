"""Errors for spectra whose files have none: the sliding DER_SNR estimator (galdesk/io/noise.py) on synthetic noise
and against the pipeline errors of real SDSS, LAMOST and 6dFGS spectra; where it is applied (every file read, the
project store) and what it records; and the error arrays the 1-D FITS, ESO and text readers find."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import SHARED, need

from galdesk.io import SpectrumData, read
from galdesk.io.noise import DEFAULT_WINDOW, add_estimated_errors, der_snr, describe, estimate_ivar, estimate_sigma

SPEC = SHARED / "spectra"
STARFORMING = "spectra/sdss/spec-0266-51602-0107.fits"  # GALAXY STARFORMING, z = 0.123
ESTIMATED = f"DER_SNR, {DEFAULT_WINDOW} px"
#: Strong emission/absorption features (vacuum rest Angstrom) left out of the "continuum" comparison (+-1500 km/s).
FEATURES = (1549.0, 1908.7, 2799.0, 3426.9, 3727.1, 3729.9, 3869.9, 3889.0, 3934.8, 3969.6, 4102.9, 4341.7, 4862.7,
            4960.3, 5008.2, 5877.3, 5891.6, 5897.6, 6302.0, 6549.9, 6564.6, 6585.3, 6718.3, 6732.7)


def _synthetic(n=4000, seed=3):
    """A log-linear spectrum with a smooth continuum, narrow and broad emission lines and a noise that falls from
    1.5 at the blue end to 0.5 at the red end, with a few sky lines (3x the noise over 8 pixels)."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)
    wave = 10 ** (3.58 + 1e-4 * x)
    cont = 20 + 5 * np.sin(x / 700.0)
    lines = sum(a * np.exp(-0.5 * ((x - c) / s) ** 2) for c, a, s in
                ((900, 60, 2.0), (1500, 200, 2.5), (1520, 80, 2.5), (2600, 40, 25.0), (3300, 150, 2.0)))
    sigma = 1.5 - 1.0 * x / (n - 1)
    for c in (1200, 2200, 3500):
        sigma[c:c + 8] *= 3
    return wave, cont + lines, sigma, cont + lines + rng.normal(0, 1, n) * sigma


# ------------------------------------------------------------------------------------------------------------------
# the estimator on synthetic noise
# ------------------------------------------------------------------------------------------------------------------
def test_der_snr_of_white_noise():
    rng = np.random.default_rng(0)
    flux = 5.0 + rng.normal(0, 2.0, 20000)
    signal, noise = der_snr(flux)
    assert noise == pytest.approx(2.0, rel=0.03) and signal == pytest.approx(5.0, abs=0.1)


def test_local_estimate_follows_the_noise_and_ignores_lines():
    rows = []
    for seed in range(8):
        wave, model, sigma, flux = _synthetic(seed=seed)
        est = estimate_sigma(flux)
        assert est.shape == flux.shape and np.all(np.isfinite(est)) and np.all(est > 0)
        ratio = est / sigma
        blue, red = slice(100, 800), slice(3600, 3900)  # away from the sky lines and the emission lines
        # the noise falls 2.5x from blue to red: a single global value could not follow it
        assert np.median(est[blue]) / np.median(est[red]) > 2.0
        rows.append((np.median(ratio), np.median(ratio[blue]), np.median(ratio[red]), ratio[1500]))
    mean = np.mean(rows, axis=0)
    # measured over these 8 seeds: 1.022, 1.011, 1.008 (one window of 101 pixels scatters by ~10 %)
    assert mean[:3] == pytest.approx(1.0, abs=0.04)
    # at the peak of the strongest narrow line (180 sigma, a second one 20 pixels away) the line's own second
    # differences lift it (measured 1.9x) where this synthetic noise does not grow with the signal; real noise does,
    # and there the estimate matches the pipeline's (test_estimate_at_sdss_emission_lines)
    assert mean[3] < 2.5


def test_bad_pixels_do_not_poison_the_estimate():
    wave, model, sigma, flux = _synthetic()
    clean = estimate_sigma(flux)
    rng = np.random.default_rng(9)
    dirty = flux.copy()
    mask = np.zeros(flux.size, bool)
    nan_at = rng.choice(flux.size, 120, replace=False)
    dirty[nan_at] = np.nan
    dirty[nan_at[:10]] = np.inf
    garbage = rng.choice(flux.size, 200, replace=False)
    dirty[garbage] = 1e30
    mask[garbage] = True  # masked pixels may hold anything
    est = estimate_sigma(dirty, mask)
    assert np.all(np.isfinite(est)) and np.all(est > 0)
    # no bias; what remains is the statistics of windows with fewer pixels (measured 1.00 and 0.04)
    assert np.median(est / clean) == pytest.approx(1.0, abs=0.02)
    assert np.median(np.abs(est / clean - 1)) < 0.07
    ivar = estimate_ivar(dirty, mask)
    assert np.all(ivar[mask | ~np.isfinite(dirty)] == 0) and np.all(ivar[~mask & np.isfinite(dirty)] > 0)
    # unmasked cosmic rays (single pixels at 100 sigma) move it by ~2 % only (measured 0.020)
    cr = flux.copy()
    cr[rng.choice(flux.size, 40, replace=False)] += 100 * 1.5
    assert np.median(np.abs(estimate_sigma(cr) / clean - 1)) < 0.03


def test_no_estimate_without_scatter_and_integer_counts():
    assert estimate_sigma(np.arange(200.0)) is None  # a straight line has no noise to measure
    assert estimate_sigma(np.full(5, 1.0)) is None  # too short
    counts = np.random.default_rng(2).poisson(0.7, 3000).astype(float)  # most second differences are 0
    est = estimate_sigma(counts)
    assert est is not None and np.median(est) == pytest.approx(np.sqrt(0.7), rel=0.35)


def test_add_estimated_errors_records_how_and_leaves_real_errors_alone():
    wave, model, sigma, flux = _synthetic()
    n = flux.size
    spec = SpectrumData(wave, flux, np.zeros(n), np.zeros(n, bool), "x", "x", meta={"no_errors": True})
    assert add_estimated_errors(spec)
    assert spec.meta["errors_estimated"] == ESTIMATED == describe() and "no_errors" not in spec.meta
    assert np.median(spec.error / sigma) == pytest.approx(1.0, abs=0.08)  # measured 1.056 (this seed)
    has = SpectrumData(wave, flux, np.full(n, 4.0), np.zeros(n, bool), "y", "y")
    assert not add_estimated_errors(has) and np.all(has.ivar == 4.0) and "errors_estimated" not in has.meta
    flat = SpectrumData(wave, np.ones(n), np.zeros(n), np.zeros(n, bool), "z", "z", meta={"no_errors": True})
    assert not add_estimated_errors(flat) and flat.meta["no_errors"]
    assert "could be estimated" in flat.meta["warnings"][0]


# ------------------------------------------------------------------------------------------------------------------
# against the pipeline errors of real spectra (numbers in docs/lines_validation.md, "Spectra without errors")
# ------------------------------------------------------------------------------------------------------------------
def _continuum(spec: SpectrumData) -> np.ndarray:
    z = spec.redshift or 0.0
    keep = spec.good.copy()
    for rest in FEATURES:
        c = rest * (1 + z)
        keep &= np.abs(spec.wavelength - c) > c * 1500.0 / 299792.458
    return keep


def _compare(paths):
    """Per spectrum: median of estimated / pipeline sigma on the continuum, and the 16-84 % half-width of
    ln(ratio) per pixel for the local estimate and for one global DER_SNR value."""
    rows = []
    for p in paths:
        s = read(p)[0]
        est = estimate_sigma(s.flux, ~s.good)
        glob = der_snr(s.flux, ~s.good)[1]
        sel = _continuum(s)
        true = 1.0 / np.sqrt(s.ivar[sel])
        lr, lg = np.log(est[sel] / true), np.log(glob / true)
        rows.append((float(np.exp(np.median(lr))), float(np.subtract(*np.percentile(lr, [84, 16])) / 2),
                     float(np.subtract(*np.percentile(lg, [84, 16])) / 2)))
    return np.array(rows)


def _survey(shared_data, pattern):
    paths = sorted(p for p in (shared_data / "spectra").glob(pattern) if "0269-51581-0003" not in p.name)
    if not paths:
        need(shared_data / "spectra" / pattern)
    return _compare(paths)


def test_estimate_matches_sdss_errors(shared_data):
    r = _survey(shared_data, "sdss/*.fits")
    assert len(r) == 19
    # measured: median 1.017, every spectrum 0.94-1.18; per-pixel spread 0.19 (local) vs 0.39 (one global value)
    assert 0.95 <= np.median(r[:, 0]) <= 1.08
    assert np.all((r[:, 0] > 0.85) & (r[:, 0] < 1.25))
    assert np.median(r[:, 1]) < 0.6 * np.median(r[:, 2])


def test_estimate_matches_lamost_errors(shared_data):
    r = _survey(shared_data, "lamost/*.fits")
    assert len(r) == 20
    # measured: median 1.007, 15 of 20 within 25 %; the rest are bright stars (S/N 40-90) whose many absorption
    # lines add to the second differences (up to 2.3x)
    assert 0.90 <= np.median(r[:, 0]) <= 1.12
    assert np.mean(np.abs(r[:, 0] - 1) < 0.25) >= 0.7
    assert np.median(r[:, 1]) < np.median(r[:, 2])


def test_estimate_against_6dfgs_variance(shared_data):
    r = _survey(shared_data, "6dfgs/*/*.fits")
    assert len(r) == 123
    # measured: median 0.730 (10-90 %: 0.52-0.85): 6dF spectra are rebinned, their noise is correlated two pixels
    # apart (residual autocorrelation 0.26), which DER_SNR assumes away; the estimate is low by ~27 %
    assert 0.67 <= np.median(r[:, 0]) <= 0.80
    assert np.percentile(r[:, 0], 90) < 0.95


#: Emission lines (vacuum rest Angstrom) whose pixels (+-300 km/s) test_estimate_at_sdss_emission_lines compares.
EMISSION = (3727.1, 4862.7, 4960.3, 5008.2, 6549.9, 6564.6, 6585.3, 6718.3, 6732.7)


def test_estimate_at_sdss_emission_lines(shared_data):
    """At the lines the pipeline's noise includes the lines' own photons; the sliding DER_SNR follows it there
    because the lines' second differences enter its windows: it never underestimates the noise a fit sees."""
    ratios = []
    for p in sorted((shared_data / "spectra" / "sdss").glob("*.fits")):
        if "0269-51581-0003" in p.name:
            continue
        s = read(p)[0]
        z = s.redshift or 0.0
        near = np.zeros(len(s), bool)
        for rest in EMISSION:
            c = rest * (1 + z)
            near |= np.abs(s.wavelength - c) < c * 300.0 / 299792.458
        sel = near & s.good
        if sel.sum() > 20:
            ratios.append(np.median(estimate_sigma(s.flux, ~s.good)[sel] * np.sqrt(s.ivar[sel])))
    assert len(ratios) >= 15
    # measured: median 1.06, every spectrum 0.87-1.19 (lines of peak S/N 4-53); masking the lines before
    # estimating (tried) gave 0.95 and down to 0.64, i.e. errors too small where the fit needs them
    assert 0.95 <= np.median(ratios) <= 1.2 and min(ratios) > 0.8


def test_masked_and_nan_pixels_of_a_real_spectrum(shared_data):
    s = read(need(shared_data / STARFORMING))[0]
    clean = estimate_sigma(s.flux, ~s.good)
    flux, bad = s.flux.copy(), ~s.good
    rng = np.random.default_rng(5)
    flux[rng.choice(flux.size, 150, replace=False)] = np.nan
    hidden = rng.choice(flux.size, 150, replace=False)
    flux[hidden], bad[hidden] = -1e20, True
    est = estimate_sigma(flux, bad)
    assert np.median(est / clean) == pytest.approx(1.0, abs=0.02) and np.median(np.abs(est / clean - 1)) < 0.07


# ------------------------------------------------------------------------------------------------------------------
# applied when a file without errors is read, kept in a project, and used by the line fitter
# ------------------------------------------------------------------------------------------------------------------
def _as_wcs_fits(spec: SpectrumData, path, extra=(), flux=None):
    """``spec`` as a log-linear 1-D WCS FITS file with redshift, without errors unless ``extra`` HDUs add them."""
    h = fits.Header()
    h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["DC-FLAG"] = np.log10(spec.wavelength[0]), 1e-4, 1.0, 1
    h["VACUUM"], h["Z"] = True, spec.redshift
    flux = np.where(spec.good, spec.flux, np.nan) if flux is None else flux
    fits.HDUList([fits.PrimaryHDU(flux.astype(np.float32), header=h), *extra]).writeto(path)
    return path


def test_real_spectrum_without_errors_is_read_with_estimated_ones(tmp_path, shared_data):
    s = read(need(shared_data / STARFORMING))[0]
    t = read(_as_wcs_fits(s, tmp_path / "noerr.fits"))[0]
    assert t.meta["errors_estimated"] == ESTIMATED and "no_errors" not in t.meta
    np.testing.assert_allclose(t.wavelength, s.wavelength, rtol=1e-6)
    np.testing.assert_array_equal(t.mask, ~s.good)  # the NaN pixels, and only they
    assert np.all(t.ivar[t.mask] == 0) and np.all(t.ivar[~t.mask] > 0)
    sel = _continuum(s)
    assert np.median(t.error[sel] / s.error[sel]) == pytest.approx(1.0, abs=0.1)
    # the same file with its IVAR extension: the file's errors, nothing estimated
    u = read(_as_wcs_fits(s, tmp_path / "ivar.fits", [fits.ImageHDU(s.ivar.astype(np.float32), name="IVAR")]))[0]
    assert "errors_estimated" not in u.meta and u.meta["error_source"] == "HDU 1 IVAR (ivar)"
    np.testing.assert_allclose(u.ivar, s.ivar.astype(np.float32), rtol=1e-6)


def test_every_real_file_with_errors_keeps_them(shared_data):
    for path in sorted(p for p in SPEC.rglob("*") if p.is_file() and "0269-51581-0003" not in p.name):
        for s in read(path):
            assert "errors_estimated" not in s.meta and "no_errors" not in s.meta, path


def test_errors_estimated_survives_the_project(tmp_path, shared_data):
    from galdesk.project import Project
    from galdesk.project.arrays import read_spectrum, write_arrays
    from galdesk.services.ingest import ingest

    s = read(need(shared_data / STARFORMING))[0]
    path = _as_wcs_fits(s, tmp_path / "noerr.fits")
    res = ingest([path, shared_data / STARFORMING], tmp_path / "p", workers=1)
    assert res.spectra == 2 and not res.problems
    proj = Project.open(tmp_path / "p.galdesk")
    stored = proj.spectrum(proj.find("noerr", "spectrum"))
    direct = read(path)[0]
    assert stored.meta["errors_estimated"] == ESTIMATED and "no_errors" not in stored.meta
    np.testing.assert_allclose(stored.ivar, direct.ivar)
    with_errors = proj.spectrum(proj.find(s.id, "spectrum"))
    assert "errors_estimated" not in with_errors.meta and np.array_equal(with_errors.ivar, s.ivar)
    # a spectrum stored without errors (as galdesk did before estimating them) gets them when read back
    old = SpectrumData(direct.wavelength, direct.flux, np.zeros(len(direct)), ~np.isfinite(direct.flux), "o", "o",
                       meta={"no_errors": True})
    write_arrays(tmp_path / "old.h5", 64, {}, [old])
    back = read_spectrum(tmp_path / "old.h5", 0, source="o", oid="o", z=0.1, spec_class=None, subclass=None)
    assert back.meta["errors_estimated"] == ESTIMATED and np.allclose(back.ivar, direct.ivar)


def test_spectrum_without_errors_is_fitted(tmp_path, shared_data):
    """Before errors were estimated this file failed with 'no good pixels at the lines'."""
    from galdesk.lines.config import FitConfig
    from galdesk.lines.service import fit_sources

    src = need(shared_data / STARFORMING)
    path = _as_wcs_fits(read(src)[0], tmp_path / "noerr.fits")
    est, ref = fit_sources([path, src], FitConfig(complexes=("halpha", "hbeta")), n_jobs=1)
    # before: {"halpha": "halpha: no good pixels at the lines", "hbeta": ...} in "skipped", no lines
    assert not est.get("error") and not est.get("skipped") and est["lines"]
    # the result says the errors are estimated, and how; the file with errors says nothing
    assert est["errors_estimated"] == "DER_SNR, 101 px" and ref["errors_estimated"] is None
    lines = {(ln["name"], ln["component"]): ln for ln in est["lines"]}
    ref_lines = {(ln["name"], ln["component"]): ln for ln in ref["lines"]}
    for key in (("halpha", "narrow"), ("nii6584", "narrow"), ("hbeta", "narrow")):
        a, b = lines[key], ref_lines[key]
        # measured: fluxes within 5 %, errors 0.86-1.41x those from the pipeline's ivar (the file has no wdisp)
        assert a["flux"] == pytest.approx(b["flux"], rel=0.1), key
        assert 0.6 < a["flux_err"] / b["flux_err"] < 1.6, key


# ------------------------------------------------------------------------------------------------------------------
# error arrays the readers find (synthetic files of the layouts shared/data does not have)
# ------------------------------------------------------------------------------------------------------------------
N = 400
WCS = {"CRVAL1": 5000.0, "CDELT1": 1.0, "CRPIX1": 1.0}


def _flux(seed=1, sigma=0.5):
    return (10 + np.random.default_rng(seed).normal(0, sigma, N)).astype(np.float32)


def _primary(data, **cards):
    h = fits.Header()
    for k, v in {**WCS, **cards}.items():
        h[k] = v
    return fits.PrimaryHDU(np.asarray(data, np.float32), header=h)


@pytest.mark.parametrize("name, values, expect", [
    ("IVAR", np.full(N, 4.0), 4.0), ("ERROR", np.full(N, 0.5), 4.0), ("ERR", np.full(N, 0.25), 16.0),
    ("VAR", np.full(N, 0.25), 4.0), ("UNCERT", np.full(N, 2.0), 0.25), ("STAT", np.full(N, 0.01), 100.0),
    ("INVVAR", np.full(N, 9.0), 9.0)])
def test_fits_1d_error_extension(tmp_path, name, values, expect):
    p = tmp_path / f"{name}.fits"
    fits.HDUList([_primary(_flux(), EXTNAME="FLUX"), fits.ImageHDU(values.astype(np.float32), name=name)]).writeto(p)
    s = read(p)[0]
    assert s.meta["format"] == "fits-1d" and "errors_estimated" not in s.meta
    np.testing.assert_allclose(s.ivar, expect, rtol=1e-6)
    assert s.meta["error_source"].startswith(f"HDU 1 {name}")


def test_fits_1d_flux_in_an_extension_with_eso_hduclas_and_quality(tmp_path):
    err = fits.ImageHDU(np.full(N, 0.25, np.float32), name="ERRS")  # a name nobody uses: found by ERRDATA
    err.header["HDUCLAS2"], err.header["HDUCLAS3"] = "ERROR", "MSE"  # ... and its values are variances
    qual = np.zeros(N, np.int16)
    qual[[3, 50]] = 1
    flux = fits.ImageHDU(_flux(), name="SCIDATA")
    for k, v in {**WCS, "ERRDATA": "ERRS"}.items():
        flux.header[k] = v
    p = tmp_path / "eso_image.fits"
    fits.HDUList([fits.PrimaryHDU(), flux, err, fits.ImageHDU(qual, name="QUAL")]).writeto(p)
    s = read(p)[0]
    np.testing.assert_allclose(s.ivar[~s.mask], 4.0)
    assert s.mask[3] and s.mask[50] and s.mask.sum() == 2 and s.meta["hdu"] == 1


def test_boss_like_split_files(tmp_path):
    flux = _flux()
    ivar = np.full(N, 4.0, np.float32)
    ivar[7] = 0
    hb = fits.Header()
    hb["COEFF0"], hb["COEFF1"] = 3.6, 1e-4
    p = tmp_path / "spPlate-like.fits"
    fits.HDUList([fits.PrimaryHDU(flux, header=hb), fits.ImageHDU(ivar, name="IVAR"),
                  fits.ImageHDU(np.full(N, 16, np.int32), name="ANDMASK"),
                  fits.ImageHDU(np.full(N, 1.5, np.float32), name="WAVEDISP"),
                  fits.ImageHDU(np.full(N, 3.0, np.float32), name="SKY")]).writeto(p)
    s = read(p)[0]
    assert s.meta["format"] == "fits-1d" and s.meta["error_source"] == "HDU 1 IVAR (ivar)"
    np.testing.assert_allclose(s.wavelength, 10 ** (3.6 + 1e-4 * np.arange(N)))
    assert s.ivar[0] == 4.0 and s.mask[7] and s.mask.sum() == 1  # ANDMASK bits are information, not applied
    assert np.all(s.meta["and_mask"] == 16) and np.all(s.meta["sky"] == 3.0)
    assert s.vacuum is True and s.resolution_kms[0] == pytest.approx(1.5 * 69.0292, rel=1e-4)
    # flux, ivar and wavelength each in its own HDU (as one DESI arm), wavelength as log10 or in nm
    wave = 10 ** (3.6 + 1e-4 * np.arange(N))
    for name, values, unit in (("LOGLAM", np.log10(wave), None), ("WAVELENGTH", wave / 10, "nm")):
        w = fits.ImageHDU(values, name=name)
        if unit:
            w.header["BUNIT"] = unit
        p = tmp_path / f"split_{name}.fits"
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flux, name="FLUX"), fits.ImageHDU(ivar, name="IVAR"),
                      w]).writeto(p)
        s = read(p)[0]
        np.testing.assert_allclose(s.wavelength, wave, rtol=1e-6)
        assert s.ivar[0] == 4.0 and s.meta["wave_hdu"] == 3 and s.meta["hdu"] == 1
    # the same split file without its IVAR: errors estimated
    p = tmp_path / "split_noerr.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flux, name="FLUX"), fits.ImageHDU(np.log10(wave), name="LOGLAM")]
                 ).writeto(p)
    s = read(p)[0]
    assert s.meta["errors_estimated"] == ESTIMATED and np.median(s.error) == pytest.approx(0.5, rel=0.1)


def test_iraf_multispec_bands_name_the_sigma_row(tmp_path):
    """IRAF apall's BANDID1 says 'weights variance' about the flux row: the errors are the sigma row."""
    data = np.stack([_flux(), _flux(2), np.full(N, 1.0), np.full(N, 0.5)])[:, None, :]
    cards = {"BANDID1": "spectrum - background fit, weights variance, clean no",
             "BANDID2": "raw - background fit, weights none, clean no", "BANDID3": "background - background fit",
             "BANDID4": "sigma - background fit, weights variance, clean no"}
    p = tmp_path / "apall.fits"
    _primary(data, **cards).writeto(p)
    s = read(p)[0]
    np.testing.assert_allclose(s.ivar, 4.0)
    np.testing.assert_array_equal(s.flux, _flux())
    assert s.meta["error_source"] == "row 3 (sigma)"
    p2 = tmp_path / "ivar_row.fits"
    _primary(np.stack([_flux(), np.full(N, 9.0)]), ARRAY2="inverse variance").writeto(p2)
    np.testing.assert_allclose(read(p2)[0].ivar, 9.0)


def test_unusable_error_extension_counts_as_none(tmp_path):
    p = tmp_path / "zero_err.fits"
    fits.HDUList([_primary(_flux()), fits.ImageHDU(np.zeros(N, np.float32), name="ERR")]).writeto(p)
    s = read(p)[0]
    assert s.meta["errors_unusable"] == "HDU 1 ERR (sigma): no finite positive value"
    assert s.meta["errors_estimated"] == ESTIMATED and np.median(s.error) == pytest.approx(0.5, rel=0.1)


def _eso(path, cols):
    tab = fits.BinTableHDU.from_columns([fits.Column(k, f"{N}D", array=np.asarray(v, float)[None])
                                         for k, v in cols.items()], name="SPECTRUM")
    fits.HDUList([fits.PrimaryHDU(), tab]).writeto(path)
    return path


def test_eso_error_columns(tmp_path):
    wave = np.linspace(5000, 5400, N)
    # FLUX goes with ERR (not with ERR_REDUCED) whatever the column order
    s = read(_eso(tmp_path / "a.fits", {"WAVE": wave, "FLUX": _flux(), "ERR_REDUCED": np.full(N, 1.0),
                                        "ERR": np.full(N, 0.5), "FLUX_REDUCED": _flux(3)}))[0]
    np.testing.assert_allclose(s.ivar, 4.0)
    assert s.meta["error_source"] == "column ERR"
    s = read(_eso(tmp_path / "b.fits", {"WAVE": wave, "FLUX_REDUCED": _flux(), "ERR": np.full(N, 1.0),
                                        "ERR_REDUCED": np.full(N, 0.5)}))[0]
    assert s.meta["error_source"] == "column ERR_REDUCED" and np.allclose(s.ivar, 4.0)
    s = read(_eso(tmp_path / "c.fits", {"WAVE": wave, "FLUX": _flux(), "IVAR": np.full(N, 9.0)}))[0]
    assert np.allclose(s.ivar, 9.0)
    for name, cols in (("d.fits", {"WAVE": wave, "FLUX": _flux()}),
                       ("e.fits", {"WAVE": wave, "FLUX": _flux(), "ERR": np.full(N, np.nan)})):
        s = read(_eso(tmp_path / name, cols))[0]
        assert s.meta["errors_estimated"] == ESTIMATED and np.median(s.error) == pytest.approx(0.5, rel=0.1)
    assert s.meta["errors_unusable"] == "column ERR: no finite positive value"


def test_text_error_columns_and_estimate(tmp_path):
    wave = 4000 + np.arange(N, dtype=float)
    flux = _flux()
    p = tmp_path / "ivar.txt"
    p.write_text("# wavelength flux ivar\n" + "\n".join(f"{w} {f} 4.0" for w, f in zip(wave, flux)))
    s = read(p)[0]
    assert np.allclose(s.ivar, 4.0) and s.meta["error_source"] == "column ivar (ivar)"
    p = tmp_path / "fluxerr.csv"
    p.write_text("wave,flux,flux_error\n" + "\n".join(f"{w},{f},0.5" for w, f in zip(wave, flux)))
    assert np.allclose(read(p)[0].ivar, 4.0)
    p = tmp_path / "noerr.txt"
    p.write_text("\n".join(f"{w} {f}" for w, f in zip(wave, flux)))
    s = read(p)[0]
    assert s.meta["errors_estimated"] == ESTIMATED and "no_errors" not in s.meta
    assert np.median(s.error) == pytest.approx(0.5, rel=0.1) and s.good.all()
