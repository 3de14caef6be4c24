"""The emission-line model of one complex, written once for both engines (lmfit and the batched fitter).

A :class:`Layout` is a flat description of the model: a vector of free parameters in physical units (fluxes in the
spectrum's flux unit x Angstrom, velocities and intrinsic dispersions in km/s, continuum coefficients in the flux
unit) and a list of Gaussians, each pointing at the parameters that set its flux, velocity and width. Tied
quantities (shared kinematics, fixed doublet ratios) are not parameters at all: several Gaussians point at the
same parameter, with a flux multiplier. This keeps the lmfit residual free of expression constraints (the
bookkeeping that makes a composite ``Model`` ~15x slower) and lets :func:`evaluate` work on a batch of spectra.

Model, per spectrum b and pixel i (observed vacuum wavelength lam_i)::

    centre_g = rest_g (1 + z_b) (1 + v_g / c)
    sigma_g  = centre_g sqrt(s_g^2 + s_inst,g^2) / c           # Angstrom; s_inst removed from the reported width
    model_i  = sum_g m_g F_g [R_g] / (sqrt(2 pi) sigma_g) exp(-(lam_i - centre_g)^2 / (2 sigma_g^2))
             + sum_k c_k x_i^k,      x_i = 100 (lam_i / lam_ref,b - 1)
             [+ a S_i]                                          # optional stellar-continuum template, free scale a

Gaussians are evaluated at pixel centres (as the SDSS pipeline and GELATO do); F is the observed-frame integrated
flux. Absorption troughs are Gaussians with m = -1 and F >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from galdesk.units import C_KMS

__all__ = ["SQRT2PI", "FWHM_PER_SIGMA", "Layout", "evaluate", "covariance", "propagate", "fwhm_of_sum", "template_at",
           "component_curves"]

SQRT2PI = float(np.sqrt(2.0 * np.pi))
FWHM_PER_SIGMA = float(2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass
class Layout:
    """Flat model description (see module docstring).

    Attributes
    ----------
    names : list of str
        Parameter names (lmfit-compatible, one prefix per line: ``halpha_flux``, ``nii6584_flux``,
        ``halpha_b1_flux``, ``narrow_v``, ``narrow_sigma``, ``cont_c0`` ...).
    init, lower, upper : ndarray (P,)
        Starting values and bounds, physical units.
    vary : ndarray of bool (P,)
    g_line, g_comp : list of str (G,)
        Line name and component (``"narrow"``, ``"broad"``, ``"outflow"``, ``"absorption"``) of each Gaussian.
    g_kin : list of str (G,)
        Kinematic group of each Gaussian (``"narrow"``, ``"broad1"``, ``"broad2"``, ``"outflow"``, ``"abs"``).
    rest : ndarray (G,)
        Rest vacuum wavelength, Angstrom.
    fidx, vidx, sidx : ndarray of int (G,)
        Index of the flux, velocity and dispersion parameter of each Gaussian.
    sadd : ndarray of int (G,)
        Index of a parameter ADDED to the dispersion (-1 for none): an outflow wing or a second broad Gaussian is
        written as "the narrower one + delta >= 0", so that components cannot swap roles.
    fmult : ndarray (G,)
        Flux multiplier: 1, 1/ratio for the weak line of a tied doublet, -1 for absorption.
    cidx : ndarray of int (K,)
        Indices of the continuum coefficients c_0..c_{K-1}.
    rest_ref : float
        Rest wavelength that sets the continuum's x = 0 (Angstrom).
    ridx : ndarray of int (G,)
        Index of a ratio parameter MULTIPLYING the flux (-1 for none): a density-sensitive doublet ([SII], [OII])
        is ``F`` and ``R F`` with ``R`` bounded by atomic physics, not two free fluxes.
    tidx : int
        Index of the scale of a stellar-continuum template added to the continuum (-1: none); its values at the
        pixels are passed to :func:`evaluate` as ``tmpl``.
    """

    complex_name: str
    names: list[str]
    init: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    vary: np.ndarray
    g_line: list[str]
    g_comp: list[str]
    g_kin: list[str]
    rest: np.ndarray
    fidx: np.ndarray
    vidx: np.ndarray
    sidx: np.ndarray
    fmult: np.ndarray
    cidx: np.ndarray
    rest_ref: float
    sadd: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    tidx: int = -1
    ridx: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sadd is None:
            self.sadd = np.full(len(self.g_line), -1, int)
        if self.ridx is None:
            self.ridx = np.full(len(self.g_line), -1, int)

    def fluxes(self, theta: np.ndarray) -> np.ndarray:
        """Signed integrated flux of each Gaussian for ``theta`` (P,) or (B, P): flux x multiplier x ratio."""
        theta = np.asarray(theta)
        f = theta[..., self.fidx] * self.fmult
        if (self.ridx >= 0).any():
            f = f * np.where(self.ridx >= 0, theta[..., np.where(self.ridx >= 0, self.ridx, 0)], 1.0)
        return f

    def sigmas(self, theta: np.ndarray) -> np.ndarray:
        """Intrinsic dispersion of each Gaussian (km/s) for parameters ``theta`` (P,) or (B, P)."""
        theta = np.asarray(theta)
        s = theta[..., self.sidx]
        if (self.sadd >= 0).any():
            s = s + np.where(self.sadd >= 0, theta[..., np.where(self.sadd >= 0, self.sadd, 0)], 0.0)
        return s

    @property
    def n_params(self) -> int:
        return len(self.names)

    @property
    def n_gauss(self) -> int:
        return len(self.g_line)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def copy(self) -> "Layout":
        return Layout(self.complex_name, list(self.names), self.init.copy(), self.lower.copy(), self.upper.copy(),
                      self.vary.copy(), list(self.g_line), list(self.g_comp), list(self.g_kin), self.rest.copy(),
                      self.fidx.copy(), self.vidx.copy(), self.sidx.copy(), self.fmult.copy(), self.cidx.copy(),
                      self.rest_ref, self.sadd.copy(), {k: v for k, v in self.meta.items() if not k.startswith("_")},
                      self.tidx, self.ridx.copy())

    def onehot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(G, P) matrices mapping Gaussians to their flux, velocity, dispersion and ratio parameters (cached)."""
        cached = self.meta.get("_onehot")
        if cached is None:
            G, P = self.n_gauss, self.n_params
            mats = []
            for idx in (self.fidx, self.vidx, self.sidx):
                m = np.zeros((G, P))
                m[np.arange(G), idx] = 1.0
                mats.append(m)
            has = np.flatnonzero(self.sadd >= 0)
            mats[2][has, self.sadd[has]] += 1.0  # d sigma / d delta = 1 as well
            mr = np.zeros((G, P))
            has = np.flatnonzero(self.ridx >= 0)
            mr[has, self.ridx[has]] = 1.0
            mats.append(mr)
            cached = tuple(mats)
            self.meta["_onehot"] = cached
        return cached


