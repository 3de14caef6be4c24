"""Emission-line fitting of many spectra: the glue between files / projects and :mod:`galdesk.lines`.

``fit_sources`` is the function behind ``galdesk fit-lines`` and the Lines tab's "Fit all": spectra come from
files or from projects; results of a project's spectra are appended to its journal (record kind ``line_fit``,
key = object id, payload = :meth:`galdesk.lines.fit.SpectrumFit.to_dict`), where the Vet tab, the BPT plot and
the export read them.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

from galdesk.tasks import NullContext, TaskContext

__all__ = ["fit_sources", "fit_project", "results_table", "complexes_for", "model_curves", "add_parsers"]

_LINE_KEYS = ("flux", "flux_err", "fwhm_kms", "fwhm_err", "ew", "snr")


def complexes_for(names: str | list[str] | None) -> tuple[str, ...] | None:
    """``"halpha,hbeta"`` (complex or line names) -> the complexes to fit, in the given order; None = default."""
    from galdesk.lines.linelist import COMPLEXES

    if not names:
        return None
    if isinstance(names, str):
        names = [n.strip().lower() for n in names.split(",") if n.strip()]
    out: list[str] = []
    for n in names:
        key = n.replace("[", "").replace("]", "").replace(" ", "")
        if key in COMPLEXES:
            found = key
        else:
            found = next((c for c, cx in COMPLEXES.items() if key in cx.lines), None)
            if found is None:
                raise ValueError(f"unknown line or complex {n!r}; known complexes: {', '.join(COMPLEXES)}")
        if found not in out:
            out.append(found)
    return tuple(out)


def fit_project(project, config=None, ctx: TaskContext | None = None, n_jobs: int | None = None,
                rows=None) -> list[dict]:
    """Fit the project's spectra (all, or object-table ``rows``) and append the results to its journal."""
    from galdesk.lines.batch import fit_many
    from galdesk.project import Project

    ctx = ctx or NullContext()
    project = project if isinstance(project, Project) else Project.open(project)
    rows = project.spectrum_rows() if rows is None else np.asarray(rows, int)
    spectra = [project.spectrum(int(r)) for r in rows]
    fits = fit_many(spectra, config, ctx=ctx, n_jobs=n_jobs)
    out = []
    records = []
    for spec, sf in zip(spectra, fits):
        d = sf.to_dict()
        d["source"] = spec.source
        d["id"] = spec.id
        out.append(d)
        if sf.error is None:
            records.append(("line_fit", spec.id, d))
    project.journal.append_many(records, author="galdesk fit-lines")
    return out


