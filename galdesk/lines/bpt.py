"""BPT / VO87 diagnostic diagrams: demarcation curves and a star-forming / composite / Seyfert / LINER class.

All ratios are log10 of narrow-line flux ratios: x = log([NII]6584/Hα), log(([SII]6717+6731)/Hα) or
log([OI]6300/Hα); y = log([OIII]5007/Hβ).

Curves
------
* Kauffmann et al. (2003, MNRAS 346, 1055), [NII]:  y = 0.61 / (x - 0.05) + 1.30            (x < 0.05)
* Kewley et al. (2001, ApJ 556, 121), maximum starburst:
  [NII]: y = 0.61 / (x - 0.47) + 1.19 (x < 0.47); [SII]: y = 0.72 / (x - 0.32) + 1.30 (x < 0.32);
  [OI]:  y = 0.73 / (x + 0.59) + 1.33 (x < -0.59)
* Kewley et al. (2006, MNRAS 372, 961), Seyfert/LINER: [SII]: y = 1.89 x + 0.76; [OI]: y = 1.18 x + 1.30
* Schawinski et al. (2007, MNRAS 382, 1415), Seyfert/LINER on the [NII] diagram: y = 1.05 x + 0.45

Classification rule (Kewley et al. 2006 scheme, documented in docs/lines_validation.md)
--------------------------------------------------------------------------------------
1. Each available diagram gives a class: [NII]: star-forming below Ka03, composite between Ka03 and Ke01, AGN above
   Ke01 — the AGN split into Seyfert / LINER by Schawinski 2007; [SII] and [OI]: star-forming below Ke01, else
   Seyfert / LINER by Kewley 2006 (these diagrams cannot see composites: a composite there counts as star-forming).
2. The [NII] class stands if every other diagram agrees with it (star-forming and composite both agree with
   "star-forming" in [SII]/[OI]; for an AGN the Seyfert/LINER split is taken from [SII] and [OI] when they agree
   with each other, else from Schawinski).
3. "ambiguous": the diagrams disagree (e.g. star-forming in [NII] but AGN in [SII]), or, when errors are given,
   moving the point by ``nsigma`` errors in any direction (the four corners of its error box) changes its class.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLASSES",
    "kauffmann03",
    "kewley01_nii",
    "kewley01_sii",
    "kewley01_oi",
    "kewley06_sii",
    "kewley06_oi",
    "schawinski07",
    "classify_bpt",
    "classify_diagram",
]

CLASSES = ("star-forming", "composite", "Seyfert", "LINER", "ambiguous")


def kauffmann03(x):
    """Kauffmann et al. 2003 star-forming limit on the [NII] diagram; NaN for x >= 0.05."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < 0.05, 0.61 / (x - 0.05) + 1.30, np.nan)


def kewley01_nii(x):
    """Kewley et al. 2001 maximum-starburst line, [NII] diagram; NaN for x >= 0.47."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < 0.47, 0.61 / (x - 0.47) + 1.19, np.nan)


def kewley01_sii(x):
    """Kewley et al. 2001 maximum-starburst line, [SII] diagram; NaN for x >= 0.32."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < 0.32, 0.72 / (x - 0.32) + 1.30, np.nan)


