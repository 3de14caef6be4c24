"""Emission-line engine on synthetic spectra: line list, model Jacobian, parameter recovery, errors, cancel, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from galdesk.io.model import SpectrumData
from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.engine import fit_complex
from galdesk.lines.layout import build_layout
from galdesk.lines.model import evaluate, fwhm_of_sum
from galdesk.lines.spectrum import fit_spectrum
from galdesk.lines.window import prepare_data
from galdesk.tasks import Cancelled, RecordingContext
from galdesk.units import C_KMS


def test_air_vacuum_roundtrip_and_sdss_values():
    # SDSS emlines.par air wavelengths -> the vacuum LINEWAVE of the SDSS pipeline (within 0.01 A)
    assert LL.air_to_vac(6562.80) == pytest.approx(LL.LINES["halpha"], abs=0.01)
    assert LL.air_to_vac(5006.843) == pytest.approx(LL.LINES["oiii5007"], abs=0.01)
    assert LL.air_to_vac(6583.45) == pytest.approx(LL.LINES["nii6584"], abs=0.01)
    w = np.linspace(3000, 10000, 50)
    assert np.allclose(LL.vac_to_air(LL.air_to_vac(w)), w, atol=1e-8)
    assert LL.vac_to_air(1215.67) == 1215.67  # UV stays vacuum
    for cx in LL.COMPLEXES.values():
        assert all(n in LL.LINES for n in cx.lines + cx.broad + cx.outflow + cx.absorption)


def synthetic(z=0.05, seed=1, broad=True, snr_cont=30.0, inst=60.0, absorb=0.0, n=3000, air=False):
    """Hα+[NII] (+ broad Hα) + Hβ+[OIII] on a sloped continuum, SDSS-like log-lambda pixels."""
    rng = np.random.default_rng(seed)
    loglam = np.log10(3800) + 1e-4 * np.arange(n)
    wave = 10 ** loglam
    cont = 10.0 + 0.001 * (wave - 5000)
    truth = {"v": 40.0, "sigma": 120.0, "halpha": 300.0, "nii6584": 200.0, "hbeta": 90.0, "oiii5007": 400.0,
             "broad_flux": 1500.0, "broad_sigma": 2000.0, "broad_v": -300.0}
    flux = cont.copy()

    def g(rest, f, v, s):
        c = rest * (1 + z) * (1 + v / C_KMS)
        sl = c * np.hypot(s, inst) / C_KMS
        return f / (np.sqrt(2 * np.pi) * sl) * np.exp(-0.5 * ((wave - c) / sl) ** 2)

    for line in ("halpha", "nii6584", "hbeta", "oiii5007"):
        flux += g(LL.LINES[line], truth[line], truth["v"], truth["sigma"])
    flux += g(LL.LINES["nii6548"], truth["nii6584"] / 2.96, truth["v"], truth["sigma"])
    flux += g(LL.LINES["oiii4959"], truth["oiii5007"] / 2.98, truth["v"], truth["sigma"])
    if broad:
        flux += g(LL.LINES["halpha"], truth["broad_flux"], truth["broad_v"], truth["broad_sigma"])
    if absorb:
        for line in ("halpha", "hbeta"):
            flux -= g(LL.LINES[line], absorb, truth["v"], 900.0)
    err = np.full(n, 10.0 / snr_cont)
    noisy = flux + rng.normal(0, 1, n) * err
    mask = np.zeros(n, bool)
    if air:
        wave = LL.vac_to_air(wave)
    spec = SpectrumData(wavelength=wave, flux=noisy, ivar=1 / err ** 2, mask=mask, source="synthetic",
                        id=f"syn{seed}", vacuum=not air, flux_unit="1e-17 erg / (s cm2 Angstrom)", redshift=z,
                        resolution_kms=np.full(n, inst))
    return spec, truth


def test_analytic_jacobian_matches_finite_differences():
    spec, _ = synthetic()
    cfg = FitConfig(continuum="local", absorption=True)
    data = prepare_data(spec, "hbeta", cfg, broad=True)
    layout, inst = build_layout(data, "hbeta", cfg, n_broad=2, outflow=True, absorption=True)
    theta = layout.init.copy()
    theta[layout.index("hbeta_abs_flux")] = 30.0
    _assert_jacobian(layout, theta, data, inst, min_step=1e-3)


def _assert_jacobian(layout, theta, data, inst, min_step):
    """The analytic Jacobian of :func:`evaluate` equals central finite differences, parameter by parameter."""
    w = data["wave"][None, :]
    z = np.array([data["z"]])
    _, J = evaluate(layout, theta[None], w, z, inst[None], jac=True)
    for p in range(layout.n_params):
        h = max(1e-6 * abs(theta[p]), min_step)
        tp, tm = theta.copy(), theta.copy()
        tp[p] += h
        tm[p] -= h
        num = (evaluate(layout, tp[None], w, z, inst[None]) - evaluate(layout, tm[None], w, z, inst[None]))[0] / (
            2 * h)
        scale = np.abs(num).max() + 1e-30
        assert np.max(np.abs(J[0, :, p] - num)) < 1e-4 * scale, layout.names[p]


def test_fwhm_of_sum():
    assert fwhm_of_sum([1.0], [0.0], [100.0]) == pytest.approx(235.482, rel=1e-4)
    # two identical Gaussians at the same place: same FWHM as one
    assert fwhm_of_sum([1, 1], [0, 0], [100, 100]) == pytest.approx(235.48, rel=1e-3)


@pytest.mark.parametrize("air", [False, True])
def test_recovers_truth_with_broad_component_and_calibrated_errors(air):
    pulls = []
    for seed in range(3):
        spec, t = synthetic(seed=seed, air=air)
        cf = fit_complex(spec, "halpha", FitConfig(continuum="local", n_broad=1, absorption=False))
        assert cf.has_broad and cf.tests[0].needed and cf.tests[0].verdict == "broad component needed"
        assert cf.tests[0].delta_bic > 100 and cf.tests[0].p_value < 1e-6
        ha = cf.measurement("halpha")
        b = cf.measurement("halpha", "broad")
        n2 = cf.measurement("nii6584")
        for got, want in ((ha.flux, t["halpha"]), (n2.flux, t["nii6584"]), (b.flux, t["broad_flux"])):
            pass
        pulls += [(ha.flux - t["halpha"]) / ha.flux_err, (n2.flux - t["nii6584"]) / n2.flux_err,
                  (b.flux - t["broad_flux"]) / b.flux_err,
                  (ha.fwhm_kms - 2.35482 * t["sigma"]) / ha.fwhm_err]  # instrument (60 km/s) removed
        # tied doublet ratio
        assert cf.measurement("nii6548").flux == pytest.approx(n2.flux / 2.96, rel=1e-9)
        assert b.fwhm_kms == pytest.approx(2.35482 * t["broad_sigma"], rel=0.1)
        assert ha.ew > 0 and ha.snr > 10
    assert np.max(np.abs(pulls)) < 4.0


def test_no_broad_component_in_narrow_spectrum_and_masked_pixels_ignored():
    spec, t = synthetic(broad=False, seed=7)
    c = LL.LINES["halpha"] * 1.05
    bad = np.abs(spec.wavelength - (c - 30)) < 3  # garbage in masked pixels must not matter
    spec.flux[bad] = 1e6
    spec.mask[bad] = True
    cf = fit_complex(spec, "halpha", FitConfig(continuum="local", absorption=False))
    assert not cf.has_broad
    assert cf.tests[0].verdict == "no broad component needed"
    assert cf.measurement("halpha").flux == pytest.approx(t["halpha"], rel=0.08)
    assert not np.any(np.isin(cf.wave, spec.wavelength[bad]))


def test_absorption_trough_unbiases_balmer_emission():
    spec, t = synthetic(broad=False, seed=3, absorb=120.0)
    plain = fit_complex(spec, "hbeta", FitConfig(continuum="local", absorption=False, broad="no", outflow="no"))
    trough = fit_complex(spec, "hbeta", FitConfig(continuum="local", absorption=True, broad="no", outflow="no"))
    hb_plain, hb_tr = plain.measurement("hbeta").flux, trough.measurement("hbeta").flux
    assert abs(hb_tr - t["hbeta"]) < abs(hb_plain - t["hbeta"])
    assert hb_tr == pytest.approx(t["hbeta"], rel=0.12)
    assert trough.measurement("hbeta", "absorption").flux > 50
    # the alternative: subtract a stellar continuum model; the trough is then dropped
    spec2, _ = synthetic(broad=False, seed=3, absorb=120.0)
    z = spec2.redshift
    stellar = np.zeros_like(spec2.flux)
    for line in ("halpha", "hbeta"):
        c = LL.LINES[line] * (1 + z) * (1 + t["v"] / C_KMS)
        sl = c * np.hypot(900.0, 60.0) / C_KMS
        stellar -= 120.0 / (np.sqrt(2 * np.pi) * sl) * np.exp(-0.5 * ((spec2.wavelength - c) / sl) ** 2)
    spec2.meta["stellar_continuum"] = stellar
    sub = fit_complex(spec2, "hbeta", FitConfig(broad="no", outflow="no"))
    assert "abs_sigma" not in sub.layout.names
    assert sub.measurement("hbeta").flux == pytest.approx(t["hbeta"], rel=0.08)


def test_warm_refit_model_curves_and_cancel():
    spec, _ = synthetic(seed=11)
    cf = fit_complex(spec, "halpha", FitConfig(continuum="local", broad="yes", n_broad=1, absorption=False))
    again = fit_complex(spec, "halpha", FitConfig(continuum="local", broad="yes"), params_override=cf.params)
    assert again.layout.names == cf.layout.names
    assert np.allclose(again.theta, cf.theta, rtol=1e-4, atol=1e-3)
    curves = cf.model_curves(spec.wavelength)
    assert {"total", "continuum", "halpha_narrow", "halpha_broad", "nii6584_narrow"} <= set(curves)
    parts = curves["continuum"] + sum(v for k, v in curves.items() if k not in ("total", "continuum", "stellar"))
    assert np.allclose(parts, curves["total"])
    ctx = RecordingContext()
    ctx.cancel()
    with pytest.raises(Cancelled):
        fit_complex(spec, "halpha", FitConfig(continuum="local"), ctx=ctx)


def test_a_dragged_peak_gives_new_starting_values():
    """The Lines tab's drag: the peak moved to 1 + 100/c of its wavelength and to twice its height starts the refit
    100 km/s redder with twice the flux; a fixed parameter stays; values stay within their bounds."""
    from galdesk.lines.interactive import drag_start_values

    spec, _ = synthetic(seed=11)
    cf = fit_complex(spec, "halpha", FitConfig(continuum="local", broad="no", absorption=False))
    lay = cf.layout
    g = next(i for i in range(lay.n_gauss) if lay.g_line[i] == "halpha")
    v, f = lay.names[lay.vidx[g]], lay.names[lay.fidx[g]]
    p = drag_start_values(cf.params.copy(), lay, g, 1 + 100.0 / C_KMS, 2.0)
    assert p[v].value == pytest.approx(cf.params[v].value + 100.0, abs=1e-6)
    assert p[f].value == pytest.approx(2 * cf.params[f].value)
    fixed = cf.params.copy()
    fixed[v].vary = False
    assert drag_start_values(fixed, lay, g, 1.5, None)[v].value == cf.params[v].value
    far = drag_start_values(cf.params.copy(), lay, g, 2.0, -5.0)
    assert far[v].value == cf.params[v].max and far[f].value == pytest.approx(0.01 * cf.params[f].value)


def test_monte_carlo_errors_agree_with_covariance():
    spec, _ = synthetic(seed=5, broad=False)
    cov = fit_complex(spec, "halpha", FitConfig(continuum="local", broad="no", absorption=False))
    mc = fit_complex(spec, "halpha", FitConfig(continuum="local", broad="no", absorption=False, mc_samples=200))
    assert mc.mc_samples == 200
    for line in ("halpha", "nii6584"):
        a, b = cov.measurement(line), mc.measurement(line)
        assert a.flux == pytest.approx(b.flux)
        assert b.flux_err == pytest.approx(a.flux_err, rel=0.25)


def test_fit_spectrum_json_record():
    spec, _ = synthetic(seed=2, z=0.01)
    sf = fit_spectrum(spec, FitConfig(continuum="local", complexes=("halpha", "hbeta", "sii", "oii")))
    d = json.loads(json.dumps(sf.to_dict()))
    assert d["source"] == "synthetic" and d["z"] == pytest.approx(0.01)
    assert d["broad_needed"] is True and d["delta_bic"] > 10
    keys = {"name", "wave_vac", "component", "flux", "flux_err", "fwhm_kms", "fwhm_err", "ew", "snr"}
    assert d["lines"] and all(keys <= set(rec) for rec in d["lines"])
    assert {rec["component"] for rec in d["lines"]} <= {"narrow", "broad", "outflow"}
    assert "oii" in d["skipped"]  # [OII] 3727 at z=0.01 is bluer than the 3800 A start
    assert d["bpt_class"] in ("star-forming", "composite", "Seyfert", "LINER", "ambiguous")


def test_import_is_light():
    code = ("import sys, galdesk.lines, galdesk.lines.engine, galdesk.lines.bpt, galdesk.lines.batch, "
            "galdesk.lines.vectorized, galdesk.lines.linelist; "
            "print(any(m in sys.modules for m in ('torch', 'PySide6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _sii_spectrum(ratio, f6731=120.0, snr_cont=30.0, seed=0, z=0.05, sigma=90.0, inst=60.0):
    rng = np.random.default_rng(seed)
    wave = 10 ** (np.log10(6500) + 1e-4 * np.arange(1400))
    flux = np.full(wave.size, 10.0)
    for line, f in (("sii6717", ratio * f6731), ("sii6731", f6731)):
        c = LL.LINES[line] * (1 + z)
        sl = c * np.hypot(sigma, inst) / C_KMS
        flux += f / (np.sqrt(2 * np.pi) * sl) * np.exp(-0.5 * ((wave - c) / sl) ** 2)
    err = np.full(wave.size, 10.0 / snr_cont)
    return SpectrumData(wavelength=wave, flux=flux + rng.normal(0, 1, wave.size) * err, ivar=1 / err ** 2,
                        mask=np.zeros(wave.size, bool), source="synthetic", id=f"sii{seed}", redshift=z,
                        resolution_kms=np.full(wave.size, inst))


def test_density_doublet_ratio_is_bounded_and_recovered():
    """[SII] 6717 = R x [SII] 6731 with R in the atomic-physics range: a true ratio is recovered with a sensible
    error, and noise can no longer drive the ratio beyond the low-density limit."""
    from galdesk.lines.linelist import BOUNDED_RATIOS

    cfg = FitConfig(continuum="local", complexes=("sii",))
    cf = fit_complex(_sii_spectrum(1.0, seed=1), "sii", cfg)
    r = cf.params["sii6717_ratio"]
    assert (r.min, r.max) == BOUNDED_RATIOS["sii6717"][1:]
    assert abs(r.value - 1.0) < max(3 * r.stderr, 0.05)
    m17, m31 = cf.measurement("sii6717"), cf.measurement("sii6731")
    assert m17.flux == pytest.approx(r.value * m31.flux) and m17.flux == pytest.approx(120.0, rel=0.1)
    assert 0 < m17.flux_err < 0.2 * m17.flux
    # a weak doublet whose noise-free ratio sits at the low-density limit: bounded stays physical, free does not
    over = []
    for seed in range(8):
        spec = _sii_spectrum(BOUNDED_RATIOS["sii6717"][2], f6731=25.0, snr_cont=12.0, seed=seed)
        b = fit_complex(spec, "sii", cfg)
        f = fit_complex(spec, "sii", replace(cfg, density_bounds=False))
        rb = b.measurement("sii6717").flux / b.measurement("sii6731").flux
        rf = f.measurement("sii6717").flux / max(f.measurement("sii6731").flux, 1e-9)
        lo_r, hi_r = BOUNDED_RATIOS["sii6717"][1:]
        assert lo_r - 1e-9 <= rb <= hi_r + 1e-9
        over.append(rf > hi_r)
    assert any(over)  # unbounded fits do wander out of the physical range


def test_analytic_jacobian_with_a_ratio_parameter():
    spec = _sii_spectrum(0.9)
    cfg = FitConfig(continuum="local")
    data = prepare_data(spec, "sii", cfg)
    layout, inst = build_layout(data, "sii", cfg)
    assert "sii6717_ratio" in layout.names and (layout.ridx >= 0).sum() == 1
    _assert_jacobian(layout, layout.init.copy(), data, inst, min_step=1e-4)


def test_electron_density_from_the_doublet_ratio():
    from galdesk.lines.linelist import BOUNDED_RATIOS, DENSITY_CALIBRATION, electron_density

    for line, (_, a, b, c) in DENSITY_CALIBRATION.items():
        for ne in (10.0, 100.0, 1000.0, 1e4):
            r = a * (b + ne) / (c + ne)  # Sanders et al. (2016) eq. 7, forwards
            d = electron_density(line, r, 0.02)
            assert d["n_e"] == pytest.approx(ne, rel=1e-9) and d["limit"] is None
            assert d["n_e_lo"] < ne < d["n_e_hi"]
        lo, hi = BOUNDED_RATIOS[line][1:]
        assert (lo, hi) == (a, pytest.approx(a * b / c))
        top = electron_density(line, hi, 0.05)
        assert top["limit"] == "low-density" and top["n_e"] is None and top["n_e_lo"] == 0.0 and top["n_e_hi"] > 0
        assert electron_density(line, lo, 0.05)["limit"] == "high-density"


def test_spectrum_fit_reports_the_sii_density():
    spec = _sii_spectrum(1.0, seed=3)
    sf = fit_spectrum(spec, FitConfig(continuum="local", complexes=("sii",)))
    d = sf.density["sii"]
    assert abs(d["ratio"] - 1.0) < 3 * d["ratio_err"]   # a ratio of 1.0 is n_e = 496 cm^-3 at 10^4 K
    assert d["n_e_lo"] < d["n_e"] < d["n_e_hi"] and 150 < d["n_e"] < 1500
    assert sf.to_dict()["density"]["sii"]["n_e"] == pytest.approx(d["n_e"])
    from galdesk.catalog.lines_table import results_table

    t = results_table([sf.to_dict()])
    assert str(t["n_e_sii"].unit) == "1 / cm3" and t["n_e_sii"][0] == pytest.approx(d["n_e"])
    assert "n_e_oii" not in t.colnames  # no [OII] fitted: no [OII] density columns (as in the export)