class _Gaussians(NamedTuple):
    """The Gaussians of :func:`evaluate` and the intermediate arrays their Jacobian reuses."""

    g: np.ndarray       # (B, G, N) curves
    e: np.ndarray       # (B, G, N) unit-height profiles exp(-u^2 / 2)
    u: np.ndarray       # (B, G, N) (lam - centre) / sigma
    s: np.ndarray       # (B, G) intrinsic dispersion, km/s
    sobs: np.ndarray    # (B, G) observed dispersion, km/s
    sl: np.ndarray      # (B, G) observed dispersion, Angstrom
    c0: np.ndarray      # (B, G) systemic observed centre, Angstrom
    cen: np.ndarray     # (B, G) centre, Angstrom
    norm: np.ndarray    # (B, G) 1 / (sqrt(2 pi) sl)
    rmul: Any           # (B, G) ratio factor of each flux, or 1.0 without ratio parameters
    has_ratio: bool


def _gaussians(layout: Layout, theta: np.ndarray, wave: np.ndarray, z: np.ndarray, inst) -> _Gaussians:
    """Every Gaussian of the layout on the pixels (see the module docstring for the formula)."""
    v = theta[:, layout.vidx]
    s = layout.sigmas(theta)
    has_ratio = bool((layout.ridx >= 0).any())
    rmul = np.where(layout.ridx >= 0, theta[:, np.where(layout.ridx >= 0, layout.ridx, 0)], 1.0) if has_ratio \
        else 1.0
    flux = theta[:, layout.fidx] * layout.fmult * rmul  # = layout.fluxes(theta), ratio factor kept for the Jacobian
    c0 = layout.rest[None, :] * (1.0 + z)[:, None]  # (B, G) systemic observed centre
    cen = c0 * (1.0 + v / C_KMS)
    sobs = np.sqrt(s * s + inst * inst)
    sl = cen * sobs / C_KMS  # Angstrom
    d = wave[:, None, :] - cen[:, :, None]  # (B, G, N)
    u = d / sl[:, :, None]
    e = np.exp(-0.5 * u * u)
    norm = 1.0 / (SQRT2PI * sl)
    g = (flux * norm)[:, :, None] * e
    return _Gaussians(g, e, u, s, sobs, sl, c0, cen, norm, rmul, has_ratio)


