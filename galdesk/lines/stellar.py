"""Stellar-population continuum: fit a galaxy spectrum with simple-stellar-population templates, emission masked.

Balmer emission of galaxies with young and intermediate-age stars sits in a stellar absorption trough that is
hundreds of Angstrom wide at its wings. Fitting the emission on a local straight line biases Hβ (and Hα less);
the standard cure, used by the SDSS pipeline (spZline on the ``vdispfit`` stellar continuum), MPA-JHU, GANDALF,
pPXF and GELATO, is to fit stellar templates to the whole spectrum with the emission lines masked and to measure
the lines on the residual. This module does that fit:

    model(λ) = [Σ_k w_k (T_k ⊗ G(v, σ*))(λ)] · P(λ),     w_k ≥ 0

with T_k the bundled Bruzual & Charlot (2003) MILES SSPs (``resources/templates/bc03_miles_ssp.fits``; 12 ages x
3 metallicities, see ``scripts/build_stellar_templates.py``), G a Gaussian line-of-sight velocity distribution and
P a Legendre polynomial. Two stages, as in common pPXF practice: (1) the kinematics v, σ* with an *additive*
degree-4 polynomial instead of P (weights and polynomial linear: non-negative least squares for the weights with
the free polynomial projected out exactly, :func:`galdesk.lines.stellar_solve.nnls_free`; v and σ* by
``scipy.optimize.least_squares`` on the projected residuals, i.e. variable projection), with > 3σ outliers
(unmasked emission, sky residuals) clipped and the fit repeated; (2) at those kinematics, the weights with a
*multiplicative* degree-8 P (reddening and flux calibration, without diluting the absorption lines), solved by
bounded Gauss-Newton (:func:`galdesk.lines.stellar_solve.solve_multiplicative`). The templates are first
broadened to the spectrum's instrumental resolution (SDSS ``wdisp``; quadrature difference with the MILES 2.5 Å
FWHM), so σ* is the stellar velocity dispersion; the σ* convolution is done in Fourier space on a uniform ln λ
grid. Optionally (``powerlaw=True``) featureless power laws join the templates, for the AGN continuum of Seyfert
galaxies.

This is the Gaussian-LOSVD special case of Cappellari & Emsellem (2004, pPXF). galdesk does not depend on pPXF:
its licence allows non-commercial use only and forbids redistribution, and the lines need nothing beyond this
case (``benchmarks/bench_stellar.py`` compares the two).
Any template set in the same FITS layout (image of N templates on a uniform ln λ grid, header ``LNLAM0``,
``DLNLAM``, ``FWHM_A``, ``VACUUM``) can be given instead of the bundled one.
Template files: :mod:`galdesk.lines.stellar_templates`; the linear solves: :mod:`galdesk.lines.stellar_solve`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.polynomial import legendre
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
from scipy.optimize import least_squares

from galdesk.lines.spectral import (
    cancellable,
    gauss_convolve_variable,
    instrument_sigma,
    mask_pixels,
    spectrum_arrays,
)
from galdesk.lines.stellar_solve import free_basis, nnls_free, solve_multiplicative
from galdesk.lines.stellar_templates import (
    POWERLAW_SLOPES,
    Templates,
    default_template_path,
    load_templates,
    second_template_path,
    template_resource,
)
from galdesk.tasks import NullContext
from galdesk.units import C_KMS

__all__ = ["Templates", "StellarFit", "load_templates", "fit_stellar_continuum", "default_template_path",
           "template_resource", "second_template_path", "POWERLAW_SLOPES"]

@dataclass
class StellarFit:
    """Result of :func:`fit_stellar_continuum`.

    Attributes
    ----------
    model : ndarray
        Best-fit continuum on every pixel of the spectrum (spectrum flux unit); NaN outside the templates' range.
    used : ndarray of bool
        Pixels that entered the final fit (good, unmasked, not clipped).
    velocity_kms, velocity_err, sigma_kms, sigma_err : float
        Stellar velocity relative to the spectrum's redshift and velocity dispersion (instrument removed), with
        errors from the Jacobian (noise as given by the inverse variance, not rescaled).
    chi2nu : float
    ndata : int
    n_clipped : int
        Pixels rejected as > ``clip`` sigma outliers.
    light_fractions : ndarray
        Template weights as fractions of the model's light at rest 5400-5600 Å.
    log_age_lw, z_lw : float
        Light-weighted mean log10(age / yr) and mean Z/Zsun of the stellar templates.
    powerlaw_fraction : float
        Fraction of the light at 5500 Å in the featureless power laws (``powerlaw=True``), else 0.
    poly_fraction : float
        With the multiplicative polynomial (default): its largest departure from its median over the fitted
        pixels (reddening and flux calibration); with the additive one: median |polynomial| / median model (large
        values mean the templates do not describe the spectrum).
    fit_range : (float, float)
        Observed vacuum wavelengths fitted, Angstrom.
    templates : str
        Template file.
    """

    model: np.ndarray
    used: np.ndarray
    velocity_kms: float
    velocity_err: float
    sigma_kms: float
    sigma_err: float
    chi2nu: float
    ndata: int
    n_clipped: int
    light_fractions: np.ndarray
    log_age_lw: float
    z_lw: float
    poly_fraction: float
    fit_range: tuple[float, float]
    templates: str
    powerlaw_fraction: float = 0.0
    nfev: int = 0
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Scalar summary (JSON-friendly)."""
        out = {k: getattr(self, k) for k in ("velocity_kms", "velocity_err", "sigma_kms", "sigma_err", "chi2nu",
                                             "ndata", "n_clipped", "log_age_lw", "z_lw", "poly_fraction",
                                             "powerlaw_fraction")}
        out = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}
        out["fit_range"] = [float(self.fit_range[0]), float(self.fit_range[1])]
        out["templates"] = Path(self.templates).name
        out["messages"] = list(self.messages)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def fit_stellar_continuum(spec, templates: Templates | str | Path | None = None, *, degree: int = 4,
                          mdegree: int = 8, powerlaw: bool = False, emission: np.ndarray | None = None,
                          mask_kms: float = 450.0, clip: float = 3.0, sigma_start: float = 120.0,
                          v_max: float = 800.0, sigma_max: float = 600.0, inst_sigma_kms: float | None = None,
                          min_pixels: int = 300, ctx=None) -> StellarFit:
    """Fit the stellar continuum of a galaxy spectrum.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        Needs ``redshift``; uses ``ivar``/``mask`` and ``resolution_kms`` (instrumental sigma, km/s).
    templates : Templates or path or None
        Default: the bundled BC03 MILES SSPs.
    degree : int
        Degree of the additive Legendre polynomial used while fitting the kinematics (-1: none).
    mdegree : int
        Degree of the multiplicative Legendre polynomial of the final fit, with the kinematics fixed (-1: keep
        the additive fit). Multiplicative, as pPXF recommends for stellar populations: it absorbs reddening and
        flux-calibration errors without diluting absorption lines.
    emission : ndarray (k, n_pix) or None
        Emission-line profiles on the spectrum's pixels (e.g. the Gaussians of a first line fit, one row per line),
        fitted jointly with the templates as non-negative additive components, as pPXF's gas templates and GANDALF
        do: no emission mask then (only sky lines), so the pixels under the lines also constrain the population mix
        and the depth of the Balmer troughs. The returned model is the stellar part only.
    powerlaw : bool
        Add featureless power laws f_λ ∝ λ^α (α in :data:`POWERLAW_SLOPES`) to the templates: an AGN continuum
        is otherwise taken for young stars with deep Balmer absorption. Their share of the light at 5500 Å is
        ``StellarFit.powerlaw_fraction``.
    mask_kms : float
        Half-width of the masks on emission lines (:data:`galdesk.lines.spectral.EMISSION_MASK_LINES`), km/s.
    clip : float
        Reject pixels whose residual exceeds this many sigma (two passes; 0 disables).
    sigma_start, v_max, sigma_max : float
        Start and bounds of the LOSVD, km/s.
    inst_sigma_kms : float or None
        Instrumental sigma when the spectrum has no ``resolution_kms`` (default: the templates' own).
    ctx : TaskContext or None
        Cancellation between passes.

    Returns
    -------
    StellarFit

    Raises
    ------
    ValueError
        No redshift, the templates do not cover the spectrum, too few good pixels, or the solvers failed
        numerically (message names the spectrum).
    """
    opts = _Options(degree=degree, mdegree=mdegree, powerlaw=powerlaw, mask_kms=mask_kms, clip=clip,
                    sigma_start=sigma_start, v_max=v_max, sigma_max=sigma_max, inst_sigma_kms=inst_sigma_kms,
                    min_pixels=min_pixels)
    try:
        return _fit_stellar(spec, templates, emission, opts, ctx)
    except (RuntimeError, np.linalg.LinAlgError, FloatingPointError) as exc:  # e.g. NNLS iteration limit
        raise ValueError(f"{getattr(spec, 'id', 'spectrum')}: stellar fit failed ({type(exc).__name__}: {exc})") \
            from exc


