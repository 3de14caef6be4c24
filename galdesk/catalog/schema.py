"""The one column schema of line-fit quantities: name, unit and description of every column a line fit gives.

``galdesk fit-lines -o TABLE`` (:func:`galdesk.catalog.lines_table.results_table`), the exported catalogue
(:func:`galdesk.catalog.assemble.build_catalog`) and the column table of ``docs/vetting_and_export.md``
(:func:`markdown_table`, checked by a test) all take their line-fit columns from here, so one quantity has one
name everywhere.

Naming: lower case, ``_``-separated; the quantity first, the tracer after (``n_e_sii``); errors are
``<column>_err`` (1 sigma); units live in the column's unit, never in its name (``stellar_sigma`` in km / s).
Line columns are ``<line>[_<component>]_<quantity>``: the fitter's line name (``halpha``, ``oiii5007``; any other
characters reduced to ASCII letters, digits and ``_``, Greek letters spelled: ``Hα`` -> ``Ha``) and, for other
components than ``narrow``, the component (``halpha_broad_flux``, ``oiii5007_outflow_fwhm``).

A group of columns appears when at least one row has a value for it (a table of star-forming galaxies has no
Fe II or black-hole-mass columns); missing values are masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from galdesk.lines.bhmass import SYSTEMATIC_DEX

__all__ = ["ColumnSpec", "LINE_FLUX", "DEFAULT_FLUX_UNIT", "FIT_GROUPS", "LINE_QUANTITIES", "fit_columns",
           "line_column_base", "markdown_table", "column_name", "column_unit", "text_columns", "STATUS_COLUMNS",
           "status_columns", "line_flux_unit"]

#: Placeholder unit of line fluxes: the fitted spectra's flux-density unit times Angstrom.
LINE_FLUX = "line flux"
#: Line-flux unit when the spectra do not say (SDSS flux density unit times Angstrom).
DEFAULT_FLUX_UNIT = "1e-17 erg / (s cm2)"

_GREEK = {"α": "a", "β": "b", "γ": "g", "δ": "d", "ε": "e"}


@dataclass(frozen=True)
class ColumnSpec:
    """One catalogue column.

    Attributes
    ----------
    name : str
        Column name.
    unit : str or None
        astropy unit string, :data:`LINE_FLUX` for the line-flux unit, None for dimensionless.
    description : str
        What the value is (FITS ``TCOMMn``, VOTable/ECSV description).
    kind : str
        ``"float"``, ``"int"`` (1/0 flags; masked when unknown) or ``"text"``.
    get : callable
        ``payload -> value`` from a line-fit record (:meth:`galdesk.lines.results.SpectrumFit.to_dict`).
    """

    name: str
    unit: str | None
    description: str
    kind: str = "float"
    get: Callable[[dict], object] | None = None


def _getter(fn, path: str) -> Callable[[dict], object]:
    fn.path = path  # where the value sits in the JSON record (fit-lines --json, the journal): for the docs
    return fn


def _key(key: str) -> Callable[[dict], object]:
    return _getter(lambda p: p.get(key), key)


def _in(section: str, key: str) -> Callable[[dict], object]:
    return _getter(lambda p: (p.get(section) or {}).get(key), f"{section}.{key}")


def _density(tracer: str, key: str) -> Callable[[dict], object]:
    return _getter(lambda p: ((p.get("density") or {}).get(tracer) or {}).get(key), f"density.{tracer}.{key}")


def _in_choice(key: str) -> Callable[[dict], object]:
    return _getter(lambda p: ((p.get("stellar") or {}).get("choice") or {}).get(key), f"stellar.choice.{key}")


def _flag(key: str) -> Callable[[dict], object]:
    return _getter(lambda p: None if p.get(key) is None else int(bool(p.get(key))), f"{key} (as 1/0)")


def _with_err(name: str, unit: str | None, description: str, section: str, key: str, err_key: str,
              err_description: str = "its 1-sigma error") -> list[ColumnSpec]:
    """A quantity and its error (a logarithmic quantity's error is in dex)."""
    err_unit = "dex" if unit and unit.startswith("dex(") else unit
    return [ColumnSpec(name, unit, description, "float", _in(section, key)),
            ColumnSpec(f"{name}_err", err_unit, err_description, "float", _in(section, err_key))]


def _status(p: dict) -> str:
    return p.get("status") or ("error" if p.get("error") else ("skipped" if p.get("skip_reason") else "fitted"))


#: Columns of the ``fit-lines`` table (every row, fitted or not) that say what happened to each spectrum and where
#: its redshift came from. Not in the exported catalogue, whose line fits are all fitted.
STATUS_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("fit_status", None, "fitted; skipped (read, but not fitted: see skip_reason); or error (the file or "
               "the fit failed: see error)", "text", _getter(_status, "status")),
    ColumnSpec("skip_reason", None, "why a spectrum that was read was not fitted: no redshift, a sky, empty or fully "
               "masked fibre", "text", _key("skip_reason")),
    ColumnSpec("z_source", None, "where z came from: --z, a catalogue or DESI redrock file (its name), the file "
               "itself, or the project's object table", "text", _key("z_source")),
    ColumnSpec("zwarn", None, "warning bits of the redshift fit (DESI ZWARN); non-zero: fitted, but z is flagged",
               "int", _key("zwarn")),
    ColumnSpec("flux_unit", None, "flux-density unit of the spectrum; its line fluxes are in this unit x Angstrom "
               "(count for uncalibrated spectra such as 6dFGS)", "text", _key("flux_unit")),
    ColumnSpec("notes", None, "what makes the result doubtful or how it was obtained, '; '-separated: a fit that did "
               "not converge, chi2nu > 3, widths at a bound, masked line cores, not flux-calibrated, air assumed, "
               "a flagged or replaced redshift", "text", _getter(lambda p: "; ".join(p.get("notes") or []) or None,
                                                                "notes (joined)")),
)


