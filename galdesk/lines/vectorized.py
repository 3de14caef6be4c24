"""Batched Levenberg–Marquardt: many spectra of ONE complex model fitted at once, in NumPy (float64).

The model and its analytic Jacobian are the ones lmfit uses (:func:`galdesk.lines.model.evaluate`), the starting
values come from the same :func:`~galdesk.lines.layout.build_layout`, and the statistics and covariance from the
same code (:func:`~galdesk.lines.measure.finish_fit`), so results agree with
:func:`~galdesk.lines.engine.fit_complex` to well under 0.1 sigma when both converge (checked by the tests and
``benchmarks/bench_lines.py``). lmfit stays the reference and the interactive engine; this is for large batches and
for Monte Carlo errors (the noise realisations of one spectrum are fitted together).

Differences from MINPACK's LM, none of which move the minimum: bounds are enforced by projection (clipping) rather
than lmfit's change of variables, and the damping is Marquardt's diagonal scaling with a per-spectrum factor.
Padding pixels (spectra have different numbers of pixels in a window) carry zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galdesk.lines.config import FitConfig
from galdesk.lines.layout import build_layout
from galdesk.lines.measure import finish_fit, line_groups, line_quantities
from galdesk.lines.model import Layout, evaluate
from galdesk.lines.window import prepare_data
from galdesk.tasks import NullContext

__all__ = ["BatchResult", "lm_batch", "fit_complex_batch", "mc_errors"]


@dataclass
class BatchResult:
    """Output of :func:`lm_batch`.

    Attributes
    ----------
    theta : ndarray (B, P)
        Best-fit parameters, physical units (``layout.names`` order).
    chisqr : ndarray (B,)
    n_iter : ndarray (B,)
        Iterations each spectrum needed.
    converged : ndarray of bool (B,)
    """

    theta: np.ndarray
    chisqr: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def _chi2_and_normal(layout, theta, wave, flux, weight, z, inst, vary, jac=True, tmpl=None):
    if not jac:
        m = evaluate(layout, theta, wave, z, inst, tmpl=tmpl)
        r = (flux - m) * weight
        return np.einsum("bn,bn->b", r, r)
    m, J = evaluate(layout, theta, wave, z, inst, jac=True, tmpl=tmpl)
    r = (flux - m) * weight
    Jw = J * weight[:, :, None]
    Jw[:, :, ~vary] = 0.0
    A = np.einsum("bnp,bnq->bpq", Jw, Jw)
    g = np.einsum("bnp,bn->bp", Jw, r)
    return np.einsum("bn,bn->b", r, r), A, g


def lm_batch(layout: Layout, wave, flux, weight, z, inst, theta0, max_iter: int = 200, ftol: float = 1e-10,
             xtol: float = 1e-10, ctx=None, tmpl=None) -> BatchResult:
    """Fit B spectra of one model with a batched Levenberg–Marquardt.

    Parameters
    ----------
    layout : Layout
        The model (names, bounds, ``vary``); the same for every spectrum.
    wave, flux, weight : ndarray (B, N)
        Observed vacuum wavelength (Angstrom), flux and 1/sigma; padding pixels have weight 0.
    z : ndarray (B,)
    inst : ndarray (B, G)
        Instrumental dispersion at each Gaussian, km/s.
    theta0 : ndarray (B, P)
        Starting values.
    max_iter : int
    ftol, xtol : float
        Stop a spectrum when an accepted step lowers chi^2 by less than ftol (relative) or moves every
        parameter by less than xtol (relative).
    ctx : TaskContext or None
        Cancellation is checked every iteration.
    tmpl : ndarray (B, N) or None
        Stellar-continuum template at the pixels (models with ``layout.tidx >= 0``).

    Returns
    -------
    BatchResult
    """
    ctx = ctx or NullContext()
    lo, hi = layout.lower, layout.upper
    vary = np.asarray(layout.vary, bool)
    theta = np.clip(np.array(theta0, dtype=float), lo, hi)
    B, P = theta.shape
    lam = np.full(B, 1e-3)
    n_iter = np.zeros(B, int)
    done = np.zeros(B, bool)
    chi2, A, g = _chi2_and_normal(layout, theta, wave, flux, weight, z, inst, vary, tmpl=tmpl)
    for _ in range(max_iter):
        ctx.check_cancelled()
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        ta = theta[act]
        tn = np.clip(ta + _damped_step(A[act], g[act], ta, lam[act], lo, hi, vary), lo, hi)
        chi2n = _chi2_and_normal(layout, tn, wave[act], flux[act], weight[act], z[act], inst[act], vary,
                                 jac=False, tmpl=None if tmpl is None else tmpl[act])
        ok = np.isfinite(chi2n) & (chi2n <= chi2[act])
        n_iter[act] += 1
        # accepted: move, relax damping, test convergence
        acc = act[ok]
        if acc.size:
            rel = (chi2[acc] - chi2n[ok]) / np.maximum(chi2[acc], 1e-300)
            moved = np.max(np.abs(tn[ok] - ta[ok]) / (np.abs(ta[ok]) + 1e-8), axis=1)
            theta[acc] = tn[ok]
            chi2[acc] = chi2n[ok]
            lam[acc] = np.maximum(lam[acc] * 0.3, 1e-12)
            done[acc] = (rel < ftol) | (moved < xtol)
            c2, A2, g2 = _chi2_and_normal(layout, theta[acc], wave[acc], flux[acc], weight[acc], z[acc],
                                          inst[acc], vary, tmpl=None if tmpl is None else tmpl[acc])
            A[acc], g[acc] = A2, g2
        rej = act[~ok]
        if rej.size:
            lam[rej] *= 10.0
            done[rej] |= lam[rej] > 1e12  # no downhill step left: at the minimum to machine precision
    return BatchResult(theta=theta, chisqr=chi2, n_iter=n_iter, converged=done)


def _damped_step(Aa, ga, ta, lam_a, lo, hi, vary) -> np.ndarray:
    """Marquardt steps (A + lam diag(A)) step = g of the active spectra, (b, P): zero for fixed parameters and for
    those on a bound that the gradient pushes outwards (an active set: clipping such a step would stall the
    iteration)."""
    P = ta.shape[1]
    eye = np.eye(P)
    tol = 1e-10 * (np.abs(ta) + 1.0)
    pinned = ((ta - lo <= tol) & (ga < 0)) | ((hi - ta <= tol) & (ga > 0))
    free = vary[None, :] & ~pinned
    d = np.einsum("bii->bi", Aa).copy()
    d = np.where(d > 0, d, 1.0)
    M = Aa + (lam_a[:, None] * d)[:, :, None] * eye
    fm = free[:, :, None] & free[:, None, :]
    M = np.where(fm, M, 0.0) + (~free)[:, :, None] * eye
    rhs = np.where(free, ga, 0.0)
    try:
        step = np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        step = np.einsum("bij,bj->bi", np.linalg.pinv(M), rhs)
    return np.where(free, step, 0.0)


def _pad(datas, layouts_inst):
    B = len(datas)
    N = max(d["wave"].size for d in datas)
    wave = np.zeros((B, N))
    flux = np.zeros((B, N))
    weight = np.zeros((B, N))
    has_tmpl = any(d.get("tmpl") is not None for d in datas)
    tmpl = np.zeros((B, N)) if has_tmpl else None
    for b, d in enumerate(datas):
        n = d["wave"].size
        wave[b, :n] = d["wave"]
        wave[b, n:] = d["wave"][-1]  # finite filler; weight 0
        flux[b, :n] = d["flux"]
        weight[b, :n] = d["weight"]
        if has_tmpl:
            tmpl[b, :n] = d["tmpl"]
    z = np.array([d["z"] for d in datas])
    inst = np.array(layouts_inst)
    return wave, flux, weight, z, inst, tmpl


def fit_complex_batch(spectra, complex_name: str, config=None, n_broad: int = 0, outflow: bool = False,
                      absorption: bool | None = None, measure: bool = True, chunk: int = 512, ctx=None):
    """Fit one complex model in many spectra at once (no model selection: the variant is given).

    Parameters
    ----------
    spectra : sequence of SpectrumData
    complex_name : str
    config : FitConfig
    n_broad : int
        Broad Gaussians per Balmer line (0 = narrow only).
    outflow : bool
        [OIII] outflow component.
    absorption : bool or None
        Balmer trough (default ``config.absorption``, resolved per spectrum).
    measure : bool
        Return full :class:`~galdesk.lines.results.ComplexFit` objects (covariance, line measurements); else only
        the :class:`BatchResult` per chunk, concatenated (fastest).
    chunk : int
        Spectra per batch (memory ~ chunk x Gaussians x pixels x 8 bytes x a few).
    ctx : TaskContext or None
        Progress per chunk, cancellation.

    Returns
    -------
    list of ComplexFit or ValueError (spectra that cannot be fitted, e.g. line outside the range), in input order;
    or, with ``measure=False``, ``(layout, BatchResult, index)`` where ``index`` maps rows to input positions.
    """
    config = config or FitConfig()
    ctx = ctx or NullContext()
    prepared = []
    out: list = [None] * len(spectra)
    for i, spec in enumerate(spectra):
        try:
            data = prepare_data(spec, complex_name, config, None, broad=bool(n_broad) or outflow)
            layout, inst = build_layout(data, complex_name, config, n_broad=n_broad, outflow=outflow,
                                        absorption=absorption)
            prepared.append((i, data, layout, inst))
        except ValueError as exc:
            out[i] = exc
    # one model per batch: absorption can differ per spectrum ("auto"), so group by parameter names
    groups: dict[tuple, list] = {}
    for item in prepared:
        groups.setdefault(tuple(item[2].names), []).append(item)
    thetas, index, ref_layout = [], [], None
    n_done, n_total = 0, max(len(prepared), 1)
    for items in groups.values():
        for s in range(0, len(items), chunk):
            part = items[s:s + chunk]
            layout = part[0][2]
            wave, flux, weight, z, inst, tmpl = _pad([p[1] for p in part], [p[3] for p in part])
            theta0 = np.array([p[2].init for p in part])
            res = lm_batch(layout, wave, flux, weight, z, inst, theta0, ctx=ctx, tmpl=tmpl)
            if measure:
                for k, (i, data, lay, ins) in enumerate(part):
                    fit = finish_fit(lay, data, ins, res.theta[k], lay.vary.copy(), config,
                                     success=bool(res.converged[k]), message="batched LM",
                                     nfev=int(res.n_iter[k]))
                    out[i] = fit
            else:
                thetas.append(res)
                index.extend(p[0] for p in part)
                ref_layout = layout
            n_done += len(part)
            ctx.progress(n_done / n_total, f"{complex_name}: {n_done}/{len(prepared)}")
    if not measure:
        if not thetas:
            return ref_layout, None, []
        cat = BatchResult(theta=np.concatenate([t.theta for t in thetas]),
                          chisqr=np.concatenate([t.chisqr for t in thetas]),
                          n_iter=np.concatenate([t.n_iter for t in thetas]),
                          converged=np.concatenate([t.converged for t in thetas]))
        return ref_layout, cat, index
    return out


def mc_errors(cf, n_samples: int, seed: int = 12345) -> None:
    """Monte Carlo errors for a :class:`~galdesk.lines.results.ComplexFit`, in place.

    Adds Gaussian noise (sigma = 1/weight) to the fitted pixels ``n_samples`` times, refits all realisations at once
    with :func:`lm_batch` from the best fit, and replaces ``flux_err``, ``fwhm_err``, ``v_err``, ``ew_err`` and
    ``snr`` of every measurement by the standard deviation over the realisations. ``cf.mc_samples`` records n.
    """
    rng = np.random.default_rng(seed)
    n = int(n_samples)
    wave = np.broadcast_to(cf.wave, (n, cf.wave.size)).copy()
    sigma = 1.0 / cf.weight
    flux = cf.flux[None, :] + rng.standard_normal((n, cf.wave.size)) * sigma[None, :]
    weight = np.broadcast_to(cf.weight, flux.shape).copy()
    layout = cf.layout.copy()
    layout.vary = np.array([cf.params[k].vary for k in layout.names])
    tm = cf.tmpl_at(cf.wave)
    res = lm_batch(layout, wave, flux, weight, np.full(n, cf.z), np.broadcast_to(cf.inst, (n, cf.inst.size)),
                   np.broadcast_to(cf.theta, (n, cf.theta.size)).copy(),
                   tmpl=None if tm is None else np.broadcast_to(tm, flux.shape))
    groups = line_groups(layout)
    qs = np.array([line_quantities(layout, t, cf.z, cf.inst, groups, cf.stellar)
                   for t in res.theta])  # (n, groups, 5)
    sd = np.nanstd(qs, axis=0, ddof=1)
    for j, m in enumerate(cf.measurements):
        m.flux_err, m.fwhm_err, m.v_err, m.ew_err = (float(sd[j, 0]), float(sd[j, 1]), float(sd[j, 2]),
                                                     float(sd[j, 3]))
        m.snr = float(m.flux / m.flux_err) if m.flux_err > 0 else float("nan")
    cf.mc_samples = n
