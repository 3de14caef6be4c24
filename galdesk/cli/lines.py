"""``galdesk fit-lines``: emission-line fits of spectrum files, folders or a project's spectra, with a terminal
report, JSON records or a result table. :func:`add_fit_options` and :func:`config_from_args` are shared with
``galdesk batch fit-lines``."""

from __future__ import annotations

import math
import sys

from galdesk.cli.common import EXIT_OK, fail, print_json

__all__ = ["add_parsers", "cmd_fit_lines", "add_fit_options", "config_from_args", "format_result", "report_problems"]


def add_fit_options(f) -> None:
    """The line-fit options shared by ``fit-lines`` and ``batch fit-lines``."""
    f.add_argument("--lines", help="complexes or lines to fit, comma-separated "
                                    "(default halpha,hbeta,hgamma,sii,oi,oii)")
    f.add_argument("--broad", default="auto", choices=["auto", "yes", "no"], help="broad Balmer component")
    f.add_argument("--mc", type=int, default=0, help="Monte Carlo noise realisations for the errors")
    f.add_argument("--continuum", default="auto", choices=["auto", "stellar", "agn", "local"],
                   help="stellar-population continuum, AGN pseudo-continuum (host + power law + Fe II) or local "
                        "polynomial + Balmer trough (auto: decided by the spectrum, never by the survey's class: "
                        "stars, or the AGN pseudo-continuum where a nucleus carries >= 35%% of the light at 5100 A "
                        "and fits better; see docs/lines_validation.md)")
    f.add_argument("--agn-windows", default="masks", choices=["masks", "qso"],
                   help="AGN continuum fitted outside the emission lines (masks) or only in the line-free windows "
                        "of quasar catalogues (qso: Shen et al. 2011, PyQSOFit)")
    f.add_argument("--tie-broad", action="store_true",
                   help="broad Hβ/Hγ take broad Hα's velocities and widths (one broad-line region, as GELATO)")
    f.add_argument("--fit-stars", action="store_true",
                   help="fit spectra that the file classes as stars (skipped by default: nebular lines on galaxy "
                        "templates mean nothing for a star)")
    f.add_argument("--templates", help="stellar template FITS (default: the bundled BC03 MILES SSPs)")
    f.add_argument("--powerlaw", action="store_true",
                   help="add a featureless AGN power law to the stellar templates (Seyfert hosts)")
    f.add_argument("--z", type=float, default=None, metavar="Z",
                   help="the redshift of a single target (a file with one spectrum); for several, use --catalog")
    f.add_argument("--catalog", action="append", default=[], metavar="FILE",
                   help="redshifts by id or file: a CSV/ECSV/FITS/VOTable catalogue with a z (or redshift) column, "
                        "matched as `galdesk ingest` matches, or a DESI redrock/zbest file (by TARGETID); wins over "
                        "the files' own redshifts (repeatable)")


def config_from_args(args):
    """FitConfig from the options of :func:`add_fit_options` (ValueError on a bad value)."""
    from galdesk.lines.config import FitConfig
    from galdesk.lines.service import complexes_for

    kw = {"broad": args.broad, "continuum": args.continuum, "stellar_powerlaw": bool(args.powerlaw),
          "tie_broad": bool(args.tie_broad), "mc_samples": int(args.mc or 0),
          "agn_windows": getattr(args, "agn_windows", "masks"), "fit_stars": bool(getattr(args, "fit_stars", False))}
    cx = complexes_for(args.lines)
    if cx:
        kw["complexes"] = cx
    if args.templates:
        kw["stellar_templates"] = args.templates
    return FitConfig(**kw)


def cmd_fit_lines(args) -> int:
    from galdesk.catalog.lines_table import results_table
    from galdesk.catalog.writers import check_output, write_table
    from galdesk.lines.service import fit_sources
    from galdesk.tasks import ConsoleContext

    try:
        config = config_from_args(args)
        if args.output:  # before any fitting: a result table that cannot be written must not cost the batch
            check_output(args.output, overwrite=args.overwrite)
        # redshift inputs are checked (and catalogues read) before the first fit, too
        results = fit_sources(args.sources, config, ctx=ConsoleContext(quiet=args.json), n_jobs=args.jobs,
                              z=args.z, catalogs=args.catalog)
    except ValueError as exc:
        return fail("fit-lines", str(exc))
    if args.output:
        write_table(results_table(results), args.output, overwrite=args.overwrite)
    if args.json:
        print_json(results)
    else:
        for r in results:
            if fit_status(r) != "error":
                print(format_result(r))
    return report_problems("fit-lines", results)


def fit_status(r: dict) -> str:
    """fitted, skipped or error (:func:`galdesk.lines.batch.record_status`; imported here, not at start-up)."""
    from galdesk.lines.batch import record_status

    return record_status(r)


