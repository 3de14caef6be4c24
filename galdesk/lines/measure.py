"""Measurements of a fitted complex: statistics and covariance at the solution, and the derived quantities of
every line component (flux, FWHM, velocity, equivalent width) with errors propagated from the covariance.

Shared by both optimisers: :mod:`galdesk.lines.engine` (lmfit) and :mod:`galdesk.lines.vectorized` (batched
Levenberg–Marquardt, Monte Carlo errors) call :func:`finish_fit` on their solutions. Units: flux in the spectrum's
flux unit x Angstrom (observed frame), FWHM and velocities in km/s (intrinsic: the instrument removed), rest-frame
equivalent widths in Angstrom (positive for emission).
"""

from __future__ import annotations

import math

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.layout import to_params
from galdesk.lines.model import FWHM_PER_SIGMA, Layout, covariance, evaluate, fwhm_of_sum, propagate
from galdesk.lines.results import ComplexFit, LineMeasurement
from galdesk.units import C_KMS

__all__ = ["finish_fit", "line_groups", "line_quantities", "measure"]


def finish_fit(layout: Layout, data: dict, inst: np.ndarray, theta: np.ndarray, vary: np.ndarray, config: FitConfig,
               params=None, success=True, message="", nfev=0) -> ComplexFit:
    """The :class:`~galdesk.lines.results.ComplexFit` at a solution: statistics, covariance and measurements at
    ``theta``, whichever optimiser found it (lmfit or the batched fitter).

    Parameters
    ----------
    layout : Layout
    data : dict
        The fitted pixels, from :func:`galdesk.lines.window.prepare_data`.
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    theta : ndarray (P,)
        The solution, physical units.
    vary : ndarray of bool (P,)
        Free parameters (those pinned at a bound get only a conditional error, see below).
    config : FitConfig
        ``scale_covar``.
    params : lmfit.Parameters or None
        The optimiser's parameters (default: built from the layout with the values of ``theta``); their ``stderr``
        is set from the covariance.
    success, message, nfev
        The optimiser's report.
    """
    wave, flux, weight = data["wave"], data["flux"], data["weight"]
    z = data["z"]
    tmpl = data.get("tmpl")
    model, J = evaluate(layout, theta[None, :], wave[None, :], np.array([z]), inst[None, :], jac=True,
                        tmpl=None if tmpl is None else tmpl[None, :])
    r = (flux - model[0]) * weight
    chisqr = float(r @ r)
    n = wave.size
    k = int(np.count_nonzero(vary))
    dof = max(n - k, 1)
    redchi = chisqr / dof
    # parameters pinned at a bound are not free: leave them out of the joint covariance (else a trough stuck at
    # zero depth inflates the broad line's error), and give them their conditional error 1/sqrt(A_ii), the
    # scale of an upper limit
    jw = J[0] * weight[:, None]
    pinned = vary & _at_bound(layout, theta)
    cov = covariance(jw, vary & ~pinned)
    for i in np.flatnonzero(pinned):
        a_ii = float(jw[:, i] @ jw[:, i])
        cov[i, i] = 1.0 / a_ii if a_ii > 0 else 0.0
    if config.scale_covar:
        cov = cov * redchi
    if params is None:
        params = to_params(layout)
        for i, nme in enumerate(layout.names):
            params[nme].set(value=float(theta[i]))
    for i, nme in enumerate(layout.names):
        params[nme].stderr = float(math.sqrt(cov[i, i])) if cov[i, i] > 0 else None
    cf = ComplexFit(
        complex_name=layout.complex_name, layout=layout, params=params, theta=theta.copy(), cov=cov, wave=wave,
        flux=flux, weight=weight, z=z, inst=inst, chisqr=chisqr, redchi=redchi, bic=chisqr + k * math.log(n),
        aic=chisqr + 2 * k, ndata=n, nvarys=k, success=bool(success), message=message, nfev=int(nfev),
        window=data["window"], vacuum=data.get("vacuum", True), stellar=data.get("stellar"),
    )
    cf.measurements = measure(cf)
    return cf


def _at_bound(layout: Layout, theta: np.ndarray) -> np.ndarray:
    lo, hi = layout.lower, layout.upper
    tol = 1e-7 * (np.abs(theta) + 1.0)
    return (theta - lo < tol) | (hi - theta < tol)


