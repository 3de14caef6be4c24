"""Quasar / broad-line AGN pseudo-continuum: host galaxy + power law + optical Fe II, broad lines masked.

The broad Balmer lines of a type-1 AGN sit on a blend of thousands of broad Fe II lines (the 4434-4684 Å and
5100-5600 Å "bumps", and multiplet 42 at 4924/5018 Å under Hβ and [OIII]) on top of the featureless nuclear
continuum and the host galaxy's starlight. A local straight line under Hβ takes the Fe II under its red wing for
broad-line flux (broad Hβ then comes out far too wide); the standard cure (Boroson & Green 1992; QSOFit / PyQSOFit,
Shen et al. 2011, Guo et al. 2018; FANTASY, Ilić et al. 2023) is to fit a pseudo-continuum to the line-free parts
of the spectrum and measure the lines on top of it. This module fits

    model(λ) = Σ_k w_k (H_k ⊗ G(v*, σ*))(λ) + Σ_j a_j (λ/5100 Å)^α_j + Σ_m g_m (F_m ⊗ G(v_Fe, σ_Fe))(λ)

with H_k the bundled stellar-population templates (:mod:`galdesk.lines.stellar`) for the host, fixed-slope power
laws α_j (non-negative weights: any positive mixture, i.e. a curved nuclear continuum), and F_m the Fe II groups of
Kovačević et al. (2010) / Shapovalova et al. (2012) (lines sharing a lower term; relative intensities within a
group from atomic data, ``resources/templates/feii_kovacevic2010.fits``), broadened by one Gaussian of free width
and shift. All weights are linear and non-negative (NNLS, i.e. variable projection); v*, σ*, v_Fe and σ_Fe are
found by ``scipy.optimize.least_squares`` from a small grid of Fe II widths. Fitted pixels: everything the
templates cover except the broad Balmer regions and other emission lines (:data:`BROAD_MASKS`,
:data:`galdesk.lines.spectral.EMISSION_MASK_LINES`), so the Fe II under Hβ is predicted from the 4434-4684 Å and
5100-5600 Å bumps as in PyQSOFit's continuum windows, not fitted against the broad line.

Where the host is weak (luminous quasars) its weights go to zero; where the nucleus is weak (a Seyfert 1.9) the
power laws and Fe II do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid
from scipy.optimize import least_squares

from galdesk.lines.agn_basis import FWHM_PER_SIGMA, AGNBasis, AGNOptions
from galdesk.lines.spectral import cancellable
from galdesk.lines.stellar import Templates, load_templates, template_resource
from galdesk.tasks import NullContext

__all__ = ["FeIITemplate", "AGNContinuumFit", "fit_agn_continuum", "load_feii", "default_feii_path",
           "BROAD_MASKS", "QSO_WINDOWS", "AGN_WINDOWS", "agn_masks", "AGN_POWERLAW_SLOPES"]

#: Rest-frame vacuum ranges (Angstrom) left out of the pseudo-continuum fit: the Balmer continuum and high-order
#: Balmer lines below 3775 Å (with [OII]), broad Balmer lines with the narrow lines on them, He I 5876 and [NeIII]
#: (the line-free windows of quasar catalogues, :data:`QSO_WINDOWS`, skip these and more).
BROAD_MASKS = ((3500.0, 3775.0), (3850.0, 3900.0), (3955.0, 3985.0), (4060.0, 4145.0), (4280.0, 4400.0),
               (4640.0, 5100.0), (5840.0, 5920.0), (6250.0, 6800.0), (7050.0, 7080.0))
#: The line-free continuum windows of quasar catalogues (rest vacuum Å, the optical ones; Shen et al. 2011 and
#: PyQSOFit, Guo et al. 2018, use these): with ``windows="qso"`` only these pixels are fitted.
QSO_WINDOWS = ((3775.0, 3832.0), (4000.0, 4050.0), (4200.0, 4230.0), (4435.0, 4640.0), (5100.0, 5535.0),
               (6005.0, 6035.0), (6110.0, 6250.0), (6800.0, 7000.0), (7160.0, 7180.0))
#: Which pixels the pseudo-continuum is fitted to: all outside :data:`BROAD_MASKS` and the narrow lines (default),
#: or only :data:`QSO_WINDOWS`.
AGN_WINDOWS = ("masks", "qso")


def agn_masks(windows: str = "masks") -> tuple:
    """Rest ranges left out of the pseudo-continuum fit for ``windows`` (one of :data:`AGN_WINDOWS`).

    "qso" reproduces the recipe of quasar catalogues; it uses ~half the pixels of "masks" and leaves the Fe II
    width poorly constrained: on spec-0332 the broad Hβ measured on top then moves by a factor 1.5-1.8 across Fe II
    widths of 3000-12000 km/s, against 3 % with "masks" (``docs/lines_validation.md`` §3).
    """
    if windows == "masks":
        return BROAD_MASKS
    if windows != "qso":
        raise ValueError(f"AGN continuum windows must be one of {', '.join(AGN_WINDOWS)}, not {windows!r}")
    edges = [3500.0] + [x for w in QSO_WINDOWS for x in w] + [7500.0]
    return tuple((edges[i], edges[i + 1]) for i in range(0, len(edges), 2))


#: Slopes α of the power laws f_λ ∝ λ^α whose non-negative mixture is the nuclear continuum.
AGN_POWERLAW_SLOPES = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0)
#: Rest band whose Fe II flux is reported (R_FeII = this / broad Hβ flux, Boroson & Green 1992).
FEII_BAND = (4434.0, 4684.0)
#: Fe II counts as detected when removing it raises χ² by at least this: the 99.7 % point of χ² for ~18 degrees
#: of freedom (up to 17 group strengths, width, shift). Synthetic quasars without Fe II give 11-25; a misfit
#: elsewhere can still be absorbed by Fe II at its widest (a message says when the width is at a bound).
FEII_MIN_DCHI2 = 40.0


def default_feii_path() -> Path:
    """``resources/templates/feii_kovacevic2010.fits``."""
    return template_resource("feii_kovacevic2010.fits")


@dataclass(frozen=True, eq=False)
class FeIITemplate:
    """Fe II lines in groups: ``group`` (name per line), ``wave_vac`` (Angstrom), ``rel_int`` (peak heights)."""

    group: np.ndarray
    wave_vac: np.ndarray
    rel_int: np.ndarray
    source: str

    @property
    def groups(self) -> list[str]:
        return sorted(set(self.group.tolist()))

    def on_grid(self, ln0: float, dln: float, n: int) -> tuple[np.ndarray, list[str]]:
        """Unbroadened group templates on a uniform ln λ grid: (n_groups, n) of line weights such that, after a
        convolution with a normalised Gaussian, each line's peak height is proportional to its ``rel_int``."""
        names = self.groups
        out = np.zeros((len(names), n))
        pos = (np.log(self.wave_vac) - ln0) / dln
        j = np.floor(pos).astype(int)
        f = pos - j
        for gi, name in enumerate(names):
            sel = (self.group == name) & (j >= 0) & (j < n - 1)
            np.add.at(out[gi], j[sel], self.rel_int[sel] * (1 - f[sel]))
            np.add.at(out[gi], j[sel] + 1, self.rel_int[sel] * f[sel])
        keep = out.any(axis=1)
        return out[keep], [nm for nm, k in zip(names, keep) if k]


