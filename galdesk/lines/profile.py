"""Non-parametric kinematics of a fitted line profile: velocity percentiles and W80.

How an [OIII] 5007 line is split into a "core" and an "outflow wing" is not unique (two Gaussians can describe the
same profile in more than one way, and in quasars the wing often carries most of the flux), so outflow studies
quote percentiles of the whole profile instead (Zakamska & Greene 2014, MNRAS 442, 784; Harrison et al. 2014,
MNRAS 441, 3306): v10, v50, v90 — the velocities below which 10, 50 and 90 % of the flux lies — and the width
W80 = v90 − v10 (2.563 σ for one Gaussian). They are computed here from the fitted components, instrument
removed, relative to the spectrum's redshift; errors by first-order propagation of the fit's covariance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from galdesk.lines.model import propagate

__all__ = ["PERCENTILES", "profile_percentiles", "line_kinematics", "describe_kinematics"]

#: Percentiles reported (per cent of the line flux).
PERCENTILES = (5, 10, 50, 90, 95)


def profile_percentiles(fluxes, velocities, sigmas, percentiles=PERCENTILES, n: int = 4001) -> np.ndarray:
    """Velocities (km/s) below which the given percentages of a sum of Gaussians' flux lie.

    Parameters
    ----------
    fluxes, velocities, sigmas : array_like
        Integrated flux (> 0 to count), centre and intrinsic dispersion (km/s) of each Gaussian.
    """
    f = np.asarray(fluxes, float)
    v = np.asarray(velocities, float)
    s = np.asarray(sigmas, float)
    keep = (f > 0) & (s > 0) & np.isfinite(f) & np.isfinite(v) & np.isfinite(s)
    if not keep.any():
        return np.full(len(percentiles), np.nan)
    f, v, s = f[keep], v[keep], s[keep]
    grid = np.linspace(np.min(v - 6 * s), np.max(v + 6 * s), n)
    cdf = (f[:, None] * ndtr((grid[None, :] - v[:, None]) / s[:, None])).sum(axis=0) / f.sum()
    return np.interp(np.asarray(percentiles, float) / 100.0, cdf, grid)


def _kinematics(cf, line: str, theta: np.ndarray) -> np.ndarray:
    lay = cf.layout
    idx = [k for k, (ln, comp) in enumerate(zip(lay.g_line, lay.g_comp)) if ln == line and comp in ("narrow",
                                                                                                      "outflow")]
    fl = lay.fluxes(theta)[idx]
    v = theta[lay.vidx][idx]
    s = lay.sigmas(theta)[idx]
    p = profile_percentiles(fl, v, s)
    return np.append(p, p[PERCENTILES.index(90)] - p[PERCENTILES.index(10)])


def line_kinematics(cf, line: str = "oiii5007") -> dict:
    """Percentile velocities and W80 of ``line``'s narrow + outflow components in a fitted complex.

    Parameters
    ----------
    cf : galdesk.lines.results.ComplexFit
        The complex holding the line (Hβ+[OIII] for [OIII] 5007).
    line : str
        Line key.

    Returns
    -------
    dict
        ``v05_kms`` ... ``v95_kms`` (see :data:`PERCENTILES`), ``w80_kms``, each with ``*_err``; ``components``
        (how many Gaussians); empty if the line is not in the fit or its width was not fitted (tied to another
        line's: a weak line's profile is not measured, and its errors would read zero).
    """
    lay = cf.layout
    comps = [c for ln, c in zip(lay.g_line, lay.g_comp) if ln == line and c in ("narrow", "outflow")]
    if not comps:
        return {}
    widths = {int(lay.sidx[g]) for g, (ln, c) in enumerate(zip(lay.g_line, lay.g_comp))
              if ln == line and c in ("narrow", "outflow")}
    if not any(lay.vary[i] for i in widths):
        # the line's width was tied to another line's (too weak to have its own): its profile is not measured
        return {}
    q0, err = propagate(lambda ths: np.array([_kinematics(cf, line, t) for t in ths]), cf.theta,
                        np.asarray(cf.cov, float))
    names = [f"v{p:02d}_kms" for p in PERCENTILES] + ["w80_kms"]
    out = {"components": len(comps)}
    for name, val, e in zip(names, q0, err):
        out[name] = float(val)
        out[name.replace("_kms", "_err")] = float(e)
    return out


def describe_kinematics(k: dict, line: str = "[OIII] 5007") -> str:
    """One line of text for a :func:`line_kinematics` result ("" without a finite W80)."""
    if k.get("w80_kms") is None or not np.isfinite(k["w80_kms"]):
        return ""
    vs = ", ".join(f"{q} {k[f'{q}_kms']:+.0f} ± {k[f'{q}_err']:.0f}" for q in ("v10", "v50", "v90"))
    return f"{line} profile (core + wing): {vs}, W80 {k['w80_kms']:.0f} ± {k['w80_err']:.0f} km/s"
