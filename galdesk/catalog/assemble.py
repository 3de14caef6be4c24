"""The curated catalogue as an astropy Table: one row per object with predictions, clusters, line fits, catalogue
columns and vetting decisions, with units, descriptions, UCDs, masked missing values and provenance.

Written to files by :mod:`galdesk.catalog.export`; column names, units and descriptions of the line-fit
quantities come from :mod:`galdesk.catalog.schema`. See ``docs/vetting_and_export.md``.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timezone

import numpy as np

from galdesk import __version__
from galdesk.catalog import ONLY_CHOICES
from galdesk.catalog.schema import DEFAULT_FLUX_UNIT, column_name, fit_columns, line_flux_unit
from galdesk.project import as_project
from galdesk.project.objects import BASE_COLUMNS, cell_str
from galdesk.project.results import load_clusters, load_morphology, load_predictions
from galdesk.vetting import REJECTED, VET_KINDS, Replay

__all__ = ["build_catalog", "provenance", "ONLY_CHOICES", "DEFAULT_FLUX_UNIT", "TEXT_COLUMNS"]


# Columns that are text in every format (CSV would otherwise read numeric-looking ids back as integers).
# (the line-fit text columns come from the schema: galdesk.catalog.schema.text_columns())
TEXT_COLUMNS = ("id", "kind", "source", "spec_class", "subclass", "pred_class", "vet_label", "vet_action",
                "vet_flags", "vetter", "vet_note", "vet_time")
_UCDS = {"id": "meta.id;meta.main", "ra": "pos.eq.ra;meta.main", "dec": "pos.eq.dec;meta.main",
         "z": "src.redshift", "source": "meta.file", "pred_class": "src.class", "vet_label": "src.class",
         "vet_time": "time.creation"}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    try:
        units = {str(m.get("flux_unit") or "") for m in project.spectrum_attrs(rows)}
    except (OSError, KeyError):  # no stored spectra: fall back to the default
        return default, ""
    return line_flux_unit(units)


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
        One row per object (image or spectrum) of the project: object columns, classifier, cluster, the line-fit
        columns of :mod:`galdesk.catalog.schema`, catalogue columns joined at ingest, the vetting decision; units
        (deg, km/s, Angstrom, line-flux unit), descriptions, missing values masked; ``meta`` holds the provenance
        (:func:`provenance`).
    """
    from astropy.table import Table

    if only not in ONLY_CHOICES:
        raise ValueError(f"only={only!r}: expected one of {', '.join(ONLY_CHOICES)}")
    project = as_project(project)
    objs = project.objects
    ids = np.asarray(objs["id"]).astype(str) if len(objs) else np.zeros(0, str)
    fits = project.journal.latest("line_fit")
    fit_of_row = [fits.get(i) for i in ids]
    t = Table()
    for adder in (_object_columns, _prediction_columns, _cluster_column, _morphology_columns):
        adder(t, project)
    _line_fit_columns(t, project, [r.payload if r is not None else None for r in fit_of_row], set(fits))
    _catalogue_columns(t, objs)
    labels = _vetting_columns(t, project, ids, vetter)
    if only == "vetted":
        t = t[labels != ""]
    elif only == "accepted":
        t = t[(labels != "") & (labels != REJECTED)]
    if columns:
        t = t[_select_columns(t.colnames, columns)]
    for name in t.colnames:
        if name in _UCDS:
            t[name].meta["ucd"] = _UCDS[name]
    t.meta.update(provenance(project, only, vetter=vetter))
    return t