def model_curves(spec, payload: dict | None = None, config=None, ctx: TaskContext | None = None, n: int = 600
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The total model of each fitted complex on its window, for drawing over a spectrum.

    The journal keeps derived quantities, not model curves; the complexes named in a saved record (``payload``,
    its ``fit`` keys) are fitted again (the fit is deterministic) on the caller's worker thread.
    """
    from galdesk.lines.fit import FitConfig, fit_spectrum

    names = tuple((payload or {}).get("fit", {}).keys()) or None
    cfg = config or (FitConfig(complexes=names) if names else FitConfig())
    sf = fit_spectrum(spec, cfg, ctx=ctx)
    out = []
    for cf in sf.complexes.values():
        x = np.linspace(cf.window[0], cf.window[1], n)
        out.append((x, cf.model_curves(x)["total"]))
    return out


def fit_sources(sources, config=None, ctx: TaskContext | None = None, n_jobs: int | None = None) -> list[dict]:
    """Fit spectrum files and the spectra of projects; one dict per spectrum (failures carry ``error``)."""
    from galdesk.io.registry import expand_paths
    from galdesk.lines.batch import fit_many
    from galdesk.project import is_project

    ctx = ctx or NullContext()
    projects = [s for s in sources if is_project(s)]
    files = expand_paths([s for s in sources if not is_project(s)])
    out: list[dict] = []
    for p in projects:
        out.extend(fit_project(p, config, ctx=ctx, n_jobs=n_jobs))
    if files:
        for sf in fit_many([str(f) for f in files], config, ctx=ctx, n_jobs=n_jobs):
            out.append(sf.to_dict())
    return out


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


# -- command line -----------------------------------------------------------------------------------------------------
def add_fit_options(f) -> None:
    """The line-fit options shared by ``fit-lines`` and ``batch fit-lines``."""
    f.add_argument("--lines", help="complexes or lines to fit, comma-separated (default halpha,hbeta,sii,oi,oii)")
    f.add_argument("--broad", default="auto", choices=["auto", "yes", "no"], help="broad Balmer component")
    f.add_argument("--mc", type=int, default=0, help="Monte Carlo noise realisations for the errors")
    f.add_argument("--continuum", default="auto", choices=["auto", "stellar", "agn", "local"],
                   help="stellar-population continuum, AGN pseudo-continuum (host + power law + Fe II) or local "
                        "polynomial + Balmer trough (auto: stellar, AGN for SDSS quasars)")
    f.add_argument("--agn-windows", default="masks", choices=["masks", "qso"],
                   help="AGN continuum fitted outside the emission lines (masks) or only in the line-free windows "
                        "of quasar catalogues (qso: Shen et al. 2011, PyQSOFit)")
    f.add_argument("--tie-broad", action="store_true",
                   help="broad Hβ/Hγ take broad Hα's velocities and widths (one broad-line region, as GELATO)")
    f.add_argument("--templates", help="stellar template FITS (default: the bundled BC03 MILES SSPs)")
    f.add_argument("--powerlaw", action="store_true",
                   help="add a featureless AGN power law to the stellar templates (Seyfert hosts)")


def config_from_args(args):
    """FitConfig from the options of :func:`add_fit_options` (ValueError on a bad value)."""
    from galdesk.lines.fit import FitConfig

    kw = {"broad": args.broad, "continuum": args.continuum, "stellar_powerlaw": bool(args.powerlaw),
          "tie_broad": bool(args.tie_broad), "mc_samples": int(args.mc or 0),
          "agn_windows": getattr(args, "agn_windows", "masks")}
    cx = complexes_for(args.lines)
    if cx:
        kw["complexes"] = cx
    if args.templates:
        kw["stellar_templates"] = args.templates
    return FitConfig(**kw)


def cmd_fit_lines(args) -> int:
    from galdesk.tasks import Cancelled, ConsoleContext

    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"galdesk fit-lines: {exc}", file=sys.stderr)
        return 2
    try:
        results = fit_sources(args.sources, config, ctx=ConsoleContext(quiet=args.json), n_jobs=args.jobs)
    except Cancelled:
        return 130
    if args.output:
        from galdesk.io.export import write_table

        try:
            write_table(results_table(results), args.output, overwrite=args.overwrite)
        except (FileExistsError, ValueError, IsADirectoryError) as exc:
            print(f"galdesk fit-lines: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(results, indent=2, allow_nan=False, default=str))
    else:
        for r in results:
            if r.get("error"):
                print(f"{r['source']}: {r['error']}", file=sys.stderr)
                continue
            print(format_result(r))
    ok = [r for r in results if not r.get("error")]
    return 0 if ok else 2


def _num(v, fmt: str) -> str:
    return "—" if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) else format(v, fmt)


def format_result(r: dict) -> str:
    """A terminal report of one spectrum's fit (the ``to_dict`` record): verdicts, continuum, one line per line
    component, densities and, for broad-line AGN, luminosities and virial masses."""
    z = r.get("z")
    head = (f"{r.get('id')}  z = {_num(z, '.5f')}  BPT: {r.get('bpt_class') or 'unclassified'}  "
            f"broad component: {'needed' if r.get('broad_needed') else 'not needed'}"
            + (f" (ΔBIC {_num(r.get('delta_bic'), '.1f')})" if r.get("delta_bic") is not None else "")
            + f"  continuum: {r.get('continuum') or '—'}")
    out = [head]
    st = r.get("stellar") or {}
    if st.get("kind") == "agn":
        out.append(f"  AGN continuum: Fe II FWHM {_num(st.get('feii_fwhm_kms'), '.0f')} ± "
                   f"{_num(st.get('feii_fwhm_err'), '.0f')} km/s, R_Fe {_num(st.get('r_feii'), '.2f')}, "
                   f"host share at 5100 Å {_num(st.get('host_fraction'), '.2f')}, "
                   f"power-law slope {_num(st.get('powerlaw_slope'), '+.2f')}")
    elif st.get("sigma_kms") is not None:
        out.append(f"  stellar continuum: σ* {_num(st.get('sigma_kms'), '.0f')} ± {_num(st.get('sigma_err'), '.0f')} "
                   f"km/s, light-weighted log age {_num(st.get('log_age_lw'), '.2f')}")
    if st.get("error"):
        out.append(f"  {st['error']}")
    for msg in st.get("messages") or []:
        out.append(f"  note: {msg}")
    out.append(f"  {'line':<10} {'component':<9} {'flux':>10} {'± err':>9} {'FWHM km/s':>10} {'± err':>7} "
               f"{'EW Å':>8} {'S/N':>6}")
    for ln in r.get("lines") or []:
        out.append(f"  {ln['name']:<10} {ln.get('component', ''):<9} {_num(ln.get('flux'), '10.4g')} "
                   f"{_num(ln.get('flux_err'), '9.2g')} {_num(ln.get('fwhm_kms'), '10.0f')} "
                   f"{_num(ln.get('fwhm_err'), '7.0f')} {_num(ln.get('ew'), '8.3g')} {_num(ln.get('snr'), '6.1f')}")
    for key, d in (r.get("density") or {}).items():
        label = "[SII]" if key == "sii" else "[OII]"
        n_e = f"at the {d['limit']} limit" if d.get("limit") else f"{_num(d.get('n_e'), '.0f')} cm⁻³"
        out.append(f"  n_e {label}: {n_e} (ratio {_num(d.get('ratio'), '.3f')} ± {_num(d.get('ratio_err'), '.3f')})")
    from galdesk.lines.bhmass import describe_masses
    from galdesk.lines.profile import describe_kinematics

    for text in (describe_masses(r.get("bh_mass") or {}), describe_kinematics(r.get("oiii_kinematics") or {})):
        if text:
            out.append(f"  {text}")
    for name, why in (r.get("skipped") or {}).items():
        out.append(f"  skipped {name}: {why}")
    return "\n".join(out)


def add_parsers(sub) -> None:
    f = sub.add_parser("fit-lines", help="fit emission lines of spectrum files or a project's spectra")
    f.add_argument("sources", nargs="+", help="spectrum files, folders or projects")
    add_fit_options(f)
    f.add_argument("-o", "--output", help="result table (.fits, .csv, .ecsv, .xml)")
    f.add_argument("--overwrite", action="store_true")
    f.add_argument("--jobs", type=int, default=None, help="processes (default: one per core)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fit_lines)
