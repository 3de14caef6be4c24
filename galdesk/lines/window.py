"""The fit window of a complex and the pixels that enter its fit.

A complex is fitted on the pixels of one window around its lines (:func:`fit_window`): good pixels, away from other
lines (those of :data:`galdesk.lines.linelist.LINES` outside the complex and the :data:`INTERLOPERS`), where the
continuum model is defined. :func:`prepare_data` selects them and bundles what the model needs (vacuum wavelength,
flux, weight, redshift, instrumental resolution, continuum template).
"""

from __future__ import annotations

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.continuum import stellar_continuum
from galdesk.units import C_KMS

__all__ = ["INTERLOPERS", "fit_window", "prepare_data"]

#: Lines that are not fitted but lie close to fitted ones: their pixels are masked out of a complex's window.
INTERLOPERS: dict[str, float] = {
    "neiii3869": 3869.856797,
    "hdelta": 4102.891631,
    "oiii4363": 4364.435300,
    "hei5876": 5877.249,
    "siii6312": 6313.805533,
    "hei6678": 6679.995,
    "ariii7135": 7137.757103,
}


def fit_window(cx: LL.Complex, z: float, config: FitConfig, broad: bool, agn: bool = False) -> tuple[float, float]:
    """Default fit window of a complex: observed vacuum wavelengths (Angstrom) from the bluest to the reddest line,
    widened by ``config.window_kms`` (``broad_window_kms`` when a broad component is considered,
    ``agn_broad_window_kms`` on an AGN pseudo-continuum) or by ``config.window_angstrom`` (rest frame) when set.

    Parameters
    ----------
    cx : galdesk.lines.linelist.Complex
    z : float
        Redshift.
    config : FitConfig
    broad : bool
        Use the broad window.
    agn : bool
        The continuum is the AGN pseudo-continuum.
    """
    lo, hi = cx.wave_range
    if config.window_angstrom is not None:
        return (lo - config.window_angstrom) * (1 + z), (hi + config.window_angstrom) * (1 + z)
    bw = config.agn_broad_window_kms if agn else config.broad_window_kms
    w = (bw if broad else config.window_kms) / C_KMS
    return lo * (1 - w) * (1 + z), hi * (1 + w) * (1 + z)


def prepare_data(spec, complex_name: str, config: FitConfig, window=None, broad: bool = False, ctx=None) -> dict:
    """Select the pixels of one complex: inside the window, good, away from other lines.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    complex_name : str
    config : FitConfig
    window : (float, float) or None
        Observed wavelength range in the spectrum's convention, Angstrom; default :func:`fit_window`.
    broad : bool
        Use the broad window.

    Returns
    -------
    dict with ``wave`` (vacuum, Angstrom), ``flux``, ``weight`` (1/sigma), ``z``, ``inst`` (callable: vacuum
    wavelength -> instrumental sigma in km/s), ``window`` (vacuum Angstrom), ``vacuum``, ``id``, ``spec_class``,
    ``tmpl`` (the continuum model at the pixels, or None), ``agn`` (it is the AGN pseudo-continuum) and
    ``stellar`` (vacuum wavelength and continuum model around the window, or None).

    Raises
    ------
    ValueError
        No redshift, the window is outside the spectrum, or too few good pixels.
    """
    cx = LL.COMPLEXES[complex_name]
    z = spec.redshift
    if z is None or not np.isfinite(z):
        raise ValueError(f"{spec.id}: a redshift is needed to fit emission lines")
    z = float(z)
    wave = np.asarray(spec.wavelength, dtype=float)
    if not spec.vacuum:
        wave = LL.air_to_vac(wave)
    flux = np.asarray(spec.flux, dtype=float)
    stellar = stellar_continuum(spec, config, ctx)
    agn = stellar is not None and isinstance(spec.meta, dict) and spec.meta.get("continuum_kind") == "agn"
    if window is None:
        lo, hi = fit_window(cx, z, config, broad, agn)
    else:
        lo, hi = (float(window[0]), float(window[1]))
        if not spec.vacuum:
            lo, hi = LL.air_to_vac(lo), LL.air_to_vac(hi)
    sel = spec.good & (wave >= lo) & (wave <= hi)
    if stellar is not None:
        sel &= np.isfinite(stellar)
    sel = _mask_other_lines(sel, wave, cx, z, lo, hi, config.mask_kms)
    _check_pixels(complex_name, cx, wave, sel, z)
    return {
        "wave": wave[sel],
        "flux": flux[sel],
        "weight": np.sqrt(np.asarray(spec.ivar, dtype=float)[sel]),
        "z": z,
        "inst": _instrument(spec, wave, config),
        "window": (lo, hi),
        "vacuum": bool(spec.vacuum),
        "id": spec.id,
        "spec_class": spec.spec_class,
        "tmpl": stellar[sel] if stellar is not None else None,
        "agn": agn,
        "stellar": _stellar_window(wave, stellar, lo, hi),
    }


