"""Noise estimated from the flux itself, for spectra whose files carry no usable errors.

The estimator is DER_SNR (Stoehr et al. 2008, ST-ECF Newsletter 42; the "DER_SNR" algorithm of the ST-ECF): for
Gaussian noise that is uncorrelated from pixel to pixel, the second difference ``2 f_i - f_{i-2} - f_{i+2}`` of a
spectrum whose signal is smooth over five pixels has variance ``6 sigma**2``, and its median absolute value is
``0.6745 sqrt(6) sigma``; hence

    ``sigma = 1.482602 / sqrt(6) * median(|2 f_i - f_{i-2} - f_{i+2}|)``.

Pixels two apart (not adjacent) keep the estimate from most of the pixel-to-pixel correlation of resampled spectra,
and the median ignores the few pixels of a narrow line, a sky residual or a cosmic ray.

Here the median runs over a sliding window (:data:`DEFAULT_WINDOW` pixels), so the noise follows the wavelength (the
blue end, sky lines, dichroic regions), evaluated every ``window // 10`` pixels and interpolated linearly between.
Second differences that touch a masked or non-finite pixel are left out, so bad pixels cannot poison it; a window
with too few valid differences takes the estimate of its neighbours. Where a window's median is 0 (integer counts
at low flux) the whole spectrum's estimate is used. A spectrum with no pixel-to-pixel scatter at all (a noise-free
model, a straight line) has no estimate: :func:`estimate_sigma` returns None.

Accuracy against the pipeline errors of real spectra (``docs/lines_validation.md``, "Spectra without errors",
measured by ``tests/test_io_noise.py``): on the continuum the median ratio estimated / pipeline sigma is 1.02 for
SDSS, 1.01 for LAMOST (bright stars higher: their absorption lines count as noise) and 0.73 for 6dFGS (noise
correlated two pixels apart, which DER_SNR assumes away). Within a few pixels of a strong line the windows see the
line's own second differences, so the estimate rises there; on SDSS it then matches the pipeline's noise, which grows
with the line's photons (median 1.06). Emission lines are deliberately not masked first: that left the errors at the
lines 5-35 % too small.

This module uses NumPy only; :func:`add_estimated_errors` is what :func:`galdesk.io.reading.check_spectrum` (every
file read) and the project store (spectra stored without errors) call.
"""

from __future__ import annotations

import numpy as np

from galdesk.io.model import SpectrumData

__all__ = ["DEFAULT_WINDOW", "DER_SNR_FACTOR", "der_snr", "estimate_sigma", "estimate_ivar", "describe",
           "add_estimated_errors"]

#: Pixels in the sliding window of the local estimate.
DEFAULT_WINDOW = 101
#: ``1.482602 / sqrt(6)``: median absolute second difference -> Gaussian sigma.
DER_SNR_FACTOR = 1.482602 / np.sqrt(6.0)
#: Fewest valid second differences a window (or a whole spectrum) needs for an estimate.
MIN_DIFFERENCES = 8
_CHUNK = 20000