def _where(r: dict) -> str:
    """A record's file, and its target when the file holds several (the id is then not the file's stem)."""
    from pathlib import Path

    src = str(r.get("source") or "?")
    ident = str(r.get("id") or "")
    return src if not ident or ident == Path(src).stem else f"{src} (target {ident})"


def report_problems(command: str, results: list[dict]) -> int:
    """The spectra that were not fitted (errors and skips), one line each on stderr; the exit code (2 when nothing
    was fitted)."""
    bad = [r for r in results if fit_status(r) != "fitted"]
    if bad:
        print(f"{len(bad)} problem(s):", file=sys.stderr)
        for r in bad:
            why = r["error"] if fit_status(r) == "error" else f"skipped: {r.get('skip_reason')}"
            print(f"  {_where(r)}: {why}", file=sys.stderr)
        if any(r.get("skip_reason") == "no redshift" for r in bad):
            print("  (give a redshift with --z Z for one spectrum, or --catalog FILE with id or file and z; a DESI "
                  "redrock file beside its coadd is used by itself)", file=sys.stderr)
    if len(bad) == len(results):
        return fail(command, f"nothing could be fitted ({len(bad)} problem(s))" if bad else "no spectra found")
    return EXIT_OK


def _num(v, fmt: str) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        width = int("".join(ch for ch in fmt.split(".")[0] if ch.isdigit()) or 0)
        return "—".rjust(width)    # the column stays aligned
    return format(v, fmt)


def format_result(r: dict) -> str:
    """A terminal report of one spectrum's fit (the ``to_dict`` record): verdicts, continuum, one line per line
    component, densities and, for broad-line AGN, luminosities and virial masses."""
    z = r.get("z")
    if fit_status(r) == "skipped":
        return "\n".join([f"{r.get('id')}  z = {_num(z, '.5f')}  skipped: {r.get('skip_reason')}"]
                         + [f"  note: {n}" for n in r.get("notes") or []])
    head = (f"{r.get('id')}  z = {_num(z, '.5f')}  BPT: {r.get('bpt_class') or 'unclassified'}  "
            f"broad component: {'needed' if r.get('broad_needed') else 'not needed'}"
            + (f" (ΔBIC {_num(r.get('delta_bic'), '.1f')})" if r.get("delta_bic") is not None else "")
            + f"  continuum: {r.get('continuum') or '—'}")
    out = [head]
    if r.get("z_source") not in (None, "file"):
        out.append(f"  redshift from {r['z_source']}" + (f" (ZWARN {r['zwarn']})" if r.get("zwarn") else ""))
    out.extend(f"  note: {n}" for n in r.get("notes") or [])
    if r.get("errors_estimated"):
        out.append(f"  note: the file has no usable flux errors; estimated from the flux ({r['errors_estimated']})")
    st = r.get("stellar") or {}
    if st.get("kind") == "agn":
        out.append(f"  AGN continuum: Fe II FWHM {_num(st.get('feii_fwhm_kms'), '.0f')} ± "
                   f"{_num(st.get('feii_fwhm_err'), '.0f')} km/s, R_Fe {_num(st.get('r_feii'), '.2f')}, "
                   f"host share at 5100 Å {_num(st.get('host_fraction'), '.2f')}, "
                   f"power-law slope {_num(st.get('powerlaw_slope'), '+.2f')}")
    elif st.get("sigma_kms") is not None:
        out.append(f"  stellar continuum: σ* {_num(st.get('sigma_kms'), '.0f')} ± {_num(st.get('sigma_err'), '.0f')} "
                   f"km/s, light-weighted log age {_num(st.get('log_age_lw'), '.2f')}")
    from galdesk.lines.criteria import describe_choice, describe_test

    if describe_choice(st):
        out.append(f"  {describe_choice(st)}")
    if st.get("error"):
        out.append(f"  {st['error']}")
    for msg in st.get("messages") or []:
        out.append(f"  note: {msg}")
    if r.get("flux_unit"):
        out.append(f"  fluxes in {r['flux_unit']} × Å")
    out.append(f"  {'line':<10} {'component':<9} {'flux':>10} {'± err':>9} {'FWHM km/s':>10} {'± err':>7} "
               f"{'EW Å':>8} {'S/N':>6}")
    for ln in r.get("lines") or []:
        out.append(f"  {ln['name']:<10} {ln.get('component', ''):<9} {_num(ln.get('flux'), '10.4g')} "
                   f"{_num(ln.get('flux_err'), '9.2g')} {_num(ln.get('fwhm_kms'), '10.0f')} "
                   f"{_num(ln.get('fwhm_err'), '7.0f')} {_num(ln.get('ew'), '8.3g')} {_num(ln.get('snr'), '6.1f')}")
    for t in r.get("tests") or []:
        out.append(f"  {describe_test(t)}")
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
