"""`galdesk fit-lines` and project-wide line fitting (results in the journal, a table with units)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from galdesk.catalog.lines_table import results_table
from galdesk.lines.service import complexes_for, fit_project

QSO = "spectra/sdss/spec-0332-52367-0639.fits"   # broad-line quasar (PyQSOFit reference object)


def test_complexes_for_accepts_lines_and_complexes():
    assert complexes_for("halpha,oiii5007,nii6584") == ("halpha", "hbeta")
    assert complexes_for(None) is None
    with pytest.raises(ValueError, match="unknown line"):
        complexes_for("lyalpha")


def test_cli_json_schema_and_table(tmp_path, shared_data):
    out = subprocess.run([sys.executable, "-m", "galdesk", "fit-lines", str(shared_data / QSO), "--lines",
                          "halpha,hbeta", "--json", "-o", str(tmp_path / "fits.fits"), "--jobs", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc) == 1
    r = doc[0]
    assert set(r) >= {"source", "z", "lines", "broad_needed", "delta_bic", "bpt_class"}
    assert r["broad_needed"] is True and r["delta_bic"] > 10
    keys = {"name", "wave_vac", "component", "flux", "flux_err", "fwhm_kms", "fwhm_err", "ew", "snr"}
    assert all(keys <= set(ln) for ln in r["lines"])
    broad_ha = [ln for ln in r["lines"] if ln["name"] == "halpha" and ln["component"] == "broad"]
    assert len(broad_ha) == 1 and broad_ha[0]["fwhm_kms"] > 2000
    t = Table.read(tmp_path / "fits.fits")
    assert str(t["halpha_broad_fwhm"].unit) == "km / s"
    assert t["halpha_broad_flux"][0] == pytest.approx(broad_ha[0]["flux"], rel=1e-6)


def test_fit_project_appends_journal_records(tmp_path, shared_data):
    from galdesk.lines.config import FitConfig
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([shared_data / QSO, shared_data / "spectra/sdss/spec-0266-51602-0013.fits"], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    res = fit_project(proj, FitConfig(complexes=("halpha", "hbeta")), n_jobs=1)
    assert len(res) == 2
    latest = proj.journal.latest("line_fit")
    assert set(latest) == {"spec-0332-52367-0639", "spec-0266-51602-0013"}
    assert latest["spec-0332-52367-0639"].payload["broad_needed"] is True
    t = results_table(res)
    assert len(t) == 2 and np.all(t["id"] == [r["id"] for r in res])


def test_project_fits_record_the_continuum_and_export_it(tmp_path, shared_data):
    """The passive galaxy is fitted on its stellar populations (σ* as SDSS's VDISP, 230 ± 13 km/s), the quasar on
    host + power law + Fe II; both facts reach the exported catalogue with units."""
    import astropy.units as u

    from galdesk.catalog.assemble import build_catalog
    from galdesk.lines.config import FitConfig
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([shared_data / QSO, shared_data / "spectra/sdss/spec-0266-51602-0013.fits"], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    res = {r["id"]: r for r in fit_project(proj, FitConfig(complexes=("hbeta",), broad="no"), n_jobs=1)}
    gal, qso = res["spec-0266-51602-0013"], res["spec-0332-52367-0639"]
    assert gal["continuum"] == "stellar" and qso["continuum"] == "agn" and qso["stellar"]["kind"] == "agn"
    assert gal["stellar"]["sigma_kms"] == pytest.approx(230.2, abs=35)
    assert qso["stellar"]["feii_flux"] > 0 and qso["stellar"]["r_feii"] is None  # no broad Hβ: broad="no"
    t = build_catalog(proj)
    row = {str(i): k for k, i in enumerate(t["id"])}
    g, q = row["spec-0266-51602-0013"], row["spec-0332-52367-0639"]
    assert t["continuum_model"][g] == "stellar" and t["continuum_model"][q] == "agn"
    assert t["stellar_sigma"].unit == u.km / u.s
    assert t["stellar_sigma"][g] == pytest.approx(gal["stellar"]["sigma_kms"])
    assert t["stellar_sigma"].mask[q]
    assert t["feii_fwhm"].unit == u.km / u.s and t["feii_fwhm"].mask[g]
    assert t["feii_flux"][q] == pytest.approx(qso["stellar"]["feii_flux"]) and t["r_feii"].mask[q]
    rt = results_table(list(res.values()))
    assert rt["continuum_model"].tolist() == [res[i]["continuum"] for i in rt["id"]]
    assert np.isfinite(rt["feii_fwhm"][list(rt["id"]).index("spec-0332-52367-0639")])
    assert 8.5 < t["stellar_log_age"][g] < 10.2  # a passive galaxy: old light
    assert "n_e_sii" not in t.colnames  # only Hβ was fitted: no density columns


def test_export_carries_electron_densities(tmp_path, shared_data):
    import astropy.units as u

    from galdesk.catalog.assemble import build_catalog
    from galdesk.lines.config import FitConfig
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([shared_data / "spectra/sdss/spec-0295-51585-0596.fits"], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    res = fit_project(proj, FitConfig(complexes=("halpha", "sii"), broad="no"), n_jobs=1)[0]
    t = build_catalog(proj)
    assert t["n_e_sii"].unit == u.cm ** -3
    assert t["n_e_sii"][0] == pytest.approx(res["density"]["sii"]["n_e"])
    assert t["n_e_sii_lo"][0] < t["n_e_sii"][0] < t["n_e_sii_hi"][0]


def test_cli_continuum_options(shared_data, capsys):
    from galdesk.cli import main

    sy2 = str(shared_data / "spectra/sdss/spec-0295-51585-0596.fits")
    runs = {}
    for extra in ([], ["--powerlaw"], ["--continuum", "local"]):
        assert main(["fit-lines", sy2, "--lines", "hbeta", "--broad", "no", "--json", "--jobs", "1"] + extra) == 0
        runs[" ".join(extra)] = json.loads(capsys.readouterr().out)[0]
    assert runs[""]["continuum"] == "stellar" and runs[""]["stellar"]["powerlaw_fraction"] == 0.0
    assert runs["--powerlaw"]["stellar"]["powerlaw_fraction"] > 0.02
    assert runs["--continuum local"]["continuum"] == "local" and runs["--continuum local"]["stellar"] is None
    hb = {k: next(ln["flux"] for ln in r["lines"] if ln["name"] == "hbeta") for k, r in runs.items()}
    assert hb["--powerlaw"] < hb[""]  # the power law dilutes the trough: less emission needed to fill it


def test_cli_agn_continuum_and_tied_broad_lines(shared_data, capsys, tmp_path):
    """`--continuum agn`, `--agn-windows` and `--tie-broad` reach the fit, in `fit-lines` and `batch fit-lines`."""
    from galdesk.cli import main

    qso = str(shared_data / "spectra/sdss/spec-1599-53089-0469.fits")
    runs = {}
    for extra in ([], ["--tie-broad"], ["--agn-windows", "qso"]):
        argv = ["fit-lines", qso, "--lines", "halpha,hbeta", "--continuum", "agn", "--json", "--jobs", "1"]
        assert main(argv + extra) == 0
        runs[" ".join(extra)] = json.loads(capsys.readouterr().out)[0]
    for r in runs.values():
        assert r["continuum"] == "agn" and r["stellar"]["kind"] == "agn" and r["stellar"]["feii_flux"] > 0
    broad = {k: next(ln for ln in r["lines"] if ln["name"] == "hbeta" and ln["component"] == "broad")
             for k, r in runs.items()}
    # tied to broad Hα (FWHM ~10 000 km/s) instead of its own, much wider Gaussian
    assert broad["--tie-broad"]["fwhm_kms"] < 0.9 * broad[""]["fwhm_kms"]
    # the quasar continuum windows: about half the pixels
    assert runs["--agn-windows qso"]["stellar"]["ndata"] < 0.7 * runs[""]["stellar"]["ndata"]
    out = tmp_path / "b.ecsv"
    assert main(["batch", "fit-lines", qso, "--lines", "hbeta", "--continuum", "agn", "--tie-broad", "--workers",
                 "1", "-o", str(out)]) == 0
    from astropy.table import Table

    t = Table.read(out)
    assert t["continuum_model"][0] == "agn" and t["feii_fwhm"][0] > 0


def test_cli_text_report(shared_data, capsys):
    """Without --json, fit-lines prints a readable report: verdicts, the continuum, one row per line component
    with flux ± error and FWHM, and for a broad-line AGN the virial masses."""
    from galdesk.cli import main

    qso = str(shared_data / "spectra/sdss/spec-0332-52367-0639.fits")
    assert main(["fit-lines", qso, "--lines", "halpha,hbeta", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("spec-0332-52367-0639  z = 0.10061  BPT: Seyfert  broad component: needed")
    assert "AGN continuum: Fe II FWHM" in out
    rows = {tuple(r.split()[:2]): r.split() for r in out.splitlines() if r.startswith("  ") and len(r.split()) == 8}
    flux, err, fwhm = (float(v) for v in (rows[("halpha", "broad")][2], rows[("halpha", "broad")][3],
                                          rows[("halpha", "broad")][4]))
    assert 3000 < flux < 6000 and 0 < err < 0.1 * flux and 3500 < fwhm < 6000
    assert "virial log M_BH/M☉: Hβ+L5100" in out and "calibration scatter" in out
