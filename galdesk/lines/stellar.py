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
degree-4 polynomial instead of P (weights and polynomial linear: non-negative least squares with the polynomial
split into ± columns; v and σ* by ``scipy.optimize.least_squares`` on the projected residuals, i.e. variable
projection), with > 3σ outliers (unmasked emission, sky residuals) clipped and the fit repeated; (2) at those
kinematics, the weights with a *multiplicative* degree-8 P (reddening and flux calibration, without diluting the
absorption lines), solved by bounded Gauss-Newton. The templates are first broadened to the spectrum's
instrumental resolution (SDSS ``wdisp``; quadrature difference with the MILES 2.5 Å FWHM), so σ* is the stellar
velocity dispersion; the σ* convolution is done in Fourier space on a uniform ln λ grid. Optionally
(``powerlaw=True``) featureless power laws join the templates, for the AGN continuum of Seyfert galaxies.

This is the Gaussian-LOSVD special case of Cappellari & Emsellem (2004, pPXF). galdesk does not depend on pPXF:
its licence allows non-commercial use only and forbids redistribution, and the lines need nothing beyond this
case (``benchmarks/bench_stellar.py`` compares the two).
Any template set in the same FITS layout (image of N templates on a uniform ln λ grid, header ``LNLAM0``,
``DLNLAM``, ``FWHM_A``, ``VACUUM``) can be given instead of the bundled one.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
from scipy.optimize import least_squares, nnls

from galdesk.lines import linelist as LL
from galdesk.tasks import NullContext
from galdesk.units import C_KMS

__all__ = ["Templates", "StellarFit", "load_templates", "fit_stellar_continuum", "default_template_path",
           "EMISSION_MASK_LINES"]

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
#: Slopes alpha of the featureless power-law components f_lambda ~ lambda^alpha (``powerlaw=True``).
POWERLAW_SLOPES = (-2.0, -1.5, -1.0, -0.5)
#: Strong night-sky lines, observed vacuum Angstrom, masked +- 6 A.
SKY_LINES = (5578.89, 5891.6, 6302.05, 6365.5)


def template_resource(name: str) -> Path:
    """``resources/templates/<name>`` next to the ``galdesk`` package (the bundled template files)."""
    import galdesk

    return Path(galdesk.__file__).resolve().parent.parent / "resources" / "templates" / name


def default_template_path() -> Path:
    """``resources/templates/bc03_miles_ssp.fits``."""
    return template_resource("bc03_miles_ssp.fits")


@dataclass(frozen=True, eq=False)
class Templates:
    """Stellar templates on a uniform ln(λ) grid (rest frame).

    Attributes
    ----------
    flux : ndarray (n_templates, n_pix)
    ln0, dln : float
        ln(λ/Å) of the first pixel and the step.
    fwhm_a : float
        Template resolution, FWHM in Angstrom.
    ages_gyr, z_zsun, norm : ndarray
        Per template (NaN when the file does not say).
    source : str
    """

    flux: np.ndarray
    ln0: float
    dln: float
    fwhm_a: float
    ages_gyr: np.ndarray
    z_zsun: np.ndarray
    norm: np.ndarray
    source: str

    @property
    def lam(self) -> np.ndarray:
        return np.exp(self.ln0 + self.dln * np.arange(self.flux.shape[1]))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Templates:
    from astropy.io import fits
    from astropy.table import Table

    try:
        with fits.open(path) as h:
            hd = h[0].header
            flux = np.asarray(h[0].data, dtype=float)
            names = [x.name for x in h]
            tab = Table.read(h["TEMPLATES"]) if "TEMPLATES" in names else None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable template FITS file ({exc})") from exc
    if flux.ndim != 2 or flux.shape[0] < 1 or flux.shape[1] < 100:
        raise ValueError(f"{path}: expected an image of N templates x pixels, got shape {np.shape(flux)}")
    missing = [k for k in ("LNLAM0", "DLNLAM", "FWHM_A") if k not in hd]
    if missing:
        raise ValueError(f"{path}: header lacks {', '.join(missing)} (uniform ln-lambda grid and resolution)")
    if not np.all(np.isfinite(flux)):
        raise ValueError(f"{path}: templates contain NaN or infinite values")
    ln0, dln = float(hd["LNLAM0"]), float(hd["DLNLAM"])
    if not hd.get("VACUUM", True):  # an air grid: shift to vacuum at its middle (sub-km/s over the range)
        mid = math.exp(ln0 + dln * flux.shape[1] / 2)
        ln0 += math.log(float(LL.air_to_vac(mid)) / mid)
    n = flux.shape[0]
    col = (lambda name: np.asarray(tab[name], float) if tab is not None and name in tab.colnames
           else np.full(n, np.nan))
    return Templates(flux=flux, ln0=ln0, dln=dln, fwhm_a=float(hd["FWHM_A"]), ages_gyr=col("AGE_GYR"),
                     z_zsun=col("Z_ZSUN"), norm=col("NORM"), source=str(path))


