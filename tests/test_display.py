"""Stretches and limits follow astropy.visualization; composites and thumbnails have the right geometry."""

import numpy as np
import pytest
from astropy.visualization import AsinhStretch, PercentileInterval, ZScaleInterval

from galdesk.display import LIMITS, STRETCHES, DisplaySettings, limits_for, normalise, render, thumbnail_rgb8


@pytest.fixture
def galaxy():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:80, 0:80]
    img = 100 * np.exp(-np.hypot(x - 40, y - 30) / 5) + rng.normal(0, 1, (80, 80))
    img[0, 0] = np.nan
    return img


def test_limits_match_astropy(galaxy):
    finite = galaxy[np.isfinite(galaxy)]
    assert limits_for(galaxy, DisplaySettings(limits="zscale")) == pytest.approx(ZScaleInterval().get_limits(finite))
    assert limits_for(galaxy, DisplaySettings(limits="99.5")) == pytest.approx(
        PercentileInterval(99.5).get_limits(finite))
    assert limits_for(galaxy, DisplaySettings(limits="minmax")) == pytest.approx((finite.min(), finite.max()))
    assert limits_for(galaxy, DisplaySettings(limits="manual", vmin=-1, vmax=7)) == (-1, 7)


def test_asinh_normalisation_matches_astropy(galaxy):
    s = DisplaySettings(stretch="asinh", limits="minmax", asinh_a=0.1)
    out = normalise(galaxy, s)
    lo, hi = np.nanmin(galaxy), np.nanmax(galaxy)
    expected = AsinhStretch(a=0.1)(np.clip((galaxy[1:, 1:] - lo) / (hi - lo), 0, 1))
    assert np.allclose(out[1:, 1:], expected, atol=1e-6)
    assert np.isnan(out[0, 0])


@pytest.mark.parametrize("stretch", STRETCHES)
@pytest.mark.parametrize("limits", LIMITS)
def test_every_combination_renders_monotonically(galaxy, stretch, limits):
    s = DisplaySettings(stretch=stretch, limits=limits, vmin=0, vmax=50)
    out = normalise(galaxy, s)
    assert out.shape == galaxy.shape
    finite = np.isfinite(galaxy)
    assert np.nanmin(out) >= 0 and np.nanmax(out) <= 1
    # brighter pixels never render darker
    order = np.argsort(galaxy[finite])
    assert np.all(np.diff(out[finite][order]) >= -1e-6)


def test_constant_image_does_not_divide_by_zero():
    out = normalise(np.ones((10, 10)), DisplaySettings(limits="zscale"))
    assert np.all(np.isfinite(out))


def test_rgb8_cutout_shown_as_is_and_thumbnail_flipped():
    planes = np.zeros((3, 4, 4), np.float32)
    planes[0, 0, :] = 255  # bottom row red (FITS convention: row 0 = bottom)
    rgb = render(planes, DisplaySettings(), rgb8=True)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    thumb = thumbnail_rgb8(planes, DisplaySettings(), rgb8=True)
    assert thumb[-1, 0].tolist() == [255, 0, 0]  # QImage row 0 is the top


def test_lupton_composite_is_colour_preserving():
    planes = np.zeros((3, 20, 20))   # unnamed bands: stored blue to red
    planes[2] = 2.0
    planes[1] = 1.0
    planes[0] = 0.5
    planes[:, 10, 10] *= 50
    rgb = render(planes, DisplaySettings(limits="minmax", band=None)).astype(float)
    r, g, b = rgb[10, 10]
    assert r > g > b


def test_single_band_colormap():
    d = np.linspace(0, 1, 100).reshape(10, 10)
    gray = render(d, DisplaySettings(stretch="linear", limits="minmax", cmap="gray"))
    assert np.all(gray[..., 0] == gray[..., 1])
    vir = render(d, DisplaySettings(stretch="linear", limits="minmax", cmap="viridis"))
    assert not np.all(vir[..., 0] == vir[..., 1])


def test_composite_puts_the_reddest_band_in_red():
    from galdesk.display import composite_order

    assert composite_order(["g", "r", "i"]) == [2, 1, 0]
    assert composite_order(["i", "g", "r"]) == [0, 2, 1]
    assert composite_order(["F814W", "F606W", "F435W"]) == [0, 1, 2]
    assert composite_order(["b0", "b1", "b2", "b3"]) == [3, 2, 1]   # unknown: stored blue to red
    assert composite_order(["r", "g", "b"], rgb8=True) == [0, 1, 2]
    # a red galaxy in g, r, i renders red, not blue
    planes = np.stack([np.full((8, 8), 1.0), np.full((8, 8), 2.0), np.full((8, 8), 3.0)])
    planes[:, 4, 4] *= 30
    rgb = render(planes, DisplaySettings(limits="minmax"), bands=["g", "r", "i"]).astype(int)
    assert rgb[4, 4, 0] > rgb[4, 4, 2]


def test_spectrum_smoothing_propagates_the_errors_and_keeps_gaps():
    """Display smoothing: the error of the smoothed flux is the error of the kernel-weighted mean (white noise of
    sigma 1: 1/sqrt 5 for a 5-pixel boxcar, (2 sqrt(pi) sigma)^-1/2 for a Gaussian), as the scatter of the smoothed
    noise shows; masked pixels stay gaps, their neighbours are smoothed from the good pixels; "none" changes
    nothing."""
    from galdesk.display import smooth_spectrum

    rng = np.random.default_rng(0)
    flux, err = rng.normal(0, 1, 40000), np.ones(40000)
    bad = np.zeros(40000, bool)
    bad[100:110] = True
    for kind, expected in (("boxcar 5 px", 1 / np.sqrt(5)), ("Gaussian σ 2 px", (2 * np.sqrt(np.pi) * 2) ** -0.5)):
        s, e = smooth_spectrum(flux, err, bad, kind)
        assert np.nanmedian(e[200:]) == pytest.approx(expected, rel=0.02)
        assert np.nanstd(s[200:]) == pytest.approx(expected, rel=0.03)
        assert np.isnan(s[100:110]).all() and np.isfinite(s[99]) and np.isfinite(s[110])
    s, e = smooth_spectrum(flux, err, bad, "none")
    assert s is not None and np.array_equal(s, flux) and np.array_equal(e, err)


@pytest.mark.parametrize("stretch", ["linear", "sqrt", "log", "asinh", "power", "histeq"])
def test_colour_bar_ticks_are_the_values_the_stretch_puts_there(stretch):
    """A DS9-style colour bar: each tick's value is mapped by the display (limits + stretch) to the tick's place
    along the bar."""
    from galdesk.display import DisplaySettings, colourbar_ticks, normalise

    rng = np.random.default_rng(1)
    data = rng.lognormal(0, 1, 5000)
    s = DisplaySettings(stretch=stretch, limits="99")
    lo, hi = np.percentile(data, [0.5, 99.5])
    ticks = colourbar_ticks(s, (lo, hi), data)
    assert [p for p, _ in ticks] == [0.0, 0.25, 0.5, 0.75, 1.0]
    values = np.array([v for _, v in ticks])
    assert values[0] == pytest.approx(lo) and values[-1] == pytest.approx(hi) and np.all(np.diff(values) > 0)
    if stretch != "histeq":
        shown = normalise(values, s, (lo, hi))
        assert np.allclose(shown, [p for p, _ in ticks], atol=1e-4)
    else:   # equal shares of the pixels between ticks
        shares = np.histogram(data[(data >= lo) & (data <= hi)], bins=values)[0]
        assert np.ptp(shares) < 0.02 * shares.sum()
