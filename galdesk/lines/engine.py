"""Gaussian emission-line fitting with lmfit: one complex with model selection, or a whole spectrum.

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
an F-test and its flux S/N (:func:`compare_fits`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.layout import build_layout, to_params
from galdesk.lines.measure import finish_fit
from galdesk.lines.model import Layout, evaluate
from galdesk.lines.results import BroadTest, ComplexFit, SpectrumFit
from galdesk.lines.summary import feii_ratio, summarize
from galdesk.lines.window import prepare_data
from galdesk.tasks import Cancelled, NullContext

__all__ = ["run_lmfit", "compare_fits", "fit_complex", "broad_test", "fit_spectrum", "UNRESOLVED"]


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


def _fit_variant(spec_data: dict, complex_name: str, config: FitConfig, ctx, n_broad=0, outflow=False, start=None,
                 multistart: bool = True, fixed: dict | None = None) -> ComplexFit:
    """Fit one model variant. With a broad component, two starts (from ``start`` with a 1200 km/s broad line, and
    from scratch with a 3000 km/s one) guard against the local minima of blended profiles; the best chi^2 wins."""
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
        return _fit_variant(data, complex_name, config, ctx, n_broad=max(int(config.n_broad), 1), start=start,
                            outflow=outflow, fixed=fixed)
    fit = _fit_variant(data, complex_name, config, ctx, n_broad=1, start=start, outflow=outflow, fixed=fixed)
    for nb in range(2, int(config.max_broad) + 1):
        ctx.check_cancelled()
        more = _fit_variant(data, complex_name, config, ctx, n_broad=nb, start=fit, outflow=outflow, fixed=fixed)
        if fit.bic - more.bic > config.bic_threshold:
            fit = more
        else:
            break
    return fit


def _hold_trough(fit: ComplexFit, fixed: dict | None) -> dict:
    """``fixed`` plus the Balmer trough of ``fit``: a broad emission line and a free trough of similar width
    cancel each other (a degenerate pair), so a broad fit keeps the trough found without the broad line."""
    out = dict(fixed or {})
    for i, n in enumerate(fit.layout.names):
        if n == "abs_sigma" or n.endswith("_abs_flux"):
            out[n] = float(fit.theta[i])
    return out


def _n_broad(fit: ComplexFit) -> int:
    """Broad Gaussians per Balmer line in a fit."""
    return len({k for k in fit.layout.g_kin if k.startswith("broad")})


def compare_fits(without: ComplexFit, with_: ComplexFit, config: FitConfig, component: str = "broad") -> BroadTest:
    """ΔBIC and F-test between nested fits of the same pixels; verdict on the extra component.

    Parameters
    ----------
    without, with_ : ComplexFit
        Fits without and with the extra component, on the same pixels.
    config : FitConfig
        Supplies the thresholds.
    component : {"broad", "outflow"}
    """
    from scipy import stats

    n = with_.ndata
    dk = max(with_.nvarys - without.nvarys, 1)
    dchi = without.chisqr - with_.chisqr
    dof = max(n - with_.nvarys, 1)
    f_stat = (dchi / dk) / (with_.chisqr / dof) if with_.chisqr > 0 else float("inf")
    p = float(stats.f.sf(f_stat, dk, dof)) if np.isfinite(f_stat) and f_stat > 0 else 1.0
    dbic = without.bic - with_.bic
    # S/N of the extra component's total flux (all its lines, all its Gaussians)
    flux = sum(m.flux for m in with_.measurements if m.component == component)
    errs = [m.flux_err for m in with_.measurements if m.component == component and m.flux > 0]
    err = math.sqrt(sum(e * e for e in errs)) if errs else float("nan")
    snr = flux / err if err and np.isfinite(err) and err > 0 else 0.0
    needed = bool(dbic > config.bic_threshold and p < config.ftest_alpha and snr > config.min_broad_snr)
    if component == "broad":
        fw = [m.fwhm_kms for m in with_.measurements if m.component == "broad"]
        needed = needed and bool(fw) and max(fw) >= config.broad_fwhm_min
    verdict = f"{component} component needed" if needed else f"no {component} component needed"
    return BroadTest(complex_name=with_.complex_name, component=component, delta_bic=float(dbic),
                     f_stat=float(f_stat), p_value=p, dof_extra=dk, chisqr_without=without.chisqr,
                     chisqr_with=with_.chisqr, ndata=n, component_snr=float(snr), needed=needed, verdict=verdict,
                     fit_without=without, fit_with=with_)


def fit_complex(spec, complex_name: str, config: FitConfig | None = None, ctx=None, params_override=None,
                window=None, fixed: dict | None = None) -> ComplexFit:
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
        data = prepare_data(spec, complex_name, config, window, broad=bool(nb) or config.broad != "no")
        layout, inst = build_layout(data, complex_name, config, n_broad=nb, outflow=out,
                                    absorption=any(k == "abs_sigma" for k in keys))
        return run_lmfit(layout, data, inst, config, ctx, params_override)

    want_broad = bool(cx.broad) and config.broad != "no"
    want_out = bool(cx.outflow) and config.outflow != "no"
    data = prepare_data(spec, complex_name, config, window, broad=want_broad or want_out)
    tests: list[BroadTest] = []
    best = _fit_variant(data, complex_name, config, ctx, fixed=fixed)
    if want_broad:
        ctx.check_cancelled()
        wb = _broad_variant(data, complex_name, config, ctx, start=best, fixed=_hold_trough(best, fixed))
        t = compare_fits(best, wb, config, "broad")
        tests.append(t)
        if config.broad == "yes" or t.needed:
            best = wb
    if want_out:
        ctx.check_cancelled()
        wo = _fit_variant(data, complex_name, config, ctx, n_broad=_n_broad(best), outflow=True, start=best,
                          fixed=fixed)
        t = compare_fits(best, wo, config, "outflow")
        tests.append(t)
        if config.outflow == "yes" or t.needed:
            best = wo
    best.tests = tests
    if config.mc_samples > 0:
        from galdesk.lines.vectorized import mc_errors

        mc_errors(best, config.mc_samples, seed=config.mc_seed)
    return best


def broad_test(spec, complex_name: str = "halpha", config: FitConfig | None = None, ctx=None) -> BroadTest:
    """Fit a complex with and without a broad Balmer component and compare them.

    Parameters
    ----------
    spec : SpectrumData
    complex_name : str
        ``"halpha"`` (default), ``"hbeta"`` or ``"hgamma"``.
    config : FitConfig
        ``broad`` is ignored (both fits are made); ``outflow`` is not used here.

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
    f0 = _fit_variant(data, complex_name, config, ctx)
    f1 = _broad_variant(data, complex_name, config, ctx, start=f0, fixed=_hold_trough(f0, None))
    return compare_fits(f0, f1, config, "broad")


