"""The criteria of a broad-line or outflow verdict: statistics (ΔBIC, F-test, S/N) and physics (a broad-line region
is broad, centred on its galaxy and not pinned at a bound of the fit; an outflow wing is meaningfully broader than its
core). :func:`compare_fits` records every criterion in :attr:`BroadTest.criteria
<galdesk.lines.results.BroadTest.criteria>`; the spectrum-level ones (the Hα veto, the second stellar library) are
added by :mod:`galdesk.lines.engine`.
"""

from __future__ import annotations

import math

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.results import BroadTest, ComplexFit

__all__ = ["compare_fits", "pinned_parameters", "describe_test", "test_details", "describe_choice"]


def pinned_parameters(fit: ComplexFit, prefixes: tuple[str, ...], names: tuple[str, ...] = ()) -> list[str]:
    """Kinematic parameters of a component (names starting with ``prefixes``, or in ``names``) that sit at a bound
    (within 2 % of the bound's size)."""
    out = []
    lay = fit.layout
    for i, n in enumerate(lay.names):
        if not (n.startswith(prefixes) or n in names) or n.endswith("_flux") or not n.endswith(("_v", "sigma")):
            continue
        if not lay.vary[i]:
            continue
        th, lo, hi = float(fit.theta[i]), float(lay.lower[i]), float(lay.upper[i])
        if (np.isfinite(lo) and th - lo < 0.02 * max(abs(lo), 1.0)) or \
                (np.isfinite(hi) and hi - th < 0.02 * max(abs(hi), 1.0)):
            out.append(n)
    return out


def _component_kinematics(fit: ComplexFit, component: str) -> tuple[float, float]:
    """Flux-weighted velocity of a component and of the narrow lines it belongs to (km/s)."""
    def wmean(comp):
        ms = [m for m in fit.measurements if m.component == comp and np.isfinite(m.v_kms) and m.flux > 0]
        if component == "broad" and comp == "narrow":  # the broad Balmer lines' own narrow lines
            ms = [m for m in ms if m.name in LL.BALMER] or ms
        w = sum(m.flux for m in ms)
        return sum(m.flux * m.v_kms for m in ms) / w if w > 0 else float("nan")
    return wmean(component), wmean("narrow")


def _physical_checks(t: BroadTest, with_: ComplexFit, config: FitConfig) -> None:
    """The criteria beyond the statistics: a broad-line region is broad, centred on its galaxy and not pinned at a
    bound; an outflow wing is meaningfully broader than its core and not pinned either."""
    comp = t.component
    if comp == "broad":
        fw = [m.fwhm_kms for m in with_.measurements if m.component == "broad"]
        fwhm = max(fw) if fw else float("nan")
        ok = bool(fw) and fwhm >= config.broad_fwhm_min
        t.criteria["fwhm"] = {"value": fwhm, "limit": config.broad_fwhm_min, "pass": ok}
        if not ok:
            t.reject("fwhm", f"FWHM {fwhm:.0f} km/s < {config.broad_fwhm_min:.0f}: a wing, not a broad-line region",
                     fwhm, config.broad_fwhm_min)
        vb, vn = _component_kinematics(with_, "broad")
        dv = abs(vb - vn) if np.isfinite(vb) and np.isfinite(vn) else float("nan")
        limit = max(config.broad_dv_max, config.broad_dv_fwhm_fraction * fwhm) if np.isfinite(fwhm) else \
            config.broad_dv_max
        ok = not dv > limit
        t.criteria["offset"] = {"value": dv, "limit": limit, "pass": ok}
        if not ok:
            t.reject("offset", f"centred {dv:.0f} km/s from the narrow lines (> {limit:.0f})", dv, limit)
        pinned = pinned_parameters(with_, ("broad",))
    else:
        i_n, i_o = with_.layout.index("narrow_sigma"), with_.layout.index("outflow_dsigma")
        s_n = float(with_.theta[i_n])
        ratio = (s_n + float(with_.theta[i_o])) / s_n if s_n > 0 else float("inf")
        ok = ratio >= config.outflow_min_ratio
        t.criteria["width_ratio"] = {"value": ratio, "limit": config.outflow_min_ratio, "pass": ok}
        if not ok:
            t.reject("width_ratio", f"only {ratio:.2f} times the core's width (< {config.outflow_min_ratio:g}): "
                     "a split core, not an outflow", ratio, config.outflow_min_ratio)
        pinned = pinned_parameters(with_, ("outflow",), ("narrow_sigma",))
    t.criteria["bounds"] = {"value": pinned, "limit": None, "pass": not pinned}
    if pinned:
        t.reject("bounds", f"{', '.join(pinned)} at a bound of the fit", pinned)


