"""One column schema: the fit-lines table, the exported catalogue and the docs name each quantity the same way."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from galdesk.catalog.assemble import build_catalog
from galdesk.catalog.lines_table import results_table
from galdesk.catalog.schema import FIT_GROUPS, LINE_QUANTITIES, STATUS_COLUMNS, markdown_table
from galdesk.io.model import SpectrumData
from galdesk.project import Project

ROOT = Path(__file__).resolve().parents[1]

#: A line-fit record with every group of the schema (the shape of SpectrumFit.to_dict()).
FULL = {
    "z": 0.1, "bpt_class": "Seyfert", "broad_needed": True, "delta_bic": 120.0, "continuum": "agn",
    "stellar": {"kind": "agn", "sigma_kms": 150.0, "sigma_err": 10.0, "velocity_kms": 5.0, "log_age_lw": 9.5,
                "chi2nu": 1.1, "feii_fwhm_kms": 3000.0, "feii_fwhm_err": 200.0, "feii_flux": 50.0, "feii_flux_err": 5.0,
                "feii_dchi2": 300.0, "r_feii": 0.6, "r_feii_err": 0.05, "host_fraction": 0.3, "powerlaw_slope": -1.5},
    "bh_mass": {"log_l5100": 44.0, "log_l5100_err": 0.01, "log_mbh_hbeta": 8.1, "log_mbh_hbeta_err": 0.05},
    "oiii_kinematics": {"w80_kms": 600.0, "w80_err": 20.0, "v10_kms": -300.0},
    "density": {"sii": {"ratio": 1.2, "ratio_err": 0.1, "n_e": 200.0, "n_e_lo": 100.0, "n_e_hi": 300.0}},
    "lines": [{"name": "halpha", "component": "narrow", "wave_vac": 6564.6, "flux": 10.0, "flux_err": 1.0,
               "fwhm_kms": 300.0, "fwhm_err": 10.0, "ew": 20.0, "snr": 10.0},
              {"name": "halpha", "component": "broad", "wave_vac": 6564.6, "flux": 30.0, "flux_err": 3.0,
               "fwhm_kms": 4000.0, "fwhm_err": 100.0, "ew": 60.0, "snr": 10.0}],
}
#: A star-forming galaxy: no AGN, masses, profile or densities.
PLAIN = {"z": 0.05, "bpt_class": "star-forming", "broad_needed": False, "delta_bic": -3.0, "continuum": "stellar",
         "stellar": {"kind": "stellar", "sigma_kms": 80.0},
         "lines": [{"name": "hbeta", "component": "narrow", "wave_vac": 4862.7, "flux": 5.0}]}


def _spectrum(oid: str) -> SpectrumData:
    w = np.linspace(4000, 7000, 50)
    return SpectrumData(wavelength=w, flux=np.ones_like(w), ivar=np.ones_like(w), mask=np.zeros(w.size, bool),
                        source=f"{oid}.fits", id=oid, flux_unit="1e-17 erg / (s cm2 Angstrom)")


def _catalogue(tmp_path, payloads):
    proj = Project.create(tmp_path / "p")
    proj.add(spectra=[_spectrum(f"s{i}") for i in range(len(payloads))])
    proj.journal.append_many([("line_fit", f"s{i}", p) for i, p in enumerate(payloads)], author="test")
    try:
        return build_catalog(proj)
    finally:
        proj.close()


def test_fit_lines_table_and_export_share_every_line_fit_column(tmp_path):
    rt = results_table([{"source": "a.fits", "id": "s0", **FULL}, {"source": "b.fits", "id": "s1", **PLAIN}])
    cat = _catalogue(tmp_path, [FULL, PLAIN])
    table_only = ("source", "id", "z", "error", *(spec.name for spec in STATUS_COLUMNS))
    fit_cols = [c for c in rt.colnames if c not in table_only]
    assert fit_cols and set(fit_cols) <= set(cat.colnames)
    for c in fit_cols:
        assert rt[c].unit == cat[c].unit, c
        assert rt[c].description == cat[c].description, c
        assert np.array_equal(np.ma.getmaskarray(rt[c]), np.ma.getmaskarray(cat[c])), c
        assert [str(v) for v in rt[c].tolist()] == [str(v) for v in cat[c].tolist()], c
    assert rt["halpha_broad_fwhm"][0] == 4000.0 and str(rt["halpha_broad_fwhm"].unit) == "km / s"
    assert rt["stellar_sigma"][1] == 80.0 and rt["n_e_sii"].mask[1] and rt["broad_needed"].tolist() == [1, 0]


def test_every_column_is_in_the_schema_and_groups_appear_only_when_used(tmp_path):
    names = {spec.name for _g, _p, specs in FIT_GROUPS for spec in specs} | {s.name for s in STATUS_COLUMNS}
    line_suffixes = tuple(f"_{s}" for s, *_ in LINE_QUANTITIES)
    rt = results_table([{"source": "a.fits", "id": "s0", **FULL}])
    for c in rt.colnames:
        assert c in names or c in ("source", "id", "z", "error") or c.endswith(line_suffixes), c
    assert [rt[c][0] for c in ("fit_status", "skip_reason")] == ["fitted", np.ma.masked]
    plain = results_table([{"source": "b.fits", "id": "s1", **PLAIN}])
    assert "stellar_sigma" in plain.colnames and "bpt_class" in plain.colnames
    assert not any(c.startswith(("feii_", "log_mbh", "oiii_w80", "n_e_")) for c in plain.colnames)
    assert len(set(names)) == len(names)  # one name per quantity


def test_docs_column_table_is_the_schema():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from update_schema_docs import DOC, render
    finally:
        sys.path.pop(0)
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/vetting_and_export.md is stale: run python scripts/update_schema_docs.py"
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.M))
    assert {spec.name for _g, _p, specs in FIT_GROUPS for spec in specs} <= documented
    assert markdown_table().count("\n") > 40


def test_units_survive_every_format_read_back(tmp_path):
    """Logarithmic (dex) units too: FITS keeps them as TUNIT text, read_catalog restores the schema's unit; CSV
    gets every schema unit back from the column names alone."""
    import astropy.units as u

    from galdesk.catalog.export import read_catalog
    from galdesk.catalog.writers import write_table

    rt = results_table([{"source": "a.fits", "id": "s0", **FULL}, {"source": "b.fits", "id": "s1", **PLAIN}])
    for ext in ("fits", "ecsv", "xml", "csv"):
        out = tmp_path / f"t.{ext}"
        write_table(rt, out)
        back = read_catalog(out)
        assert back["log_mbh_hbeta"].unit == u.dex(u.solMass), ext
        assert str(back["log_mbh_hbeta_err"].unit) == "dex", ext
        assert back["stellar_log_age"].unit == u.dex(u.yr), ext
        assert back["stellar_sigma"].unit == u.km / u.s and back["n_e_sii"].unit == u.cm ** -3, ext
        assert back["halpha_broad_flux"].unit == u.Unit("1e-17 erg / (s cm2)"), ext
        assert back["n_e_sii_limit"].dtype.kind in "USO" and back["bpt_class"][0] == "Seyfert", ext


def test_fit_lines_table_carries_each_spectrums_flux_unit():
    """Uncalibrated 6dFGS spectra are in counts: their line fluxes are count x Angstrom, not 1e-17 erg/s/cm2; a
    table mixing them with SDSS has no single unit and says so, with each row's unit in ``flux_unit``."""
    import astropy.units as u

    from galdesk.catalog.lines_table import results_table

    def rec(i, unit):
        return {"source": f"s{i}", "id": f"s{i}", "z": 0.05, "status": "fitted", "flux_unit": unit,
                "lines": [{"name": "halpha", "component": "narrow", "flux": 100.0, "flux_err": 5.0}]}

    t = results_table([rec(0, "count"), rec(1, "count")])
    assert t["halpha_flux"].unit == u.count * u.AA and list(t["flux_unit"]) == ["count", "count"]
    t = results_table([rec(0, "1e-17 erg / (s cm2 Angstrom)")])
    assert t["halpha_flux"].unit == u.Unit("1e-17 erg / (s cm2)")
    t = results_table([rec(0, "count"), rec(1, "1e-17 erg / (s cm2 Angstrom)")])
    assert t["halpha_flux"].unit is None and "mixed units" in t["halpha_flux"].description