@dataclass(frozen=True)
class _Options:
    """The fitting options of :func:`fit_stellar_continuum` (see there)."""

    degree: int
    mdegree: int
    powerlaw: bool
    mask_kms: float
    clip: float
    sigma_start: float
    v_max: float
    sigma_max: float
    inst_sigma_kms: float | None
    min_pixels: int


class _Problem:
    """One spectrum and the templates prepared for it: the fitted range and pixels, the templates broadened to the
    instrument and Fourier-transformed on a padded ln λ grid (for the LOSVD convolution), the additive Legendre
    polynomial, and the linear solve at given kinematics (variable projection)."""

    def __init__(self, spec, tpl: Templates, emission, opts: _Options) -> None:
        self.tpl, self.opts = tpl, opts
        self.sid, self.z, self.wave, self.flux, self.ivar, good = spectrum_arrays(spec, "stellar continuum")
        z, wave = self.z, self.wave
        lam_t = tpl.lam
        self.margin = math.log1p((opts.v_max + 5 * opts.sigma_max) / C_KMS)
        self.lo = lam_t[0] * (1 + z) * math.exp(self.margin)
        self.hi = lam_t[-1] * (1 + z) * math.exp(-self.margin)
        inside = (wave >= self.lo) & (wave <= self.hi)
        if emission is not None:  # emission modelled jointly: only sky lines are masked
            emission = np.atleast_2d(np.asarray(emission, float))
            self.fitpix = good & inside & ~mask_pixels(wave, z, 0.0)
        else:
            self.fitpix = good & inside & ~mask_pixels(wave, z, opts.mask_kms)
        self.emission = emission
        if np.count_nonzero(self.fitpix) < opts.min_pixels:
            raise ValueError(f"{self.sid}: only {np.count_nonzero(self.fitpix)} good continuum pixels inside the "
                             f"templates' rest range {lam_t[0]:.0f}-{lam_t[-1]:.0f} A at z={z:.4f} "
                             f"(need {opts.min_pixels})")
        self.messages: list[str] = []
        self._broaden(spec, inside)
        # Legendre polynomial on the fitted range
        self.x_all = 2 * (wave - self.lo) / (self.hi - self.lo) - 1
        self.P_all = legendre.legvander(np.clip(self.x_all, -1, 1), opts.degree) if opts.degree >= 0 else \
            np.zeros((wave.size, 0))
        self.lnz = math.log1p(z)
        self.cache: dict = {}
        self._pixels: dict | None = None
        self.nfev = 0

    def _broaden(self, spec, inside) -> None:
        """Templates over the rest range the fitted pixels need (plus power laws), broadened to the instrument, and
        their Fourier transforms on a padded grid."""
        tpl, z, wave, opts = self.tpl, self.z, self.wave, self.opts
        lam_t = tpl.lam
        ln_rest = np.log(wave / (1 + z))
        self.i0 = i0 = max(0, int((ln_rest[inside].min() - self.margin - tpl.ln0) / tpl.dln) - 2)
        self.i1 = i1 = min(tpl.flux.shape[1], int((ln_rest[inside].max() + self.margin - tpl.ln0) / tpl.dln) + 3)
        T = tpl.flux[:, i0:i1]
        lam_r = lam_t[i0:i1]
        self.n_ssp = T.shape[0]
        if opts.powerlaw:
            # featureless AGN continuum, f_lambda ~ lambda^alpha (normalised at 5500 A): without it a Seyfert's blue
            # continuum is taken for young stars and their deep Balmer absorption (Cid Fernandes et al. 2004)
            T = np.vstack([T] + [(lam_r / 5500.0) ** a for a in POWERLAW_SLOPES])
        sig_tpl, sig_inst, known = instrument_sigma(spec, wave, lam_r, z, tpl.fwhm_at(lam_r), opts.inst_sigma_kms)
        if not known:
            self.messages.append("instrumental resolution unknown: sigma* includes the instrument's broadening "
                                 f"beyond the templates' {tpl.fwhm_a:g} A FWHM")
        short = np.clip(sig_tpl ** 2 - sig_inst ** 2, 0, None)
        if np.mean(short > 30.0 ** 2) > 0.5:
            # the templates cannot be sharpened: where they are broader than the instrument, the fitted sigma* is
            # smaller than the true one (in quadrature)
            self.messages.append(f"templates broader than the instrument over most of the range: sigma* may be low "
                                 f"(in quadrature, by up to {math.sqrt(float(np.median(short))):.0f} km/s)")
        self.pix_kms = pix_kms = C_KMS * tpl.dln
        T = gauss_convolve_variable(T, np.sqrt(np.clip(sig_inst ** 2 - sig_tpl ** 2, 0, None)) / pix_kms)
        n_t = T.shape[1]
        pad = int(math.ceil(5 * opts.sigma_max / pix_kms)) + 2
        self.nfft = nfft = next_fast_len(n_t + 2 * pad)
        padded = np.pad(T, ((0, 0), (pad, nfft - n_t - pad)), mode="edge")
        # frequency x template (C order): the convolved templates come out pixel x template, so that picking the
        # fitted pixels gathers contiguous rows
        self.FT = np.ascontiguousarray(rfft(padded, axis=1).T)
        self.freq2 = (2 * np.pi * rfftfreq(nfft))[:, None] ** 2
        self.ln_tpl0 = tpl.ln0 + tpl.dln * (i0 - pad)

    def templates_at(self, v, s, pixels) -> np.ndarray:
        """The templates convolved with a Gaussian LOSVD (velocity ``v``, dispersion ``s``, km/s) at the pixels,
        (n_pix, n_templates). The convolution depends on ``s`` alone (``v`` only shifts where it is read), so the
        last one is cached by ``s``: a step in ``v`` (half of a numerical Jacobian) costs no FFT."""
        key = round(float(s), 9)
        if key not in self.cache:
            self.cache.clear()
            g = np.exp(-0.5 * self.freq2 * (max(s, 1e-3) / self.pix_kms) ** 2)
            self.cache[key] = irfft(self.FT * g, n=self.nfft, axis=0)  # (pixel, template)
        conv = self.cache[key]
        idx = (self._pixel_set(pixels)["lnw"] - self.lnz - math.log1p(v / C_KMS) - self.ln_tpl0) / self.tpl.dln
        j = np.clip(np.floor(idx).astype(int), 0, self.nfft - 2)
        f = (idx - j)[:, None]
        return conv[j] * (1 - f) + conv[j + 1] * f  # (n_pix, n_templates)

    def _pixel_set(self, pixels) -> dict:
        """What the linear solve needs of a set of pixels and does not change with the kinematics (cached for the
        last set): ln λ, weights, weighted flux, emission and the QR factors of the weighted polynomial."""
        ps = self._pixels
        if ps is not None and np.array_equal(ps["pixels"], pixels):
            return ps
        wt = np.sqrt(self.ivar[pixels])
        P = self.P_all[pixels]
        Em = self.emission[:, pixels].T if self.emission is not None else np.zeros((wt.size, 0))
        Q, G = free_basis(P * wt[:, None])
        self._pixels = ps = {"pixels": np.array(pixels, copy=True), "lnw": np.log(self.wave[pixels]), "wt": wt,
                             "b": self.flux[pixels] * wt, "P": P, "Emw": Em * wt[:, None], "Q": Q, "G": G}
        return ps

    def solve(self, v, s, pixels):
        """Non-negative template weights and ± polynomial (and emission) coefficients at fixed kinematics:
        ``(x, weighted residuals, templates at the pixels, polynomial at the pixels)``, ``x`` = (weights,
        positive and negative parts of the polynomial coefficients, emission). The polynomial is free (signed) and
        solved exactly by projecting it out (:func:`~galdesk.lines.stellar_solve.nnls_free`)."""
        ps = self._pixel_set(pixels)
        A_t = self.templates_at(v, s, pixels)
        n_tpl = A_t.shape[1]
        A = np.hstack([A_t * ps["wt"][:, None], ps["Emw"]])
        xe, c, r = nnls_free(A, ps["b"], ps["Q"], ps["G"])
        x = np.concatenate([xe[:n_tpl], np.clip(c, 0, None), np.clip(-c, 0, None), xe[n_tpl:]])
        return x, r, A_t, ps["P"]

    def resid(self, p, pixels) -> np.ndarray:
        """Projected residuals at kinematics ``p`` = (v, sigma), for ``least_squares``."""
        self.nfev += 1
        return self.solve(p[0], p[1], pixels)[1]

    def mult_basis(self, pixels) -> np.ndarray:
        """The multiplicative Legendre basis (degree ``mdegree``) at the pixels."""
        return legendre.legvander(np.clip(self.x_all[pixels], -1, 1), self.opts.mdegree)


