"""A whole spectrum: every complex fitted in turn, tied where physics ties them, and the spectrum-level verdicts.

:func:`fit_spectrum` fits Hα+[NII] first, then Hβ+[OIII] (narrow Balmer kinematics of Hα), then the weak complexes
(Hγ on the Balmer kinematics; [OII] on the Balmer velocity; weak ones on Hα's kinematics). A broad-line region is
decided by Hα (Hβ when Hα is not covered) and must survive, beyond the per-complex criteria of
:mod:`galdesk.lines.criteria`:

* a second, independent stellar library (:func:`_check_library`, MaStar SSPs by default): template mismatch makes
  "broad" components that change with the templates;
* the narrow lines' own outflow wing (:func:`_wing_check`): when [OIII] needs an outflow wing, Hα and [NII] are given
  the same wing (the [OIII] wing's velocity and width, free fluxes), and the broad component must still be needed on
  top of it;
* Hβ and Hγ get no broad component that Hα does not have.

The complex-level fits are in :mod:`galdesk.lines.engine`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.criteria import compare_fits
from galdesk.lines.engine import broad_test, fit_complex, fit_variant, hold_trough, n_broad_of
from galdesk.lines.results import ComplexFit, SpectrumFit
from galdesk.lines.summary import feii_ratio, summarize
from galdesk.lines.window import prepare_data
from galdesk.tasks import Cancelled, NullContext
from galdesk.units import C_KMS

__all__ = ["fit_spectrum", "balmer_kinematics", "input_notes", "quality_notes", "UNRESOLVED", "BALMER_TIED"]


#: Complexes whose lines are blended at SDSS-like resolution (R ~ 2000): their velocity is tied to Hα's.
UNRESOLVED = ("oii",)

#: ``spec.meta`` keys of the cached whole-spectrum continuum (dropped to refit it with other templates).
CONTINUUM_KEYS = ("stellar_fit", "stellar_continuum", "continuum_kind", "continuum_choice", "stellar_error",
                  "stellar_key")

#: Complexes of narrow Balmer lines that take the narrow Balmer kinematics of Hα (else Hβ) with ``tie_balmer``.
BALMER_TIED = ("hgamma", "hdelta")


def balmer_kinematics(done: dict[str, ComplexFit]) -> tuple[float, float] | None:
    """(velocity, dispersion) of the narrow Balmer lines among the fitted complexes: Hα's narrow kinematics, else
    Hβ's own Balmer parameters (or its narrow ones); None when neither was fitted."""
    for name, keys in (("halpha", ("narrow_v", "narrow_sigma")), ("hbeta", ("balmer_v", "balmer_sigma")),
                       ("hbeta", ("narrow_v", "narrow_sigma"))):
        cf = done.get(name)
        if cf is not None and all(k in cf.layout.names for k in keys):
            return tuple(float(cf.theta[cf.layout.index(k)]) for k in keys)  # type: ignore[return-value]
    return None