#: Complexes whose lines are blended at SDSS-like resolution (R ~ 2000): their velocity is tied to Hα's.
UNRESOLVED = ("oii",)


def _broad_tie(ha: ComplexFit | None, name: str, config: FitConfig) -> dict:
    """With ``config.tie_broad``: the broad Gaussians' velocities and widths of Hα, for Hβ/Hγ (else {})."""
    if not config.tie_broad or ha is None or name not in ("hbeta", "hgamma") or not ha.tests:
        return {}
    test = next((t for t in ha.tests if t.component == "broad"), None)
    nb = _n_broad(ha)
    if test is None or not test.needed or nb == 0:
        return {}
    # broad1_v, broad1_sigma, broad2_v, broad2_dsigma, ...: every broad kinematic parameter
    return {n: float(ha.theta[i]) for i, n in enumerate(ha.layout.names) if n.startswith("broad")}


def fit_spectrum(spec, config: FitConfig | None = None, ctx=None) -> SpectrumFit:
    """Fit every configured complex of a spectrum, decide on a broad component, classify on the BPT diagrams.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    config : FitConfig
    ctx : TaskContext or None
        Progress per complex; cancellation between complexes and inside lmfit.

    Returns
    -------
    SpectrumFit
        Complexes outside the spectrum (or without good pixels) are listed in ``skipped`` with the reason.
        ``broad`` is the Hα test when Hα was fitted, else the Hβ test.
    """

    config = config or FitConfig()
    ctx = ctx or NullContext()
    sf = SpectrumFit(source=str(spec.source), id=str(spec.id), z=spec.redshift,
                     flux_unit=str(getattr(spec, "flux_unit", "") or ""))
    # strong complexes first: their narrow kinematics are the reference for weak ones
    order = sorted(config.complexes, key=lambda c: (c not in ("halpha", "hbeta"), c != "halpha"))
    n = len(order)
    for i, name in enumerate(order):
        ctx.check_cancelled()
        ctx.progress(i / n, f"{spec.id}: {name}")
        try:
            sf.complexes[name] = _fit_tied(spec, name, sf.complexes, config, ctx)
        except Cancelled:
            raise
        except ValueError as exc:
            sf.skipped[name] = str(exc)
    sf.complexes = {k: sf.complexes[k] for k in config.complexes if k in sf.complexes}
    sf.stellar = _continuum_summary(spec, config)
    if sf.z is not None and sf.z > 0:
        # load astropy.cosmology here, on the worker (~0.5 s, once per process): summarize() also runs on the GUI
        # thread after an interactive refit, where a first broad line would otherwise pay for it
        from galdesk.lines.bhmass import luminosity_distance_cm

        luminosity_distance_cm(sf.z)
    summarize(sf, config)
    if sf.stellar and sf.stellar.get("kind") == "agn":
        # Fe II strength relative to broad Hβ (Boroson & Green 1992), an Eigenvector-1 coordinate
        sf.stellar["r_feii"], sf.stellar["r_feii_err"] = feii_ratio(
            sf.stellar.get("feii_flux"), sf.stellar.get("feii_flux_err"), sf.line("hbeta", "broad"))
    ctx.progress(1.0, f"{spec.id}: done")
    return sf


