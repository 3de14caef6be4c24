"""Spectrum-level results derived from the fitted complexes: the broad-line verdict, BPT ratios and class,
electron densities, virial black-hole masses, [OIII] kinematics and R_FeII.

:func:`summarize` (re)derives all of them on a :class:`~galdesk.lines.results.SpectrumFit`, after
:func:`galdesk.lines.spectrum.fit_spectrum` and after an interactive refit replaces one complex. Fluxes are in the
spectrum's flux unit x Angstrom; ratios are log10 with first-order errors.
"""

from __future__ import annotations

import math

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.results import ComplexFit, LineMeasurement, SpectrumFit

__all__ = ["summarize", "complex_densities", "feii_ratio"]


def _densities(sf: SpectrumFit, min_snr: float) -> dict:
    """Electron densities from the [SII] and [OII] doublets whose total flux has S/N >= ``min_snr``."""
    out = {}
    for key, (line, (partner, _, _, _)) in zip(("sii", "oii"), LL.DENSITY_CALIBRATION.items()):
        m1, m2 = sf.line(line), sf.line(partner)
        if m1 is None or m2 is None or m2.flux <= 0:
            continue
        tot, tot_err = m1.flux + m2.flux, math.hypot(m1.flux_err, m2.flux_err)
        if not (tot_err > 0 and tot / tot_err >= min_snr):
            continue
        cf = sf.complexes.get(m1.complex_name)
        p = cf.params.get(f"{line}_ratio") if cf is not None and cf.params is not None else None
        if p is not None:
            r, r_err = float(p.value), (float(p.stderr) if p.stderr else 0.0)
        else:  # free fluxes: the ratio and its first-order error (covariance of the two fluxes neglected)
            r = m1.flux / m2.flux
            r_err = r * math.hypot(m1.flux_err / m1.flux if m1.flux > 0 else 0.0, m2.flux_err / m2.flux)
        out[key] = LL.electron_density(line, r, r_err)
    return out


