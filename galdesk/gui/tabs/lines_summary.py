"""The text under the Lines tab's plot: fit quality, densities, the continuum fit, the broad/outflow tests, the
[OIII] profile and virial masses, as rich text. Formatting only: every number comes from the core
(:mod:`galdesk.lines.summary`, :mod:`galdesk.lines.bhmass`, :mod:`galdesk.lines.profile`). No Qt."""

from __future__ import annotations

import html
import math

__all__ = ["summary_html"]


def summary_html(cf, spec, spectrum_fit=None) -> str:
    """Rich text describing the complex fit ``cf`` of ``spec`` (and of the whole-spectrum fit, if any)."""
    # imported here, not at the top: the window imports the tab at start-up, and these cost ~0.5 s
    from galdesk.lines.bhmass import describe_masses
    from galdesk.lines.criteria import describe_choice, test_details
    from galdesk.lines.profile import describe_kinematics, line_kinematics
    from galdesk.lines.summary import complex_densities, feii_ratio

    parts = [f"<b>{cf.complex_name}</b>: χ²ν = {cf.redchi:.3g}, BIC = {cf.bic:.1f}, "
             f"{cf.ndata} pixels, {cf.nvarys} free parameters; fluxes in {spec.flux_unit or 'flux'} × Å"]
    if not cf.success:
        parts.append(f"<span style='color:#b00'>fit did not converge: {cf.message}</span>")
    densities = complex_densities(cf)
    for line, label in (("sii6717", "[SII] 6717/6731"), ("oii3729", "[OII] 3729/3726")):
        d = densities.get(line)
        if d is not None:
            ne = (f"n_e at the {d['limit']} limit" if d["limit"] else
                  f"n_e = {d['n_e']:.0f} cm⁻³ ({d['n_e_lo']:.0f}–"
                  + (f"{d['n_e_hi']:.0f})" if d["n_e_hi"] is not None else "∞)"))
            parts.append(f"{label} = {d['ratio']:.3f} ± "
                         f"{d['ratio_err']:.3f} → {ne} (Sanders et al. 2016, 10⁴ K)")
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    st = meta.get("stellar_fit")
    if cf.layout.tidx >= 0 and st is not None and meta.get("continuum_kind") == "agn":
        hb = cf.measurement("hbeta", "broad") if cf.complex_name == "hbeta" else None
        r, r_err = feii_ratio(st.feii_flux, st.feii_flux_err, hb)
        r_fe = ""
        if r is not None and r > 0:  # no Fe II flux, no R_Fe
            err = "nan" if r_err is None else f"{r_err:.2f}"
            r_fe = f", R_Fe = F(Fe II)/F(Hβ broad) = {r:.2f} ± {err}"
        parts.append(f"AGN continuum: Fe II FWHM = {st.feii_fwhm_kms:.0f} ± {st.feii_fwhm_err:.0f} km/s, "
                     f"F(Fe II 4434–4684 Å) = {st.feii_flux:.4g} ± {st.feii_flux_err:.2g}{r_fe}; at 5100 Å "
                     f"host {st.host_fraction:.0%}, "
                     f"power law {st.powerlaw_fraction:.0%}"
                     + (f" (slope {st.powerlaw_slope:+.2f})" if math.isfinite(st.powerlaw_slope) else "") + "; "
                     f"χ²ν = {st.chi2nu:.2f}" + (f" ({'; '.join(st.messages)})" if st.messages else "")
                     + "; dashed: continuum without Fe II")
    elif cf.layout.tidx >= 0 and st is not None:
        parts.append(f"stellar continuum: σ* = {st.sigma_kms:.0f} ± {st.sigma_err:.0f} km/s, "
                     f"v* = {st.velocity_kms:+.0f} km/s, light-weighted age {10 ** (st.log_age_lw - 9):.2g} Gyr, "
                     + (f"power law {st.powerlaw_fraction:.0%} of the light at 5500 Å, "
                        if st.powerlaw_fraction > 0 else "")
                     + f"χ²ν = {st.chi2nu:.2f}" + (f" ({'; '.join(st.messages)})" if st.messages else ""))
    elif cf.layout.tidx < 0 and meta.get("stellar_error"):
        parts.append(f"local continuum ({meta['stellar_error']})")
    choice = describe_choice(spectrum_fit.stellar if spectrum_fit is not None else None)
    if not choice and isinstance(meta.get("continuum_choice"), dict):
        choice = describe_choice({"choice": meta["continuum_choice"]})
    if choice and cf.layout.tidx >= 0:
        parts.append(html.escape(choice))
    alone = " of this complex alone" if spectrum_fit is None else ""
    for t in cf.tests:
        parts.append(f"{t.component} test{alone}: <b>{html.escape(t.verdict)}</b> "
                     f"({html.escape(test_details(t.to_dict()))})")
    if alone and any(t.component == "broad" for t in cf.tests):
        # a user reading "needed" here must not take it for the spectrum's verdict (Hα decides, a second
        # stellar library, the narrow-line wing: spec 1237658802572296399 is "needed" alone, "not needed" there)
        parts.append("<span style='color:#666'>the spectrum's verdict applies more checks (Hα decides, a second "
                     "stellar library, the narrow-line wing): Fit spectrum &amp; save</span>")
    kin = describe_kinematics(line_kinematics(cf, "oiii5007")) if "oiii5007" in cf.layout.g_line else ""
    masses = describe_masses(spectrum_fit.bh_mass) if spectrum_fit is not None else ""
    parts += [kin] if kin else []
    notes = list(getattr(spectrum_fit, "notes", None) or [])
    if notes:
        parts.append("<span style='color:#a60'>" + html.escape("; ".join(notes)) + "</span>")
    parts += [f"{masses}, from the whole-spectrum fit"] if masses else []
    return "<br>".join(parts)
