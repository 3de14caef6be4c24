"""AGN pseudo-continuum (galdesk.lines.agn: host + power law + Fe II) and its use under broad lines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lines_helpers import read_sdss
from scipy.integrate import trapezoid
from scipy.ndimage import gaussian_filter1d

from galdesk.io.model import SpectrumData
from galdesk.lines import linelist as LL
from galdesk.lines.agn import FEII_BAND, fit_agn_continuum, load_feii
from galdesk.lines.config import FitConfig
from galdesk.lines.spectrum import fit_spectrum
from galdesk.lines.stellar import load_templates

C = 299792.458
FWHM = 2 * math.sqrt(2 * math.log(2))
# group weights (peak heights) of the synthetic Fe II: uneven, as in real quasars
FE_WEIGHTS = {"a6S": 2.0, "b4F": 1.6, "x4D": 1.2, "y4P": 1.0, "a4G": 1.0, "b4G": 0.8, "y4G": 0.8, "b2H": 0.6,
              "a4H": 0.5, "b4P": 0.5, "a2D2": 0.3}
BROAD = {"hbeta": (900.0, 5000.0), "halpha": (3200.0, 4500.0)}  # flux, FWHM km/s
NARROW = {"hbeta": 60.0, "oiii4959": 120.0, "oiii5007": 360.0, "halpha": 240.0, "nii6548": 40.0,
          "nii6584": 120.0, "sii6717": 30.0, "sii6731": 25.0}


def _gauss(wave, centre, sigma_kms, flux):
    s = centre * sigma_kms / C
    return flux / (math.sqrt(2 * math.pi) * s) * np.exp(-0.5 * ((wave - centre) / s) ** 2)


def synthetic_quasar(seed=0, z=0.12, feii_fwhm=3000.0, snr=30.0, feii_scale=0.9):
    """Host (8 Gyr SSP, sigma* 150 km/s, broadened with scipy) + power law + Fe II lines (each a Gaussian written
    out here, not by the code under test) + broad and narrow lines + noise, on an SDSS-like grid. Returns the
    spectrum and the true parts."""
    tpl = load_templates()
    k_old = int(np.argmin(np.abs(np.log(tpl.ages_gyr) - math.log(8.0)) + 10 * np.abs(tpl.z_zsun - 1)))
    wave = 10 ** np.arange(3.5800, 3.9600, 1e-4)
    rest = wave / (1 + z)
    host_rest = gaussian_filter1d(tpl.flux[k_old], 150.0 / (C * tpl.dln), mode="nearest")
    host = 8.0 * np.interp(np.log(rest), np.log(tpl.lam), host_rest, left=np.nan, right=np.nan)
    power = 12.0 * (rest / 5100.0) ** -1.5
    fe = load_feii()
    feii = np.zeros(wave.size)
    s_fe = feii_fwhm / FWHM
    for g, wgt in FE_WEIGHTS.items():
        sel = fe.group == g
        for lam, rel in zip(fe.wave_vac[sel], fe.rel_int[sel]):
            c = lam * (1 + z)
            feii += feii_scale * wgt * rel * np.exp(-0.5 * ((wave - c) / (c * s_fe / C)) ** 2)
    flux = host + power + feii
    for name, (f, fw) in BROAD.items():
        flux += _gauss(wave, LL.LINES[name] * (1 + z), fw / FWHM, f)
    for name, f in NARROW.items():
        flux += _gauss(wave, LL.LINES[name] * (1 + z), math.hypot(150.0, 65.0), f)
    res = np.full(wave.size, 65.0)
    err = np.full(wave.size, float(np.nanmedian(host + power)) / snr)
    rng = np.random.default_rng(seed)
    flux = flux + rng.standard_normal(wave.size) * err
    good = np.isfinite(flux)
    flux[~good] = 0.0
    spec = SpectrumData(wavelength=wave, flux=flux, ivar=np.where(good, 1 / err ** 2, 0.0), mask=~good,
                        source="synthetic", id=f"synthetic-qso-{seed}", vacuum=True, flux_unit="1e-17 erg/s/cm2/A",
                        redshift=z, spec_class="QSO", resolution_kms=res)
    band = (rest >= FEII_BAND[0]) & (rest <= FEII_BAND[1])
    fe_band = float(trapezoid(feii[band], wave[band]))
    at5100 = int(np.argmin(np.abs(rest - 5100)))
    truth = {"feii": feii, "feii_flux": fe_band, "host_fraction": host[at5100] / (host[at5100] + power[at5100]),
             "host": host, "power": power}
    return spec, truth


@pytest.fixture(scope="module")
def quasar():
    return synthetic_quasar(seed=3)


def test_recovers_feii_host_and_power_law_of_a_synthetic_quasar(quasar):
    spec, truth = quasar
    a = fit_agn_continuum(spec)
    assert a.feii_fwhm_kms == pytest.approx(3000.0, rel=0.10)
    assert abs(a.feii_fwhm_kms - 3000.0) < 4 * a.feii_fwhm_err + 150.0
    assert a.feii_flux == pytest.approx(truth["feii_flux"], rel=0.10)
    assert a.host_fraction == pytest.approx(truth["host_fraction"], abs=0.08)
    assert a.powerlaw_slope == pytest.approx(-1.5, abs=0.4)
    ok = np.isfinite(a.model) & np.isfinite(truth["host"])
    true_cont = truth["host"] + truth["power"] + truth["feii"]
    # the whole pseudo-continuum, including under the masked broad Hβ where Fe II 4924/5018 is predicted
    assert np.median(np.abs(a.model[ok] / true_cont[ok] - 1)) < 0.01
    rest = spec.wavelength / (1 + spec.redshift)
    under_hb = ok & (rest > 4800) & (rest < 5050)
    assert np.max(np.abs(a.model[under_hb] - true_cont[under_hb])) < 0.15 * np.median(true_cont[under_hb])
    assert a.messages == [] and a.feii_dchi2 > 1000


def test_no_feii_is_reported_as_not_significant():
    for seed in (1, 2):
        spec, _ = synthetic_quasar(seed=seed, feii_scale=0.0)
        a = fit_agn_continuum(spec)
        assert a.feii_dchi2 < 40 and any("Fe II not significant" in m for m in a.messages), seed


def test_broad_hbeta_on_the_agn_continuum_and_the_bias_of_a_local_one(quasar):
    spec, _ = quasar
    cfg = dict(complexes=("hbeta", "halpha"), outflow="no", n_broad=1)
    agn = fit_spectrum(spec, FitConfig(continuum="agn", **cfg))
    assert agn.to_dict()["continuum"] == "agn" and agn.stellar["kind"] == "agn"
    for name, (f, fw) in BROAD.items():
        b = agn.line(name, "broad")
        assert b.fwhm_kms == pytest.approx(fw, rel=0.06), name
        assert b.flux == pytest.approx(f, rel=0.08), name
    assert agn.stellar["r_feii"] == pytest.approx(agn.stellar["feii_flux"] / agn.line("hbeta", "broad").flux)
    assert agn.line("oiii5007").flux == pytest.approx(NARROW["oiii5007"], rel=0.05)
    # a straight line under Hβ takes the Fe II 4924/5018 blend for broad-line wings: too wide
    spec.meta.clear()
    local = fit_spectrum(spec, FitConfig(continuum="local", **cfg))
    hb = local.line("hbeta", "broad")
    assert hb.fwhm_kms / BROAD["hbeta"][1] - 1 > 0.10


def test_auto_uses_the_agn_continuum_for_quasars_and_falls_back_with_a_reason(shared_data):
    spec = read_sdss(shared_data / "spectra" / "sdss" / "spec-0332-52367-0639.fits")
    sf = fit_spectrum(spec, FitConfig(complexes=("hbeta",)))
    assert sf.to_dict()["continuum"] == "agn" and spec.meta["continuum_kind"] == "agn"
    assert sf.stellar["feii_flux"] > 0 and not sf.stellar["messages"]
    # z = 1.19: the templates' rest range (3540-7400 A) leaves no continuum outside the broad lines
    hz = read_sdss(shared_data / "spectra" / "sdss" / "spec-1931-53358-0251.fits")
    with pytest.raises(ValueError, match="spec-1931-53358-0251.*continuum pixels"):
        fit_agn_continuum(hz)
    sf = fit_spectrum(hz, FitConfig(complexes=("hbeta",)))
    # nothing of Hβ in range either: skipped, not "fitted on a local continuum"; the continuum's reason is kept
    assert sf.status == "skipped" and sf.to_dict()["continuum"] is None and "outside" in sf.skipped["hbeta"]
    assert "continuum pixels" in hz.meta["stellar_error"]
    # asked for explicitly, the complex is skipped with the reason instead
    sf = fit_spectrum(hz, FitConfig(complexes=("hbeta",), continuum="agn"))
    assert not sf.complexes and "AGN continuum" in sf.skipped["hbeta"]


def test_one_quasar_at_three_epochs(shared_data):
    """SDSS-RM's RM017 (z = 0.456) observed with BOSS in 2013, 2014 and 2019: the narrow-line region does not change
    in six years, so the total [OIII] 5007 flux (narrow + wing; SDSS-RM calibrates on it) must repeat; the broad Hβ,
    which reverberates, must be found each time with a similar width (its flux may vary)."""
    o3, fwhm = [], []
    for name in ("spec-6717-56397-0534", "spec-7338-56660-0733", "spec-7340-58627-0732"):
        sf = fit_spectrum(read_sdss(shared_data / "spectra" / "sdss" / f"{name}.fits"),
                          FitConfig(complexes=("hbeta",), continuum="agn"))
        assert sf.to_dict()["continuum"] == "agn", name
        o3.append(sum(m.flux for m in sf.lines if m.name == "oiii5007"))
        assert sf.broad_needed and sf.broad.complex_name == "hbeta" and sf.delta_bic > 50, name
        fwhm.append(sf.line("hbeta", "broad").fwhm_kms)
    assert np.max(np.abs(np.array(o3) / np.median(o3) - 1)) < 0.10, o3
    assert np.max(np.abs(np.array(fwhm) / np.median(fwhm) - 1)) < 0.25, fwhm
    assert 2000 < np.median(fwhm) < 6000


def test_auto_chooses_by_the_spectrum_not_the_survey_class():
    """SDSS sets BROADLINE for any line with sigma > 200 km/s (ordinary gas in ellipticals): the class must not
    decide. A quasar keeps its AGN continuum whatever it is called; a galaxy without a nucleus gets stars even when
    called a broad-line QSO."""
    from galdesk.io.model import SpectrumData
    from galdesk.lines.continuum import continuum_kind
    from galdesk.services.demo import synthetic_spectrum

    for cls, sub in (("QSO", "BROADLINE"), ("GALAXY", "AGN"), (None, None)):
        spec, _ = synthetic_quasar(seed=1)
        spec.spec_class, spec.subclass = cls, sub
        assert continuum_kind(spec, FitConfig()) == "agn", (cls, sub)
        assert "AGN: the nucleus carries" in spec.meta["continuum_choice"]["reason"]
    loglam, flux, ivar, wdisp = synthetic_spectrum("liner", 0.05, np.random.default_rng(3))
    wave = 10 ** loglam
    gal = SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=np.zeros(wave.size, bool), source="t", id="liner",
                       redshift=0.05, spec_class="QSO", subclass="AGN BROADLINE",
                       resolution_kms=wdisp * 1e-4 * np.log(10) * C)
    assert continuum_kind(gal, FitConfig()) == "stellar"
    assert gal.meta["continuum_choice"]["reason"].startswith("stellar")
    assert continuum_kind(gal, FitConfig(continuum="agn")) == "agn"
    assert continuum_kind(gal, FitConfig(continuum="local")) == "local"


def test_gaps_in_the_data_do_not_blow_up_the_feii(quasar):
    """Fe II groups whose lines fall in a gap of bad pixels are left out (they would be scaled up by their tails
    alone); a gap over the 4434-4684 A band says the Fe II flux there is not measured."""
    from dataclasses import replace

    spec, truth = quasar
    rest = spec.wavelength / (1 + spec.redshift)
    gap = (rest > 4350) & (rest < 4770)
    holed = replace(spec, flux=np.where(gap, np.nan, spec.flux), ivar=np.where(gap, 0.0, spec.ivar), meta={})
    a = fit_agn_continuum(holed)
    ok = np.isfinite(a.model) & ~gap & np.isfinite(truth["host"])
    true_cont = truth["host"] + truth["power"] + truth["feii"]
    assert np.median(np.abs(a.model[ok] / true_cont[ok] - 1)) < 0.01
    assert np.nanmax(a.feii) < 3 * np.nanmax(truth["feii"])
    assert any("not measured" in m for m in a.messages)


def test_bad_feii_file_and_missing_redshift(tmp_path, quasar):
    spec, _ = quasar
    bad = tmp_path / "feii.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(ValueError, match="feii.fits"):
        load_feii(bad)
    with pytest.raises(ValueError, match="not found"):
        load_feii(tmp_path / "missing.fits")
    from dataclasses import replace

    with pytest.raises(ValueError, match="redshift"):
        fit_agn_continuum(replace(spec, redshift=None))


def test_negative_flux_is_reported_not_fitted(quasar):
    from dataclasses import replace

    from galdesk.lines.stellar import fit_stellar_continuum

    spec, _ = quasar
    neg = replace(spec, flux=-spec.flux, meta={})
    assert any("all weights zero" in m for m in fit_agn_continuum(neg).messages)
    assert any("all weights zero" in m for m in fit_stellar_continuum(neg).messages)


def test_demo_quasar_has_the_feii_the_agn_continuum_finds():
    """The built-in sample's broad-line spectrum carries a power law (slope -1.5, half the light at 5100 Å) and Fe II
    (R_Fe = 1.0 of the broad Hβ, FWHM 3000 km/s), so the Lines tab shows the AGN continuum at work on it."""
    from galdesk.io.model import SpectrumData
    from galdesk.services.demo import synthetic_spectrum

    rng = np.random.default_rng(7)
    loglam, flux, ivar, wdisp = synthetic_spectrum("seyfert1", 0.08, rng)
    wave = 10 ** loglam
    spec = SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=np.zeros(wave.size, bool), source="demo",
                        id="demo-qso", redshift=0.08, spec_class="QSO", resolution_kms=wdisp * 1e-4 * np.log(10) * C)
    sf = fit_spectrum(spec, FitConfig(complexes=("hbeta", "halpha")))
    st = sf.stellar
    assert st["kind"] == "agn" and st["feii_dchi2"] > 40 and not st["messages"]
    assert 1500 < st["feii_fwhm_kms"] < 6000 and 0.6 < st["r_feii"] < 1.6
    assert st["powerlaw_slope"] == pytest.approx(-1.5, abs=0.5)


def test_feii_flux_error_matches_the_scatter_over_noise_realisations():
    fits = [fit_agn_continuum(synthetic_quasar(seed=s)[0]) for s in range(10, 18)]
    flux = np.array([a.feii_flux for a in fits])
    err = np.median([a.feii_flux_err for a in fits])
    truth = synthetic_quasar(seed=10)[1]["feii_flux"]
    scatter = np.std(flux, ddof=1)
    assert 0.6 < err / scatter < 1.6, (err, scatter)
    assert abs(flux.mean() - truth) < 3 * scatter
