"""The ``fit-lines`` result table: one row per spectrum with the line-fit quantities and their units."""

from __future__ import annotations

import numpy as np

__all__ = ["results_table", "BH_COLUMNS"]

_LINE_KEYS = ("flux", "flux_err", "fwhm_kms", "fwhm_err", "ew", "snr")


#: Columns from ``bh_mass`` (log10 erg/s and log10 solar masses, with their errors in dex)
BH_COLUMNS = [(f"{q}{e}", u) for q, u in (("log_l5100", "dex(erg / s)"), ("log_l_hbeta", "dex(erg / s)"),
                                          ("log_l_halpha", "dex(erg / s)"), ("log_mbh_hbeta", "dex(solMass)"),
                                          ("log_mbh_hbeta_lhb", "dex(solMass)"), ("log_mbh_halpha", "dex(solMass)"))
              for e in ("", "_err")]


def results_table(results: list[dict]):
    """One row per spectrum: source, id, z, bpt_class, broad_needed, delta_bic and per line/component
    ``<line>[_<component>]_{flux,flux_err,fwhm_kms,fwhm_err,ew,snr}`` with units (flux in the spectrum's flux
    unit × Å: 1e-17 erg/s/cm² for SDSS)."""
    from astropy.table import MaskedColumn, Table

    names: list[str] = []
    for r in results:
        for ln in r.get("lines", []) or []:
            key = ln["name"] + ("" if ln.get("component", "narrow") == "narrow" else f"_{ln['component']}")
            if key not in names:
                names.append(key)
    t = Table()
    t["source"] = [str(r.get("source", "")) for r in results]
    t["id"] = [str(r.get("id", "")) for r in results]
    t["z"] = MaskedColumn([r.get("z") if r.get("z") is not None else np.nan for r in results])
    t["bpt_class"] = [str(r.get("bpt_class") or "") for r in results]
    t["broad_needed"] = [bool(r.get("broad_needed")) for r in results]
    t["delta_bic"] = [np.nan if r.get("delta_bic") is None else float(r["delta_bic"]) for r in results]
    t["error"] = [str(r.get("error") or "") for r in results]
    t["continuum"] = [str(r.get("continuum") or "") for r in results]
    # the continuum fit: stellar populations, or (AGN) host + power law + Fe II
    continuum_columns = [(k, f"stellar_{k}", u) for k, u in (("sigma_kms", "km/s"), ("sigma_err", "km/s"),
                                                              ("velocity_kms", "km/s"), ("log_age_lw", "dex(yr)"),
                                                              ("chi2nu", None))]
    continuum_columns += [("feii_fwhm_kms", "feii_fwhm", "km/s"), ("feii_fwhm_err", "feii_fwhm_err", "km/s"),
                          ("feii_flux", "feii_flux", "1e-17 erg / (s cm2)"),
                          ("feii_flux_err", "feii_flux_err", "1e-17 erg / (s cm2)"), ("feii_dchi2", "feii_dchi2", None),
                          ("r_feii", "r_feii", None), ("r_feii_err", "r_feii_err", None),
                          ("host_fraction", "agn_host_fraction", None), ("powerlaw_slope", "agn_powerlaw_slope", None)]
    for key, col, unit in continuum_columns:
        vals = np.array([np.nan if not isinstance(r.get("stellar"), dict) or r["stellar"].get(key) is None
                         else float(r["stellar"][key]) for r in results])
        t[col] = MaskedColumn(vals, mask=~np.isfinite(vals), unit=unit)
    # broad-line AGN: luminosities and single-epoch virial masses (galdesk.lines.bhmass), measurement errors
    for key, unit in BH_COLUMNS:
        vals = np.array([np.nan if (r.get("bh_mass") or {}).get(key) is None else float(r["bh_mass"][key])
                         for r in results])
        t[key] = MaskedColumn(vals, mask=~np.isfinite(vals), unit=unit)
    # whole [OIII] 5007 profile (core + wing): velocity percentiles and W80 (galdesk.lines.profile)
    for q in ("v10", "v50", "v90", "w80"):
        for e in ("kms", "err"):
            vals = np.array([np.nan if (r.get("oiii_kinematics") or {}).get(f"{q}_{e}") is None
                             else float(r["oiii_kinematics"][f"{q}_{e}"]) for r in results])
            t[f"oiii_{q}" + ("_err" if e == "err" else "")] = MaskedColumn(vals, mask=~np.isfinite(vals), unit="km/s")
    for dkey in ("sii", "oii"):
        for q, unit in (("ratio", None), ("ratio_err", None), ("n_e", "cm-3"), ("n_e_lo", "cm-3"),
                        ("n_e_hi", "cm-3")):
            vals = np.array([np.nan if (r.get("density") or {}).get(dkey, {}).get(q) is None
                             else float(r["density"][dkey][q]) for r in results])
            t[f"{dkey}_{q}"] = MaskedColumn(vals, mask=~np.isfinite(vals), unit=unit)
        t[f"{dkey}_density_limit"] = [str((r.get("density") or {}).get(dkey, {}).get("limit") or "")
                                      for r in results]
    units = {"flux": "1e-17 erg / (s cm2)", "flux_err": "1e-17 erg / (s cm2)", "fwhm_kms": "km/s",
             "fwhm_err": "km/s", "ew": "Angstrom", "snr": None}
    for key in names:
        per = []
        for r in results:
            hit = {(ln["name"] + ("" if ln.get("component", "narrow") == "narrow" else f"_{ln['component']}")): ln
                   for ln in r.get("lines", []) or []}
            per.append(hit.get(key))
        for q in _LINE_KEYS:
            vals = np.array([np.nan if (ln is None or ln.get(q) is None) else float(ln[q]) for ln in per])
            t[f"{key}_{q}"] = MaskedColumn(vals, mask=~np.isfinite(vals), unit=units[q])
    return t