def _object_columns(t, project) -> None:
    """id, kind, source, hdu, ra, dec, z, spec_class, subclass (z completed later from the line fits)."""
    import astropy.units as u

    objs = project.objects
    n = len(objs)
    t["id"] = _text(np.asarray(objs["id"]).astype(str) if n else [], "object identifier")
    t["kind"] = _text(objs["kind"] if n else [], "image or spectrum")
    t["source"] = _text(objs["source"] if n else [], "file the object was read from")
    hdu = np.asarray(objs["hdu"], dtype=np.int32) if n else np.zeros(0, np.int32)
    t["hdu"] = _masked(hdu, hdu < 0, dtype=np.int32, description="HDU of the stamp in a multi-extension file")
    t["ra"] = _floats(_plain(objs["ra"]) if n else [], u.deg, "right ascension (ICRS)")
    t["dec"] = _floats(_plain(objs["dec"]) if n else [], u.deg, "declination (ICRS)")
    t["z"] = _floats(_plain(objs["z"]) if n else [], description="redshift (object table; else the line fit's)")
    t["spec_class"] = _text(_plain(objs["spec_class"]) if n else [], "survey spectral class (e.g. SDSS CLASS)")
    t["subclass"] = _text(_plain(objs["subclass"]) if n else [], "survey spectral subclass")


def _prediction_columns(t, project) -> None:
    """pred_class, pred_prob and one prob_<class> per class of the stored predictions."""
    n = len(t)
    preds = load_predictions(project)
    if preds is None:
        t["pred_class"] = _text([""] * n, "class predicted by the classifier (none run)")
        t["pred_prob"] = _floats([np.nan] * n, description="probability of the predicted class")
        return
    pred_rows = np.full(n, -1)
    ok = (preds.rows >= 0) & (preds.rows < n)
    pred_rows[preds.rows[ok]] = np.flatnonzero(ok)
    has = pred_rows >= 0
    pi = np.maximum(pred_rows, 0)
    t["pred_class"] = _text([preds.label(i) if h else "" for i, h in zip(pi, has)],
                            f"class predicted by model {preds.model_id or '?'}")
    conf = preds.confidence
    t["pred_prob"] = _floats(np.where(has, conf[pi] if len(conf) else np.nan, np.nan),
                             description="probability of the predicted class")
    used = set()
    for k, name in enumerate(preds.class_names):
        cname = f"prob_{column_name(name)}"
        while cname in used:
            cname += "_"
        used.add(cname)
        t[cname] = _floats(np.where(has, preds.prob[pi, k] if len(preds.prob) else np.nan, np.nan),
                           description=f"classifier probability of class {name!r}")


def _cluster_column(t, project) -> None:
    """cluster: the label of the stored cut (masked when not clustered)."""
    n = len(t)
    clus = load_clusters(project)
    cl = np.zeros(n, np.int32)
    cl_mask = np.ones(n, bool)
    if clus is not None:
        ok = (clus[0] >= 0) & (clus[0] < n)
        cl[clus[0][ok]] = clus[1][ok]
        cl_mask[clus[0][ok]] = False
    version = f" (cut version {clus[2]})" if clus and clus[2] is not None else ""
    t["cluster"] = _masked(cl, cl_mask, dtype=np.int32, description="cluster label" + version)


def _morphology_columns(t, project) -> None:
    """The ``morph_*`` columns of result ``"morphology"`` (statmorph), when the project has it; masked where a
    cut-out was not measured (spectra, failures). Units and descriptions from
    :data:`galdesk.cluster.morphology.MORPH_COLUMNS`."""
    from galdesk.cluster.morphology import FLAG_COLUMNS, MORPH_COLUMNS  # noqa: PLC0415

    stored = load_morphology(project)
    if stored is None:
        return
    rows, cols, attrs = stored
    n = len(t)
    ok = (rows >= 0) & (rows < n)
    rows = rows[ok]
    note = f" [statmorph {attrs.get('statmorph', '?')}, band {_band_text(attrs.get('band'))}]"
    for name, (unit, desc) in MORPH_COLUMNS.items():
        vals = np.full(n, np.nan)
        if name in cols:
            vals[rows] = np.asarray(cols[name], float)[ok]
        t[name] = _masked(vals, ~np.isfinite(vals), dtype=np.float32, unit=unit, description=desc + note)
    for name, desc in FLAG_COLUMNS.items():
        vals = np.full(n, -1, np.int16)
        if name in cols:
            vals[rows] = np.asarray(cols[name], np.int16)[ok]
        t[name] = _masked(vals, vals < 0, dtype=np.int16, description=desc)


