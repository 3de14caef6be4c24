"""The curated catalogue as an astropy Table: one row per object with predictions, clusters, line fits, catalogue
columns and vetting decisions, with units, descriptions, UCDs, masked missing values and provenance.

Written to files by :mod:`galdesk.catalog.export`; column names, units and descriptions of the line-fit
quantities come from :mod:`galdesk.catalog.schema`. See ``docs/vetting_and_export.md``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import datetime, timezone

import numpy as np

from galdesk import __version__
from galdesk.project import as_project
from galdesk.project.objects import BASE_COLUMNS, cell_str
from galdesk.project.results import load_clusters, load_predictions
from galdesk.vetting import REJECTED, VET_KINDS, Replay

__all__ = ["build_catalog", "provenance", "ONLY_CHOICES", "DEFAULT_FLUX_UNIT", "TEXT_COLUMNS"]

#: Row selections.
ONLY_CHOICES = ("all", "vetted", "accepted")
#: Line-flux unit when the spectra do not say (SDSS flux density unit times Angstrom).
DEFAULT_FLUX_UNIT = "1e-17 erg / (s cm2)"

# Columns that are text in every format (CSV would otherwise read numeric-looking ids back as integers).
TEXT_COLUMNS = ("id", "kind", "source", "spec_class", "subclass", "pred_class", "bpt_class", "vet_label",
                 "vet_action", "vet_flags", "vetter", "vet_note", "vet_time")
_UCDS = {"id": "meta.id;meta.main", "ra": "pos.eq.ra;meta.main", "dec": "pos.eq.dec;meta.main",
         "z": "src.redshift", "source": "meta.file", "pred_class": "src.class", "vet_label": "src.class",
         "vet_time": "time.creation"}
_LINE_QUANTITIES = (  # suffix, payload key, unit key, description
    ("flux", "flux", "flux", "integrated flux"),
    ("flux_err", "flux_err", "flux", "1-sigma error of the integrated flux"),
    ("fwhm", "fwhm_kms", "km / s", "FWHM"),
    ("fwhm_err", "fwhm_err", "km / s", "1-sigma error of the FWHM"),
    ("ew", "ew", "Angstrom", "rest-frame equivalent width"),
    ("snr", "snr", None, "signal-to-noise ratio of the flux"),
)
_GREEK = {"α": "a", "β": "b", "γ": "g", "δ": "d", "ε": "e"}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _col_name(text: str) -> str:
    """A column-name fragment: ASCII letters, digits and ``_``."""
    text = "".join(_GREEK.get(ch, ch) for ch in str(text))
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    return text or "x"


def _line_flux_unit(project, fitted_ids: set[str]):
    """The unit of line fluxes: the fitted spectra's flux-density unit times Angstrom.

    Returns (unit or None, note). None when the spectra use different units (then each row is in its own
    spectrum's unit and the column says so).
    """
    import astropy.units as u

    default = u.Unit(DEFAULT_FLUX_UNIT)
    objs = project.objects
    if not fitted_ids or not len(objs):
        return default, ""
    rows = [r for r in project.spectrum_rows() if str(objs["id"][r]) in fitted_ids]
    if not rows:
        return default, ""
    units = set()
    try:
        import h5py

        with h5py.File(project.arrays_path, "r") as f:
            attrs = f["spectra/attrs"]
            for r in rows:
                a = attrs[int(objs["row"][r])]
                a = json.loads(a.decode() if isinstance(a, bytes) else a)
                units.add(str(a.get("flux_unit") or ""))
    except Exception:  # noqa: BLE001 - no stored spectra: fall back to the default
        return default, ""
    parsed = set()
    for s in units:
        try:
            parsed.add((u.Unit(s) * u.AA).to_string() if s else None)
        except (ValueError, TypeError):
            parsed.add(f"?{s}")
    if len(parsed) == 1:
        only_one = next(iter(parsed))
        if only_one is None:
            return default, ""
        if not only_one.startswith("?"):
            return u.Unit(only_one), ""
    return None, f" (mixed units: each row in its spectrum's flux unit x Angstrom: {sorted(units)})"


def _masked(values, mask, dtype=None, unit=None, description=None):
    from astropy.table import MaskedColumn

    values = np.asarray(values, dtype=dtype) if dtype is not None else np.asarray(values)
    col = MaskedColumn(values, mask=np.asarray(mask, bool), unit=unit, description=description)
    if values.dtype.kind in "iu":
        # the FITS TNULL: the type's extreme value, never a real cluster label or flag (astropy's default,
        # 999999, wraps round in 16-bit columns)
        col.fill_value = np.iinfo(values.dtype).min if values.dtype.kind == "i" else np.iinfo(values.dtype).max
    return col


def _text(values, description):
    vals = ["" if v is None else str(v) for v in values]
    return _masked(np.array(vals, dtype=str) if vals else np.zeros(0, "U1"), [v == "" for v in vals],
                   description=description)


def _floats(values, unit=None, description=None):
    arr = np.array([_f(v) for v in values], dtype=float)
    return _masked(arr, ~np.isfinite(arr), unit=unit, description=description)


def _f(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def build_catalog(project, only: str = "all", columns: list[str] | None = None, vetter: str | None = None):
    """The curated catalogue as an astropy Table.

    Parameters
    ----------
    project : Project or path
    only : {"all", "vetted", "accepted"}
        ``vetted``: objects with a decision (including rejected ones); ``accepted``: a decision other than
        rejected (the prediction accepted or a class chosen).
    columns : list of str, optional
        Column names or shell patterns (``"prob_*"``), in the order wanted; default all.
    vetter : str, optional
        Report this vetter's decisions; default the latest decision of any vetter on each object.

    Returns
    -------
    astropy.table.Table
        One row per object (image or spectrum) of the project; units (deg, km/s, Angstrom, line-flux unit),
        descriptions, missing values masked; ``meta`` holds the provenance (:func:`provenance`).
    """
    import astropy.units as u
    from astropy.table import Column, Table

    if only not in ONLY_CHOICES:
        raise ValueError(f"only={only!r}: expected one of {', '.join(ONLY_CHOICES)}")
    project = as_project(project)
    objs = project.objects
    n = len(objs)
    ids = np.asarray(objs["id"]).astype(str) if n else np.zeros(0, str)
    t = Table()
    t["id"] = _text(ids, "object identifier")
    t["kind"] = _text(objs["kind"] if n else [], "image or spectrum")
    t["source"] = _text(objs["source"] if n else [], "file the object was read from")
    hdu = np.asarray(objs["hdu"], dtype=np.int32) if n else np.zeros(0, np.int32)
    t["hdu"] = _masked(hdu, hdu < 0, dtype=np.int32, description="HDU of the stamp in a multi-extension file")
    t["ra"] = _floats(_plain(objs["ra"]) if n else [], u.deg, "right ascension (ICRS)")
    t["dec"] = _floats(_plain(objs["dec"]) if n else [], u.deg, "declination (ICRS)")
    z = np.array([_f(v) for v in (_plain(objs["z"]) if n else [])], dtype=float)
    t["spec_class"] = _text(_plain(objs["spec_class"]) if n else [], "survey spectral class (e.g. SDSS CLASS)")
    t["subclass"] = _text(_plain(objs["subclass"]) if n else [], "survey spectral subclass")

    # classifier
    preds = load_predictions(project)
    pred_rows = np.full(n, -1)
    if preds is not None:
        ok = (preds.rows >= 0) & (preds.rows < n)
        pred_rows[preds.rows[ok]] = np.flatnonzero(ok)
    has = pred_rows >= 0
    pi = np.maximum(pred_rows, 0)
    if preds is not None:
        t["pred_class"] = _text([preds.label(i) if h else "" for i, h in zip(pi, has)],
                                f"class predicted by model {preds.model_id or '?'}")
        conf = preds.confidence
        t["pred_prob"] = _floats(np.where(has, conf[pi] if len(conf) else np.nan, np.nan),
                                 description="probability of the predicted class")
        used = set()
        for k, name in enumerate(preds.class_names):
            cname = f"prob_{_col_name(name)}"
            while cname in used:
                cname += "_"
            used.add(cname)
            t[cname] = _floats(np.where(has, preds.prob[pi, k] if len(preds.prob) else np.nan, np.nan),
                               description=f"classifier probability of class {name!r}")
    else:
        t["pred_class"] = _text([""] * n, "class predicted by the classifier (none run)")
        t["pred_prob"] = _floats([np.nan] * n, description="probability of the predicted class")

    # clusters
    clus = load_clusters(project)
    cl = np.zeros(n, np.int32)
    cl_mask = np.ones(n, bool)
    if clus is not None:
        ok = (clus[0] >= 0) & (clus[0] < n)
        cl[clus[0][ok]] = clus[1][ok]
        cl_mask[clus[0][ok]] = False
    t["cluster"] = _masked(cl, cl_mask, dtype=np.int32,
                           description="cluster label" + (f" (cut version {clus[2]})" if clus and clus[2] is not None
                                                          else ""))

    # line fits: the latest fit of each object id
    fits = project.journal.latest("line_fit")
    fit_of_row = [fits.get(i) for i in ids]
    z_fit = np.array([_f(r.payload.get("z")) if r is not None else np.nan for r in fit_of_row])
    z = np.where(np.isfinite(z), z, z_fit)
    t.add_column(_floats(z, description="redshift (object table; else the line fit's)"),
                 index=t.colnames.index("dec") + 1, name="z")
    flux_unit, unit_note = _line_flux_unit(project, set(fits))
    lines: dict[tuple[str, str], float] = {}
    for rec in fits.values():
        for ln in rec.payload.get("lines", []) or []:
            key = (str(ln.get("name", "?")), str(ln.get("component") or "narrow"))
            lines.setdefault(key, _f(ln.get("wave_vac")))
    lines_of_row = [
        {(str(ln.get("name", "?")), str(ln.get("component") or "narrow")): ln
         for ln in (rec.payload.get("lines", []) or [])} if rec is not None else {}
        for rec in fit_of_row
    ]
    names_used: dict[str, tuple[str, str]] = {}
    for (name, comp), wave in sorted(lines.items(), key=lambda kv: (np.nan_to_num(kv[1], nan=np.inf), kv[0])):
        base = _col_name(name) + ("" if comp == "narrow" else f"_{_col_name(comp)}")
        if base[0].isdigit():
            base = "L_" + base
        if base in names_used:
            base = f"{base}_{int(round(wave)) if np.isfinite(wave) else len(names_used)}"
        names_used[base] = (name, comp)
        per_row = [lines_of_row[r].get((name, comp)) for r in range(n)]
        where = f"{name} ({comp}{', %.2f A vacuum' % wave if np.isfinite(wave) else ''})"
        for suffix, key, unit_key, desc in _LINE_QUANTITIES:
            unit = flux_unit if unit_key == "flux" else unit_key
            note = unit_note if unit_key == "flux" else ""
            t[f"{base}_{suffix}"] = _floats([ln.get(key) if ln else None for ln in per_row],
                                            unit=unit, description=f"{where} {desc}{note}")
    t["bpt_class"] = _text([r.payload.get("bpt_class") if r is not None else "" for r in fit_of_row],
                           "BPT class from the line fit")
    broad = np.array([int(bool(r.payload.get("broad_needed"))) if r is not None else 0 for r in fit_of_row])
    t["broad"] = _masked(broad, [r is None for r in fit_of_row], dtype=np.int16,
                         description="1 if the line fit needs a broad component, 0 if not")
    t["delta_bic"] = _floats([r.payload.get("delta_bic") if r is not None else None for r in fit_of_row],
                             description="BIC(narrow) - BIC(narrow+broad) of the line fit")
    if any(r is not None and r.payload.get("continuum") for r in fit_of_row):
        t["line_continuum"] = _text([r.payload.get("continuum") if r is not None else None for r in fit_of_row],
                                    "continuum under the fitted lines: stellar (population fit), agn (host + "
                                    "power law + Fe II) or local")

        def stellar(key):
            return [(r.payload.get("stellar") or {}).get(key) if r is not None else None for r in fit_of_row]

        t["stellar_sigma"] = _floats(stellar("sigma_kms"), unit="km / s",
                                     description="stellar velocity dispersion of the continuum fit")
        t["stellar_sigma_err"] = _floats(stellar("sigma_err"), unit="km / s", description="its 1-sigma error")
        t["stellar_velocity"] = _floats(stellar("velocity_kms"), unit="km / s",
                                        description="stellar velocity relative to z")
        t["stellar_log_age"] = _floats(stellar("log_age_lw"), unit="dex(yr)",
                                       description="light-weighted log age of the stellar templates (5500 A)")
        if any((r.payload.get("stellar") or {}).get("kind") == "agn" for r in fit_of_row if r is not None):
            t["feii_fwhm"] = _floats(stellar("feii_fwhm_kms"), unit="km / s",
                                     description="Fe II FWHM of the AGN pseudo-continuum (host + power law + Fe II)")
            t["feii_flux"] = _floats(stellar("feii_flux"), unit=flux_unit,
                                     description=f"Fe II flux in rest 4434-4684 A{unit_note}")
            t["feii_flux_err"] = _floats(stellar("feii_flux_err"), unit=flux_unit, description="its 1-sigma error")
            t["feii_dchi2"] = _floats(stellar("feii_dchi2"),
                                      description="chi2 without Fe II minus with it (detection: >= 40)")
            t["r_feii"] = _floats(stellar("r_feii"), description="F(Fe II 4434-4684 A) / F(broad Hbeta)")
            t["r_feii_err"] = _floats(stellar("r_feii_err"), description="its 1-sigma error")
            t["agn_host_fraction"] = _floats(stellar("host_fraction"),
                                             description="host-galaxy share of the continuum at rest 5100 A")
            t["agn_powerlaw_slope"] = _floats(stellar("powerlaw_slope"),
                                              description="slope of the AGN power law (f_lambda) at rest 5100 A")
    bh = [(r.payload.get("bh_mass") or {}) if r is not None else {} for r in fit_of_row]
    if any(b.get(k) is not None for b in bh for k in ("log_mbh_hbeta", "log_mbh_hbeta_lhb", "log_mbh_halpha")):
        # broad-line AGN: single-epoch virial masses (galdesk.lines.bhmass), measurement errors only
        from galdesk.lines.bhmass import SYSTEMATIC_DEX

        cols = (("log_l5100", "dex(erg / s)", "log lambda L_lambda(5100 A) of the AGN power law"),
                ("log_l_hbeta", "dex(erg / s)", "log luminosity of broad Hbeta"),
                ("log_l_halpha", "dex(erg / s)", "log luminosity of broad Halpha"),
                ("log_mbh_hbeta", "dex(solMass)", "virial BH mass, FWHM(Hbeta) + L5100 (Vestergaard & Peterson "
                                                  "2006 eq. 5)"),
                ("log_mbh_hbeta_lhb", "dex(solMass)", "virial BH mass, FWHM(Hbeta) + L(Hbeta) (Vestergaard & "
                                                      "Peterson 2006 eq. 6)"),
                ("log_mbh_halpha", "dex(solMass)", "virial BH mass, FWHM(Halpha) + L(Halpha) (Greene & Ho 2005 "
                                                   "eq. 6)"))
        for key, unit, desc in cols:
            scatter = f"; +-{SYSTEMATIC_DEX} dex calibration scatter not included" if key.startswith("log_mbh") else ""
            t[key] = _floats([b.get(key) for b in bh], unit=unit, description=f"{desc}; H0=70, Om=0.3{scatter}")
            t[f"{key}_err"] = _floats([b.get(f"{key}_err") for b in bh], unit="dex",
                                      description="its 1-sigma measurement error")
    kin = [(r.payload.get("oiii_kinematics") or {}) if r is not None else {} for r in fit_of_row]
    if any(k.get("w80_kms") is not None for k in kin):
        for q, desc in (("v10", "velocity below which 10% of the [OIII] 5007 flux lies"),
                        ("v50", "median velocity of [OIII] 5007"),
                        ("v90", "velocity below which 90% of the [OIII] 5007 flux lies"),
                        ("w80", "W80 = v90 - v10 of [OIII] 5007")):
            t[f"oiii_{q}"] = _floats([k.get(f"{q}_kms") for k in kin], unit="km / s",
                                     description=f"{desc} (core + wing, instrument removed, relative to z)")
            t[f"oiii_{q}_err"] = _floats([k.get(f"{q}_err") for k in kin], unit="km / s",
                                         description="its 1-sigma error")
    for dkey, label in (("sii", "[SII] 6717/6731"), ("oii", "[OII] 3729/3726")):
        dens = [((r.payload.get("density") or {}).get(dkey) if r is not None else None) for r in fit_of_row]
        if not any(dens):
            continue
        t[f"n_e_{dkey}"] = _floats([d.get("n_e") if d else None for d in dens], unit="cm-3",
                                   description=f"electron density from {label} (Sanders et al. 2016, 1e4 K)")
        t[f"n_e_{dkey}_lo"] = _floats([d.get("n_e_lo") if d else None for d in dens], unit="cm-3",
                                      description="n_e at ratio + 1 sigma")
        t[f"n_e_{dkey}_hi"] = _floats([d.get("n_e_hi") if d else None for d in dens], unit="cm-3",
                                      description="n_e at ratio - 1 sigma (masked: high-density limit)")
        t[f"n_e_{dkey}_limit"] = _text([d.get("limit") if d else None for d in dens],
                                       f"low-density / high-density when the {label} ratio sits at a limit")

    # catalogue columns joined at ingest (labels, magnitudes, ...), with their units and descriptions
    for name in objs.colnames:
        col = objs[name]
        if name in BASE_COLUMNS or name == "file" or getattr(col, "ndim", 1) != 1:
            continue
        out = name if name not in t.colnames else f"cat_{name}"
        desc = col.description or f"catalogue column {name!r}"
        kind = np.asarray(col).dtype.kind
        if kind in "US" or kind == "O":
            t[out] = _text([cell_str(v) for v in col], desc)
        elif kind in "iub":
            t[out] = _masked(np.asarray(np.ma.filled(col, 0)), np.ma.getmaskarray(col), dtype=np.asarray(col).dtype,
                             unit=col.unit, description=desc)
        elif kind == "f":
            t[out] = _floats(np.ma.filled(np.ma.asarray(col, dtype=float), np.nan), unit=col.unit, description=desc)

    # vetting
    dec = Replay.from_journal(project.journal).combined(vetter)
    d_of_row = [dec.get(i) for i in ids]
    t["vet_label"] = _text([d["label"] if d and d["label"] is not None else "" for d in d_of_row],
                           f"label after vetting: a class or {REJECTED!r}")
    t["vet_action"] = _text([d["action"] if d and d["label"] is not None else "" for d in d_of_row],
                            "how the label was given: accept (the prediction), label (a class chosen), reject")
    t["vet_flags"] = _text([",".join(d["flags"]) if d else "" for d in d_of_row], "flags set, comma-separated")
    t["vetter"] = _text([d["vetter"] if d and d["label"] is not None else "" for d in d_of_row],
                        "who gave the label")
    t["vet_note"] = _text([" ".join(str(d["note"]).split()) if d else "" for d in d_of_row], "vetter's note")
    t["vet_time"] = _text([d["time"] if d and d["label"] is not None else "" for d in d_of_row],
                          "UTC time of the decision (ISO 8601)")
    t["n_vetters"] = Column(np.array([d["n_vetters"] if d else 0 for d in d_of_row], dtype=np.int16),
                            description="number of vetters who labelled the object")
    t["vet_conflict"] = Column(np.array([int(d["conflict"]) if d else 0 for d in d_of_row], dtype=np.int16),
                               description="1 if vetters gave different labels")

    # rows
    labels = np.array([d["label"] if d and d["label"] is not None else "" for d in d_of_row], dtype=object)
    if only == "vetted":
        t = t[labels != ""]
    elif only == "accepted":
        t = t[(labels != "") & (labels != REJECTED)]

    # columns
    if columns:
        t = t[_select_columns(t.colnames, columns)]
    for name in t.colnames:
        if name in _UCDS:
            t[name].meta["ucd"] = _UCDS[name]
    t.meta.update(provenance(project, only, vetter=vetter))
    return t


def _plain(col):
    """A column as a plain array with masked cells as None (NaN/'' then mark them missing)."""
    arr = np.asarray(col).astype(object)
    mask = np.ma.getmaskarray(col)
    if mask.any():
        arr[mask] = None
    return arr


def _select_columns(available: list[str], wanted: list[str]) -> list[str]:
    out: list[str] = []
    for w in wanted:
        w = str(w).strip()
        if not w:
            continue
        hits = [c for c in available if fnmatch.fnmatchcase(c, w)] if any(ch in w for ch in "*?[") else (
            [w] if w in available else [])
        if not hits:
            raise ValueError(f"unknown column {w!r}; available: {', '.join(available)}")
        out.extend(h for h in hits if h not in out)
    return out


def provenance(project, only: str = "all", vetter: str | None = None) -> dict:
    """Provenance of an export (FITS keyword names, at most 8 characters).

    ``GALDESK`` version, ``DATE`` (UTC), ``ORIGIN``, ``PROJECT`` name, ``MODELID``/``MODELHSH`` of the predictions,
    ``CUTSET`` (cluster cut version), ``SELECT`` (only=...), ``VETTER`` (if one was chosen), ``NVETTERS``,
    ``JRNLSEQ`` (the last journal record included: re-exporting from the journal up to it gives the same table).
    Absent values are left out.
    """
    project = as_project(project)
    preds = load_predictions(project)
    clus = load_clusters(project)
    meta = {
        "GALDESK": __version__,
        "DATE": _now_iso(),
        "ORIGIN": "galdesk",
        "PROJECT": str(project.name),
        "MODELID": preds.model_id if preds else None,
        "MODELHSH": preds.model_hash if preds else None,
        "CUTSET": (json.dumps(clus[2]) if not isinstance(clus[2], str) else clus[2])
        if clus and clus[2] is not None else None,
        "SELECT": only,
        "VETTER": vetter,
        "NVETTERS": len(project.journal.authors(VET_KINDS)),
        "JRNLSEQ": project.journal.last_seq(),
    }
    return {k: v for k, v in meta.items() if v is not None}