def _fit_stellar(spec, templates, emission, opts: _Options, ctx) -> StellarFit:
    ctx = ctx or NullContext()
    tpl = templates if isinstance(templates, Templates) else load_templates(templates)
    prob = _Problem(spec, tpl, emission, opts)
    p, sol, pixels, n_clipped = _fit_kinematics(prob, ctx)
    w_t, poly, mult, r = _final_weights(prob, p, pixels)
    dof = max(r.size - np.count_nonzero(w_t) - (0 if mult is None else mult.size) - 2, 1)
    chi2nu = float(r @ r) / dof
    try:
        J = sol.jac
        cov = np.linalg.inv(J.T @ J)
        verr, serr = (float(math.sqrt(max(cov[0, 0], 0))), float(math.sqrt(max(cov[1, 1], 0))))
    except (np.linalg.LinAlgError, AttributeError):
        verr = serr = float("nan")
    model = _model(prob, p, w_t, poly, mult)
    frac, pl_frac, log_age, z_lw = _populations(tpl, w_t, prob.n_ssp)
    with np.errstate(invalid="ignore", divide="ignore"):
        polyv = prob.P_all[pixels] @ poly
        poly_fraction = float(np.median(np.abs(polyv)) / np.median(np.abs(model[pixels])))
        if mult is not None:  # how far the multiplicative correction strays from a constant
            mv = prob.mult_basis(pixels) @ mult
            poly_fraction = float(np.max(np.abs(mv / np.median(mv) - 1)))
    messages = prob.messages + _messages(p[1], opts.sigma_max, w_t, mult, poly_fraction)
    wave = prob.wave
    return StellarFit(model=model, used=pixels, velocity_kms=float(p[0]), velocity_err=verr,
                      sigma_kms=float(p[1]), sigma_err=serr, chi2nu=chi2nu, ndata=int(r.size), n_clipped=n_clipped,
                      light_fractions=frac, log_age_lw=log_age, z_lw=z_lw, poly_fraction=poly_fraction,
                      powerlaw_fraction=pl_frac,
                      fit_range=(float(wave[pixels].min()), float(wave[pixels].max())), templates=tpl.source,
                      nfev=prob.nfev, messages=messages)


