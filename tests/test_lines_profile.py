"""Non-parametric [OIII] kinematics (galdesk.lines.profile): velocity percentiles and W80."""

from __future__ import annotations

import numpy as np
import pytest
from lines_helpers import read_sdss
from scipy.optimize import brentq
from scipy.stats import norm

from galdesk.lines.config import FitConfig
from galdesk.lines.profile import profile_percentiles
from galdesk.lines.spectrum import fit_spectrum


def test_one_gaussian_and_a_mixture_against_scipy():
    p = profile_percentiles([5.0], [120.0], [200.0], percentiles=(10, 50, 90))
    assert p == pytest.approx([120 + 200 * norm.ppf(0.1), 120.0, 120 + 200 * norm.ppf(0.9)], abs=0.05)
    assert p[2] - p[0] == pytest.approx(2.5631 * 200, rel=1e-4)   # W80 of one Gaussian
    # a core and a blue wing: percentiles from an independent root-finder on the mixture's CDF
    f, v, s = np.array([3.0, 1.0]), np.array([0.0, -400.0]), np.array([120.0, 500.0])

    def cdf(x):
        return float(np.sum(f * norm.cdf((x - v) / s)) / f.sum())

    want = [brentq(lambda x: cdf(x) - q, -5000, 5000) for q in (0.05, 0.1, 0.5, 0.9, 0.95)]
    assert profile_percentiles(f, v, s) == pytest.approx(want, abs=0.5)
    # components without flux or width do not count; nothing left -> NaN
    median = profile_percentiles([3.0, 0.0], [0.0, -400.0], [120.0, 500.0], percentiles=(50,))
    assert median == pytest.approx([0.0], abs=0.5)
    assert np.all(np.isnan(profile_percentiles([0.0], [0.0], [100.0])))


def test_w80_does_not_depend_on_how_the_profile_is_split(shared_data):
    """spec-0332: with a wing the [OIII] core becomes a 100 km/s line and the "wing" carries most of the flux, yet
    W80 of the whole profile is the same as with one Gaussian; 1237652899686318136 has a real blue wing: W80 and
    the blue v10 grow when the wing is fitted."""
    def fit(name, outflow):
        spec = read_sdss(shared_data / "spectra" / "sdss" / f"{name}.fits")
        return fit_spectrum(spec, FitConfig(complexes=("hbeta",), outflow=outflow))

    two, one = fit("spec-0332-52367-0639", "auto"), fit("spec-0332-52367-0639", "no")
    assert two.line("oiii5007", "outflow") is not None and one.line("oiii5007", "outflow") is None
    assert two.line("oiii5007").fwhm_kms < 0.5 * one.line("oiii5007").fwhm_kms       # the split moved a lot ...
    k2, k1 = two.oiii_kinematics, one.oiii_kinematics
    assert k2["components"] == 2 and k1["components"] == 1
    assert k2["w80_kms"] == pytest.approx(k1["w80_kms"], rel=0.05)                    # ... W80 did not
    assert k1["w80_kms"] == pytest.approx(2.5631 * one.line("oiii5007").sigma_kms, rel=1e-3)
    assert 0 < k2["w80_err"] < 0.1 * k2["w80_kms"]
    wing, core = fit("1237652899686318136", "auto").oiii_kinematics, fit("1237652899686318136", "no").oiii_kinematics
    assert wing["components"] == 2
    assert wing["w80_kms"] > 1.2 * core["w80_kms"] and wing["v10_kms"] < core["v10_kms"] - 3 * wing["v10_err"]
    assert wing["v05_kms"] < wing["v10_kms"] < wing["v50_kms"] < wing["v90_kms"] < wing["v95_kms"]


def test_kinematics_reach_the_report_table_and_catalogue(tmp_path, shared_data, capsys):
    from galdesk.catalog.assemble import build_catalog
    from galdesk.catalog.lines_table import results_table
    from galdesk.cli import main
    from galdesk.lines.service import fit_project
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    src = shared_data / "spectra" / "sdss" / "spec-0295-51585-0596.fits"
    ingest([src], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    res = fit_project(proj, FitConfig(complexes=("hbeta",)), n_jobs=1)
    w80 = res[0]["oiii_kinematics"]["w80_kms"]
    assert 250 < w80 < 450
    assert results_table(res)["oiii_w80"][0] == pytest.approx(w80)
    t = build_catalog(proj)
    assert t["oiii_w80"][0] == pytest.approx(w80) and str(t["oiii_w80"].unit) == "km / s"
    assert main(["fit-lines", str(src), "--lines", "hbeta", "--jobs", "1"]) == 0
    assert f"W80 {w80:.0f} ±" in capsys.readouterr().out