def load_templates(path: str | Path | None = None) -> Templates:
    """Read a template set (default: the bundled BC03 MILES SSPs); cached per path.

    Raises
    ------
    ValueError
        The file is missing, unreadable or not in the expected layout (the message names it).
    """
    p = Path(path) if path is not None else default_template_path()
    if not p.is_file():
        raise ValueError(f"{p}: stellar template file not found")
    return _load(str(p.resolve()))


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


def _gauss_convolve_variable(flux: np.ndarray, sigma_pix: np.ndarray) -> np.ndarray:
    """Convolve each row with a Gaussian whose sigma (pixels) varies along the row (banded, normalised)."""
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


def _mask_pixels(wave_vac: np.ndarray, z: float, mask_kms: float) -> np.ndarray:
    """True where an emission line (or a strong sky line) may sit."""
    bad = np.zeros(wave_vac.size, bool)
    for rest in EMISSION_MASK_LINES.values():
        c = rest * (1 + z)
        bad |= np.abs(wave_vac - c) < c * mask_kms / C_KMS
    for c in SKY_LINES:
        bad |= np.abs(wave_vac - c) < 6.0
    return bad


def _spectrum_arrays(spec, what: str):
    """(id, z, vacuum wavelength, flux, ivar, good) of a spectrum for a continuum fit.

    Raises ValueError naming the spectrum when it has no redshift."""
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


def _instrument_sigma(spec, wave, lam_rest, z, fwhm_a, inst_sigma_kms):
    """Instrumental sigma (km/s) at rest wavelengths ``lam_rest``: from the spectrum's ``resolution_kms``, else
    ``inst_sigma_kms``, else the templates' own (``fwhm_a``; then ``known`` is False). Returns (templates' sigma,
    instrument's sigma, known)."""
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


def _nnls(A, b):
    """Non-negative least squares with the columns scaled to unit norm (zero columns get weight 0)."""
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    x, _ = nnls(A / scale, b, maxiter=50 * A.shape[1])
    return x / scale


