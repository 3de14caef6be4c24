"""Line-fit journal records: saved fits drawn from their stored parameters without refitting."""

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
    from galdesk.lines import engine
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

    monkeypatch.setattr(engine, "fit_spectrum", no_fit)
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