@functools.lru_cache(maxsize=4)
def _load_feii(path: str) -> FeIITemplate:
    from astropy.io.registry import IORegistryError
    from astropy.table import Table

    try:
        t = Table.read(path, hdu="FEII", format="fits")
    except (OSError, ValueError, KeyError, TypeError, IORegistryError) as exc:
        raise ValueError(f"{path}: not a readable Fe II line-list FITS file ({exc})") from exc
    missing = [c for c in ("GROUP", "WAVE_VAC", "REL_INT") if c not in t.colnames]
    if missing:
        raise ValueError(f"{path}: table FEII lacks columns {', '.join(missing)}")
    wave = np.asarray(t["WAVE_VAC"], float)
    rel = np.asarray(t["REL_INT"], float)
    if len(t) == 0 or not (np.all(np.isfinite(wave)) and np.all(np.isfinite(rel))) or np.any(wave <= 0):
        raise ValueError(f"{path}: empty Fe II line list or non-finite/non-positive values")
    return FeIITemplate(group=np.asarray(t["GROUP"]).astype(str), wave_vac=wave, rel_int=rel, source=path)


def load_feii(path: str | Path | None = None) -> FeIITemplate:
    """Read an Fe II line list (default: the bundled Kovačević et al. 2010 groups); cached per path."""
    p = Path(path) if path is not None else default_feii_path()
    if not p.is_file():
        raise ValueError(f"{p}: Fe II line-list file not found")
    return _load_feii(str(p.resolve()))