def _fit_tied(spec, name: str, done: dict[str, ComplexFit], config: FitConfig, ctx) -> ComplexFit:
    """Fit one complex of :func:`fit_spectrum`, tied to the complexes fitted before it (``done``): Hβ's narrow
    Balmer kinematics to Hα's (``tie_balmer``), broad Hβ/Hγ to broad Hα (``tie_broad``), the blended [OII] velocity
    to the Balmer lines', and a weak complex's narrow kinematics to Hα's (else Hβ's) when its own S/N is below
    ``tie_snr``."""
    fixed = None
    ha = done.get("halpha")
    if name == "hbeta" and ha is not None and config.tie_balmer:
        fixed = {"balmer_v": float(ha.theta[ha.layout.index("narrow_v")]),
                 "balmer_sigma": float(ha.theta[ha.layout.index("narrow_sigma")])}
    cfg = config
    tie = _broad_tie(ha, name, config)
    if tie:
        # the same broad-line region: Hβ (Hγ) take Hα's broad velocities and widths, only fluxes are free
        fixed = {**(fixed or {}), **tie}
        cfg = replace(config, n_broad=_n_broad(ha))
    ref = done.get("halpha") or done.get("hbeta")
    if name in UNRESOLVED and ref is not None:
        # a doublet blended at the instrument's resolution: its centroid cannot tell a velocity shift
        # from a change of ratio, so it takes the Balmer lines' velocity (its width stays free)
        fixed = {"narrow_v": float(ref.theta[ref.layout.index("narrow_v")])}
    cf = fit_complex(spec, name, cfg, ctx, fixed=fixed)
    if name not in ("halpha", "hbeta") and ref is not None and config.tie_snr > 0:
        snr = max((m.snr for m in cf.measurements if m.component == "narrow" and np.isfinite(m.snr)),
                  default=0.0)
        if snr < config.tie_snr:
            fixed = {k: float(ref.theta[ref.layout.index(k)]) for k in ("narrow_v", "narrow_sigma")}
            cf = fit_complex(spec, name, cfg, ctx, fixed={**fixed, **tie})
    return cf


def _continuum_summary(spec, config: FitConfig) -> dict | None:
    """``SpectrumFit.stellar``: the whole-spectrum continuum fit cached on the spectrum (its ``kind`` and scalar
    summary) or why there is none; None for a local continuum."""
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    if config.continuum != "local":
        st = meta.get("stellar_fit")
        if st is not None:
            return {"kind": meta.get("continuum_kind", "stellar"), **st.to_dict()}
        elif meta.get("stellar_error"):
            return {"error": meta["stellar_error"]}
    return None
