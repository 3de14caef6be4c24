"""Tools shared by the whole-spectrum continuum fits (:mod:`galdesk.lines.stellar`, :mod:`galdesk.lines.agn`):
the spectrum's arrays, masks of emission and sky lines, the instrumental resolution, a variable-width Gaussian
convolution and non-negative least squares.

Wavelengths are vacuum Angstrom, resolutions Gaussian sigma in km/s.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import nnls

from galdesk.lines import linelist as LL
from galdesk.units import C_KMS

__all__ = ["EMISSION_MASK_LINES", "SKY_LINES", "cancellable", "spectrum_arrays", "mask_pixels", "instrument_sigma",
           "gauss_convolve_variable", "nnls_scaled"]

#: Vacuum rest wavelengths (Angstrom) masked in the continuum fit: emission lines of galaxies and AGN, plus the
#: interstellar Na D doublet (absorption that stellar templates do not describe).
EMISSION_MASK_LINES = {
    "oii3726": 3727.09, "oii3729": 3729.88, "neiii3869": 3869.86, "h8_hei3889": 3890.15, "neiii3968_heps": 3969.5,
    "heps": 3971.20, "sii4070": 4069.75, "hdelta": 4102.89, "hgamma": 4341.68, "oiii4363": 4364.44,
    "heii4686": 4687.02, "hbeta": 4862.68, "oiii4959": 4960.30, "oiii5007": 5008.24, "ni5200": 5201.7,
    "hei5876": 5877.25, "nad5890": 5891.58, "nad5896": 5897.56, "oi6300": 6302.05, "siii6312": 6313.8,
    "oi6364": 6365.54, "nii6548": 6549.86, "halpha": 6564.61, "nii6584": 6585.27, "hei6678": 6679.99,
    "sii6717": 6718.29, "sii6731": 6732.67, "hei7065": 7067.14, "ariii7135": 7137.77,
}
#: Strong night-sky lines, observed vacuum Angstrom, masked +- 6 A.
SKY_LINES = (5578.89, 5891.6, 6302.05, 6365.5)


def spectrum_arrays(spec, what: str):
    """The arrays of a spectrum for a continuum fit.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    what : str
        What is being fitted, for the error message ("stellar continuum", ...).

    Returns
    -------
    (id, z, vacuum wavelength, flux, ivar, good)
        ``good``: the spectrum's good pixels with finite flux and positive, finite inverse variance.

    Raises
    ------
    ValueError
        The spectrum has no redshift (the message names it).
    """
    sid = getattr(spec, "id", "spectrum")
    z = spec.redshift
    if z is None or not np.isfinite(z):
        raise ValueError(f"{sid}: a redshift is needed to fit the {what}")
    wave = np.asarray(spec.wavelength, float)
    if not getattr(spec, "vacuum", True):
        wave = LL.air_to_vac(wave)
    flux = np.asarray(spec.flux, float)
    ivar = np.asarray(spec.ivar, float)
    good = np.asarray(spec.good, bool) & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    return sid, float(z), wave, flux, ivar, good


def mask_pixels(wave_vac: np.ndarray, z: float, mask_kms: float) -> np.ndarray:
    """True where an emission line (:data:`EMISSION_MASK_LINES`, +- ``mask_kms``) or a strong sky line
    (:data:`SKY_LINES`, +- 6 A) may sit, at redshift ``z``."""
    bad = np.zeros(wave_vac.size, bool)
    for rest in EMISSION_MASK_LINES.values():
        c = rest * (1 + z)
        bad |= np.abs(wave_vac - c) < c * mask_kms / C_KMS
    for c in SKY_LINES:
        bad |= np.abs(wave_vac - c) < 6.0
    return bad


def instrument_sigma(spec, wave, lam_rest, z, fwhm_a, inst_sigma_kms):
    """Instrumental and template resolution at rest wavelengths.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        Its ``resolution_kms`` (sigma, km/s, per pixel) is used where it has more than 10 positive values.
    wave : ndarray
        The spectrum's vacuum wavelength, Angstrom.
    lam_rest : ndarray
        Rest wavelengths where the resolution is wanted, Angstrom.
    z : float
    fwhm_a : float or ndarray
        The templates' resolution, FWHM in Angstrom (a scalar, or one value per ``lam_rest``).
    inst_sigma_kms : float or None
        Instrumental sigma to use when the spectrum has no resolution.

    Returns
    -------
    (templates' sigma, instrument's sigma, known)
        Both in km/s at ``lam_rest``; without a resolution from the spectrum or ``inst_sigma_kms`` the instrument
        is taken to be the templates' own and ``known`` is False.
    """
    sig_tpl = fwhm_a / (2 * math.sqrt(2 * math.log(2))) / lam_rest * C_KMS
    res = getattr(spec, "resolution_kms", None)
    if res is not None:
        res = np.asarray(res, float)
        ok = np.isfinite(res) & (res > 0)
        if np.count_nonzero(ok) > 10:
            return sig_tpl, np.interp(lam_rest * (1 + z), wave[ok], res[ok]), True
    if inst_sigma_kms is not None:
        return sig_tpl, np.full(lam_rest.size, float(inst_sigma_kms)), True
    return sig_tpl, sig_tpl.copy(), False


def gauss_convolve_variable(flux: np.ndarray, sigma_pix: np.ndarray) -> np.ndarray:
    """Convolve each row with a Gaussian whose sigma (pixels) varies along the row (banded, normalised).

    Parameters
    ----------
    flux : ndarray (n_rows, n_pix)
    sigma_pix : ndarray (n_pix,)
        Gaussian sigma at each output pixel, in pixels; below 0.05 everywhere the rows are returned unchanged.
    """
    smax = float(np.max(sigma_pix))
    if smax < 0.05:
        return flux.copy()
    k = max(1, int(math.ceil(4 * smax)))
    offs = np.arange(-k, k + 1)
    s = np.clip(sigma_pix, 1e-3, None)
    w = np.exp(-0.5 * (offs[None, :] / s[:, None]) ** 2)  # (n_pix, 2k+1), kernel centred on the output pixel
    w /= w.sum(axis=1, keepdims=True)
    padded = np.pad(flux, ((0, 0), (k, k)), mode="edge")
    n = flux.shape[1]
    out = np.zeros_like(flux)
    for j, o in enumerate(offs):
        out += padded[:, k + o:k + o + n] * w[:, j]
    return out


def nnls_scaled(A, b):
    """Non-negative least squares, min |A x - b| with x >= 0, with the columns scaled to unit norm (zero columns
    get weight 0). Uses :func:`scipy.optimize.nnls` (looked up in this module)."""
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    x, _ = nnls(A / scale, b, maxiter=50 * A.shape[1])
    return x / scale


def cancellable(fn, ctx):
    """``fn`` that first checks ``ctx`` for cancellation (a TaskContext, or None: ``fn`` itself), for the residual
    function of an optimiser: a Cancel reaches a fit within one function evaluation, not at its end."""
    if ctx is None:
        return fn

    def wrapped(*args, **kwargs):
        ctx.check_cancelled()
        return fn(*args, **kwargs)

    return wrapped