@dataclass
class AGNContinuumFit:
    """Result of :func:`fit_agn_continuum`. Arrays are on the spectrum's pixels (NaN outside the templates).

    Attributes
    ----------
    model : ndarray
        Host + power law + Fe II (+ additive polynomial, if any).
    host, powerlaw, feii : ndarray
        The three parts.
    used : ndarray of bool
        Pixels of the final fit.
    feii_fwhm_kms, feii_fwhm_err, feii_velocity_kms, feii_velocity_err : float
        Fe II width (intrinsic, instrument removed) and shift; errors from the Jacobian.
    host_sigma_kms, host_sigma_err, host_velocity_kms : float
        Host stellar velocity dispersion and velocity (NaN without a host).
    host_fraction, powerlaw_fraction : float
        Shares of host and power law in the continuum at rest 5100 Å (Fe II excluded).
    powerlaw_slope : float
        Local slope d ln f_λ / d ln λ of the fitted power-law mixture at 5100 Å.
    powerlaw_5100, powerlaw_5100_err : float
        The power law (the nucleus' continuum) at rest 5100 Å, observed f_λ in the spectrum's flux unit, and its
        error from the weights' covariance (as ``feii_flux_err``); NaN when rest 5100 Å is outside the fitted
        pixels' range (no extrapolation). For L5100 and black-hole masses (:mod:`galdesk.lines.bhmass`).
    feii_flux, feii_flux_err : float
        Fe II flux in rest 4434-4684 Å, observed frame (flux unit x Angstrom): R_FeII = feii_flux / F(broad Hβ);
        its error from the covariance of the template weights with the nonlinear parameters held (as the line
        errors are conditional on the continuum).
    feii_groups : dict
        Group name -> peak-height weight.
    feii_dchi2 : float
        χ² of the fit without Fe II minus χ² with it (host and power law refitted): the Fe II detection; below
        :data:`FEII_MIN_DCHI2` a message says it is not significant.
    chi2nu, ndata, n_clipped, nfev, fit_range, messages
    """

    model: np.ndarray
    host: np.ndarray
    powerlaw: np.ndarray
    feii: np.ndarray
    used: np.ndarray
    feii_fwhm_kms: float
    feii_fwhm_err: float
    feii_velocity_kms: float
    feii_velocity_err: float
    host_sigma_kms: float
    host_sigma_err: float
    host_velocity_kms: float
    host_fraction: float
    powerlaw_fraction: float
    powerlaw_slope: float
    feii_flux: float
    feii_flux_err: float
    feii_groups: dict
    chi2nu: float
    feii_dchi2: float
    ndata: int
    n_clipped: int
    nfev: int
    fit_range: tuple[float, float]
    messages: list[str] = field(default_factory=list)
    powerlaw_5100: float = float("nan")
    powerlaw_5100_err: float = float("nan")

    def to_dict(self) -> dict:
        """Scalar summary (JSON-friendly)."""
        keys = ("feii_fwhm_kms", "feii_fwhm_err", "feii_velocity_kms", "feii_velocity_err", "host_sigma_kms",
                "host_sigma_err", "host_velocity_kms", "host_fraction", "powerlaw_fraction", "powerlaw_slope",
                "feii_flux", "feii_flux_err", "feii_dchi2", "chi2nu", "ndata", "n_clipped", "powerlaw_5100",
                "powerlaw_5100_err")
        out = {k: getattr(self, k) for k in keys}
        out = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
        out["fit_range"] = [float(self.fit_range[0]), float(self.fit_range[1])]
        out["messages"] = list(self.messages)
        return out