def kewley01_oi(x):
    """Kewley et al. 2001 maximum-starburst line, [OI] diagram; NaN for x >= -0.59."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < -0.59, 0.73 / (x + 0.59) + 1.33, np.nan)


def kewley06_sii(x):
    """Kewley et al. 2006 Seyfert/LINER line, [SII] diagram."""
    return 1.89 * np.asarray(x, float) + 0.76


def kewley06_oi(x):
    """Kewley et al. 2006 Seyfert/LINER line, [OI] diagram."""
    return 1.18 * np.asarray(x, float) + 1.30


def schawinski07(x):
    """Schawinski et al. 2007 Seyfert/LINER line, [NII] diagram."""
    return 1.05 * np.asarray(x, float) + 0.45


def _below(y, curve_y) -> bool:
    # right of a hyperbola's asymptote (curve NaN) counts as above
    return bool(np.isfinite(curve_y) and y < curve_y)


def classify_diagram(diagram: str, x: float, y: float) -> str:
    """Class of one point on one diagram.

    Parameters
    ----------
    diagram : {"nii", "sii", "oi"}
    x, y : float
        log10 line ratios (x: [NII]/Hα, [SII]/Hα or [OI]/Hα; y: [OIII]/Hβ).

    Returns
    -------
    str
        "star-forming", "composite" (``"nii"`` only), "Seyfert" or "LINER".
    """
    if diagram == "nii":
        if _below(y, kauffmann03(x)):
            return "star-forming"
        if _below(y, kewley01_nii(x)):
            return "composite"
        return "Seyfert" if y > schawinski07(x) else "LINER"
    if diagram == "sii":
        if _below(y, kewley01_sii(x)):
            return "star-forming"
        return "Seyfert" if y > kewley06_sii(x) else "LINER"
    if diagram == "oi":
        if _below(y, kewley01_oi(x)):
            return "star-forming"
        return "Seyfert" if y > kewley06_oi(x) else "LINER"
    raise ValueError(f"unknown diagram {diagram!r}")


def _combine(n2, s2, o1) -> str:
    others = [c for c in (s2, o1) if c is not None]
    if n2 in ("star-forming", "composite"):
        return n2 if all(c == "star-forming" for c in others) else "ambiguous"
    # AGN on [NII]
    if any(c == "star-forming" for c in others):
        return "ambiguous"
    if others:
        if len(set(others)) == 1:
            return others[0]
        return n2  # [SII] and [OI] disagree on the AGN type: keep the Schawinski split
    return n2


def classify_bpt(n2ha, o3hb, s2ha=None, o1ha=None, n2ha_err=None, o3hb_err=None, s2ha_err=None, o1ha_err=None,
                 nsigma: float = 1.0) -> str:
    """Spectral class from the BPT diagrams (rule in the module docstring).

    Parameters
    ----------
    n2ha, o3hb : float
        log10([NII]6584/Hα) and log10([OIII]5007/Hβ).
    s2ha, o1ha : float or None
        log10(([SII]6717+6731)/Hα) and log10([OI]6300/Hα), when measured.
    n2ha_err, o3hb_err, s2ha_err, o1ha_err : float or None
        1-sigma errors in dex; with them, a point whose ``nsigma`` error box straddles a line is "ambiguous".
    nsigma : float

    Returns
    -------
    str
        One of "star-forming", "composite", "Seyfert", "LINER", "ambiguous".
    """
    def val(v):
        return None if v is None or not np.isfinite(v) else float(v)

    n2, o3, s2, o1 = val(n2ha), val(o3hb), val(s2ha), val(o1ha)
    if n2 is None or o3 is None:
        raise ValueError("classify_bpt needs log([NII]/Hα) and log([OIII]/Hβ)")

    def err(e):
        e = val(e)
        return 0.0 if e is None else nsigma * abs(e)

    en2, eo3, es2, eo1 = err(n2ha_err), err(o3hb_err), err(s2ha_err), err(o1ha_err)
    results = set()
    for dy in ((-eo3, eo3) if eo3 else (0.0,)):
        for dx2 in ((-en2, en2) if en2 else (0.0,)):
            c2 = classify_diagram("nii", n2 + dx2, o3 + dy)
            cs = [classify_diagram("sii", s2 + dxs, o3 + dy) for dxs in ((-es2, es2) if es2 else (0.0,))] \
                if s2 is not None else [None]
            co = [classify_diagram("oi", o1 + dxo, o3 + dy) for dxo in ((-eo1, eo1) if eo1 else (0.0,))] \
                if o1 is not None else [None]
            for a in cs:
                for b in co:
                    results.add(_combine(c2, a, b))
    return results.pop() if len(results) == 1 else "ambiguous"
