"""What the broad-line test fits (galdesk.lines.engine): a second broad Gaussian only for a broad component that
passes ΔBIC with one; on real SDSS spectra."""

from __future__ import annotations

import pytest
from lines_helpers import read_sdss

from galdesk.lines import engine
from galdesk.lines.config import FitConfig
from galdesk.lines.engine import fit_complex


@pytest.fixture
def fits(monkeypatch):
    """Every lmfit fit made: (broad Gaussians per line, starting values by name, final chi^2)."""
    made = []
    real = engine.run_lmfit

    def spy(layout, data, inst, config, ctx, params_override=None):
        out = real(layout, data, inst, config, ctx, params_override)
        nb = len({k for k in layout.g_kin if k.startswith("broad")})
        made.append((nb, dict(zip(layout.names, layout.init)), out.chisqr))
        return out

    monkeypatch.setattr(engine, "run_lmfit", spy)
    return made


def halpha(shared_data, name, config=None):
    spec = read_sdss(shared_data / "spectra" / "sdss" / f"{name}.fits")
    return fit_complex(spec, "halpha", config or FitConfig())


def test_no_second_broad_gaussian_without_a_broad_line(shared_data, fits):
    """spec-0266-0013 (a galaxy without broad lines): the narrow fit, one broad Gaussian from two starts (from the
    narrow-only fit's lines and continuum at 1200 km/s, from scratch at 3000 km/s), nothing more."""
    cf = halpha(shared_data, "spec-0266-51602-0013")
    test = next(t for t in cf.tests if t.component == "broad")
    assert not test.needed and test.delta_bic <= 10.0
    assert [nb for nb, _, _ in fits] == [0, 1, 1]
    narrow = test.fit_without
    assert [init["broad1_sigma"] for _, init, _ in fits[1:]] == [1200.0, 3000.0]
    for k in ("narrow_v", "narrow_sigma", "halpha_flux", "nii6584_flux"):
        assert fits[1][1][k] == pytest.approx(narrow.theta[narrow.layout.index(k)], rel=1e-9, abs=1e-9)
    assert fits[2][1]["narrow_sigma"] != pytest.approx(narrow.theta[narrow.layout.index("narrow_sigma")])


def test_a_broad_line_region_still_gets_its_second_gaussian_tried(shared_data, fits):
    """1237680240907518081 (broad Hα): one Gaussian passes ΔBIC, so two are tried; the fit kept is the better of
    its two starts."""
    cf = halpha(shared_data, "1237680240907518081")
    test = next(t for t in cf.tests if t.component == "broad")
    assert test.needed and test.delta_bic > 10.0
    assert sorted({nb for nb, _, _ in fits}) == [0, 1, 2]
    nb = len({k for k in cf.layout.g_kin if k.startswith("broad")})
    assert cf.chisqr == pytest.approx(min(c for n, _, c in fits if n == nb), rel=1e-12)