def fit_agn_continuum(spec, templates: Templates | str | Path | None = None, feii: FeIITemplate | str | Path | None
                      = None, *, host: bool = True, powerlaw_slopes=AGN_POWERLAW_SLOPES, degree: int = -1,
                      masks=BROAD_MASKS, mask_kms: float = 450.0, clip: float = 3.0,
                      feii_fwhm_grid=None, feii_fwhm_bounds=(800.0, 15000.0),
                      feii_v_max: float = 3000.0, sigma_start: float = 150.0, sigma_max: float = 500.0,
                      v_max: float = 600.0, inst_sigma_kms: float | None = None, min_pixels: int = 300,
                      ctx=None) -> AGNContinuumFit:
    """Fit host + power law + Fe II to a broad-line AGN spectrum with the broad lines masked.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        Needs ``redshift``; uses ``ivar``/``mask`` and ``resolution_kms``.
    templates : Templates or path or None
        Host templates (default: the bundled BC03 MILES SSPs); their rest range (3540-7400 Å) is the fitted range.
    feii : FeIITemplate or path or None
        Fe II line list (default: the bundled Kovačević et al. 2010 groups).
    host : bool
        Include the host galaxy (False: power law + Fe II only, as for a luminous quasar).
    powerlaw_slopes : sequence of float
        Slopes of the non-negative power-law basis (empty: no nuclear continuum).
    degree : int
        Additive Legendre polynomial (± columns) of this degree; -1 (default) for none.
    masks : sequence of (lo, hi)
        Rest-frame vacuum ranges excluded (broad lines).
    mask_kms, clip : float
        Half-width of the masks on the other emission lines; outlier rejection in sigma (0 disables).
    feii_fwhm_grid, feii_fwhm_bounds, feii_v_max : float
        Fe II widths (FWHM, km/s) scanned for the start and for the χ² profile that gives the width's error (default:
        24 steps evenly spaced in log between the bounds), the bounds, and the bound on |Fe II shift|.
    sigma_start, sigma_max, v_max : float
        Host LOSVD start and bounds, km/s.
    ctx : TaskContext or None

    Raises
    ------
    ValueError
        No redshift, too few pixels in the templates' range, or the solvers failed (message names the spectrum).
    """
    opts = AGNOptions(host=host, slopes=tuple(powerlaw_slopes), degree=degree, masks=masks, mask_kms=mask_kms,
                    clip=clip, fwhm_grid=feii_fwhm_grid, fwhm_bounds=feii_fwhm_bounds, feii_v_max=feii_v_max,
                    sigma_start=sigma_start, sigma_max=sigma_max, v_max=v_max, inst_sigma_kms=inst_sigma_kms,
                    min_pixels=min_pixels)
    try:
        return _fit(spec, templates, feii, opts, ctx)
    except (RuntimeError, np.linalg.LinAlgError, FloatingPointError) as exc:
        raise ValueError(f"{getattr(spec, 'id', 'spectrum')}: AGN continuum fit failed "
                         f"({type(exc).__name__}: {exc})") from exc