def _mask_other_lines(sel, wave, cx, z, lo, hi, mask_kms):
    """``sel`` without the pixels of other lines inside the window: they would bias the continuum and widths. Each
    mask is ``mask_kms`` wide on either side, but never reaches closer than half way to one of the complex's own
    lines."""
    others = {k: v for k, v in LL.LINES.items() if k not in cx.lines}
    others.update({k: v for k, v in INTERLOPERS.items() if k not in cx.lines})
    own = np.array([LL.LINES[n] for n in cx.lines])
    for rest in others.values():
        gap = float(np.min(np.abs(own - rest)) / rest)
        half = min(mask_kms / C_KMS, 0.5 * gap)
        c = rest * (1 + z)
        if lo - c * half < c < hi + c * half:
            sel &= np.abs(wave - c) > c * half
    return sel


def _check_pixels(complex_name, cx, wave, sel, z) -> None:
    """Raise ValueError unless the spectrum covers the lines and the window has enough good pixels (3 within
    300 km/s of a line, 12 in all)."""
    line_obs = np.array([LL.LINES[n] for n in cx.lines]) * (1 + z)
    if wave.size == 0 or line_obs.min() < wave[0] or line_obs.max() > wave[-1]:
        raise ValueError(f"{complex_name} outside the spectrum ({wave[0]:.0f}-{wave[-1]:.0f} A at z={z:.4f})")
    near = np.zeros_like(sel)
    for c in line_obs:
        near |= np.abs(wave - c) < c * 300.0 / C_KMS
    if np.count_nonzero(sel & near) < 3:
        raise ValueError(f"{complex_name}: no good pixels at the lines")
    if np.count_nonzero(sel) < 12:
        raise ValueError(f"{complex_name}: too few good pixels ({np.count_nonzero(sel)})")


def _instrument(spec, wave, config: FitConfig):
    """Instrumental sigma (km/s) as a function of vacuum wavelength: the spectrum's ``resolution_kms`` where it is
    positive, else ``config.inst_sigma_kms`` (default 0)."""
    res = spec.resolution_kms
    if res is not None:
        rw = wave[np.isfinite(res) & (np.asarray(res) > 0)]
        rv = np.asarray(res)[np.isfinite(res) & (np.asarray(res) > 0)]
    if res is not None and rw.size:
        def inst(lam, _rw=rw, _rv=rv):
            return np.interp(lam, _rw, _rv)
    else:
        const = float(config.inst_sigma_kms or 0.0)

        def inst(lam, _c=const):
            return np.full(np.shape(lam), _c, dtype=float)
    return inst


def _stellar_window(wave, stellar, lo, hi):
    """(vacuum wave, stellar model) over a window, every pixel where the model is defined (for plots/EWs)."""
    if stellar is None:
        return None
    pad = 0.02 * (hi - lo)
    w = (wave >= lo - pad) & (wave <= hi + pad) & np.isfinite(stellar)
    return (wave[w].copy(), stellar[w].copy())