def _solve_multiplicative(A_t, b, wt, L, n_iter: int = 30, E=None):
    """Weights w >= 0 and polynomial P = 1 + sum_j>=1 c_j L_j minimising |wt (b - (A_t w) P)|^2.

    Bounded Gauss-Newton on the bilinear problem (each step a bounded linear least-squares problem solved by
    ``scipy.optimize.lsq_linear``, halved until chi^2 drops), started from the plain NNLS weights; alternating
    least squares would need hundreds of passes here.
    """
    from scipy.optimize import lsq_linear

    K, m = A_t.shape[1], L.shape[1] - 1
    Ew = np.zeros((b.size, 0)) if E is None else E * wt[:, None]
    ne = Ew.shape[1]
    Aw = np.hstack([A_t * wt[:, None], Ew])
    Lw = L[:, 1:]
    bw = b * wt
    we = _nnls(Aw, bw)
    w, e = we[:K], we[K:]
    Aw, Ew = Aw[:, :K], Aw[:, K:]
    c = np.zeros(m)

    def resid(w, c, e):
        return bw - (Aw @ w) * (1.0 + Lw @ c) - Ew @ e

    r = resid(w, c, e)
    chi2 = float(r @ r)
    for _ in range(n_iter):
        P = 1.0 + Lw @ c
        J = np.hstack([Aw * P[:, None], Lw * (Aw @ w)[:, None], Ew])
        cs = np.linalg.norm(J, axis=0)
        cs[cs == 0] = 1.0
        lb = np.concatenate([-w * cs[:K], np.full(m, -np.inf), -e * cs[K + m:]])
        ub = np.full(K + m + ne, np.inf)
        step = lsq_linear(J / cs, r, bounds=(lb, ub), method="bvls").x / cs
        t = 1.0
        for _ in range(10):
            w_new = np.clip(w + t * step[:K], 0, None)
            c_new = c + t * step[K:K + m]
            e_new = np.clip(e + t * step[K + m:], 0, None)
            r_new = resid(w_new, c_new, e_new)
            chi2_new = float(r_new @ r_new)
            if chi2_new <= chi2:
                break
            t *= 0.5
        else:
            break
        done = chi2 - chi2_new < 1e-8 * chi2
        w, c, e, r, chi2 = w_new, c_new, e_new, r_new, chi2_new
        if done:
            break
    coef = np.concatenate([[1.0], c])
    norm = float(np.median(L @ coef))  # put the level in the weights, the shape in the polynomial
    if norm > 0:
        coef, w = coef / norm, w * norm
    return (w, coef, r) if E is None else (w, coef, r, e)


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
        Half-width of the masks on emission lines (:data:`EMISSION_MASK_LINES`), km/s.
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
    try:
        return _fit_stellar(spec, templates, degree, mdegree, powerlaw, emission, mask_kms, clip, sigma_start, v_max,
                            sigma_max, inst_sigma_kms, min_pixels, ctx)
    except (RuntimeError, np.linalg.LinAlgError, FloatingPointError) as exc:  # e.g. NNLS iteration limit
        raise ValueError(f"{getattr(spec, 'id', 'spectrum')}: stellar fit failed ({type(exc).__name__}: {exc})") \
            from exc


