"""The redshift of the narrow lines, when the given one is off.

Line fits let the narrow lines move ``FitConfig.narrow_v_max`` (600 km/s) from the given redshift. Survey redshifts
of quasars come partly from their broad lines, which sit up to 1,000-2,000 km/s from the narrow ones (SDSS
spec-0853-52374-0240: 1,360 km/s): the narrow lines then end at the bound, or the fit settles on a wrong alignment of
the lines (Hα on [NII]), the lines widen to reach the real ones, and the broad-line verdict and every narrow flux
are wrong.

:func:`narrow_line_velocity` finds where the narrow lines are without fitting: the spectrum, high-passed (a running
median over ±1,500 km/s removes the continuum and most of any broad line) and divided by its errors, is smoothed to
a narrow line's width and summed at the shifted wavelengths of the strongest narrow lines ([OIII], Hα, [NII], Hβ,
[OII], [SII]) for every velocity within ±3,000 km/s; the peak is the narrow-line velocity, its height over the
scatter of the sum its significance. :func:`fit_spectrum <galdesk.lines.spectrum.fit_spectrum>` fits again at that
redshift when the fitted narrow lines end at their bound or sit more than :data:`DISAGREE_KMS` from it, and the
peak is significant (:data:`MIN_SIGNIFICANCE`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.units import C_KMS

__all__ = ["narrow_line_velocity", "narrow_lines_pinned", "redshift_to_refit", "PINNED_FRACTION",
           "MIN_SIGNIFICANCE", "DISAGREE_KMS", "SEARCH_KMS"]

#: a narrow velocity within this fraction of its bound is "at the bound"
PINNED_FRACTION = 0.95
#: peak of the line sum over its scatter needed to move the redshift
MIN_SIGNIFICANCE = 8.0
#: a fitted narrow velocity this far from the found one is a wrong alignment
DISAGREE_KMS = 300.0
#: velocities searched around the given redshift
SEARCH_KMS = 3000.0
_WEIGHTS = {"oiii5007": 1.0, "oiii4959": 0.33, "halpha": 1.0, "nii6584": 0.5, "hbeta": 0.35, "oii3726": 0.5,
            "oii3729": 0.5, "sii6717": 0.3, "sii6731": 0.3}


def narrow_lines_pinned(cf, config: FitConfig) -> bool:
    """Whether the narrow lines of the fitted complex ``cf`` end at their velocity bound."""
    try:
        return abs(float(cf.theta[cf.layout.index("narrow_v")])) >= PINNED_FRACTION * config.narrow_v_max
    except (ValueError, KeyError, IndexError):
        return False


def narrow_line_velocity(spec, z: float) -> tuple[float, float]:
    """``(v, significance)``: the velocity (km/s, from redshift ``z``) at which the strongest narrow lines of
    ``spec`` sit, and the height of that peak over the scatter of the line sum (NaN, 0 without enough pixels)."""
    wave = np.asarray(spec.wavelength, float)
    if not spec.vacuum:
        wave = LL.air_to_vac(wave)
    ivar = np.asarray(spec.ivar, float)
    good = (ivar > 0) & ~np.asarray(spec.mask, bool) & np.isfinite(spec.flux) & (wave > 0)
    if good.sum() < 100:
        return float("nan"), 0.0
    x = np.log(wave[good])
    # a uniform grid in ln(lambda) of the spectrum's own median step
    step = max(float(np.median(np.diff(x))), 1e-5)
    grid = np.arange(x[0], x[-1], step)
    flux = np.interp(grid, x, np.asarray(spec.flux, float)[good])
    err = np.interp(grid, x, 1.0 / np.sqrt(ivar[good]))
    half = max(3, int(round(1500.0 / C_KMS / step)))
    r = (flux - median_filter(flux, size=2 * half + 1, mode="nearest")) / err
    r = gaussian_filter1d(np.clip(r, -10, 50), max(150.0 / C_KMS / step, 0.5))
    vel = np.arange(-SEARCH_KMS, SEARCH_KMS + 1.0, 10.0)
    total = np.zeros(vel.size)
    for name, w in _WEIGHTS.items():
        at = np.log(LL.LINES[name] * (1.0 + z)) + np.log1p(vel / C_KMS)
        inside = (at > grid[0] + half * step) & (at < grid[-1] - half * step)
        total += w * np.where(inside, np.interp(at, grid, r), 0.0)
    k = int(np.argmax(total))
    scatter = 1.4826 * float(np.median(np.abs(total - np.median(total))))
    if not scatter > 0:
        return float(vel[k]), 0.0
    return float(vel[k]), float((total[k] - np.median(total)) / scatter)


def redshift_to_refit(spec, ref, config: FitConfig, move: bool = True) -> tuple[float | None, str]:
    """``(z, note)``: the redshift to fit ``spec`` again at, when the fitted narrow lines of the reference complex
    ``ref`` (Hα, else Hβ) end at their bound or sit :data:`DISAGREE_KMS` from where the lines are found
    (significantly); else ``(None, note)`` — the note says the redshift may be wrong when they end at the bound.
    ``move=False`` (a redshift the user gave): never a new z, the note says where the lines are."""
    z0 = float(spec.redshift)
    v_found, sig = narrow_line_velocity(spec, z0)
    try:
        v_fit = float(ref.theta[ref.layout.index("narrow_v")])
    except (ValueError, KeyError, IndexError):
        return None, ""
    pinned = narrow_lines_pinned(ref, config)
    off = sig >= MIN_SIGNIFICANCE and (pinned or abs(v_found - v_fit) > DISAGREE_KMS) and abs(v_found) > 50.0
    if off and not move:
        return None, (f"the narrow lines lie {v_found:+.0f} km/s from the given z = {z0:.5f} (found at {sig:.0f} "
                      "sigma); fitted at the given z as asked")
    if off:
        z = (1.0 + z0) * (1.0 + v_found / C_KMS) - 1.0
        return z, (f"redshift refined from the narrow lines: they lie {v_found:+.0f} km/s from z = {z0:.5f} "
                   f"(found at {sig:.0f} sigma; the fit at that z had them at {v_fit:+.0f} km/s); fitted at "
                   f"z = {z:.5f}")
    if pinned:
        return None, (f"the narrow lines end at the {config.narrow_v_max:.0f} km/s bound of z = {z0:.5f}: the "
                      "redshift may be wrong (give one with --z)")
    return None, ""
