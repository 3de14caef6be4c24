"""The RA/Dec grid (galdesk/skygrid.py): every traced line lies on its RA or Dec, round steps, labels on the edges,
a field across 0 h and one around the pole, nothing for a WCS that is not equatorial."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from galdesk.skygrid import format_dec, format_ra, sky_grid


def _tan(ra, dec, scale, n, rot=0.0):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * scale / 3600
    return w


@pytest.mark.parametrize("ra, dec, scale, n, rot", [
    (150.1, 2.2, 0.262, 64, 0.0),       # a DECaLS-like 64 px cut-out
    (0.001, -30.0, 0.396, 424, 0.0),    # an SDSS-sized one across RA = 0 h
    (210.0, 60.0, 0.05, 103, 30.0),     # a rotated HST stamp
])
def test_each_line_lies_on_its_coordinate_and_crosses_the_image(ra, dec, scale, n, rot):
    w = _tan(ra, dec, scale, n, rot)
    grid = sky_grid(w, n, n)
    kinds = [line.kind for line in grid.lines]
    assert 2 <= kinds.count("ra") <= 8 and 2 <= kinds.count("dec") <= 8, kinds
    for line in grid.lines:
        ok = np.isfinite(line.x)
        assert ok.sum() >= 2
        assert np.all((line.x[ok] >= -0.5) & (line.x[ok] <= n - 0.5) & (line.y[ok] >= -0.5) & (line.y[ok] <= n - 0.5))
        world = np.asarray(w.pixel_to_world_values(line.x[ok], line.y[ok]))
        if line.kind == "ra":
            assert np.allclose((world[0] - line.value + 180) % 360 - 180, 0, atol=1e-7)
            assert line.value / grid.ra_step == pytest.approx(round(line.value / grid.ra_step), abs=1e-6)
        else:
            assert np.allclose(world[1], line.value, atol=1e-7)
        assert line.label_at is not None
        lx, ly = line.label_at
        on_edge = min(abs(lx + 0.5), abs(lx - (n - 0.5)), abs(ly + 0.5), abs(ly - (n - 0.5)))
        assert on_edge < 0.05 * n          # labelled where it meets the edge


def test_a_field_across_0h_has_one_line_per_ra_and_labels_both_sides():
    grid = sky_grid(_tan(0.001, -30.0, 0.396, 424), 424, 424)
    labels = [line.label for line in grid.lines if line.kind == "ra"]
    assert "0h00m00s" in labels and any(lab.startswith("23h59m") for lab in labels)
    assert len(labels) == len(set(labels))


def test_around_the_pole_every_ra_line_once():
    grid = sky_grid(_tan(10.0, 89.99, 1.0, 200), 200, 200)
    values = [round(line.value, 6) for line in grid.lines if line.kind == "ra"]
    assert len(values) == len(set(values)) >= 3


def test_no_grid_without_an_equatorial_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval, w.wcs.cdelt, w.wcs.crpix = [120.0, 3.0], [-0.01, 0.01], [10, 10]
    assert sky_grid(w, 20, 20).lines == []
    assert sky_grid(None, 20, 20).lines == []


def test_labels_read_as_ds9_writes_them():
    assert format_ra(150.0, 15 / 3600) == "10h00m00s"
    assert format_ra(150.1, 0.2 * 15 / 3600) == "10h00m24.0s"
    assert format_ra(150.25, 60 * 15 / 3600) == "10h01m"
    assert format_ra(359.99999, 15 / 3600) == "0h00m00s"
    assert format_dec(2.2, 5 / 3600) == "+02°12′00″"
    assert format_dec(-30.0 - 1 / 60, 30 / 3600) == "-30°01′00″"
    assert format_dec(-0.5, 60 / 3600) == "-00°30′"
    assert format_dec(45.0, 1.0) == "+45°"
