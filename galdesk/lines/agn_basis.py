"""The basis of the broad-line AGN pseudo-continuum fit (:func:`galdesk.lines.agn.fit_agn_continuum`): host
templates, power laws and Fe II groups on a padded rest ln λ grid, broadened and shifted, sampled at the pixels and
solved for non-negative weights at given kinematics.

Wavelengths are vacuum Angstrom, velocities and dispersions km/s.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial import legendre
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

from galdesk.lines.spectral import gauss_convolve_variable, instrument_sigma, mask_pixels, nnls_scaled, spectrum_arrays
from galdesk.lines.stellar import Templates
from galdesk.tasks import NullContext
from galdesk.units import C_KMS

__all__ = ["AGNOptions", "AGNBasis", "broad_mask", "FWHM_PER_SIGMA"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def broad_mask(wave_vac: np.ndarray, z: float, masks) -> np.ndarray:
    """True at the pixels whose rest wavelength (vacuum, at redshift ``z``) lies in one of the ``masks`` ranges."""
    bad = np.zeros(wave_vac.size, bool)
    rest = wave_vac / (1 + z)
    for lo, hi in masks:
        bad |= (rest >= lo) & (rest <= hi)
    return bad


@dataclass(frozen=True)
class AGNOptions:
    """The options of :func:`galdesk.lines.agn.fit_agn_continuum` (see there; ``slopes`` = ``powerlaw_slopes``,
    ``fwhm_grid`` / ``fwhm_bounds`` = ``feii_fwhm_grid`` / ``feii_fwhm_bounds``)."""

    host: bool
    slopes: tuple
    degree: int
    masks: Any
    mask_kms: float
    clip: float
    fwhm_grid: Any
    fwhm_bounds: tuple
    feii_v_max: float
    sigma_start: float
    sigma_max: float
    v_max: float
    inst_sigma_kms: float | None
    min_pixels: int


class AGNBasis:
    """One spectrum and its AGN pseudo-continuum basis: host templates (broadened to the instrument), power laws and
    Fe II groups on a padded rest ln λ grid, Fourier-transformed for the Gaussian broadening; sampled at the pixels
    (with least-recently-used caches) and solved for non-negative weights at given kinematics (variable
    projection). The nonlinear parameters ``p`` are (v*, σ*, v_Fe, σ_Fe), or (v_Fe, σ_Fe) without a host.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    tpl : Templates
        Host templates.
    fe : galdesk.lines.agn.FeIITemplate
        Fe II line list.
    opts : AGNOptions
    ctx : TaskContext or None
        Cancellation, checked at every residual evaluation.

    Raises
    ------
    ValueError
        No redshift, or fewer than ``opts.min_pixels`` good pixels to fit.
    """

    def __init__(self, spec, tpl: Templates, fe, opts: AGNOptions, ctx=None) -> None:
        self.tpl, self.opts = tpl, opts
        self.sid, self.z, self.wave, self.flux, self.ivar, good = spectrum_arrays(spec, "AGN continuum")
        z, wave = self.z, self.wave
        lam_t = tpl.lam
        sig_fe_max = opts.fwhm_bounds[1] / FWHM_PER_SIGMA
        margin = math.log1p((max(opts.v_max, opts.feii_v_max) + 3 * sig_fe_max) / C_KMS)
        # fit only where the host templates, shifted and broadened, are defined (their edges would be padding); the
        # Fe II lives on a padded grid and has no edge
        self.edge = 1.0 + (opts.v_max + 4 * opts.sigma_max) / C_KMS
        self.lo = lam_t[0] * (1 + z) * self.edge
        self.hi = lam_t[-1] * (1 + z) / self.edge
        inside = (wave >= self.lo) & (wave <= self.hi)
        self.fitpix = good & inside & ~mask_pixels(wave, z, opts.mask_kms) & ~broad_mask(wave, z, opts.masks)
        if np.count_nonzero(self.fitpix) < opts.min_pixels:
            raise ValueError(f"{self.sid}: only {np.count_nonzero(self.fitpix)} good continuum pixels outside the "
                             f"broad lines in the templates' rest range {lam_t[0]:.0f}-{lam_t[-1]:.0f} A at "
                             f"z={z:.4f} (need {opts.min_pixels})")
        # rest grid: the templates' own, padded so that broad Fe II and shifts do not wrap around
        self.pix_kms = C_KMS * tpl.dln
        pad = int(math.ceil(margin / tpl.dln)) + 2
        n_t = tpl.flux.shape[1]
        self.nfft = nfft = next_fast_len(n_t + 2 * pad)
        self.ln_g0 = tpl.ln0 - pad * tpl.dln
        self.lam_g = np.exp(self.ln_g0 + tpl.dln * np.arange(nfft))
        self.freq2 = (2 * np.pi * rfftfreq(nfft)) ** 2
        sig_tpl, sig_inst, known = instrument_sigma(spec, wave, lam_t, z, tpl.fwhm_at(lam_t), opts.inst_sigma_kms)
        self.messages: list[str] = []
        if not known:
            self.messages.append("instrumental resolution unknown: widths include the instrument")
        self.sig_inst_med = float(np.median(sig_inst))
        # host: templates broadened to the instrument, then to sigma* in Fourier space
        if opts.host:
            H = gauss_convolve_variable(tpl.flux, np.sqrt(np.clip(sig_inst ** 2 - sig_tpl ** 2, 0, None)) /
                                        self.pix_kms)
            self.FH = rfft(np.pad(H, ((0, 0), (pad, nfft - n_t - pad)), mode="edge"), axis=1)
        else:
            self.FH = np.zeros((0, nfft // 2 + 1))
        self.n_host = self.FH.shape[0]
        self.PLg = np.array([(self.lam_g / 5100.0) ** a for a in opts.slopes]).reshape(len(opts.slopes), nfft)
        self._feii_groups(fe, good & inside)
        self.n_pl, self.n_fe = self.PLg.shape[0], self.Fg.shape[0]
        self.x_all = 2 * (wave - self.lo) / (self.hi - self.lo) - 1
        self.P_all = legendre.legvander(np.clip(self.x_all, -1, 1), opts.degree) if opts.degree >= 0 else \
            np.zeros((wave.size, 0))
        self.lnz = math.log1p(z)
        self.lnw = np.log(wave)
        # least-recently-used caches: a finite-difference step changes one parameter, so the other components'
        # convolved templates (and their values on the pixels) are reused rather than recomputed
        self.conv_cache: OrderedDict = OrderedDict()
        self.sample_cache: OrderedDict = OrderedDict()
        self.pixels_key = 0  # bumped whenever the fitted pixels change (clipping)
        self.nfev = 0
        self.ctx = ctx or NullContext()

    def _feii_groups(self, fe, have: np.ndarray) -> None:
        """The Fe II groups on the grid (``Fg``, their transforms ``FF``, ``fe_names``) that mostly lie where there
        are data (``have``: good pixels in range; ``seen`` marks them on the grid): a group whose lines fall beyond
        the fitted range or in a gap of bad pixels would be scaled up by the tails of its broadened lines alone
        (and blow up where it is not seen). Lines under the broad-line masks count as seen: they are predicted
        from the rest of their group."""
        tpl, nfft, wave = self.tpl, self.nfft, self.wave
        Fg, fe_names = fe.on_grid(self.ln_g0, tpl.dln, nfft)
        self.seen = seen = np.zeros(nfft, bool)
        j_ok = np.round((np.log(wave[have] / (1 + self.z)) - self.ln_g0) / tpl.dln).astype(int)
        step = max(1, int(np.ceil(np.median(np.abs(np.diff(np.log(wave)))) / tpl.dln)))
        for o in range(-step, step + 1):
            seen[np.clip(j_ok + o, 0, nfft - 1)] = True
        seen_share = Fg[:, seen].sum(axis=1) / Fg.sum(axis=1)
        self.Fg = Fg[seen_share >= 0.5]
        self.fe_names = [nm for nm, share in zip(fe_names, seen_share) if share >= 0.5]
        self.FF = rfft(self.Fg, axis=1)

    def sample(self, grid, v, pixels) -> np.ndarray:
        """Rows of ``grid`` (rest ln λ) shifted by ``v`` km/s and interpolated at the pixels: (n_pix, n_rows)."""
        idx = (self.lnw[pixels] - self.lnz - math.log1p(v / C_KMS) - self.ln_g0) / self.tpl.dln
        j = np.clip(np.floor(idx).astype(int), 0, self.nfft - 2)
        f = idx - j
        return (grid[:, j] * (1 - f) + grid[:, j + 1] * f).T

    @staticmethod
    def _lru(cache, key, make, size=6):
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        cache[key] = val = make()
        if len(cache) > size:
            cache.popitem(last=False)
        return val

    def conv(self, kind: str, s: float) -> np.ndarray:
        """Host templates (``kind`` "host") convolved to σ* = ``s``, or Fe II groups to intrinsic σ_Fe = ``s``
        (plus the median instrument), on the grid."""
        nfft, freq2 = self.nfft, self.freq2
        if kind == "host":
            g = (max(s, 1e-3) / self.pix_kms) ** 2
            return self._lru(self.conv_cache, (kind, float(s)),
                             lambda: irfft(self.FH * np.exp(-0.5 * freq2 * g), n=nfft, axis=1))
        g = (math.hypot(s, self.sig_inst_med) / self.pix_kms) ** 2
        return self._lru(self.conv_cache, (kind, float(s)),
                         lambda: irfft(self.FF * np.exp(-0.5 * freq2 * g), n=nfft, axis=1))

    def sampled(self, kind: str, s: float, v: float, pixels) -> np.ndarray:
        """:meth:`sample` of a component ("host", "pl" or "fe"), cached for the current fitted pixels."""
        key = (kind, float(s), float(v), self.pixels_key)
        return self._lru(self.sample_cache, key,
                         lambda: self.sample(self.PLg if kind == "pl" else self.conv(kind, s), v, pixels), size=12)

    def unpack(self, p):
        """(v*, σ*, v_Fe, σ_Fe) from ``p`` (v* = 0 and σ* = NaN without a host)."""
        if self.opts.host:
            return p[0], p[1], p[2], p[3]
        return 0.0, float("nan"), p[0], p[1]

    def design(self, p, pixels) -> np.ndarray:
        """Host, power-law and Fe II columns at the pixels for the kinematics ``p``."""
        v_h, s_h, v_f, s_f = self.unpack(p)
        cols = []
        if self.opts.host:
            cols.append(self.sampled("host", s_h, v_h, pixels))
        cols.append(self.sampled("pl", 0.0, 0.0, pixels))
        cols.append(self.sampled("fe", s_f, v_f, pixels))
        return np.hstack(cols)

    def solve(self, p, pixels, with_fe=True):
        """Non-negative weights (components, then the ± polynomial) and weighted residuals at the kinematics
        ``p``; ``with_fe=False`` leaves the Fe II out."""
        A0 = self.design(p, pixels)
        if not with_fe:
            A0 = A0[:, :A0.shape[1] - self.n_fe]
        P = self.P_all[pixels]
        wt = np.sqrt(self.ivar[pixels])
        A = np.hstack([A0, P, -P]) * wt[:, None]
        b = self.flux[pixels] * wt
        x = nnls_scaled(A, b)
        return x, b - A @ x

    def resid(self, p, pixels) -> np.ndarray:
        """Projected residuals, for ``least_squares`` (checks for cancellation)."""
        self.nfev += 1
        self.ctx.check_cancelled()
        return self.solve(p, pixels)[1]
