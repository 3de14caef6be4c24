"""The continuum under the emission lines: which model a spectrum gets, the whole-spectrum fit (cached on the
spectrum) and the starting local polynomial of a complex.

The whole-spectrum models are the stellar populations of :mod:`galdesk.lines.stellar` and the broad-line AGN
pseudo-continuum of :mod:`galdesk.lines.agn` (both imported only when needed).
"""

from __future__ import annotations

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.units import C_KMS

__all__ = ["continuum_kind", "stellar_continuum", "guess_continuum"]


def continuum_kind(spec, config: FitConfig) -> str:
    """The continuum this spectrum gets: "stellar", "agn" or "local". For ``continuum="auto"`` the spectrum decides
    (:func:`galdesk.lines.choose.choose_continuum`, fitted once and cached): "local" when no template fit is
    possible."""
    if config.continuum != "auto":
        return config.continuum
    stellar_continuum(spec, config)
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    return meta.get("continuum_kind", "local")


def _fit_continuum(spec, config: FitConfig, meta: dict, ctx=None):
    """The whole-spectrum continuum fit of :func:`stellar_continuum` (not cached); ``meta["continuum_choice"]``
    records why (ValueError when it cannot be fitted)."""
    from galdesk.lines.agn import agn_masks, fit_agn_continuum

    masks = agn_masks(config.agn_windows)
    if config.continuum == "auto":
        from galdesk.lines.choose import choose_continuum

        ch = choose_continuum(spec, config.stellar_templates, inst_sigma_kms=config.inst_sigma_kms,
                              agn_masks=masks, ctx=ctx)
        choice = ch.to_dict()
        if ch.kind == "stellar" and config.stellar_powerlaw:
            choice["reason"] = "stellar + power law: asked for (" + ch.reason + ")"
            meta["continuum_choice"] = choice
            return "stellar", ch.fits["stellar_powerlaw"]
        meta["continuum_choice"] = choice
        return ch.kind, ch.fits[ch.kind]
    meta["continuum_choice"] = {"kind": config.continuum, "reason": f"{config.continuum}: asked for"}
    if config.continuum == "agn":
        return "agn", fit_agn_continuum(spec, config.stellar_templates, inst_sigma_kms=config.inst_sigma_kms,
                                        masks=masks, ctx=ctx)
    from galdesk.lines.stellar import fit_stellar_continuum

    return "stellar", fit_stellar_continuum(spec, config.stellar_templates, inst_sigma_kms=config.inst_sigma_kms,
                                            powerlaw=config.stellar_powerlaw, ctx=ctx)


def stellar_continuum(spec, config: FitConfig, ctx=None) -> np.ndarray | None:
    """The continuum model of a spectrum (its pixels; NaN where undefined), or None for a local continuum.

    Stellar populations (:func:`galdesk.lines.stellar.fit_stellar_continuum`) or host + power law + Fe II
    (:func:`galdesk.lines.agn.fit_agn_continuum`), as ``config.continuum`` says; "auto" lets the spectrum decide
    (:func:`galdesk.lines.choose.choose_continuum`). Fitted once per spectrum and cached in ``spec.meta``:
    ``"stellar_continuum"`` (the model), ``"stellar_fit"`` (the :class:`~galdesk.lines.stellar.StellarFit` or
    :class:`~galdesk.lines.agn.AGNContinuumFit`), ``"continuum_kind"`` ("stellar"/"agn"), ``"continuum_choice"``
    (why) or ``"stellar_error"`` (why there is none). ``ctx`` (a TaskContext) can cancel the fit: Cancelled is
    raised and nothing is cached.

    Raises
    ------
    ValueError
        ``continuum`` "stellar" or "agn" was asked for and the templates cannot be fitted.
    """
    if config.continuum == "local":
        return None
    meta = spec.meta if isinstance(spec.meta, dict) else None
    if meta is None:
        spec.meta = meta = {}
    have = meta.get("stellar_continuum")
    key = f"{config.continuum}|{config.stellar_templates or ''}|powerlaw={bool(config.stellar_powerlaw)}"
    if config.agn_windows != "masks":
        key += f"|windows={config.agn_windows}"
    if have is not None and meta.get("stellar_key", key) == key:
        have = np.asarray(have, dtype=float)
        if have.shape != np.shape(spec.flux):
            raise ValueError(f"{spec.id}: stellar_continuum has shape {have.shape}, the flux {np.shape(spec.flux)}")
        return have
    if meta.get("stellar_error") is not None and meta.get("stellar_key") == key:
        if config.continuum != "auto":
            raise ValueError(meta["stellar_error"])
        return None
    meta["stellar_key"] = key
    try:
        kind, st = _fit_continuum(spec, config, meta, ctx)
    except ValueError as exc:
        what = "AGN continuum" if config.continuum == "agn" else "stellar continuum"
        meta["stellar_error"] = f"{what}: {exc}"
        for k in ("stellar_fit", "stellar_continuum", "continuum_kind", "continuum_choice"):
            meta.pop(k, None)
        if config.continuum != "auto":
            raise ValueError(meta["stellar_error"]) from exc
        return None
    meta.pop("stellar_error", None)
    meta["stellar_fit"] = st
    meta["stellar_continuum"] = st.model
    meta["continuum_kind"] = kind
    return st.model


def guess_continuum(wave, flux, z, cx, order, exclude_kms=1500.0):
    """Starting values of a complex's local polynomial continuum: a robust straight line through its pixels away
    from the lines (medians of the two halves).

    Parameters
    ----------
    wave, flux : ndarray
        Observed vacuum wavelength (Angstrom) and flux of the fitted pixels.
    z : float
    cx : galdesk.lines.linelist.Complex
    order : int
        Polynomial order (coefficients above 1 start at 0).
    exclude_kms : float
        Pixels closer than this to a line of the complex are left out (unless fewer than 6 would remain).

    Returns
    -------
    rest_ref : float
        Mean rest wavelength of the complex's lines, Angstrom: the polynomial's x = 0.
    coef : ndarray (order + 1,)
        Coefficients of x^k, x = 100 (lambda / (rest_ref (1 + z)) - 1).
    x : ndarray
        x at ``wave``.
    """
    rest_ref = float(np.mean([LL.LINES[n] for n in cx.lines]))
    lam_ref = rest_ref * (1 + z)
    x = 100.0 * (wave / lam_ref - 1.0)
    far = np.ones(wave.size, bool)
    for n in cx.lines:
        c = LL.LINES[n] * (1 + z)
        far &= np.abs(wave - c) > c * exclude_kms / C_KMS
    if np.count_nonzero(far) < 6:
        far = np.ones(wave.size, bool)
    xl, yl = x[far], flux[far]
    left, right = xl < np.median(xl), xl >= np.median(xl)
    coef = np.zeros(order + 1)
    if left.any() and right.any() and order >= 1:
        x0, x1 = np.median(xl[left]), np.median(xl[right])
        y0, y1 = np.median(yl[left]), np.median(yl[right])
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        coef[0] = y0 - slope * x0
        coef[1] = slope
    else:
        coef[0] = np.median(yl)
    return rest_ref, coef, x