def _fit_group() -> list[ColumnSpec]:
    return [
        ColumnSpec("bpt_class", None, "BPT class from the line fit (Kauffmann 2003, Kewley 2001/2006, Schawinski "
                   "2007)", "text", _key("bpt_class")),
        ColumnSpec("broad_needed", None, "1 if the line fit needs a broad Balmer component, 0 if not", "int",
                   _flag("broad_needed")),
        ColumnSpec("delta_bic", None, "BIC(narrow) - BIC(narrow+broad) of the line fit", "float", _key("delta_bic")),
        ColumnSpec("delta_bic_alt", None, "the same on the continuum of the second, independent stellar library "
                   "(MaStar SSPs); a broad component is kept only when both exceed 10", "float", _key("delta_bic_alt")),
        ColumnSpec("broad_rejected", None, "why a tested broad component was rejected (failed criteria; empty when "
                   "it is needed or absent)", "text", _key("broad_rejected")),
        ColumnSpec("continuum_model", None, "continuum under the fitted lines: stellar (population fit), agn (host + "
                   "power law + Fe II) or local", "text", _key("continuum")),
        ColumnSpec("continuum_reason", None, "why that continuum: the spectrum's own evidence (nucleus share of the "
                   "light, BIC of AGN vs stellar models), or 'asked for'", "text", _in_choice("reason")),
        ColumnSpec("errors_estimated", None, "how the flux errors were estimated when the file had none (e.g. "
                   "DER_SNR, 101 px); empty: the file's own", "text", _key("errors_estimated")),
    ]


def _stellar_group() -> list[ColumnSpec]:
    return [
        *_with_err("stellar_sigma", "km / s", "stellar velocity dispersion of the continuum fit", "stellar",
                   "sigma_kms", "sigma_err"),
        ColumnSpec("stellar_velocity", "km / s", "stellar velocity relative to z", "float",
                   _in("stellar", "velocity_kms")),
        ColumnSpec("stellar_log_age", "dex(yr)", "light-weighted log age of the stellar templates (5500 A)", "float",
                   _in("stellar", "log_age_lw")),
        ColumnSpec("stellar_chi2nu", None, "reduced chi2 of the continuum fit", "float", _in("stellar", "chi2nu")),
    ]


def _agn_group() -> list[ColumnSpec]:
    return [
        *_with_err("feii_fwhm", "km / s", "Fe II FWHM of the AGN pseudo-continuum (host + power law + Fe II)",
                   "stellar", "feii_fwhm_kms", "feii_fwhm_err"),
        *_with_err("feii_flux", LINE_FLUX, "Fe II flux in rest 4434-4684 A", "stellar", "feii_flux",
                   "feii_flux_err"),
        ColumnSpec("feii_dchi2", None, "chi2 without Fe II minus with it (detection: >= 40)", "float",
                   _in("stellar", "feii_dchi2")),
        *_with_err("r_feii", None, "F(Fe II 4434-4684 A) / F(broad Hbeta)", "stellar", "r_feii", "r_feii_err"),
        ColumnSpec("agn_host_fraction", None, "host-galaxy share of the continuum at rest 5100 A", "float",
                   _in("stellar", "host_fraction")),
        ColumnSpec("agn_powerlaw_slope", None, "slope of the AGN power law (f_lambda) at rest 5100 A", "float",
                   _in("stellar", "powerlaw_slope")),
    ]