def _fit_kinematics(prob: _Problem, ctx):
    """Stage 1: v and sigma* by ``least_squares`` on the projected residuals (additive polynomial), with up to two
    passes of clipping > ``clip`` sigma outliers (each grown by one pixel). Returns (p, solution, pixels,
    n_clipped)."""
    opts, wave = prob.opts, prob.wave
    pixels = prob.fitpix.copy()
    p = np.array([0.0, float(opts.sigma_start)])
    n_clipped = 0
    sol = None
    for it in range(3):
        ctx.check_cancelled()
        sol = least_squares(cancellable(prob.resid, ctx), p, args=(pixels,),
                            bounds=([-opts.v_max, 1.0], [opts.v_max, opts.sigma_max]),
                            diff_step=[1e-2 / max(abs(p[0]), 1.0) if p[0] else 1e-2, 1e-2], x_scale=[50.0, 50.0],
                            method="trf", max_nfev=60)
        p = sol.x
        if opts.clip <= 0 or it == 2:
            break
        x, r, _, _ = prob.solve(p[0], p[1], pixels)
        rchi = math.sqrt(max(float(r @ r) / max(r.size - x.size, 1), 1e-12))
        full_r = np.zeros(wave.size)
        full_r[pixels] = r / rchi
        out = pixels & (np.abs(full_r) > opts.clip)
        # grow each outlier by one pixel: an unmasked line is wider than one pixel
        out = out | (np.roll(out, 1) & pixels) | (np.roll(out, -1) & pixels)
        if not out.any():
            break
        n_clipped += int(np.count_nonzero(out))
        pixels = pixels & ~out
    return p, sol, pixels, n_clipped