@dataclass
class _Bounds:
    """Bounds, scales and starts of the nonlinear parameters; ``grid``: the Fe II FWHMs (km/s) scanned."""

    lb: list
    ub: list
    xs: list
    s_lo: float
    s_hi: float
    host: bool
    sigma_start: float
    grid: np.ndarray

    @classmethod
    def of(cls, opts: AGNOptions) -> "_Bounds":
        s_lo, s_hi = opts.fwhm_bounds[0] / FWHM_PER_SIGMA, opts.fwhm_bounds[1] / FWHM_PER_SIGMA
        if opts.host:
            lb = [-opts.v_max, 1.0, -opts.feii_v_max, s_lo]
            ub = [opts.v_max, opts.sigma_max, opts.feii_v_max, s_hi]
            xs = [50.0, 50.0, 200.0, 300.0]
        else:
            lb, ub, xs = [-opts.feii_v_max, s_lo], [opts.feii_v_max, s_hi], [200.0, 300.0]
        grid = np.geomspace(opts.fwhm_bounds[0] * 1.02, opts.fwhm_bounds[1] * 0.98, 24) if opts.fwhm_grid is None \
            else np.asarray(opts.fwhm_grid, float)
        return cls(lb, ub, xs, s_lo, s_hi, opts.host, opts.sigma_start, grid)

    def start(self, fwhm: float) -> np.ndarray:
        """Starting parameters with the Fe II at FWHM ``fwhm`` (kept 1 % inside its bounds)."""
        s_lo, s_hi = self.s_lo, self.s_hi
        s = float(np.clip(fwhm / FWHM_PER_SIGMA, s_lo + 0.01 * (s_hi - s_lo), s_hi - 0.01 * (s_hi - s_lo)))
        return np.array([0.0, self.sigma_start, 0.0, s] if self.host else [0.0, s])


def _fit(spec, templates, feii, opts: AGNOptions, ctx) -> AGNContinuumFit:
    ctx = ctx or NullContext()
    tpl = templates if isinstance(templates, Templates) else load_templates(templates)
    fe = feii if isinstance(feii, FeIITemplate) else load_feii(feii)
    prob = AGNBasis(spec, tpl, fe, opts, ctx)
    bounds = _Bounds.of(opts)
    p, pixels, n_clipped = _fit_nonlinear(prob, bounds, ctx)
    p, fwhm_err_profile = _refine_by_profile(prob, bounds, p, pixels)
    x, r = prob.solve(p, pixels)
    dof = max(r.size - np.count_nonzero(x) - len(p), 1)
    chi2nu = float(r @ r) / dof
    # how much the Fe II improves the fit (host and power law refitted without it, kinematics kept)
    r0 = prob.solve(p, pixels, with_fe=False)[1]
    feii_dchi2 = float(r0 @ r0 - r @ r)
    err = _errors(prob, bounds, p, pixels, r.size)
    v_h, s_h, v_f, s_f = prob.unpack(p)
    e_vh, e_sh, e_vf, e_sf = (err if opts.host else [np.nan, np.nan, err[0], err[1]])
    e_fwhm = max(float(e_sf) * FWHM_PER_SIGMA, fwhm_err_profile) if np.isfinite(fwhm_err_profile) else \
        float(e_sf) * FWHM_PER_SIGMA
    parts, w_pl, w_fe = _components(prob, x, p)
    sm = _summaries(prob, x, p, pixels, w_pl, w_fe)
    fwhm = s_f * FWHM_PER_SIGMA
    messages = prob.messages + _messages(prob, x, w_fe, sm, fwhm, feii_dchi2)
    wave = prob.wave
    return AGNContinuumFit(
        model=parts["model"], host=parts["host"], powerlaw=parts["powerlaw"], feii=parts["feii"], used=pixels,
        feii_fwhm_kms=float(fwhm), feii_fwhm_err=e_fwhm, feii_velocity_kms=float(v_f),
        feii_velocity_err=float(e_vf), host_sigma_kms=float(s_h) if opts.host else float("nan"),
        host_sigma_err=float(e_sh), host_velocity_kms=float(v_h) if opts.host else float("nan"),
        host_fraction=float(sm["host_frac"]), powerlaw_fraction=float(sm["pl_frac"]), powerlaw_slope=sm["slope"],
        feii_flux=sm["feii_flux"], feii_flux_err=sm["feii_flux_err"],
        feii_groups={nm: float(g) for nm, g in zip(prob.fe_names, w_fe)}, chi2nu=chi2nu, feii_dchi2=feii_dchi2,
        ndata=int(r.size), n_clipped=n_clipped, nfev=prob.nfev,
        fit_range=(float(wave[pixels].min()), float(wave[pixels].max())), messages=messages,
        powerlaw_5100=float(sm["pl_5100"]), powerlaw_5100_err=float(sm["pl_5100_err"]))