def _fit_stellar(spec, templates, degree, mdegree, powerlaw, emission, mask_kms, clip, sigma_start, v_max, sigma_max,
                 inst_sigma_kms, min_pixels, ctx) -> StellarFit:
    ctx = ctx or NullContext()
    tpl = templates if isinstance(templates, Templates) else load_templates(templates)
    sid, z, wave, flux, ivar, good = _spectrum_arrays(spec, "stellar continuum")

    lam_t = tpl.lam
    margin = math.log1p((v_max + 5 * sigma_max) / C_KMS)
    lo = lam_t[0] * (1 + z) * math.exp(margin)
    hi = lam_t[-1] * (1 + z) * math.exp(-margin)
    inside = (wave >= lo) & (wave <= hi)
    if emission is not None:  # emission modelled jointly: only sky lines are masked
        emission = np.atleast_2d(np.asarray(emission, float))
        fitpix = good & inside & ~_mask_pixels(wave, z, 0.0)
    else:
        fitpix = good & inside & ~_mask_pixels(wave, z, mask_kms)
    if np.count_nonzero(fitpix) < min_pixels:
        raise ValueError(f"{sid}: only {np.count_nonzero(fitpix)} good continuum pixels inside the templates' "
                         f"rest range {lam_t[0]:.0f}-{lam_t[-1]:.0f} A at z={z:.4f} (need {min_pixels})")

    # templates: the rest range the fitted pixels need, broadened to the instrument
    ln_rest = np.log(wave / (1 + z))
    i0 = max(0, int((ln_rest[inside].min() - margin - tpl.ln0) / tpl.dln) - 2)
    i1 = min(tpl.flux.shape[1], int((ln_rest[inside].max() + margin - tpl.ln0) / tpl.dln) + 3)
    T = tpl.flux[:, i0:i1]
    lam_r = lam_t[i0:i1]
    n_ssp = T.shape[0]
    if powerlaw:
        # featureless AGN continuum, f_lambda ~ lambda^alpha (normalised at 5500 A): without it a Seyfert's blue
        # continuum is taken for young stars and their deep Balmer absorption (Cid Fernandes et al. 2004)
        T = np.vstack([T] + [(lam_r / 5500.0) ** a for a in POWERLAW_SLOPES])
    sig_tpl, sig_inst, known = _instrument_sigma(spec, wave, lam_r, z, tpl.fwhm_a, inst_sigma_kms)
    messages = []
    if not known:
        messages.append("instrumental resolution unknown: sigma* includes the instrument's broadening beyond the "
                        f"templates' {tpl.fwhm_a:g} A FWHM")
    short = np.clip(sig_tpl ** 2 - sig_inst ** 2, 0, None)
    if np.mean(short > 30.0 ** 2) > 0.5:
        # the templates cannot be sharpened: where they are broader than the instrument, the fitted sigma* is
        # smaller than the true one (in quadrature)
        messages.append(f"templates broader than the instrument over most of the range: sigma* may be low "
                        f"(in quadrature, by up to {math.sqrt(float(np.median(short))):.0f} km/s)")
    pix_kms = C_KMS * tpl.dln
    T = _gauss_convolve_variable(T, np.sqrt(np.clip(sig_inst ** 2 - sig_tpl ** 2, 0, None)) / pix_kms)
    n_t = T.shape[1]
    pad = int(math.ceil(5 * sigma_max / pix_kms)) + 2
    nfft = next_fast_len(n_t + 2 * pad)
    padded = np.pad(T, ((0, 0), (pad, nfft - n_t - pad)), mode="edge")
    FT = rfft(padded, axis=1)
    freq2 = (2 * np.pi * rfftfreq(nfft)) ** 2
    ln_tpl0 = tpl.ln0 + tpl.dln * (i0 - pad)

    # Legendre polynomial on the fitted range
    x_all = 2 * (wave - lo) / (hi - lo) - 1
    from numpy.polynomial import legendre

    P_all = legendre.legvander(np.clip(x_all, -1, 1), degree) if degree >= 0 else np.zeros((wave.size, 0))
    lnz = math.log1p(z)

    cache: dict = {}

    def templates_at(v, s, pixels):
        key = (round(float(v), 9), round(float(s), 9))
        if key not in cache:
            cache.clear()
            g = np.exp(-0.5 * freq2 * (max(s, 1e-3) / pix_kms) ** 2)
            cache[key] = irfft(FT * g, n=nfft, axis=1)
        conv = cache[key]
        idx = (np.log(wave[pixels]) - lnz - math.log1p(v / C_KMS) - ln_tpl0) / tpl.dln
        j = np.clip(np.floor(idx).astype(int), 0, nfft - 2)
        f = idx - j
        return (conv[:, j] * (1 - f) + conv[:, j + 1] * f).T  # (n_pix, n_templates)

    def solve(v, s, pixels):
        A_t = templates_at(v, s, pixels)
        P = P_all[pixels]
        wt = np.sqrt(ivar[pixels])
        Em = emission[:, pixels].T if emission is not None else np.zeros((A_t.shape[0], 0))
        A = np.hstack([A_t, P, -P, Em]) * wt[:, None]
        b = flux[pixels] * wt
        x = _nnls(A, b)
        return x, b - A @ x, A_t, P

    state = {"nfev": 0}

    def resid(p, pixels):
        state["nfev"] += 1
        return solve(p[0], p[1], pixels)[1]

    pixels = fitpix.copy()
    p = np.array([0.0, float(sigma_start)])
    n_clipped = 0
    sol = None
    for it in range(3):
        ctx.check_cancelled()
        sol = least_squares(resid, p, args=(pixels,), bounds=([-v_max, 1.0], [v_max, sigma_max]),
                            diff_step=[1e-2 / max(abs(p[0]), 1.0) if p[0] else 1e-2, 1e-2], x_scale=[50.0, 50.0],
                            method="trf", max_nfev=60)
        p = sol.x
        if clip <= 0 or it == 2:
            break
        x, r, _, _ = solve(p[0], p[1], pixels)
        rchi = math.sqrt(max(float(r @ r) / max(r.size - x.size, 1), 1e-12))
        full_r = np.zeros(wave.size)
        full_r[pixels] = r / rchi
        out = pixels & (np.abs(full_r) > clip)
        # grow each outlier by one pixel: an unmasked line is wider than one pixel
        out = out | (np.roll(out, 1) & pixels) | (np.roll(out, -1) & pixels)
        if not out.any():
            break
        n_clipped += int(np.count_nonzero(out))
        pixels = pixels & ~out

    x, r, A_t, P = solve(p[0], p[1], pixels)
    n_tpl = A_t.shape[1]
    w_t = x[:n_tpl]
    poly = x[n_tpl:n_tpl + P.shape[1]] - x[n_tpl + P.shape[1]:n_tpl + 2 * P.shape[1]]
    mult = None
    if mdegree >= 0:
        # final weights with a multiplicative polynomial instead of the additive one: an additive term dilutes
        # the absorption lines and lets the fit pick templates with deeper Balmer lines than the galaxy has
        out = _solve_multiplicative(A_t, flux[pixels], np.sqrt(ivar[pixels]),
                                    legendre.legvander(np.clip(x_all[pixels], -1, 1), mdegree),
                                    E=None if emission is None else emission[:, pixels].T)
        w_t, mult, r = out[:3]
        poly = np.zeros_like(poly)
    dof = max(r.size - np.count_nonzero(w_t) - (0 if mult is None else mult.size) - 2, 1)
    chi2nu = float(r @ r) / dof
    try:
        J = sol.jac
        cov = np.linalg.inv(J.T @ J)
        verr, serr = (float(math.sqrt(max(cov[0, 0], 0))), float(math.sqrt(max(cov[1, 1], 0))))
    except (np.linalg.LinAlgError, AttributeError):
        verr = serr = float("nan")

    # the model on every pixel the templates cover
    cover = (wave >= lam_t[i0] * (1 + z) * math.exp(margin / 2)) & (wave <= lam_t[i1 - 1] * (1 + z) *
                                                                      math.exp(-margin / 2))
    model = np.full(wave.size, np.nan)
    idx = np.flatnonzero(cover)
    model[idx] = templates_at(p[0], p[1], cover) @ w_t + P_all[idx] @ poly
    if mult is not None:
        model[idx] *= legendre.legvander(np.clip(x_all[idx], -1, 1), mdegree) @ mult
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
        polyv = P_all[pixels] @ poly
        poly_fraction = float(np.median(np.abs(polyv)) / np.median(np.abs(model[pixels])))
        if mult is not None:  # how far the multiplicative correction strays from a constant
            mv = legendre.legvander(np.clip(x_all[pixels], -1, 1), mdegree) @ mult
            poly_fraction = float(np.max(np.abs(mv / np.median(mv) - 1)))
    if p[1] >= sigma_max * (1 - 1e-3) or p[1] <= 1.0 + 1e-3:
        messages.append(f"sigma* at its bound ({p[1]:.0f} km/s): no stellar absorption lines constrain it "
                        f"(the continuum shape is still usable)")
    if not np.any(w_t > 0):
        messages.append("no template fits the spectrum (all weights zero): is the flux negative or mis-scaled?")
    if mult is None and poly_fraction > 0.3:
        messages.append(f"additive polynomial is {poly_fraction:.0%} of the continuum: templates fit poorly")
    elif mult is not None and poly_fraction > 0.8:
        messages.append(f"multiplicative polynomial departs {poly_fraction:.0%} from flat: strong reddening or a "
                        f"flux-calibration problem")
    return StellarFit(model=model, used=pixels, velocity_kms=float(p[0]), velocity_err=verr,
                      sigma_kms=float(p[1]), sigma_err=serr, chi2nu=chi2nu, ndata=int(r.size), n_clipped=n_clipped,
                      light_fractions=frac, log_age_lw=log_age, z_lw=z_lw, poly_fraction=poly_fraction,
                      powerlaw_fraction=pl_frac,
                      fit_range=(float(wave[pixels].min()), float(wave[pixels].max())), templates=tpl.source,
                      nfev=state["nfev"], messages=messages)