def _flux_sum(sf: SpectrumFit, items: list[LineMeasurement]) -> tuple[float, float]:
    """Total flux of line components and its error, with the correlations of components fitted together (e.g. an
    [OIII] core and its wing, which trade flux; the [SII] doublet fitted as F and R·F) taken from the fit's
    covariance; the components' own errors (covariance or Monte Carlo) set the scale."""
    flux = float(sum(m.flux for m in items))
    err = np.array([m.flux_err for m in items], dtype=float)
    rho = np.eye(len(items))
    cfs = {m.complex_name for m in items}
    cf = sf.complexes.get(next(iter(cfs))) if len(cfs) == 1 else None
    if cf is not None and cf.cov is not None and len(items) > 1:
        lay, th = cf.layout, cf.theta
        grads = np.zeros((len(items), th.size))
        for i, m in enumerate(items):
            for k, (line, comp) in enumerate(zip(lay.g_line, lay.g_comp)):
                if line != m.name or comp != m.component:
                    continue
                r = th[lay.ridx[k]] if lay.ridx[k] >= 0 else 1.0
                grads[i, lay.fidx[k]] += lay.fmult[k] * r
                if lay.ridx[k] >= 0:
                    grads[i, lay.ridx[k]] += lay.fmult[k] * th[lay.fidx[k]]
        c = grads @ cf.cov @ grads.T
        sd = np.sqrt(np.clip(np.diag(c), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = c / np.outer(sd, sd)
        rho = np.where(np.isfinite(r), np.clip(r, -1, 1), 0.0)
        np.fill_diagonal(rho, 1.0)
    return flux, float(math.sqrt(max(float(err @ rho @ err), 0.0)))


def _bpt_ratios(sf: SpectrumFit, min_snr: float) -> dict:
    """log [NII]/Hα, [OIII]/Hβ, [SII]/Hα, [OI]/Hα with errors, from the narrow Balmer lines and the whole
    narrow-line-region emission of each forbidden line: [OIII] 5007 is its core plus, where one was needed, its
    outflow wing (the demarcation lines are calibrated on single-Gaussian fluxes; the core alone made Seyferts with
    strong wings LINERs or "ambiguous")."""
    def get(name, components=("narrow",)):
        return [m for m in (sf.line(name, c) for c in components) if m is not None]

    def den(name):
        m = sf.line(name)
        if m is None or not np.isfinite(m.snr) or m.snr < min_snr or m.flux <= 0:
            return None
        return m

    out = {}
    ha, hb = den("halpha"), den("hbeta")

    def ratio(key, names, d, components=("narrow",)):
        items = [m for n in names for m in get(n, components)]
        if d is None or not items or any(not get(n) for n in names):
            return
        f, fe = _flux_sum(sf, items)
        if not (f > 0 and fe > 0 and f / fe >= min_snr):
            return
        out[key] = math.log10(f / d.flux)
        out[key + "_err"] = (1 / math.log(10)) * math.hypot(fe / f, d.flux_err / d.flux)

    ratio("log_n2ha", ["nii6584"], ha)
    ratio("log_o3hb", ["oiii5007"], hb, components=("narrow", "outflow"))
    ratio("log_s2ha", ["sii6717", "sii6731"], ha)
    ratio("log_o1ha", ["oi6300"], ha)
    return out


def complex_densities(cf: ComplexFit) -> dict[str, dict]:
    """Electron densities from the bounded doublet ratios fitted in one complex (``FitConfig.density_bounds``).

    Parameters
    ----------
    cf : ComplexFit

    Returns
    -------
    dict
        Line (``"sii6717"``, ``"oii3729"``) -> :func:`galdesk.lines.linelist.electron_density` of its ratio
        parameter (value and standard error), for each ratio the fit has; {} for a complex without one.
    """
    out = {}
    for line in ("sii6717", "oii3729"):
        p = cf.params.get(f"{line}_ratio") if cf.params is not None else None
        if p is not None:
            out[line] = LL.electron_density(line, float(p.value), float(p.stderr) if p.stderr else None)
    return out


def feii_ratio(feii_flux: float | None, feii_flux_err: float | None,
               hbeta_broad: LineMeasurement | None) -> tuple[float | None, float | None]:
    """R_FeII = F(Fe II, rest 4434-4684 Å) / F(broad Hβ) (Boroson & Green 1992), an Eigenvector-1 coordinate.

    Parameters
    ----------
    feii_flux, feii_flux_err : float or None
        Fe II flux of the AGN pseudo-continuum and its error (``AGNContinuumFit.feii_flux``), flux unit x Angstrom.
    hbeta_broad : LineMeasurement or None
        The broad Hβ component.

    Returns
    -------
    (ratio, error)
        None where undefined: no broad Hβ or no positive, finite broad flux (both); no Fe II error, no positive
        Fe II flux or no finite Hβ error (the error).
    """
    hb, ff, fe = hbeta_broad, feii_flux, feii_flux_err
    ok = hb is not None and ff is not None and math.isfinite(hb.flux) and hb.flux > 0
    r = float(ff / hb.flux) if ok else None
    r_err = (float(ff / hb.flux * math.hypot(fe / ff, hb.flux_err / hb.flux))
             if ok and fe is not None and ff > 0 and math.isfinite(hb.flux_err) else None)
    return r, r_err


def _bh_mass(sf: SpectrumFit) -> dict:
    """Luminosities and single-epoch virial masses (:mod:`galdesk.lines.bhmass`) from the broad Hβ and Hα in the
    result (a broad component stays only where its test found it needed, or where ``broad="yes"`` asked for it);
    the nucleus' 5100 Å continuum comes from the AGN pseudo-continuum's power law."""
    from galdesk.lines.bhmass import black_hole_masses

    hb, ha = sf.line("hbeta", "broad"), sf.line("halpha", "broad")
    if hb is None and ha is None:
        return {}
    st = sf.stellar or {}
    f5100 = st.get("powerlaw_5100") if st.get("kind") == "agn" else None
    return black_hole_masses(sf.z, sf.flux_unit, hbeta=hb, halpha=ha, f5100=f5100,
                             f5100_err=st.get("powerlaw_5100_err"))


def _oiii_kinematics(sf: SpectrumFit, min_snr: float) -> dict:
    """Velocity percentiles and W80 of [OIII] 5007 (core + wing) when the line is detected (S/N >= min_snr)."""
    from galdesk.lines.profile import line_kinematics

    items = [m for m in (sf.line("oiii5007"), sf.line("oiii5007", "outflow")) if m is not None]
    cf = sf.complexes.get(items[0].complex_name) if items else None
    if cf is None:
        return {}
    f, fe = _flux_sum(sf, items)
    return line_kinematics(cf, "oiii5007") if f > 0 and fe > 0 and f / fe >= min_snr else {}


def summarize(sf: SpectrumFit, config: FitConfig | None = None) -> SpectrumFit:
    """(Re)derive the spectrum-level verdicts from its complexes, in place: the broad test (Hα's, else Hβ's, else
    Hγ's), the BPT log ratios with errors and the BPT class, the electron densities, the virial masses and the
    [OIII] kinematics. Called by :func:`galdesk.lines.spectrum.fit_spectrum` and after an interactive refit replaces
    one complex; returns ``sf``."""
    from galdesk.lines.bpt import classify_bpt

    config = config or FitConfig()
    sf.broad = None
    for name in ("halpha", "hbeta", "hgamma"):
        cf = sf.complexes.get(name)
        if cf is not None:
            t = [t for t in cf.tests if t.component == "broad"]
            if t:
                sf.broad = t[0]
                break
    sf.bpt = _bpt_ratios(sf, config.bpt_min_snr)
    sf.density = _densities(sf, config.bpt_min_snr)
    sf.bh_mass = _bh_mass(sf)
    sf.oiii_kinematics = _oiii_kinematics(sf, config.bpt_min_snr)
    sf.bpt_class = None
    if "log_n2ha" in sf.bpt and "log_o3hb" in sf.bpt:
        b = sf.bpt
        sf.bpt_class = classify_bpt(b["log_n2ha"], b["log_o3hb"], b.get("log_s2ha"), b.get("log_o1ha"),
                                    n2ha_err=b.get("log_n2ha_err"), o3hb_err=b.get("log_o3hb_err"),
                                    s2ha_err=b.get("log_s2ha_err"), o1ha_err=b.get("log_o1ha_err"))
    return sf