def _fit_nonlinear(prob: AGNBasis, bounds: _Bounds, ctx):
    """The kinematics by ``least_squares`` from the best start of the Fe II width grid, with up to two passes of
    clipping > ``clip`` sigma outliers (each grown by one pixel). Returns (p, pixels, n_clipped)."""
    clip, wave = prob.opts.clip, prob.wave
    pixels = prob.fitpix.copy()
    # the Fe II width has a flat, bumpy χ² valley (it trades with the power laws and the host): start from the best
    # of a grid, and after the fit scan the same grid again (profile) for a better minimum and for the error
    starts = [bounds.start(f) for f in bounds.grid]
    chi = [float(np.sum(prob.resid(p0, pixels) ** 2)) for p0 in starts]
    p = starts[int(np.argmin(chi))]
    n_clipped = 0
    for it in range(3):
        ctx.check_cancelled()
        # after clipping the solution moves little: fewer evaluations, and χ² to 1e-6 is plenty for a valley
        # whose width is judged by Δχ² = 1 on ~2000 pixels
        sol = least_squares(cancellable(prob.resid, ctx), p, args=(pixels,), bounds=(bounds.lb, bounds.ub),
                            x_scale=bounds.xs,
                            diff_step=1e-3, method="trf", ftol=1e-6, max_nfev=80 if it == 0 else 30)
        p = sol.x
        if clip <= 0 or it == 2:
            break
        x, r = prob.solve(p, pixels)
        rchi = math.sqrt(max(float(r @ r) / max(r.size - np.count_nonzero(x) - len(p), 1), 1e-12))
        full = np.zeros(wave.size)
        full[pixels] = r / rchi
        out = pixels & (np.abs(full) > clip)
        out = out | (np.roll(out, 1) & pixels) | (np.roll(out, -1) & pixels)
        if not out.any():
            break
        n_clipped += int(np.count_nonzero(out))
        pixels = pixels & ~out
        prob.pixels_key += 1
    return p, pixels, n_clipped


def _refine_by_profile(prob: AGNBasis, bounds: _Bounds, p, pixels):
    """χ² profile over the Fe II width grid (other nonlinear parameters held): refit from a better valley than
    the optimiser's if there is one, and take the width's error from Δχ² = 1 (the Jacobian misjudges a valley this
    flat and bumpy). Returns (p, FWHM error in km/s or NaN)."""
    i_sf = len(p) - 1

    def profile(p):
        prof = []
        for f in bounds.grid:
            q = p.copy()
            q[i_sf] = bounds.start(f)[i_sf]
            prof.append(float(np.sum(prob.resid(q, pixels) ** 2)))
        return np.array(prof)

    chi_best = float(np.sum(prob.resid(p, pixels) ** 2))
    prof = profile(p)
    if prof.min() < chi_best - 0.5:  # a better valley than the one the optimiser stopped in
        q = p.copy()
        q[i_sf] = bounds.start(bounds.grid[int(np.argmin(prof))])[i_sf]
        sol2 = least_squares(prob.resid, q, args=(pixels,), bounds=(bounds.lb, bounds.ub), x_scale=bounds.xs,
                             diff_step=1e-3, method="trf", max_nfev=80)
        if 2 * sol2.cost < chi_best:
            p, chi_best = sol2.x, 2 * sol2.cost
    ok = np.append(prof, chi_best) <= chi_best + 1.0
    span = np.append(bounds.grid, float(p[i_sf]) * FWHM_PER_SIGMA)[ok]
    return p, (0.5 * float(span.max() - span.min()) if span.size > 1 else float("nan"))