def _continuum(layout: Layout, theta: np.ndarray, wave: np.ndarray, z: np.ndarray, tmpl):
    """Polynomial (+ scaled stellar template) continuum: ``(cont, powers of x, tmpl broadcast to wave)``."""
    lam_ref = layout.rest_ref * (1.0 + z)
    x = 100.0 * (wave / lam_ref[:, None] - 1.0)
    K = len(layout.cidx)
    xp = np.ones((K,) + x.shape)
    for k in range(1, K):
        xp[k] = xp[k - 1] * x
    coef = theta[:, layout.cidx]  # (B, K)
    cont = np.einsum("bk,kbn->bn", coef, xp) if K else np.zeros_like(wave)
    if layout.tidx >= 0:
        if tmpl is None:
            raise ValueError("this model has a stellar-continuum term: pass its values at the pixels (tmpl)")
        tmpl = np.broadcast_to(np.asarray(tmpl, dtype=float), wave.shape)
        cont = cont + theta[:, layout.tidx][:, None] * tmpl
    return cont, xp, tmpl


def _jacobian(layout: Layout, theta: np.ndarray, gs: _Gaussians, xp: np.ndarray, tmpl) -> np.ndarray:
    """d model / d theta, (B, N, P), from the intermediate arrays of :func:`_gaussians` and :func:`_continuum`."""
    Mf, Mv, Ms, Mr = layout.onehot()
    dg_dF = (layout.fmult * gs.norm * gs.rmul)[:, :, None] * gs.e
    dg_dsl = gs.g * (gs.u * gs.u - 1.0) / gs.sl[:, :, None]
    dg_dcen = gs.g * gs.u / gs.sl[:, :, None] + dg_dsl * (gs.sobs / C_KMS)[:, :, None]
    dg_dv = dg_dcen * (gs.c0 / C_KMS)[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        dsl_ds = np.where(gs.sobs > 0, gs.cen * (gs.s / np.where(gs.sobs > 0, gs.sobs, 1.0)) / C_KMS, 0.0)
    dg_ds = dg_dsl * dsl_ds[:, :, None]
    J = (np.einsum("bgn,gp->bnp", dg_dF, Mf) + np.einsum("bgn,gp->bnp", dg_dv, Mv)
         + np.einsum("bgn,gp->bnp", dg_ds, Ms))
    if gs.has_ratio:  # d g / d R = g / R: the flux parameter times multiplier times the unit profile
        dg_dR = (theta[:, layout.fidx] * layout.fmult * gs.norm)[:, :, None] * gs.e
        J += np.einsum("bgn,gp->bnp", dg_dR, Mr)
    for k, p in enumerate(layout.cidx):
        J[:, :, p] += xp[k]
    if layout.tidx >= 0:
        J[:, :, layout.tidx] += tmpl
    return J


def evaluate(layout: Layout, theta, wave, z, inst, jac: bool = False, components: bool = False, tmpl=None):
    """Model (and optionally its Jacobian) for a batch of spectra.

    Parameters
    ----------
    layout : Layout
    theta : ndarray (B, P)
        Parameters, physical units.
    wave : ndarray (B, N)
        Observed vacuum wavelength, Angstrom (padding pixels may hold any finite value).
    z : ndarray (B,)
        Redshift of each spectrum.
    inst : ndarray (B, G)
        Instrumental dispersion (Gaussian sigma, km/s) at each Gaussian.
    jac : bool
        Also return d model / d theta, shape (B, N, P).
    components : bool
        Also return the per-Gaussian curves (B, G, N) and the continuum (B, N).
    tmpl : ndarray (B, N) or None
        Stellar-continuum template at ``wave``; required when ``layout.tidx >= 0``.

    Returns
    -------
    model : ndarray (B, N)
    jacobian : ndarray (B, N, P), only if ``jac``
    (gauss, cont) : only if ``components``
    """
    theta = np.atleast_2d(theta)
    wave = np.atleast_2d(wave)
    z = np.atleast_1d(np.asarray(z, dtype=float))
    gs = _gaussians(layout, theta, wave, z, inst)
    cont, xp, tmpl = _continuum(layout, theta, wave, z, tmpl)
    model = gs.g.sum(axis=1) + cont
    out = [model]
    if jac:
        out.append(_jacobian(layout, theta, gs, xp, tmpl))
    if components:
        out.append((gs.g, cont))
    return out[0] if len(out) == 1 else tuple(out)


def template_at(layout: Layout, stellar: tuple | None, wave_vac) -> np.ndarray | None:
    """The stellar-continuum template (unscaled) at vacuum wavelengths, or None for a model without one.

    Parameters
    ----------
    layout : Layout
    stellar : (ndarray, ndarray) or None
        Vacuum wavelength (Angstrom) and continuum model (flux unit) around the fit window, linearly interpolated.
    wave_vac : array_like
        Observed vacuum wavelength, Angstrom.
    """
    if stellar is None or layout.tidx < 0:
        return None
    return np.interp(np.asarray(wave_vac, dtype=float), stellar[0], stellar[1])


def component_curves(layout: Layout, theta: np.ndarray, wave_vac: np.ndarray, z: float, inst: np.ndarray,
                     tmpl: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The model of one spectrum and its parts on a wavelength grid, for plotting.

    Parameters
    ----------
    layout : Layout
    theta : ndarray (P,)
        Parameters, physical units.
    wave_vac : ndarray (N,)
        Observed vacuum wavelength, Angstrom.
    z : float
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    tmpl : ndarray (N,) or None
        Stellar-continuum template at ``wave_vac`` (models with ``layout.tidx >= 0``, see :func:`template_at`).

    Returns
    -------
    dict
        ``"total"``, ``"continuum"`` (polynomial + stellar template + absorption troughs), ``"stellar"`` (the
        scaled stellar template, when there is one) and one curve per line component, keyed
        ``"<line>_<component>"``; several Gaussians of one line and component are summed. Spectrum flux unit.
    """
    model, (g, cont) = evaluate(layout, theta[None, :], wave_vac[None, :], np.array([z]), inst[None, :],
                                components=True, tmpl=None if tmpl is None else tmpl[None, :])
    out: dict[str, np.ndarray] = {"total": model[0]}
    if tmpl is not None:
        out["stellar"] = theta[layout.tidx] * tmpl
    continuum = cont[0].copy()
    for i, (line, comp) in enumerate(zip(layout.g_line, layout.g_comp)):
        key = f"{line}_{comp}"
        out[key] = out.get(key, 0.0) + g[0, i]
        if comp == "absorption":
            continuum += g[0, i]
    out["continuum"] = continuum
    return out


def covariance(jw: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Parameter covariance (J^T W J)^-1 over the ``free`` parameters; rows/columns of the others are 0.

    Parameters
    ----------
    jw : ndarray (N, P)
        Jacobian of the model already multiplied by 1/sigma per pixel.
    free : ndarray of bool (P,)
        Parameters that vary and are not pinned at a bound.
    """
    P = jw.shape[1]
    cov = np.zeros((P, P))
    idx = np.flatnonzero(free)
    # a parameter the model does not depend on at this point (the width of a zero-flux Gaussian) has no error
    colnorm = np.einsum("np,np->p", jw[:, idx], jw[:, idx])
    idx = idx[colnorm > 1e-300]
    if idx.size == 0:
        return cov
    A = jw[:, idx].T @ jw[:, idx]
    # scale to unit diagonal before inverting: fluxes (~1e3) and continuum slopes (~1e-1) differ by many decades
    dg = np.sqrt(np.clip(np.diag(A), 1e-300, None))
    An = A / np.outer(dg, dg)
    try:
        inv = np.linalg.inv(An)
        if not np.all(np.isfinite(inv)) or np.linalg.cond(An) > 1e14:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(An, rcond=1e-12, hermitian=True)
    cov[np.ix_(idx, idx)] = inv / np.outer(dg, dg)
    return cov


def propagate(func, theta: np.ndarray, cov: np.ndarray, rel_step: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Derived quantities and their first-order errors: ``func`` maps parameter sets (B, P) to quantities
    (B, ...); its Jacobian by central differences (step ``rel_step`` x each free parameter's error, all 2 x n_free
    sets in one call) is propagated through ``cov``. Parameters with zero variance are held.

    Returns
    -------
    (q0, err) : ndarray
        Quantities at ``theta`` and their 1-sigma errors (same shape).
    """
    theta = np.asarray(theta, dtype=float)
    sig = np.sqrt(np.clip(np.diag(cov), 0, None))
    free = np.flatnonzero(sig > 0)
    h = rel_step * sig[free]
    step = np.zeros((free.size, theta.size))
    step[np.arange(free.size), free] = h
    q = np.asarray(func(np.concatenate([theta[None, :], theta + step, theta - step])), dtype=float)
    q0 = q[0]
    if not free.size:
        return q0, np.zeros_like(q0)
    jac = ((q[1:free.size + 1] - q[free.size + 1:]).reshape(free.size, -1) / (2 * h[:, None])).T
    var = np.einsum("ij,jk,ik->i", jac, cov[np.ix_(free, free)], jac).reshape(q0.shape)
    return q0, np.sqrt(np.clip(var, 0, None))


def fwhm_of_sum(fluxes, centres_kms, sigmas_kms, n: int = 2001) -> float:
    """FWHM (km/s) of a sum of Gaussians in velocity, measured numerically (outermost half-maximum crossings).

    Parameters
    ----------
    fluxes, centres_kms, sigmas_kms : array_like
        Integrated flux (any unit), centre and intrinsic dispersion (km/s) of each Gaussian.
    """
    f = np.asarray(fluxes, float)
    c = np.asarray(centres_kms, float)
    s = np.asarray(sigmas_kms, float)
    keep = (f > 0) & (s > 0)
    if not keep.any():
        return float("nan")
    f, c, s = f[keep], c[keep], s[keep]
    if f.size == 1:
        return float(FWHM_PER_SIGMA * s[0])
    lo = np.min(c - 5 * s)
    hi = np.max(c + 5 * s)
    grid = np.linspace(lo, hi, n)
    prof = (f / s)[:, None] * np.exp(-0.5 * ((grid[None, :] - c[:, None]) / s[:, None]) ** 2)
    prof = prof.sum(axis=0)
    half = prof.max() / 2.0
    above = np.flatnonzero(prof >= half)
    i0, i1 = above[0], above[-1]

    def cross(i, j):  # linear interpolation of the half-maximum crossing between grid points i and j
        y0, y1 = prof[i], prof[j]
        return grid[i] + (half - y0) * (grid[j] - grid[i]) / (y1 - y0) if y1 != y0 else grid[i]

    left = cross(i0 - 1, i0) if i0 > 0 else grid[0]
    right = cross(i1, i1 + 1) if i1 < n - 1 else grid[-1]
    return float(right - left)