_COSMO = "; H0=70, Om=0.3"
_SCATTER = f"; +-{SYSTEMATIC_DEX} dex calibration scatter not included"


def _bh_group() -> list[ColumnSpec]:
    rows = (("log_l5100", "dex(erg / s)", "log lambda L_lambda(5100 A) of the AGN power law" + _COSMO),
            ("log_l_hbeta", "dex(erg / s)", "log luminosity of broad Hbeta" + _COSMO),
            ("log_l_halpha", "dex(erg / s)", "log luminosity of broad Halpha" + _COSMO),
            ("log_mbh_hbeta", "dex(solMass)", "virial BH mass, FWHM(Hbeta) + L5100 (Vestergaard & Peterson 2006 "
                                              "eq. 5)" + _COSMO + _SCATTER),
            ("log_mbh_hbeta_lhb", "dex(solMass)", "virial BH mass, FWHM(Hbeta) + L(Hbeta) (Vestergaard & Peterson "
                                                  "2006 eq. 6)" + _COSMO + _SCATTER),
            ("log_mbh_halpha", "dex(solMass)", "virial BH mass, FWHM(Halpha) + L(Halpha) (Greene & Ho 2005 eq. 6)"
             + _COSMO + _SCATTER))
    out: list[ColumnSpec] = []
    for key, unit, desc in rows:
        out += _with_err(key, unit, desc, "bh_mass", key, f"{key}_err", "its 1-sigma measurement error")
    return out


def _kinematics_group() -> list[ColumnSpec]:
    rows = (("v10", "velocity below which 10% of the [OIII] 5007 flux lies"),
            ("v50", "median velocity of [OIII] 5007"),
            ("v90", "velocity below which 90% of the [OIII] 5007 flux lies"),
            ("w80", "W80 = v90 - v10 of [OIII] 5007"))
    out: list[ColumnSpec] = []
    for q, desc in rows:
        out += _with_err(f"oiii_{q}", "km / s", f"{desc} (core + wing, instrument removed, relative to z)",
                         "oiii_kinematics", f"{q}_kms", f"{q}_err")
    return out


def _density_group(tracer: str, label: str) -> list[ColumnSpec]:
    return [
        ColumnSpec(f"{tracer}_ratio", None, f"{label} flux ratio", "float", _density(tracer, "ratio")),
        ColumnSpec(f"{tracer}_ratio_err", None, "its 1-sigma error", "float", _density(tracer, "ratio_err")),
        ColumnSpec(f"n_e_{tracer}", "cm-3", f"electron density from {label} (Sanders et al. 2016, 1e4 K)", "float",
                   _density(tracer, "n_e")),
        ColumnSpec(f"n_e_{tracer}_lo", "cm-3", "n_e at ratio + 1 sigma", "float", _density(tracer, "n_e_lo")),
        ColumnSpec(f"n_e_{tracer}_hi", "cm-3", "n_e at ratio - 1 sigma (masked: high-density limit)", "float",
                   _density(tracer, "n_e_hi")),
        ColumnSpec(f"n_e_{tracer}_limit", None, f"low-density / high-density when the {label} ratio sits at a limit",
                   "text", _density(tracer, "limit")),
    ]


def _has_stellar(p: dict) -> bool:
    return isinstance(p.get("stellar"), dict)


def _has_agn(p: dict) -> bool:
    return (p.get("stellar") or {}).get("kind") == "agn"


def _has_bh(p: dict) -> bool:
    bh = p.get("bh_mass") or {}
    return any(bh.get(k) is not None for k in ("log_mbh_hbeta", "log_mbh_hbeta_lhb", "log_mbh_halpha"))


def _has_kinematics(p: dict) -> bool:
    return (p.get("oiii_kinematics") or {}).get("w80_kms") is not None


def _has_density(tracer: str) -> Callable[[dict], bool]:
    return lambda p: bool((p.get("density") or {}).get(tracer))


#: Groups of line-fit columns, in table order: (group name, "present in a row" test, columns).
FIT_GROUPS: tuple[tuple[str, Callable[[dict], bool], list[ColumnSpec]], ...] = (
    ("fit", lambda p: True, _fit_group()),
    ("stellar continuum", _has_stellar, _stellar_group()),
    ("AGN pseudo-continuum", _has_agn, _agn_group()),
    ("black-hole masses", _has_bh, _bh_group()),
    ("[OIII] 5007 profile", _has_kinematics, _kinematics_group()),
    ("[SII] density", _has_density("sii"), _density_group("sii", "[SII] 6717/6731")),
    ("[OII] density", _has_density("oii"), _density_group("oii", "[OII] 3729/3726")),
)