def _second_differences(flux: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``|2 f_i - f_{i-2} - f_{i+2}|`` for every pixel (NaN at the two pixels of each end and wherever one of the
    three pixels is bad)."""
    n = flux.size
    d = np.full(n, np.nan)
    if n < 5:
        return d
    ok = ~bad[2:-2] & ~bad[:-4] & ~bad[4:]
    with np.errstate(invalid="ignore", over="ignore"):
        core = np.abs(2.0 * flux[2:-2] - flux[:-4] - flux[4:])
    d[2:-2] = np.where(ok, core, np.nan)
    return d


def der_snr(flux, mask=None) -> tuple[float, float]:
    """The whole-spectrum DER_SNR: ``(signal, noise)`` with signal the median good flux and noise the sigma above
    (NaN when fewer than :data:`MIN_DIFFERENCES` second differences are valid)."""
    flux = np.asarray(flux, dtype=np.float64).ravel()
    bad = ~np.isfinite(flux) if mask is None else (np.asarray(mask, bool).ravel() | ~np.isfinite(flux))
    d = _second_differences(flux, bad)
    d = d[np.isfinite(d)]
    if d.size < MIN_DIFFERENCES:
        return float("nan"), float("nan")
    return float(np.median(flux[~bad])), float(DER_SNR_FACTOR * np.median(d))


def estimate_sigma(flux, mask=None, window: int = DEFAULT_WINDOW) -> np.ndarray | None:
    """Per-pixel 1-sigma noise of ``flux`` from a sliding DER_SNR (module docstring).

    Parameters
    ----------
    flux : array (n,)
    mask : bool array (n,), optional
        True marks pixels not to use (non-finite flux is always left out).
    window : int
        Pixels in the sliding window (made odd; the whole spectrum when it is shorter).

    Returns
    -------
    ndarray (n,) or None
        Positive, finite everywhere (masked pixels get the value of their surroundings); None when the spectrum has
        too few valid pixels or no pixel-to-pixel scatter.
    """
    flux = np.asarray(flux, dtype=np.float64).ravel()
    bad = ~np.isfinite(flux) if mask is None else (np.asarray(mask, bool).ravel() | ~np.isfinite(flux))
    n = flux.size
    d = _second_differences(flux, bad)
    valid = np.isfinite(d)
    if valid.sum() < MIN_DIFFERENCES:
        return None
    overall = DER_SNR_FACTOR * float(np.median(d[valid]))
    if not overall > 0:  # most differences exactly 0: integer counts or a model; the mean still sees the scatter
        overall = float(np.sqrt(np.pi / 2.0) / np.sqrt(6.0) * np.mean(d[valid]))
    if not (np.isfinite(overall) and overall > 0):
        return None
    window = max(5, min(int(window), n))
    half = window // 2
    centres = np.unique(np.append(np.arange(0, n, max(1, window // 10)), n - 1))
    padded = np.concatenate([np.full(half, np.nan), d, np.full(half, np.nan)])
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    local = np.full(centres.size, np.nan)
    for start in range(0, centres.size, _CHUNK):  # bounded memory for very long spectra
        rows = view[centres[start:start + _CHUNK]]
        enough = np.isfinite(rows).sum(axis=1) >= max(MIN_DIFFERENCES, window // 5)
        if enough.any():
            local[start:start + _CHUNK][enough] = DER_SNR_FACTOR * np.nanmedian(rows[enough], axis=1)
    known = np.isfinite(local)
    if not known.any():
        return np.full(n, overall)
    return np.interp(np.arange(n), centres[known], np.where(local[known] > 0, local[known], overall))


def estimate_ivar(flux, mask=None, window: int = DEFAULT_WINDOW) -> np.ndarray | None:
    """``1 / sigma**2`` of :func:`estimate_sigma`, 0 on masked and non-finite pixels; None when there is no
    estimate."""
    sigma = estimate_sigma(flux, mask, window)
    if sigma is None:
        return None
    flux = np.asarray(flux, dtype=np.float64).ravel()
    bad = ~np.isfinite(flux) if mask is None else (np.asarray(mask, bool).ravel() | ~np.isfinite(flux))
    return np.where(bad, 0.0, 1.0 / sigma**2)


def describe(window: int = DEFAULT_WINDOW) -> str:
    """The text that ``meta["errors_estimated"]`` holds: how the errors were made."""
    return f"DER_SNR, {int(window)} px"


def add_estimated_errors(spec: SpectrumData, window: int = DEFAULT_WINDOW) -> bool:
    """Give a spectrum without usable errors (``meta["no_errors"]``) errors estimated from its flux.

    On success ``spec.ivar`` is the estimate (0 on masked pixels), ``"no_errors"`` leaves ``meta`` (the spectrum
    now has errors and is weighted by them) and ``meta["errors_estimated"]`` says how (:func:`describe`). Without an
    estimate (:func:`estimate_sigma` returns None) nothing changes but a ``meta["warnings"]`` line. A spectrum that
    has errors is left alone.

    Returns
    -------
    bool
        True when errors were estimated.
    """
    meta = spec.meta
    if not meta.get("no_errors"):
        return False
    mask = np.asarray(spec.mask, bool).ravel() if spec.mask is not None else None
    ivar = estimate_ivar(spec.flux, mask, window)
    if ivar is None:
        note = "no errors in the file and none could be estimated (the flux has no pixel-to-pixel scatter)"
        warnings = meta.setdefault("warnings", [])
        if note not in warnings:
            warnings.append(note)
        return False
    spec.ivar = ivar
    meta.pop("no_errors", None)
    meta["errors_estimated"] = describe(window)
    return True