def _errors(prob: AGNBasis, bounds: _Bounds, p, pixels, n_res: int) -> np.ndarray:
    """Errors of the nonlinear parameters from a Jacobian by central differences on the scale of the parameters'
    errors: the NNLS active set makes the projected residuals piecewise smooth, so the optimiser's tiny-step
    Jacobian can be dominated by a jump."""
    steps = np.array([20.0, 10.0, 100.0, 150.0] if prob.opts.host else [100.0, 150.0])
    J = np.empty((n_res, len(p)))
    for i in range(len(p)):
        h = steps[i]
        up, dn = p.copy(), p.copy()
        up[i] = min(p[i] + h, bounds.ub[i])
        dn[i] = max(p[i] - h, bounds.lb[i])
        J[:, i] = (prob.solve(up, pixels)[1] - prob.solve(dn, pixels)[1]) / max(up[i] - dn[i], 1e-9)
    try:
        cov = np.linalg.inv(J.T @ J)
        return np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        return np.full(len(p), np.nan)


def _components(prob: AGNBasis, x, p):
    """Host, power law, Fe II and their sum (+ polynomial) on every pixel the templates cover (closer to their
    edges than the fit, for plots and windows; NaN elsewhere). Returns (parts, power-law weights, Fe II
    weights)."""
    wave = prob.wave
    v_h, s_h, v_f, s_f = prob.unpack(p)
    cover = (wave >= prob.lo / math.sqrt(prob.edge)) & (wave <= prob.hi * math.sqrt(prob.edge))
    idx = np.flatnonzero(cover)
    comp_host = np.full(wave.size, np.nan)
    comp_pl = np.full(wave.size, np.nan)
    comp_fe = np.full(wave.size, np.nan)
    if prob.opts.host:
        comp_host[idx] = prob.sample(prob.conv("host", s_h), v_h, cover) @ x[:prob.n_host]
    else:
        comp_host[idx] = 0.0
    k = prob.n_host
    w_pl = x[k:k + prob.n_pl]
    comp_pl[idx] = prob.sample(prob.PLg, 0.0, cover) @ w_pl
    k += prob.n_pl
    w_fe = x[k:k + prob.n_fe]
    comp_fe[idx] = prob.sample(prob.conv("fe", s_f), v_f, cover) @ w_fe
    k += prob.n_fe
    npoly = prob.P_all.shape[1]
    poly = x[k:k + npoly] - x[k + npoly:k + 2 * npoly]
    model = comp_host + comp_pl + comp_fe
    model[idx] += prob.P_all[idx] @ poly
    return {"model": model, "host": comp_host, "powerlaw": comp_pl, "feii": comp_fe}, w_pl, w_fe