def compare_fits(without: ComplexFit, with_: ComplexFit, config: FitConfig, component: str = "broad") -> BroadTest:
    """ΔBIC and F-test between nested fits of the same pixels; verdict on the extra component.

    The component is needed when every criterion passes (``BroadTest.criteria``; the failed ones are in
    ``rejected``): ΔBIC > ``bic_threshold``, F-test p < ``ftest_alpha``, flux S/N > ``min_broad_snr``; for a broad
    component FWHM ≥ ``broad_fwhm_min`` and |v_broad − v_narrow| ≤ ``broad_dv_max``; for an outflow a dispersion
    ≥ ``outflow_min_ratio`` times the core's; and no kinematic parameter of the component at a bound.

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
    t = BroadTest(complex_name=with_.complex_name, component=component, delta_bic=float(dbic),
                  f_stat=float(f_stat), p_value=p, dof_extra=dk, chisqr_without=without.chisqr,
                  chisqr_with=with_.chisqr, ndata=n, component_snr=float(snr), needed=True,
                  verdict=f"{component} component needed", fit_without=without, fit_with=with_)
    for key, value, limit, ok, why in (
            ("delta_bic", float(dbic), config.bic_threshold, dbic > config.bic_threshold,
             f"ΔBIC {dbic:.1f} ≤ {config.bic_threshold:g}"),
            ("f_test_p", p, config.ftest_alpha, p < config.ftest_alpha, f"F-test p = {p:.2g} ≥ {config.ftest_alpha:g}"),
            ("snr", float(snr), config.min_broad_snr, snr > config.min_broad_snr,
             f"flux S/N {snr:.1f} ≤ {config.min_broad_snr:g}")):
        t.criteria[key] = {"value": value, "limit": limit, "pass": bool(ok)}
        if not ok:
            t.reject(key, why, value, limit)
    _physical_checks(t, with_, config)
    return t


def test_details(t: dict) -> str:
    """The numbers that decided a broad/outflow test (its ``to_dict`` form) — ΔBIC (and with the second library),
    S/N, FWHM, offset, width ratio, ΔBIC over the narrow-line wing — then why it was rejected, if it was."""
    c = t.get("criteria") or {}
    bits = [f"ΔBIC {t['delta_bic']:.1f}" if t.get("delta_bic") is not None else None]
    if t.get("delta_bic_alt") is not None:
        lib = (c.get("second_library") or {}).get("templates", "second library")
        bits.append(f"{t['delta_bic_alt']:.1f} with {lib}")
    for key, label, fmt, unit in (("snr", "S/N", ".1f", ""), ("fwhm", "FWHM", ".0f", " km/s"),
                                  ("offset", "offset", ".0f", " km/s"), ("width_ratio", "width ratio", ".2f", ""),
                                  ("narrow_wings", "ΔBIC over the narrow-line wing", ".1f", "")):
        v = (c.get(key) or {}).get("value")
        if isinstance(v, (int, float)) and math.isfinite(v):
            bits.append(f"{label} {format(v, fmt)}{unit}")
    text = ", ".join(b for b in bits if b)
    if t.get("rejected"):
        text += " — " + "; ".join(t["rejected"])
    return text


def describe_test(t: dict) -> str:
    """One line for a broad/outflow test: ``complex component: verdict (details)`` (:func:`test_details`)."""
    return f"{t.get('complex_name')} {t.get('component')}: {t.get('verdict')} ({test_details(t)})"


def describe_choice(stellar: dict | None) -> str:
    """Why the continuum is what it is (``SpectrumFit.stellar["choice"]``), or ""."""
    ch = (stellar or {}).get("choice") or {}
    return f"continuum: {ch['reason']}" if ch.get("reason") else ""
