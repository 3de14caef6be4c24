"""Line-fit journal records: one writer for every ``line_fit`` record, and saved fits drawn from their stored
parameters without refitting."""

import math

import numpy as np
import pytest

QSO = "spectra/sdss/spec-0332-52367-0639.fits"   # broad-line quasar: fitted on the AGN pseudo-continuum


@pytest.fixture
def qso_project(tmp_path, shared_data):
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([shared_data / QSO], tmp_path / "p", workers=1)
    return Project.open(tmp_path / "p.galdesk")


def test_saved_fit_is_drawn_from_stored_parameters_without_refitting(qso_project, monkeypatch):
    from galdesk.lines import engine, spectrum
    from galdesk.lines.config import FitConfig
    from galdesk.lines.service import fit_project, model_curves

    proj = qso_project
    fit_project(proj, FitConfig(complexes=("halpha", "hbeta")), n_jobs=1)
    payload = proj.journal.latest("line_fit")["spec-0332-52367-0639"].payload   # after the journal's JSON
    row = int(proj.spectrum_rows()[0])
    assert list(payload["model"]) == list(payload["fit"]) == ["halpha", "hbeta"]
    assert all(m["stellar"] is not None for m in payload["model"].values())   # the continuum model is stored too
    old = {k: v for k, v in payload.items() if k != "model"}   # a record written before parameters were stored
    refit = model_curves(proj.spectrum(row), old)

    def no_fit(*args, **kwargs):
        raise AssertionError("a saved fit was refitted")

    monkeypatch.setattr(spectrum, "fit_spectrum", no_fit)
    monkeypatch.setattr(engine, "fit_complex", no_fit)
    monkeypatch.setattr(engine, "run_lmfit", no_fit)
    stored = model_curves(proj.spectrum(row), payload)
    assert len(stored) == len(refit) == 2
    for (xs, ys), (xr, yr) in zip(stored, refit):
        assert xs.shape == (600,) and np.all(np.isfinite(ys))
        np.testing.assert_array_equal(xs, xr)
        np.testing.assert_allclose(ys, yr, rtol=1e-12, atol=0)
    with pytest.raises(AssertionError, match="refitted"):   # the patch bites: old records still refit
        model_curves(proj.spectrum(row), old)


def test_save_fits_journals_successful_fits_with_their_author(qso_project):
    from galdesk.lines.results import SpectrumFit
    from galdesk.lines.service import save_fits

    proj = qso_project
    spec = proj.spectrum(int(proj.spectrum_rows()[0]))
    ok = SpectrumFit(source="elsewhere", id="other", z=spec.redshift)
    bad = SpectrumFit(source="elsewhere", id="other", z=None, error="ValueError: no redshift")
    out = save_fits(proj, [(spec, bad), (spec, ok)], author="vera")
    assert [d["id"] for d in out] == [spec.id, spec.id] and out[0]["error"] and out[1]["error"] is None
    assert out[1]["source"] == spec.source and out[1]["model"] == {}
    recs = proj.journal.records("line_fit")
    assert len(recs) == 1 and recs[0].key == spec.id and recs[0].author == "vera"
    assert recs[0].payload == out[1]


def test_feii_ratio_and_complex_densities():
    from types import SimpleNamespace

    from galdesk.lines.linelist import electron_density
    from galdesk.lines.summary import complex_densities, feii_ratio

    hb = SimpleNamespace(flux=200.0, flux_err=20.0)
    r, e = feii_ratio(100.0, 10.0, hb)
    assert r == 0.5 and e == pytest.approx(0.5 * math.hypot(0.1, 0.1))
    assert feii_ratio(100.0, None, hb) == (0.5, None)
    assert feii_ratio(100.0, 10.0, None) == (None, None)
    assert feii_ratio(None, 10.0, hb) == (None, None)
    assert feii_ratio(100.0, 10.0, SimpleNamespace(flux=float("nan"), flux_err=1.0)) == (None, None)
    p = SimpleNamespace(value=1.1, stderr=0.05)
    cf = SimpleNamespace(params={"sii6717_ratio": p})
    assert complex_densities(cf) == {"sii6717": electron_density("sii6717", 1.1, 0.05)}
    assert complex_densities(SimpleNamespace(params=None)) == {}