_UNITS: dict[str, str] = {}  # filled below: fit column -> unit

#: Per line component: (column suffix, record key, unit, description).
LINE_QUANTITIES = (
    ("flux", "flux", LINE_FLUX, "integrated flux"),
    ("flux_err", "flux_err", LINE_FLUX, "1-sigma error of the integrated flux"),
    ("fwhm", "fwhm_kms", "km / s", "FWHM"),
    ("fwhm_err", "fwhm_err", "km / s", "1-sigma error of the FWHM"),
    ("ew", "ew", "Angstrom", "rest-frame equivalent width"),
    ("snr", "snr", None, "signal-to-noise ratio of the flux"),
)


def column_name(text: str) -> str:
    """A column-name fragment: ASCII letters, digits and ``_`` (Greek letters spelled)."""
    text = "".join(_GREEK.get(ch, ch) for ch in str(text))
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    return text or "x"


def line_column_base(name: str, component: str) -> str:
    """``<line>[_<component>]`` of a line component (``narrow`` has no suffix; a leading digit gets ``L_``)."""
    base = column_name(name) + ("" if component == "narrow" else f"_{column_name(component)}")
    return "L_" + base if base[0].isdigit() else base


def _unit(unit, flux_unit):
    return flux_unit if unit == LINE_FLUX else unit


def _column(spec: ColumnSpec, values, flux_unit, note: str = ""):
    from astropy.table import MaskedColumn

    description = spec.description + (note if spec.unit == LINE_FLUX else "")
    if spec.kind == "text":
        vals = ["" if v is None else str(v) for v in values]
        arr = np.array(vals, dtype=str) if vals else np.zeros(0, "U1")
        return MaskedColumn(arr, mask=[v == "" for v in vals], description=description)
    if spec.kind == "int":
        mask = np.array([v is None for v in values], bool)
        ints = [0 if v is None else int(v) for v in values]
        dtype = np.int16 if all(abs(v) < 2**15 - 1 for v in ints) else np.int64  # 1/0 flags; ZWARN bits
        arr = np.array(ints, dtype=dtype)
        col = MaskedColumn(arr, mask=mask, description=description)
        col.fill_value = np.iinfo(dtype).min  # the FITS TNULL: never a real value
        return col
    arr = np.array([_float(v) for v in values], dtype=float)
    return MaskedColumn(arr, mask=~np.isfinite(arr), unit=_unit(spec.unit, flux_unit), description=description)