def _final_weights(prob: _Problem, p, pixels):
    """Stage 2 at the kinematics ``p``: template weights with the multiplicative polynomial (``mdegree >= 0``) or
    the additive one. Returns (template weights, additive polynomial coefficients, multiplicative coefficients or
    None, weighted residuals)."""
    x, r, A_t, P = prob.solve(p[0], p[1], pixels)
    n_tpl = A_t.shape[1]
    w_t = x[:n_tpl]
    poly = x[n_tpl:n_tpl + P.shape[1]] - x[n_tpl + P.shape[1]:n_tpl + 2 * P.shape[1]]
    mult = None
    if prob.opts.mdegree >= 0:
        # final weights with a multiplicative polynomial instead of the additive one: an additive term dilutes
        # the absorption lines and lets the fit pick templates with deeper Balmer lines than the galaxy has
        out = solve_multiplicative(A_t, prob.flux[pixels], np.sqrt(prob.ivar[pixels]), prob.mult_basis(pixels),
                                    E=None if prob.emission is None else prob.emission[:, pixels].T)
        w_t, mult, r = out[:3]
        poly = np.zeros_like(poly)
    return w_t, poly, mult, r


def _model(prob: _Problem, p, w_t, poly, mult) -> np.ndarray:
    """The continuum model on every pixel the templates cover (NaN elsewhere)."""
    tpl, wave, z = prob.tpl, prob.wave, prob.z
    lam_t = tpl.lam
    cover = (wave >= lam_t[prob.i0] * (1 + z) * math.exp(prob.margin / 2)) & \
        (wave <= lam_t[prob.i1 - 1] * (1 + z) * math.exp(-prob.margin / 2))
    model = np.full(wave.size, np.nan)
    idx = np.flatnonzero(cover)
    model[idx] = prob.templates_at(p[0], p[1], cover) @ w_t + prob.P_all[idx] @ poly
    if mult is not None:
        model[idx] *= prob.mult_basis(idx) @ mult
    return model