def _band_text(band) -> str:
    if isinstance(band, dict):
        return ", ".join(f"{v} ({k})" for k, v in band.items()) or "?"
    return str(band or "?")


def _line_fit_columns(t, project, payloads: list, fitted_ids: set[str]) -> None:
    """The latest line fit of each object: z where the object table has none, then the schema's columns."""
    z_fit = np.array([_f(p.get("z")) if p else np.nan for p in payloads])
    z = np.asarray(np.ma.filled(t["z"], np.nan), float)
    t["z"] = _floats(np.where(np.isfinite(z), z, z_fit), description=t["z"].description)
    flux_unit, unit_note = _line_flux_unit(project, fitted_ids)
    if not any(payloads):
        return
    for name, col in fit_columns(payloads, flux_unit, unit_note):
        t[name] = col


def _catalogue_columns(t, objs) -> None:
    """Catalogue columns joined at ingest (labels, magnitudes, ...), with their units and descriptions."""
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


def _vetting_columns(t, project, ids, vetter: str | None) -> np.ndarray:
    """The decision reported for each object (the latest of anyone, or ``vetter``'s); returns the labels."""
    from astropy.table import Column

    dec = Replay.from_journal(project.journal).combined(vetter)
    d_of_row = [dec.get(i) for i in ids]
    labelled = [d if d and d["label"] is not None else None for d in d_of_row]
    t["vet_label"] = _text([d["label"] if d else "" for d in labelled], f"label after vetting: a class or {REJECTED!r}")
    t["vet_action"] = _text([d["action"] if d else "" for d in labelled],
                            "how the label was given: accept (the prediction), label (a class chosen), reject")
    t["vet_flags"] = _text([",".join(d["flags"]) if d else "" for d in d_of_row], "flags set, comma-separated")
    t["vetter"] = _text([d["vetter"] if d else "" for d in labelled], "who gave the label")
    t["vet_note"] = _text([" ".join(str(d["note"]).split()) if d else "" for d in d_of_row], "vetter's note")
    t["vet_time"] = _text([d["time"] if d else "" for d in labelled], "UTC time of the decision (ISO 8601)")
    t["n_vetters"] = Column(np.array([d["n_vetters"] if d else 0 for d in d_of_row], dtype=np.int16),
                            description="number of vetters who labelled the object")
    t["vet_conflict"] = Column(np.array([int(d["conflict"]) if d else 0 for d in d_of_row], dtype=np.int16),
                               description="1 if vetters gave different labels")
    return np.array([d["label"] if d else "" for d in labelled], dtype=object)


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
    ``CUTSET`` (cluster cut version), ``MORPHVER`` (statmorph version of the ``morph_*`` columns), ``SELECT``
    (only=...), ``VETTER`` (if one was chosen), ``NVETTERS``, ``JRNLSEQ`` (the last journal record included:
    re-exporting from the journal up to it gives the same table).
    Absent values are left out.
    """
    project = as_project(project)
    preds = load_predictions(project)
    clus = load_clusters(project)
    morph = load_morphology(project)
    meta = {
        "GALDESK": __version__,
        "DATE": _now_iso(),
        "ORIGIN": "galdesk",
        "PROJECT": str(project.name),
        "MODELID": preds.model_id if preds else None,
        "MODELHSH": preds.model_hash if preds else None,
        "CUTSET": (json.dumps(clus[2]) if not isinstance(clus[2], str) else clus[2])
        if clus and clus[2] is not None else None,
        "MORPHVER": f"statmorph {morph[2].get('statmorph', '?')}" if morph else None,
        "SELECT": only,
        "VETTER": vetter,
        "NVETTERS": len(project.journal.authors(VET_KINDS)),
        "JRNLSEQ": project.journal.last_seq(),
    }
    return {k: v for k, v in meta.items() if v is not None}