def line_groups(layout: Layout) -> list[tuple[str, str, list[int]]]:
    """The measured line components: ``(line, component, indices of its Gaussians)`` in layout order (several
    broad Gaussians of one line are one component)."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, (line, comp) in enumerate(zip(layout.g_line, layout.g_comp)):
        out.setdefault((line, comp), []).append(i)
    return [(k[0], k[1], v) for k, v in out.items()]


def line_quantities(layout: Layout, theta: np.ndarray, z: float, inst: np.ndarray, groups,
                    stellar=None) -> np.ndarray:
    """Derived quantities of line components for one parameter set or a batch (one model evaluation in all).

    Parameters
    ----------
    layout : Layout
    theta : ndarray (P,) or (B, P)
    z : float
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    groups : list
        From :func:`line_groups`.
    stellar : (ndarray, ndarray) or None
        Continuum model around the window (vacuum wavelength, values), for layouts with ``tidx >= 0``.

    Returns
    -------
    ndarray (n_groups, 5) for ``theta`` (P,), or (B, n_groups, 5) for (B, P)
        Flux (flux unit x Angstrom, absorbed flux > 0 for troughs), FWHM (intrinsic, km/s), flux-weighted velocity
        (km/s), EW (rest frame, Angstrom) and the continuum at the line centre (flux unit).
    """
    th = np.atleast_2d(np.asarray(theta, dtype=float))
    nb, ng = th.shape[0], len(groups)
    fl = layout.fluxes(th)
    v = th[:, layout.vidx]
    s = layout.sigmas(th)
    out = np.zeros((nb, ng, 5))
    wc = np.zeros((nb, ng))
    for j, (_, comp, idx) in enumerate(groups):
        f = -fl[:, idx] if comp == "absorption" else fl[:, idx]
        tot = f.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            vw = np.where(tot != 0, np.sum(f * v[:, idx], axis=1) / tot, v[:, idx[0]])
        if len(idx) == 1:
            fw = FWHM_PER_SIGMA * s[:, idx[0]]
        else:
            fw = np.array([fwhm_of_sum(f[b], v[b, idx], s[b, idx]) for b in range(nb)])
        out[:, j, 0], out[:, j, 1], out[:, j, 2] = tot, fw, vw
        wc[:, j] = layout.rest[idx[0]] * (1 + z) * (1 + vw / C_KMS)
    if ng:
        tm = np.interp(wc, stellar[0], stellar[1]) if layout.tidx >= 0 else None
        _, (g, cont) = evaluate(layout, th, wc, np.full(nb, z), np.broadcast_to(inst, (nb, len(inst))),
                                components=True, tmpl=tm)
        absm = np.array([c == "absorption" for c in layout.g_comp])
        level = cont + (g[:, absm].sum(axis=1) if absm.any() else 0.0)
        out[:, :, 4] = level
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, :, 3] = out[:, :, 0] / level / (1 + z)
    return out if np.ndim(theta) == 2 else out[0]


def measure(cf: ComplexFit, cov: np.ndarray | None = None) -> list[LineMeasurement]:
    """Derived quantities of every line component with errors propagated from the covariance.

    Parameters
    ----------
    cf : ComplexFit
    cov : ndarray or None
        Covariance to propagate (default ``cf.cov``).
    """
    layout, theta, z, inst = cf.layout, cf.theta, cf.z, cf.inst
    cov = cf.cov if cov is None else cov
    groups = line_groups(layout)
    q0, err = propagate(lambda th: line_quantities(layout, th, z, inst, groups, cf.stellar), theta, cov)
    out = []
    for j, (line, comp, idx) in enumerate(groups):
        flux, fw, vw, ew, lev = q0[j]
        ew_err = err[j, 3]
        if not (lev > 0 and lev > 3.0 * err[j, 4]):
            # no continuum to measure an equivalent width against (a continuum-subtracted spectrum: EWs of
            # -80,000 Å): not a measurement
            ew = ew_err = float("nan")
        s_int = fw / FWHM_PER_SIGMA
        s_inst = float(inst[idx[0]])
        f_err = err[j, 0]
        out.append(LineMeasurement(
            name=line, wave_vac=LL.LINES[line], component=comp, flux=float(flux), flux_err=float(f_err),
            fwhm_kms=float(fw), fwhm_err=float(err[j, 1]), sigma_kms=float(s_int),
            sigma_obs_kms=float(math.hypot(s_int, s_inst)), v_kms=float(vw), v_err=float(err[j, 2]),
            ew=float(ew), ew_err=float(ew_err), snr=float(flux / f_err) if f_err > 0 else float("nan"),
            continuum=float(lev), complex_name=cf.complex_name,
        ))
    return out