def _float(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _line_keys(payloads) -> list[tuple[str, str, float]]:
    """(name, component, vacuum wavelength) of every line component in the payloads, by wavelength."""
    seen: dict[tuple[str, str], float] = {}
    for p in payloads:
        for ln in (p or {}).get("lines") or []:
            key = (str(ln.get("name", "?")), str(ln.get("component") or "narrow"))
            seen.setdefault(key, _float(ln.get("wave_vac")))
    return [(n, c, w) for (n, c), w in sorted(seen.items(), key=lambda kv: (np.nan_to_num(kv[1], nan=np.inf), kv[0]))]


def _line_columns(payloads, flux_unit, note: str) -> list:
    per_row = [{(str(ln.get("name", "?")), str(ln.get("component") or "narrow")): ln
                for ln in ((p or {}).get("lines") or [])} for p in payloads]
    out, used = [], set()
    for name, comp, wave in _line_keys(payloads):
        base = line_column_base(name, comp)
        if base in used:
            base = f"{base}_{int(round(wave)) if np.isfinite(wave) else len(used)}"
        used.add(base)
        where = f"{name} ({comp}{', %.2f A vacuum' % wave if np.isfinite(wave) else ''})"
        cells = [row.get((name, comp)) for row in per_row]
        for suffix, key, unit, desc in LINE_QUANTITIES:
            spec = ColumnSpec(f"{base}_{suffix}", unit, f"{where} {desc}")
            out.append((spec.name, _column(spec, [c.get(key) if c else None for c in cells], flux_unit, note)))
    return out


def fit_columns(payloads: list[dict | None], flux_unit=DEFAULT_FLUX_UNIT, flux_note: str = "") -> list:
    """The line-fit columns of a table whose rows have the line-fit records ``payloads`` (None: no fit).

    Parameters
    ----------
    payloads : list of dict or None
        :meth:`galdesk.lines.results.SpectrumFit.to_dict` records, one per row.
    flux_unit : str or astropy unit or None
        Unit of line fluxes (None: rows in different units; ``flux_note`` says so).
    flux_note : str
        Appended to the descriptions of flux columns.

    Returns
    -------
    list of (name, astropy.table.MaskedColumn)
        :data:`FIT_GROUPS` columns whose group is present in at least one row, then the line columns.
    """
    rows = [p or {} for p in payloads]
    fitted = [p for p in payloads if p]
    out = []
    for _group, present, specs in FIT_GROUPS:
        if not any(present(p) for p in fitted):
            continue
        for spec in specs:
            out.append((spec.name, _column(spec, [spec.get(p) if p else None for p in rows], flux_unit, flux_note)))
    return out + _line_columns(payloads, flux_unit, flux_note)


def status_columns(results: list[dict]) -> list:
    """The :data:`STATUS_COLUMNS` of a ``fit-lines`` table, one row per record (fitted, skipped or error)."""
    return [(spec.name, _column(spec, [spec.get(r) for r in results], None)) for spec in STATUS_COLUMNS]


def column_unit(name: str, flux_unit=DEFAULT_FLUX_UNIT):
    """The schema's unit of a catalogue column (a fit column, a line column ``<line>[_<comp>]_<quantity>``, or
    ``ra``/``dec``) as an astropy unit; None when the schema has none (dimensionless or not a schema column)."""
    import astropy.units as u

    if name in ("ra", "dec"):
        return u.deg
    unit = _UNITS.get(name)
    if unit is None:
        unit = next((q[2] for q in LINE_QUANTITIES if name.endswith(f"_{q[0]}") and not name.startswith(
            ("feii_", "n_e_"))), None)
    if unit is None:
        return None
    return u.Unit(_unit(unit, flux_unit))


def text_columns() -> tuple[str, ...]:
    """Names of the schema's text columns (kept as text when a CSV is read back)."""
    specs = [spec for _g, _p, group in FIT_GROUPS for spec in group] + list(STATUS_COLUMNS)
    return tuple(spec.name for spec in specs if spec.kind == "text")


def markdown_table() -> str:
    """The line-fit rows of the column table in ``docs/vetting_and_export.md`` (a test keeps the doc equal), with
    the key of each quantity in the JSON record (``fit-lines --json`` and the journal keep the fitter's names)."""
    out = ["| column | unit | meaning | JSON record key |", "|---|---|---|---|"]
    for spec in STATUS_COLUMNS:
        out.append(f"| `{spec.name}` | | {spec.description} (`fit-lines` table only) | `{spec.get.path}` |")
    for group, _present, specs in FIT_GROUPS:
        for spec in specs:
            unit = "line-flux unit" if spec.unit == LINE_FLUX else (spec.unit or "")
            out.append(f"| `{spec.name}` | {unit} | {spec.description} ({group}) | `{spec.get.path}` |")
    for suffix, key, unit, desc in LINE_QUANTITIES:
        unit = "line-flux unit" if unit == LINE_FLUX else (unit or "")
        out.append(f"| `<line>[_<component>]_{suffix}` | {unit} | {desc} (each fitted line component) | "
                   f"`lines[].{key}` |")
    return "\n".join(out)


_UNITS.update({spec.name: spec.unit for _g, _p, specs in FIT_GROUPS for spec in specs if spec.unit})


def line_flux_unit(flux_units) -> tuple:
    """The unit of line-flux columns for spectra whose flux-density units are ``flux_units`` (strings; "" unknown):
    that unit times Angstrom when they all agree, :data:`DEFAULT_FLUX_UNIT` when none is known, else
    ``(None, note)`` — mixed or unparsable units: each row is then in its own spectrum's unit and the note says so.
    Returns ``(unit or None, note)``."""
    import astropy.units as u

    units = {str(x or "") for x in flux_units}
    parsed = set()
    for s in units:
        if s.strip().lower() in ("count", "counts"):
            parsed.add((u.count * u.AA).to_string())
            continue
        try:
            parsed.add((u.Unit(s) * u.AA).to_string() if s else None)
        except (ValueError, TypeError):
            parsed.add(f"?{s}")
    parsed_known = parsed - {None}
    if not parsed_known:
        return u.Unit(DEFAULT_FLUX_UNIT), ""
    if len(parsed) == 1 and not next(iter(parsed)).startswith("?"):
        return u.Unit(next(iter(parsed))), ""
    return None, f" (mixed units: each row in its spectrum's flux unit x Angstrom: {sorted(units)})"