def _broad_tie(ha: ComplexFit | None, name: str, config: FitConfig) -> dict:
    """With ``config.tie_broad``: the broad Gaussians' velocities and widths of Hα, for Hβ/Hγ (else {})."""
    if not config.tie_broad or ha is None or name not in ("hbeta", "hgamma") or not ha.tests:
        return {}
    test = next((t for t in ha.tests if t.component == "broad"), None)
    nb = n_broad_of(ha)
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
        ``broad`` is the Hα test when Hα was fitted, else the Hβ test. When the narrow lines of Hα (else Hβ) end at
        the velocity bound, or the fit put them far from where the lines are, the given redshift is off (SDSS
        quasar redshifts come partly from broad lines, 1,000+ km/s from the narrow ones): the spectrum is fitted
        again at the narrow lines' redshift (:mod:`galdesk.lines.redshift`), with a note saying so
        (``FitConfig.refine_redshift``).
    """

    config = config or FitConfig()
    ctx = ctx or NullContext()
    sf = _fit_spectrum(spec, config, ctx)
    if config.refine_redshift and sf.status == "fitted" and spec.redshift is not None:
        from galdesk.lines.redshift import redshift_to_refit

        ref = sf.complexes.get("halpha") or sf.complexes.get("hbeta")
        given = bool(spec.meta.get("z_given")) if isinstance(spec.meta, dict) else False
        if ref is not None:
            # a redshift the user gave (--z, a catalogue, the Lines tab) is kept; only a note says it looks off
            z, why = redshift_to_refit(spec, ref, config, move=not given)
            if z is not None:
                moved = copy.copy(spec)
                moved.redshift = z   # and a continuum fitted at it: the old one may have been pinned too
                moved.meta = {k: v for k, v in spec.meta.items() if k not in CONTINUUM_KEYS}
                sf = _fit_spectrum(moved, config, ctx)
            if why:
                sf.notes.insert(0, why)
    return sf


def _fit_spectrum(spec, config: FitConfig, ctx) -> SpectrumFit:
    sf = SpectrumFit(source=str(spec.source), id=str(spec.id), z=spec.redshift,
                     flux_unit=str(getattr(spec, "flux_unit", "") or ""))
    est = spec.meta.get("errors_estimated") if isinstance(spec.meta, dict) else None
    sf.errors_estimated = str(est) if est else None
    sf.notes.extend(input_notes(spec))
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
            continue
        if name == "hbeta":
            try:  # a check that cannot run leaves the verdict as it is
                _wing_check(spec, sf.complexes, config, ctx)
            except ValueError as exc:
                sf.notes.append(f"narrow-wing check not run: {exc}")
    try:
        _doubtful_broad(spec, sf.complexes, config, ctx)
    except ValueError as exc:
        sf.notes.append(f"doubtful-broad check not run: {exc}")
    sf.complexes = {k: sf.complexes[k] for k in config.complexes if k in sf.complexes}
    if not sf.complexes:   # nothing was measured: skipped (no verdict, not counted as fitted), never "fitted"
        w = np.asarray(spec.wavelength, float)
        sf.skip_reason = (f"no line complex could be fitted ({', '.join(config.complexes)}): the observed range "
                          f"{np.nanmin(w):.0f}-{np.nanmax(w):.0f} A at z = {sf.z:.4g} holds none of them with good "
                          "pixels")
        return sf
    sf.stellar = _continuum_summary(spec, config)
    if sf.z is not None and sf.z > 0:
        # load astropy.cosmology here, on the worker (~0.5 s, once per process): summarize() also runs on the GUI
        # thread after an interactive refit, where a first broad line would otherwise pay for it
        from galdesk.lines.bhmass import luminosity_distance_cm

        luminosity_distance_cm(sf.z)
    summarize(sf, config)
    sf.notes.extend(quality_notes(spec, sf, config))
    if sf.stellar and sf.stellar.get("kind") == "agn":
        # Fe II strength relative to broad Hβ (Boroson & Green 1992), an Eigenvector-1 coordinate
        sf.stellar["r_feii"], sf.stellar["r_feii_err"] = feii_ratio(
            sf.stellar.get("feii_flux"), sf.stellar.get("feii_flux_err"), sf.line("hbeta", "broad"))
    ctx.progress(1.0, f"{spec.id}: done")
    return sf


def _fit_tied(spec, name: str, done: dict[str, ComplexFit], config: FitConfig, ctx) -> ComplexFit:
    """Fit one complex of :func:`fit_spectrum`, tied to the complexes fitted before it (``done``): Hβ's narrow
    Balmer kinematics to Hα's (``tie_balmer``), narrow Hγ to them as well, broad Hβ/Hγ to broad Hα (``tie_broad``),
    the blended [OII] velocity to the Balmer lines', and a weak complex's narrow kinematics to Hα's (else Hβ's) when
    its own S/N is below ``tie_snr``. The complex that decides on a broad-line region (Hα, else Hβ) has its verdict
    checked on a second stellar library (:func:`_check_library`); Hβ and Hγ get no broad component that Hα lacks."""
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
        cfg = replace(config, n_broad=n_broad_of(ha))
    veto = _broad_veto(name, done)
    if veto is None and not tie and name in ("hbeta", "hgamma") and _broad_needed(ha):
        # the same broad-line region as Hα's: Hβ/Hγ's broad lines may sit as far from the narrow lines as Hα's does,
        # plus the usual margin (spec-7340: broad Hα +421 km/s, broad Hγ +1021 km/s was rejected, its flux pushed
        # into narrow Hγ: Hγ/Hβ 1.5)
        off = next(t for t in ha.tests if t.component == "broad").criteria.get("offset", {}).get("value")
        if off is not None and np.isfinite(off):
            cfg = replace(cfg, broad_dv_max=config.broad_dv_max + float(off))
    ref = done.get("halpha") or done.get("hbeta")
    kin = balmer_kinematics(done) if name in BALMER_TIED and config.tie_balmer else None
    if kin is not None:
        # one Balmer series, one gas: weak Hγ cannot choose its own width (its S/N is a third of Hβ's) and a
        # free width trades its flux with the absorption trough
        v, sig = kin
        return fit_complex(spec, name, cfg, ctx, fixed={**(fixed or {}), "narrow_v": v, "narrow_sigma": sig, **tie},
                           broad_veto=veto)
    if name in UNRESOLVED and ref is not None:
        # a doublet blended at the instrument's resolution: its centroid cannot tell a velocity shift
        # from a change of ratio, so it takes the Balmer lines' velocity (its width stays free)
        fixed = {"narrow_v": float(ref.theta[ref.layout.index("narrow_v")])}
    cf = fit_complex(spec, name, cfg, ctx, fixed=fixed, broad_veto=veto)
    if name != "halpha" and ref is not None and ref is not cf and config.tie_snr > 0:
        # a weak complex cannot constrain its own width; in Hβ+[OIII] that is weak [OIII] (its own kinematics,
        # the Balmer line's are Hα's already): a free width there grew a 6.6 ± 3.3 [OIII] to 16.5 (spec-0638)
        own = [m for m in cf.measurements if m.component == "narrow" and np.isfinite(m.snr)
               and (name != "hbeta" or m.name not in LL.BALMER)]
        snr = max((m.snr for m in own), default=0.0)
        if snr < config.tie_snr:
            kin = {k: float(ref.theta[ref.layout.index(k)]) for k in ("narrow_v", "narrow_sigma")}
            cf = fit_complex(spec, name, cfg, ctx, fixed={**(fixed or {}), **kin, **tie}, broad_veto=veto)
    if veto is None and (name == "halpha" or (name == "hbeta" and ha is None)):
        cf = _check_library(spec, name, cf, cfg, ctx, fixed)
    return cf


def _broad_veto(name: str, done: dict[str, ComplexFit]) -> str | None:
    """Why Hβ/Hγ may not keep a broad component: Hα was fitted (it is the strongest broad line) and needs none."""
    if name not in ("hbeta", "hgamma"):
        return None
    ha = done.get("halpha")
    if ha is None:
        hb = done.get("hbeta")
        return "no broad Hβ, so no broad Hγ" if name == "hgamma" and hb is not None and not _broad_needed(hb) \
            else None
    return None if _broad_needed(ha) else f"no broad Hα, so no broad {LL.LABELS.get(name, name)}"


def _broad_needed(cf: ComplexFit | None) -> bool:
    return cf is not None and any(t.component == "broad" and t.needed for t in cf.tests)


def _check_library(spec, name: str, cf: ComplexFit, config: FitConfig, ctx, fixed: dict | None) -> ComplexFit:
    """Repeat a "needed" broad test on the continuum of a second, independent stellar library
    (``config.check_templates``); when ΔBIC fails there, the verdict was template mismatch, not a broad-line region:
    the complex is refitted without the broad component and the test says why."""
    test = next((t for t in cf.tests if t.component == "broad"), None)
    kind = spec.meta.get("continuum_kind") if isinstance(spec.meta, dict) else None
    if test is None or not test.needed or config.broad != "auto" or not config.check_templates or \
            kind not in ("stellar", "agn"):
        return cf
    from galdesk.lines.stellar import second_template_path

    path = str(second_template_path()) if config.check_templates == "mastar" else str(config.check_templates)
    alt = copy.copy(spec)
    alt.meta = {k: v for k, v in spec.meta.items() if k not in CONTINUUM_KEYS}
    cfg2 = replace(config, stellar_templates=path, continuum=kind, check_templates=None, outflow="no",
                   mc_samples=0)
    try:
        t2 = broad_test(alt, name, cfg2, ctx, start=test.fit_without)  # the narrow lines as fitted already
    except ValueError as exc:
        test.criteria["second_library"] = {"value": None, "limit": config.bic_threshold, "pass": True,
                                           "note": f"not run: {exc}"}
        return cf
    lib = Path(path).stem
    flux2 = sum(m.flux for m in t2.fit_with.measurements if m.component == "broad")
    ok = t2.delta_bic > config.bic_threshold
    test.delta_bic_alt = float(t2.delta_bic)
    crit = {"value": float(t2.delta_bic), "limit": config.bic_threshold, "pass": bool(ok), "templates": lib,
            "broad_flux": float(flux2)}
    test.criteria["second_library"] = crit
    if ok:
        return cf
    why = (f"not robust to the stellar library: ΔBIC {t2.delta_bic:.1f} with {lib} "
           f"(≤ {config.bic_threshold:g}; {test.delta_bic:.1f} with the default)")
    test.reject("second_library", why, float(t2.delta_bic), config.bic_threshold)
    test.criteria["second_library"] = {**crit, "pass": False}
    new = fit_complex(spec, name, config, ctx, fixed=fixed, broad_veto=why)
    new.tests = [test] + [t for t in new.tests if t.component != "broad"]
    return new


def _continuum_summary(spec, config: FitConfig) -> dict | None:
    """``SpectrumFit.stellar``: the whole-spectrum continuum fit cached on the spectrum (its ``kind`` and scalar
    summary) or why there is none; None for a local continuum."""
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    if config.continuum != "local":
        st = meta.get("stellar_fit")
        if st is not None:
            out = {"kind": meta.get("continuum_kind", "stellar"), **st.to_dict()}
            if meta.get("continuum_choice"):
                out["choice"] = dict(meta["continuum_choice"])
            return out
        elif meta.get("stellar_error"):
            return {"error": meta["stellar_error"]}
    return None


def input_notes(spec) -> list[str]:
    """Remarks on a spectrum that change how its line fluxes may be used: not flux-calibrated, wavelengths whose
    air/vacuum convention was assumed."""
    out = []
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    if str(getattr(spec, "flux_unit", "") or "").strip().lower() in ("count", "counts", "adu"):
        out.append("not flux-calibrated (counts): ratios of lines far apart in wavelength (Hα/Hβ, Hγ/Hβ, [OII]/Hβ) "
                   "are not physical; ratios of neighbouring lines (BPT) are")
    if meta.get("vacuum_assumed") and not spec.vacuum:
        out.append("the file does not say whether its wavelengths are in air or vacuum: air assumed (a '# vacuum' "
                   "comment or VACUUM/AIRORVAC keyword says otherwise); velocities shift by ~80 km/s if wrong")
    return out


def _doubtful_broad(spec, done: dict[str, ComplexFit], config: FitConfig, ctx) -> None:
    """Reject a "needed" broad Hα that the data cannot support, after every complex is fitted: its core pixels are
    mostly masked (a saturated line: the "broad" component is the narrow line's wings), or the forbidden lines reach
    the narrow width bound (the narrow-line region is as broad as the model allows, so a broad Hα cannot be told from
    the blend of Hα and [NII] at that width). Hα becomes its narrow fit; Hβ and Hγ are refitted without broad lines.
    Changes ``done`` in place."""
    ha = done.get("halpha")
    if ha is None or config.broad != "auto" or not _broad_needed(ha):
        return
    why = None
    bounded = [n for n in ("hbeta", "sii", "oi") if n in done and _at_width_bound(done[n])]
    if bounded:
        why = (f"the forbidden lines reach the narrow width bound ({', '.join(bounded)}): the narrow-line region is "
               "as broad as the model allows, so a broad Hα cannot be told from the blend")
    else:
        masked, n = _masked_core(spec, LL.LINES["halpha"], 0.0, 150.0)
        if n >= 2 and masked > 0.3 * n:
            why = ("the Hα core is masked (saturated or bad pixels): the broad component would be the narrow line's "
                   "wings")
    if why is None:
        return
    test = next(t for t in ha.tests if t.component == "broad")
    test.reject("data", why)
    new = test.fit_without
    new.tests = list(ha.tests)
    done["halpha"] = new
    for name in ("hbeta", "hgamma"):
        if name in done:
            done[name] = _fit_tied(spec, name, {k: v for k, v in done.items() if k != name}, config, ctx)


def _masked_core(spec, rest: float, v_kms: float, sigma_kms: float) -> tuple[int, int]:
    """(masked, all) pixels within ``sigma_kms`` of a line's observed centre (air spectra converted)."""
    c = rest * (1 + (spec.redshift or 0.0)) * (1 + v_kms / C_KMS)
    c = c if spec.vacuum else float(LL.vac_to_air(c))
    core = np.abs(np.asarray(spec.wavelength, float) - c) < c * sigma_kms / C_KMS
    return int(np.asarray(spec.mask, bool)[core].sum()), int(core.sum())


def _at_width_bound(cf: ComplexFit) -> bool:
    lay = cf.layout
    if "narrow_sigma" not in lay.names or not lay.vary[lay.index("narrow_sigma")]:
        return False
    i = lay.index("narrow_sigma")
    return bool(cf.theta[i] >= 0.98 * lay.upper[i])


def quality_notes(spec, sf: SpectrumFit, config: FitConfig) -> list[str]:
    """What makes a fit doubtful, one sentence each (in ``SpectrumFit.notes``: the JSON record, the table's
    ``notes`` column, the terminal report): a complex whose fit did not converge, that the model does not describe
    (χ²ν > 3), whose narrow width sits at a bound; a line whose core pixels are mostly masked (saturated or bad)."""
    out = []
    for name, cf in sf.complexes.items():
        if not cf.success:
            out.append(f"{name}: the fit did not converge ({cf.message})")
        if cf.redchi > 3:
            out.append(f"{name}: χ²ν = {cf.redchi:.1f}: the model does not describe the data (errors too small, or "
                       "features the model lacks)")
        lay = cf.layout
        if _at_width_bound(cf):
            out.append(f"{name}: the narrow lines reach the width bound (σ = {config.narrow_sigma_max:.0f} km/s): "
                       "wider than the model allows; their fluxes and any broad component are doubtful")
        elif "narrow_sigma" in lay.names and lay.vary[lay.index("narrow_sigma")] and \
                cf.theta[lay.index("narrow_sigma")] <= lay.lower[lay.index("narrow_sigma")] + 2.0:
            out.append(f"{name}: the narrow lines sit at the smallest width: unresolved or noise")
    for m in sf.lines:
        if m.component != "narrow" or not (m.snr > 3):
            continue
        v = m.v_kms if np.isfinite(m.v_kms) else 0.0
        masked, n = _masked_core(spec, m.wave_vac, v, max(m.sigma_obs_kms if np.isfinite(m.sigma_obs_kms) else 0.0,
                                                          60.0))
        if n >= 2 and masked > 0.3 * n:
            out.append(f"{m.name}: {masked} of {n} pixels of the line's core are masked (saturated or bad): its "
                       "flux and width rest on the wings")
    return out


def _wing_check(spec, done: dict[str, ComplexFit], config: FitConfig, ctx) -> None:
    """A broad Hα in a spectrum whose [OIII] needs an outflow wing must be needed on top of that wing in Hα and
    [NII]: the null model gets wings with the [OIII] wing's velocity and dispersion (fixed; free fluxes). When the
    broad component is no longer needed, Hα's fit becomes the narrow + wing fit (or narrow only when the wing itself
    is not needed) and Hβ is refitted without a broad component. A wing as broad as a broad-line region
    (FWHM ≥ ``broad_fwhm_min``) cannot decide and is not used. Changes ``done`` in place."""
    ha, hb = done.get("halpha"), done.get("hbeta")
    if ha is None or hb is None or not hb.has_outflow or not _broad_needed(ha) or config.broad != "auto":
        return
    test = next(t for t in ha.tests if t.component == "broad")
    lay = hb.layout
    v_out = float(hb.theta[lay.index("outflow_v")])
    s_out = float(hb.theta[lay.index("narrow_sigma")] + hb.theta[lay.index("outflow_dsigma")])
    fwhm_wing = 2.0 * math.sqrt(2.0 * math.log(2.0)) * s_out
    if fwhm_wing >= config.broad_fwhm_min:
        # a wing as broad as a broad-line region cannot tell the two apart (spec-0280: [OIII] wing FWHM 1720 km/s,
        # broad Hα 2200): the check is not decisive, the broad component stays
        test.criteria["narrow_wings"] = {"value": None, "limit": config.bic_threshold, "pass": True,
                                         "note": f"not decisive: the [OIII] wing (FWHM {fwhm_wing:.0f} km/s) is as "
                                                 f"broad as a broad-line region (≥ {config.broad_fwhm_min:.0f})"}
        return
    base = test.fit_without
    s_n = float(base.theta[base.layout.index("narrow_sigma")])
    fixed = {"outflow_v": v_out, "outflow_dsigma": max(s_out - s_n, 20.0)}
    data = prepare_data(spec, "halpha", config, None, broad=True)
    w0 = fit_variant(data, "halpha", config, ctx, outflow=True, start=base, fixed=fixed)
    w1 = fit_variant(data, "halpha", config, ctx, n_broad=n_broad_of(ha), outflow=True, start=w0,
                     fixed=hold_trough(w0, fixed))
    t2 = compare_fits(w0, w1, config, "broad")
    crit = {"value": float(t2.delta_bic), "limit": config.bic_threshold, "pass": bool(t2.needed),
            "wing_v": v_out, "wing_sigma": s_out}
    test.criteria["narrow_wings"] = crit
    if t2.needed:
        return
    test.reject("narrow_wings", f"the narrow lines' outflow wing explains it (the [OIII] wing, v {v_out:+.0f} km/s, "
                f"σ {s_out:.0f} km/s, in Hα and [NII]; ΔBIC {t2.delta_bic:.1f} for a broad line on top)")
    test.criteria["narrow_wings"] = crit
    wing = compare_fits(base, w0, config, "outflow")
    new = w0 if wing.needed else base
    new.tests = [test, wing]
    done["halpha"] = new
    done["hbeta"] = _fit_tied(spec, "hbeta", {"halpha": new}, config, ctx)