def _summaries(prob: AGNBasis, x, p, pixels, w_pl, w_fe) -> dict:
    """Host and power-law shares and slope at rest 5100 Å, the power law there (``pl_5100``, only inside the
    fitted range) and the Fe II flux in :data:`FEII_BAND`, with errors of these linear functionals of the weights
    from the covariance of the non-zero weights, nonlinear parameters held (as for the lines)."""
    tpl, z, opts = prob.tpl, prob.z, prob.opts
    v_h, s_h, v_f, s_f = prob.unpack(p)
    n_host, n_pl, n_fe = prob.n_host, prob.n_pl, prob.n_fe
    j = int(round((math.log(5100.0) - prob.ln_g0) / tpl.dln))
    host5100 = float(prob.conv("host", s_h)[:, j] @ x[:n_host]) if opts.host else 0.0
    pl5100 = float(prob.PLg[:, j] @ w_pl)
    tot = host5100 + pl5100
    out = {"host_frac": host5100 / tot if tot > 0 else float("nan"),
           "pl_frac": pl5100 / tot if tot > 0 else float("nan"),
           "slope": float(np.sum(w_pl * np.array(opts.slopes) * prob.PLg[:, j]) / pl5100) if pl5100 > 0
           else float("nan")}
    fe_rest = prob.conv("fe", s_f).T @ w_fe  # rest-frame grid, flux density as observed
    band = (prob.lam_g >= FEII_BAND[0]) & (prob.lam_g <= FEII_BAND[1])
    yb, xb = fe_rest[band], prob.lam_g[band] * (1 + z)
    out["feii_flux"] = float(trapezoid(yb, xb)) if band.sum() > 1 else float("nan")
    out["band_seen"] = float(prob.seen[band].mean()) if band.any() else 1.0
    active = x > 0
    cov_w = None

    def weights_err(c):
        nonlocal cov_w
        if cov_w is None:
            wt = np.sqrt(prob.ivar[pixels])
            A = np.hstack([prob.design(p, pixels), prob.P_all[pixels], -prob.P_all[pixels]]) * wt[:, None]
            cov_w = np.linalg.pinv(A[:, active].T @ A[:, active])
        return float(math.sqrt(max(float(c[active] @ cov_w @ c[active]), 0.0)))

    out["feii_flux_err"] = float("nan")
    if band.sum() > 1 and np.any(w_fe > 0):
        c = np.zeros(x.size)
        c[n_host + n_pl:n_host + n_pl + n_fe] = trapezoid(prob.conv("fe", s_f)[:, band], xb, axis=1)
        out["feii_flux_err"] = weights_err(c)
    out["pl_5100"], out["pl_5100_err"] = float("nan"), float("nan")
    w_fit = prob.wave[pixels]
    if w_fit.min() <= 5100.0 * (1 + z) <= w_fit.max():
        out["pl_5100"] = pl5100
        if pl5100 > 0:
            c = np.zeros(x.size)
            c[n_host:n_host + n_pl] = prob.PLg[:, j]
            out["pl_5100_err"] = weights_err(c)
    return out


def _messages(prob: AGNBasis, x, w_fe, sm: dict, fwhm: float, feii_dchi2: float) -> list[str]:
    """Warnings about a fit: little data in the Fe II band, Fe II width at a bound, Fe II not detected or not
    significant, no component or no host."""
    messages = []
    fwhm_bounds, n_host, n_pl, n_fe = prob.opts.fwhm_bounds, prob.n_host, prob.n_pl, prob.n_fe
    if sm["band_seen"] < 0.5:
        messages.append(f"little data in rest {FEII_BAND[0]:.0f}-{FEII_BAND[1]:.0f} A: the Fe II flux there is the "
                        "model's, not measured")
    if fwhm <= fwhm_bounds[0] * 1.01 or fwhm >= fwhm_bounds[1] * 0.99:
        messages.append(f"Fe II width at its bound (FWHM {fwhm:.0f} km/s)")
    if sm["feii_flux"] <= 0 or not np.any(w_fe > 0):
        messages.append("no Fe II emission detected")
    elif feii_dchi2 < FEII_MIN_DCHI2:
        messages.append(f"Fe II not significant (Δχ² = {feii_dchi2:.1f} without it): its width and flux are not "
                        f"measured")
    if not np.any(x[:n_host + n_pl + n_fe] > 0):
        messages.append("no component fits the spectrum (all weights zero): is the flux negative or mis-scaled?")
    elif prob.opts.host and not np.any(x[:n_host] > 0):
        messages.append("no host-galaxy light detected")
    return messages
