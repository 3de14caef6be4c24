"""Spectrum preparation (rest frame, log-lambda grid, masks, normalisation) and the 1-D CNN on synthetic spectra;
one real SDSS spectrum when ../shared/data is present."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from galdesk.io.model import SpectrumData  # noqa: E402
from galdesk.ml.spectra import (  # noqa
    SPECTRUM_CLASSES,
    SpectrumTrainConfig,
    air_to_vacuum,
    classify_spectra,
    cross_validate_spectra,
    default_grid,
    prepare_spectra,
    sdss_label,
    train_spectrum_classifier,
)
from galdesk.ml.weights import load_model  # noqa: E402
from galdesk.tasks import Cancelled, RecordingContext  # noqa: E402

HA_VAC = 6564.61
HA_AIR = 6562.80


def _spectrum(line_rest=HA_VAC, z=0.05, amp=5.0, vacuum=True, rng=None, noise=0.0, level=3.0, wave=None):
    wave = np.exp(np.linspace(np.log(3800), np.log(9200), 3800)) if wave is None else wave
    centre = line_rest * (1 + z)
    flux = level + amp * np.exp(-0.5 * ((wave - centre) / (2.5 * (1 + z))) ** 2)
    if rng is not None:
        flux = flux + rng.normal(0, noise, wave.size)
    ivar = np.ones_like(wave)
    return SpectrumData(wave, flux, ivar, np.zeros(wave.size, bool), "synthetic", "s", vacuum=vacuum, redshift=z)


def test_rest_frame_grid_and_normalisation():
    grid = default_grid(3600, 7000, 1024)
    assert np.allclose(np.diff(np.log(grid)), np.log(7000 / 3600) / 1023)
    flux, cov = prepare_spectra([_spectrum(z=0.05), _spectrum(z=0.2)], grid, return_coverage=True)
    for row in flux:
        assert abs(grid[np.argmax(row)] - HA_VAC) < 3  # the line lands on its rest wavelength whatever z
    assert np.median(flux[0][cov[0] > 0]) == pytest.approx(1.0, abs=1e-6)
    # z = 0.2: the spectrum starts at 3800/1.2 = 3167 A rest, ends at 9200/1.2 = 7667 A: covers the whole grid
    assert cov[1].all()
    # z = 0.05 starts at 3619 A rest: the first grid pixels are not covered, set to the continuum level
    assert cov[0][0] == 0 and flux[0][0] == 1.0


def test_air_wavelengths_are_converted():
    assert air_to_vacuum(np.array([HA_AIR]))[0] == pytest.approx(HA_VAC, abs=0.05)
    grid = default_grid(6400, 6700, 3000)  # ~0.1 A pixels
    fine = np.linspace(6000, 7500, 30000)  # 0.05 A input pixels, so that only the conversion matters
    f = prepare_spectra([_spectrum(line_rest=HA_AIR, vacuum=False, wave=fine)], grid)[0]
    assert abs(grid[np.argmax(f)] - HA_VAC) < 0.3


def test_masked_pixels_are_interpolated():
    s = _spectrum(amp=0.0)
    s.flux[1000:1010] = 1e6  # a cosmic ray, flagged
    s.mask[1000:1010] = True
    s.flux[2000] = np.nan
    s.ivar[2000] = 0
    f = prepare_spectra([s])[0]
    assert np.all(np.isfinite(f)) and np.allclose(f, 1.0, atol=1e-6)


def test_sdss_label_mapping():
    assert sdss_label("GALAXY", "STARFORMING") == "star-forming"
    assert sdss_label("GALAXY", "STARBURST") == "star-forming"
    assert sdss_label("GALAXY", "AGN") == "narrow-line AGN"
    assert sdss_label("QSO", "BROADLINE") == "broad-line AGN"
    assert sdss_label("QSO", "STARBURST BROADLINE") == "broad-line AGN"
    assert sdss_label("GALAXY", "AGN BROADLINE") == "broad-line AGN"
    assert sdss_label("GALAXY", "") == "passive"
    assert sdss_label("STAR", "K3") is None
    assert set(SPECTRUM_CLASSES) == {"star-forming", "narrow-line AGN", "broad-line AGN", "passive"}


def _synthetic_set(n, seed):
    """Two classes: Halpha + [NII] emission vs none, random redshift and noise."""
    rng = np.random.default_rng(seed)
    specs, labels = [], []
    for i in range(n):
        line = i % 2 == 0
        specs.append(_spectrum(z=rng.uniform(0.01, 0.2), amp=rng.uniform(1.5, 4.0) if line else 0.0, rng=rng,
                               noise=0.3))
        labels.append("emission" if line else "none")
    return specs, labels


CFG = SpectrumTrainConfig(width=4, depth=3, epochs=20, batch_size=16, patience=20, lr=5e-3, seed=0, num_threads=2)


def test_train_save_load_classify(tmp_path):
    specs, labels = _synthetic_set(60, 0)
    rows = []
    res = train_spectrum_classifier(specs, labels, ["none", "emission"], CFG, out_path=tmp_path / "spec.safetensors",
                                    on_epoch=rows.append, grid=default_grid(n_pix=512))
    assert len(rows) == len(res.history) >= 1
    test_specs, test_labels = _synthetic_set(40, 1)
    p = classify_spectra(test_specs, res.loaded)
    acc = np.mean(p.predicted_names == np.array(test_labels))
    assert acc >= 0.9
    lm = load_model(tmp_path / "spec.safetensors")
    assert lm.card["task"] == "spectrum" and lm.card["preprocessing"]["grid"]["n_pix"] == 512
    p2 = classify_spectra(test_specs, lm)
    assert np.allclose(p.probabilities, p2.probabilities, atol=1e-5)
    assert p2.model_hash == lm.hash and len(p2.model_hash) == 64


def test_classify_spectra_cancel(tmp_path):
    specs, labels = _synthetic_set(30, 2)
    res = train_spectrum_classifier(specs, labels, ["none", "emission"], SpectrumTrainConfig(
        width=4, depth=2, epochs=1, seed=0), grid=default_grid(n_pix=256))
    ctx = RecordingContext(cancel_after=2)
    with pytest.raises(Cancelled):
        classify_spectra(specs, res.loaded, ctx=ctx, batch_size=5)
    assert len(ctx.reports) == 2


def test_cross_validation_reports_baselines():
    specs, labels = _synthetic_set(30, 3)
    cfg = SpectrumTrainConfig(width=4, depth=2, epochs=4, seed=0, num_threads=2)
    r = cross_validate_spectra(specs, labels, ["none", "emission"], cfg, n_splits=3, grid=default_grid(n_pix=256))
    assert set(r["methods"]) == {"cnn", "logistic", "majority"}
    assert r["n"] == 30 and r["n_splits"] == 3
    assert r["methods"]["majority"]["accuracy"] <= 0.6
    assert np.array(r["methods"]["cnn"]["confusion_matrix"]).sum() == 30


def test_real_sdss_spectrum_on_the_grid(shared_data):
    path = shared_data / "spectra" / "sdss" / "spec-0266-51602-0107.fits"  # SDSS GALAXY STARFORMING
    if not path.exists():
        pytest.skip("SDSS spectrum missing")
    try:
        from galdesk.io.reading import read
    except ImportError:
        pytest.skip("reader registry not available")
    spec = read(path)[0]
    grid = default_grid()
    flux, cov = prepare_spectra([spec], grid, return_coverage=True)
    window = (grid > 6500) & (grid < 6620)
    peak = grid[window][np.argmax(flux[0][window])]
    assert abs(peak - HA_VAC) < 4  # Halpha at its rest (vacuum) wavelength
    assert flux[0][window].max() > 2  # a star-forming galaxy: strong Halpha over the continuum
    assert cov[0].mean() > 0.9
