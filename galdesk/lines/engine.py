"""Gaussian emission-line fitting with lmfit: one complex with model selection (whole spectra:
:mod:`galdesk.lines.spectrum`).

The interactive engine and the reference for the batched fitter (:mod:`galdesk.lines.vectorized`). Each complex is
fitted with ONE residual function handed to :func:`lmfit.minimize` (Levenberg–Marquardt, analytic Jacobian); the
model itself lives in :mod:`galdesk.lines.model`, its parameters in :mod:`galdesk.lines.layout`, the pixels in
:mod:`galdesk.lines.window`, the measurements in :mod:`galdesk.lines.measure` and the spectrum-level verdicts in
:mod:`galdesk.lines.summary`. Units throughout:

* wavelengths: observed-frame vacuum Angstrom (air spectra are converted with :func:`~galdesk.lines.linelist.air_to_vac`
  on the fly; the data are never resampled);
* flux: the spectrum's flux-density unit x Angstrom (observed frame), e.g. 1e-17 erg/s/cm^2 for SDSS;
* velocity: km/s relative to the redshift ``spec.redshift``; dispersion (sigma) and FWHM: intrinsic km/s, the
  instrumental dispersion (``spec.resolution_kms``, SDSS ``wdisp``) removed in quadrature;
* equivalent width: rest frame, Angstrom, positive for emission.

Uncertainties come from the covariance (J^T W J)^-1 with W = inverse variance, not rescaled by the reduced chi^2
unless ``FitConfig.scale_covar``; derived quantities (flux of tied lines, FWHM of multi-Gaussian broad lines, EW)
are propagated with the numerical gradient. ``FitConfig.mc_samples > 0`` instead refits that many noise
realisations (with the batched fitter, all at once) and reports their standard deviation.

A broad Balmer component (or an [OIII] outflow wing) is kept when a fit with it beats the fit without it on ΔBIC,
an F-test, its flux S/N and physical criteria (:func:`galdesk.lines.criteria.compare_fits`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.criteria import compare_fits, pinned_parameters
from galdesk.lines.layout import build_layout, to_params
from galdesk.lines.measure import finish_fit
from galdesk.lines.model import Layout, evaluate
from galdesk.lines.results import BroadTest, ComplexFit
from galdesk.lines.window import prepare_data
from galdesk.tasks import Cancelled, NullContext

__all__ = ["run_lmfit", "compare_fits", "fit_complex", "broad_test", "fit_variant", "hold_trough", "n_broad_of",
           "core_split", "as_core"]


#: Complexes whose outflow wing is tested on its own ([OIII]); Hα+[NII] take [OIII]'s (:mod:`galdesk.lines.spectrum`).
OUTFLOW_TESTED = ("hbeta",)


def run_lmfit(layout: Layout, data: dict, inst: np.ndarray, config: FitConfig, ctx, params_override=None
              ) -> ComplexFit:
    """Fit one model of one complex with lmfit: Levenberg–Marquardt (MINPACK) with the analytic Jacobian.

    Parameters
    ----------
    layout : Layout
        The model and its starting values, from :func:`galdesk.lines.layout.build_layout`.
    data : dict
        The pixels, from :func:`galdesk.lines.window.prepare_data`.
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    config : FitConfig
        ``max_nfev``, ``scale_covar``.
    ctx : TaskContext
        Cancellation: checked at every iteration, :class:`~galdesk.tasks.Cancelled` raised.
    params_override : lmfit.Parameters or dict or None
        Starting values (and vary flags) instead of the layout's, see :func:`galdesk.lines.layout.to_params`.
    """
    import lmfit

    wave, flux, weight = data["wave"], data["flux"], data["weight"]
    zarr = np.array([data["z"]])
    tmpl = None if data.get("tmpl") is None else data["tmpl"][None, :]
    names = layout.names
    params = to_params(layout, params_override)
    vary_names = [n for n in names if params[n].vary]
    vidx = np.array([names.index(n) for n in vary_names], int)
    theta = np.array([params[n].value for n in names])

    def current(p):
        for i, n in enumerate(names):
            theta[i] = p[n].value
        return theta[None, :]

    def resid(p):
        m = evaluate(layout, current(p), wave[None, :], zarr, inst[None, :], tmpl=tmpl)
        return (flux - m[0]) * weight

    def dfun(p):
        _, J = evaluate(layout, current(p), wave[None, :], zarr, inst[None, :], jac=True, tmpl=tmpl)
        return -(J[0][:, vidx] * weight[:, None])

    def iter_cb(p, it, res, *a, **k):
        return ctx.cancelled()

    result = lmfit.minimize(resid, params, method="leastsq", Dfun=dfun, iter_cb=iter_cb,
                            max_nfev=config.max_nfev, scale_covar=False, calc_covar=False)
    if result.aborted and ctx.cancelled():
        raise Cancelled()
    final = np.array([result.params[n].value for n in names])
    vary = np.array([result.params[n].vary for n in names])
    return finish_fit(layout, data, inst, final, vary, config, params=result.params, success=result.success,
                      message=str(result.message), nfev=result.nfev)


def fit_variant(spec_data: dict, complex_name: str, config: FitConfig, ctx, n_broad=0, outflow=False, start=None,
                 multistart: bool = True, fixed: dict | None = None) -> ComplexFit:
    """Fit one model variant. With a broad component, two starts (from ``start`` with a 1200 km/s broad line, and
    from scratch with a 3000 km/s one) guard against the local minima of blended profiles; the best chi^2 wins.
    Both are needed: from the narrow-only fit alone, a narrow line widened over a broad one (a straight local
    continuum under a quasar's Hα) keeps the broad Gaussian out, and the broad fit ends above the narrow one."""
    starts = [(start, 1200.0)]
    if n_broad and multistart:
        starts.append((None, 3000.0))
    best = None
    for st, s0 in starts:
        bk = (fixed["balmer_v"], fixed["balmer_sigma"]) if fixed and "balmer_v" in fixed else None
        layout, inst = build_layout(spec_data, complex_name, config, n_broad=n_broad, outflow=outflow,
                                    start=st, broad_sigma0=s0, fixed=fixed, balmer_kin=bk)
        fit = run_lmfit(layout, spec_data, inst, config, ctx)
        if best is None or fit.chisqr < best.chisqr - 1e-9:
            best = fit
    return best


def _broad_variant(data: dict, complex_name: str, config: FitConfig, ctx, start: ComplexFit,
                   outflow: bool = False, fixed: dict | None = None) -> ComplexFit:
    """Broad fit with ``config.n_broad`` Gaussians, or for "auto" one, then more while ΔBIC > bic_threshold."""
    if config.n_broad != "auto":
        return fit_variant(data, complex_name, config, ctx, n_broad=max(int(config.n_broad), 1), start=start,
                            outflow=outflow, fixed=fixed)
    fit = fit_variant(data, complex_name, config, ctx, n_broad=1, start=start, outflow=outflow, fixed=fixed)
    if start is not None and start.bic - fit.bic <= config.bic_threshold:
        # one broad Gaussian does not pass the ΔBIC test against the narrow-only fit: no broad-line region to give
        # a second Gaussian (a broad line is always tried with one first), and the test costs half as much
        return fit
    for nb in range(2, int(config.max_broad) + 1):
        ctx.check_cancelled()
        more = fit_variant(data, complex_name, config, ctx, n_broad=nb, start=fit, outflow=outflow, fixed=fixed)
        # another Gaussian only when it is needed and not pinned at a bound (a second Gaussian at the velocity
        # bound is continuum shape, not line profile: spec-1599's Hα)
        if fit.bic - more.bic > config.bic_threshold and not pinned_parameters(more, (f"broad{nb}_",)):
            fit = more
        else:
            break
    return fit


def hold_trough(fit: ComplexFit, fixed: dict | None) -> dict:
    """``fixed`` plus the Balmer trough of ``fit``: a broad emission line and a free trough of similar width
    cancel each other (a degenerate pair), so a broad fit keeps the trough found without the broad line."""
    out = dict(fixed or {})
    for i, n in enumerate(fit.layout.names):
        if n == "abs_sigma" or n.endswith("_abs_flux"):
            out[n] = float(fit.theta[i])
    return out


def n_broad_of(fit: ComplexFit) -> int:
    """Broad Gaussians per Balmer line in a fit."""
    return len({k for k in fit.layout.g_kin if k.startswith("broad")})


def core_split(t: BroadTest) -> bool:
    """An outflow test whose statistics pass (ΔBIC, F-test, S/N) but whose second Gaussian is about as narrow as the
    core (the width ratio fails; its width may sit at its lower bound): a non-Gaussian or split core, not a wing."""
    c = t.criteria
    stats_ok = all(c.get(k, {}).get("pass") for k in ("delta_bic", "f_test_p", "snr"))
    return stats_ok and not c.get("width_ratio", {}).get("pass", True)


def as_core(fit: ComplexFit) -> ComplexFit:
    """The fit with its second [OIII] Gaussian counted as part of the narrow line (one "narrow" measurement per
    line, its flux the sum and its FWHM that of the summed profile): a split core keeps its flux without being
    reported as an outflow."""
    from galdesk.lines.measure import measure

    fit.layout.g_comp = ["narrow" if c == "outflow" else c for c in fit.layout.g_comp]
    fit.measurements = measure(fit)
    return fit


def fit_complex(spec, complex_name: str, config: FitConfig | None = None, ctx=None, params_override=None,
                window=None, fixed: dict | None = None, broad_veto: str | None = None) -> ComplexFit:
    """Fit one complex of one spectrum.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        Needs ``redshift``; uses ``ivar``/``mask`` (masked pixels excluded, residuals weighted by 1/sigma) and
        ``resolution_kms`` (instrumental sigma removed from widths).
    complex_name : str
        Key of :data:`galdesk.lines.linelist.COMPLEXES`.
    config : FitConfig
    ctx : galdesk.tasks.TaskContext or None
        Cancellation (lmfit's ``iter_cb`` returns ``ctx.cancelled()``); :class:`~galdesk.tasks.Cancelled` is raised.
    params_override : lmfit.Parameters or dict or None
        Starting values (and ``vary`` flags) for a warm-started interactive refit: a single fit of the model that
        these parameters describe (their broad/outflow parameters decide the variant), no model selection.
    window : (float, float) or None
        Observed wavelength range, Angstrom, in the spectrum's convention.
    fixed : dict or None
        Parameters held fixed at the given values (e.g. ``{"narrow_v": 12.0, "narrow_sigma": 85.0}``).
    broad_veto : str or None
        With ``broad="auto"``: no broad component is tried, for this reason (e.g. Hβ when Hα needs none); the fit
        window is the one a broad test would use.

    Returns
    -------
    ComplexFit
        With ``tests`` holding the broad/outflow comparisons when ``config.broad``/``outflow`` is "auto"/"yes".
    """
    config = config or FitConfig()
    ctx = ctx or NullContext()
    cx = LL.COMPLEXES[complex_name]
    if complex_name not in LL.COMPLEXES:
        raise ValueError(f"unknown complex {complex_name!r}")
    if params_override is not None:
        keys = list(params_override.keys())
        nb = len({k.split("_")[0] for k in keys if k.startswith("broad") and k.endswith("sigma")})
        out = any(k.startswith("outflow_") for k in keys)
        data = prepare_data(spec, complex_name, config, window, broad=bool(nb) or config.broad != "no", ctx=ctx)
        layout, inst = build_layout(data, complex_name, config, n_broad=nb, outflow=out,
                                    absorption=any(k == "abs_sigma" for k in keys))
        return run_lmfit(layout, data, inst, config, ctx, params_override)

    wide = bool(cx.broad) and config.broad != "no"  # the window of a broad test, tested or not (same pixels)
    # a vetoed broad component is not even tried: the broad fits are ~70 % of the cost of a spectrum
    want_broad = wide and not (broad_veto and config.broad == "auto")
    want_out = bool(cx.outflow) and config.outflow != "no" and complex_name in OUTFLOW_TESTED
    data = prepare_data(spec, complex_name, config, window, broad=wide or want_out, ctx=ctx)
    tests: list[BroadTest] = []
    best = fit_variant(data, complex_name, config, ctx, fixed=fixed)
    if want_broad:
        ctx.check_cancelled()
        wb = _broad_variant(data, complex_name, config, ctx, start=best, fixed=hold_trough(best, fixed))
        t = compare_fits(best, wb, config, "broad")
        tests.append(t)
        if config.broad == "yes" or t.needed:
            best = wb
    if want_out:
        ctx.check_cancelled()
        wo = fit_variant(data, complex_name, config, ctx, n_broad=n_broad_of(best), outflow=True, start=best,
                          fixed=fixed)
        t = compare_fits(best, wo, config, "outflow")
        tests.append(t)
        if config.outflow == "yes" or t.needed:
            best = wo
        elif core_split(t):
            best = as_core(wo)
    best.tests = tests
    if config.mc_samples > 0:
        from galdesk.lines.vectorized import mc_errors

        mc_errors(best, config.mc_samples, seed=config.mc_seed)
    return best


def broad_test(spec, complex_name: str = "halpha", config: FitConfig | None = None, ctx=None,
               start: ComplexFit | None = None) -> BroadTest:
    """Fit a complex with and without a broad Balmer component and compare them.

    Parameters
    ----------
    spec : SpectrumData
    complex_name : str
        ``"halpha"`` (default), ``"hbeta"`` or ``"hgamma"``.
    config : FitConfig
        ``broad`` is ignored (both fits are made); ``outflow`` is not used here.
    start : ComplexFit or None
        Starting values of the narrow-only fit (e.g. the same complex fitted on another continuum).

    Returns
    -------
    BroadTest
        ``delta_bic`` (> 0 favours the broad component), ``f_stat``, ``p_value``, ``verdict``; ``fit_without`` and
        ``fit_with`` hold both fits.
    """
    config = replace(config or FitConfig(), broad="auto", outflow="no")
    ctx = ctx or NullContext()
    if not LL.COMPLEXES[complex_name].broad:
        raise ValueError(f"{complex_name} has no broad-capable line")
    data = prepare_data(spec, complex_name, config, None, broad=True)
    f0 = fit_variant(data, complex_name, config, ctx, start=start)
    f1 = _broad_variant(data, complex_name, config, ctx, start=f0, fixed=hold_trough(f0, None))
    return compare_fits(f0, f1, config, "broad")