def _populations(tpl: Templates, w_t, n_ssp: int):
    """Light fractions at rest 5400-5600 Å of the stellar templates and of the power laws, and the light-weighted
    log age (yr) and Z/Zsun: (fractions, power-law fraction, log age, Z)."""
    lam_t = tpl.lam
    n_tpl = w_t.size
    band = (lam_t > 5400 * 1.00028) & (lam_t < 5600 * 1.00028)
    at5500 = np.median(tpl.flux[:, band], axis=1) if band.any() else np.ones(n_ssp)
    light = w_t * np.concatenate([at5500, np.ones(n_tpl - n_ssp)])  # power laws are 1 at 5500 A
    total = light.sum()
    frac = light[:n_ssp] / total if total > 0 else np.full(n_ssp, np.nan)
    pl_frac = float(light[n_ssp:].sum() / total) if total > 0 else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = frac / frac.sum()
        log_age = float(np.nansum(fs * np.log10(tpl.ages_gyr * 1e9))) if np.isfinite(tpl.ages_gyr).all() \
            else float("nan")
        z_lw = float(np.nansum(fs * tpl.z_zsun)) if np.isfinite(tpl.z_zsun).all() else float("nan")
    return frac, pl_frac, log_age, z_lw


def _messages(sigma, sigma_max, w_t, mult, poly_fraction) -> list[str]:
    """Warnings about a fit: sigma* at a bound, no template, a polynomial that does the templates' work."""
    messages = []
    if sigma >= sigma_max * (1 - 1e-3) or sigma <= 1.0 + 1e-3:
        messages.append(f"sigma* at its bound ({sigma:.0f} km/s): no stellar absorption lines constrain it "
                        f"(the continuum shape is still usable)")
    if not np.any(w_t > 0):
        messages.append("no template fits the spectrum (all weights zero): is the flux negative or mis-scaled?")
    if mult is None and poly_fraction > 0.3:
        messages.append(f"additive polynomial is {poly_fraction:.0%} of the continuum: templates fit poorly")
    elif mult is not None and poly_fraction > 0.8:
        messages.append(f"multiplicative polynomial departs {poly_fraction:.0%} from flat: strong reddening or a "
                        f"flux-calibration problem")
    return messages
