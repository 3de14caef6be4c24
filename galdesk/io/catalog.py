"""Catalogue import: read a table of objects and resolve which file (and id) each row describes.

Decisions
---------
* Formats come from the suffix, never guessed from content: ``.csv`` -> ``ascii.csv``, ``.tsv`` -> ``ascii.tab``,
  ``.ecsv`` -> ``ascii.ecsv``, ``.fits/.fit/.fts`` -> ``fits`` (first table HDU; the ``REDSHIFTS``/``ZBEST``
  table of a DESI redrock/zbest file, whose ``TARGETID`` is the id and ``Z`` the redshift), ``.vot/.votable/.xml`` ->
  ``votable``, ``.txt/.dat`` -> ``ascii`` (astropy's guesser). FITS catalogues pass the same header guard as the
  readers (:func:`galdesk.io.fitshead.scan_fits`) first.
* The **file column** is the first column whose lower-cased name is one of :data:`FILE_COLUMNS`; the **id
  column** likewise from :data:`ID_COLUMNS` (so ``objID`` and ``OBJID`` both work). Relative paths are resolved
  against the catalogue's folder (``~`` expanded; Windows back-slashes accepted).
* A row whose file does not exist gives one :class:`~galdesk.io.model.Problem` naming the row's id and the path,
  and **no entry** (it cannot be loaded; other rows carry on). A row with an empty file cell gives an entry with
  ``path=None``.
* A catalogue with an id column but no file column is allowed: every entry has ``path=None`` and is joined to
  loaded objects by id / file stem later. Without an id column the id is the file's stem (``.fits`` & co.
  removed). With neither, :class:`~galdesk.io.model.ReadError`.
* A ``GAL_HDU``/``HDU`` column (:data:`HDU_COLUMNS`) sets ``CatalogEntry.hdu`` for rows that point into
  multi-HDU stamp files.
* Integer-valued ids are written without a decimal point (``588848901532418163``, not ``5.888e17``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galdesk.io.model import Problem, ReadError
from galdesk.warncap import suppress

__all__ = ["CatalogEntry", "FILE_COLUMNS", "ID_COLUMNS", "HDU_COLUMNS", "read_catalog", "resolve_catalog",
           "find_column"]

#: Accepted names (lower case, in order of preference) of the column that names each row's file.
FILE_COLUMNS: tuple[str, ...] = ("file", "path", "filename", "file_name", "filepath", "file_path", "gal_filename",
                                 "image", "image_file", "spectrum_file", "fits_file", "jpeg", "url_local")
#: Accepted names (lower case, in order of preference) of the object id column.
ID_COLUMNS: tuple[str, ...] = ("id", "objid", "obj_id", "object_id", "name", "specobjid", "ident", "identifier",
                               "targetid", "target_id", "galaxy_id", "dr7objid", "object", "ident_")

#: Accepted names (lower case) of a column giving the HDU of the object inside its file.
HDU_COLUMNS: tuple[str, ...] = ("hdu", "gal_hdu", "ext", "extension", "hdu_index")

_FORMATS = {".csv": "ascii.csv", ".tsv": "ascii.tab", ".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits",
            ".fts": "fits", ".vot": "votable", ".votable": "votable", ".xml": "votable", ".txt": "ascii",
            ".dat": "ascii"}


@dataclass
class CatalogEntry:
    """One catalogue row, resolved.

    Attributes
    ----------
    row_index : int
        0-based row number in the table.
    id : str
        The row's object id (id column, else the file stem).
    path : Path or None
        Absolute path of the row's file; None when the catalogue names no file for it (join by id).
    columns : dict
        The row's other values as plain Python objects (str, int, float, bool, None, lists).
    hdu : int or None
        HDU of the object inside a multi-HDU stamp file, from an :data:`HDU_COLUMNS` column (GalSim catalogues'
        ``GAL_HDU``): the object is then the image with that ``hdu`` (id ``"{stem}[{hdu}]"``) in ``path``.
    """

    row_index: int
    id: str
    path: Path | None
    columns: dict[str, Any] = field(default_factory=dict)
    hdu: int | None = None


def find_column(table, candidates) -> str | None:
    """The actual name of the first column whose lower-cased name is in ``candidates`` (in their order)."""
    lower = {name.lower(): name for name in table.colnames}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


#: Most columns a catalogue may have (``GALDESK_MAX_CATALOG_COLUMNS``): astropy takes ~1 minute to parse a CSV of
#: 10^6 columns and every join after it is as slow; real catalogues have tens to a few thousand.
MAX_CATALOG_COLUMNS = 10_000


def max_catalog_columns() -> int:
    """:data:`MAX_CATALOG_COLUMNS`, or ``GALDESK_MAX_CATALOG_COLUMNS`` / the setting ``max_catalog_columns``
    (:func:`galdesk.config.limit`)."""
    from galdesk.config import limit

    return max(1, int(limit("max_catalog_columns", MAX_CATALOG_COLUMNS)))


def _header_columns(p: Path, fmt: str, limit: int) -> int:
    """A lower bound on the number of columns, read from the start of a text catalogue without parsing it: the
    separators of the first line that is not a comment (at most ``limit`` + 1 are counted); VOTables count their
    ``<FIELD`` elements in the first 64 MB. 0 for other formats."""
    if fmt.startswith("ascii"):
        sep = {"ascii.csv": b",", "ascii.tab": b"\t"}.get(fmt)
        with open(p, "rb") as f:
            while True:
                line = f.readline(64 * 1024**2)
                if not line:
                    return 0
                if not line.lstrip().startswith(b"#") and line.strip():
                    n = line.strip().count(sep) + 1 if sep else len(line.split())
                    return min(n, limit + 1)
    if fmt == "votable":
        with open(p, "rb") as f:
            return min(f.read(64 * 1024**2).count(b"<FIELD"), limit + 1)
    return 0


def read_catalog(path: str | os.PathLike):
    """Read a CSV/ECSV/FITS/VOTable catalogue.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    astropy.table.Table
        With ``table.meta["source"] = str(path)``.

    Raises
    ------
    ReadError
        If the file is missing, of an unknown format, unreadable, or has no rows.
    """
    from astropy.table import Table

    p = Path(path)
    if not p.is_file():
        raise ReadError(p, "catalogue not found" if not p.exists() else "catalogue path is not a file")
    if p.stat().st_size == 0:
        raise ReadError(p, "empty file (0 bytes)")
    fmt = _FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ReadError(p, f"unknown catalogue format {p.suffix or '(no suffix)'!r}: use CSV, ECSV, FITS or VOTable")
    limit = max_catalog_columns()
    if _header_columns(p, fmt, limit) > limit:
        raise ReadError(p, f"catalogue has more than {limit:,} columns: not a catalogue of objects (raise "
                           "GALDESK_MAX_CATALOG_COLUMNS if it really is one)")
    try:
        if fmt == "fits":
            from galdesk.io.fitshead import FitsGuardError, scan_fits

            with open(p, "rb") as f:
                if not f.read(9) == b"SIMPLE  =":
                    raise ReadError(p, f"not a FITS file despite its {p.suffix} name")
            try:
                layout = scan_fits(p)
            except FitsGuardError as exc:
                raise ReadError(p, str(exc)) from None
            if not any(h.kind == "table" for h in layout.hdus):
                raise ReadError(p, "FITS file has no table HDU: not a catalogue")
        kwargs = {"memmap": False} if fmt == "fits" else {}
        if fmt == "fits":  # a DESI redrock/zbest file: its redshift table, not the first table HDU
            named = [h.name for h in layout.hdus if h.kind == "table"]
            kwargs["hdu"] = next((n for n in ("REDSHIFTS", "ZBEST") if n in named), None)
            if kwargs["hdu"] is None:
                del kwargs["hdu"]
        with suppress():  # unit strings astropy does not know, etc.
            table = Table.read(p, format=fmt, **kwargs)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is one line for the user
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ReadError(p, f"cannot read catalogue as {fmt}: {type(exc).__name__}: {text}") from None
    if len(table) == 0:
        raise ReadError(p, "catalogue has no rows")
    table.meta["source"] = str(p)
    return table


def _plain(value) -> Any:
    """A table cell as plain Python (masked -> None)."""
    if value is np.ma.masked or isinstance(value, np.ma.core.MaskedConstant):
        return None
    if isinstance(value, np.ma.MaskedArray):
        return [None if m else _plain(v) for v, m in zip(value.data.tolist(), np.ma.getmaskarray(value).tolist())]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        v = value.item()
        return v.decode("utf-8", errors="replace").strip() if isinstance(v, bytes) else (
            v.strip() if isinstance(v, str) else v)
    return value


def _id_text(value) -> str | None:
    v = _plain(value)
    if v is None:
        return None
    if isinstance(v, float):
        if not np.isfinite(v):
            return None
        if v.is_integer():
            return str(int(v))
    text = str(v).strip()
    return text or None


def _stem(path_text: str) -> str:
    name = Path(path_text.replace("\\", "/")).name
    lower = name.lower()
    for suffix in (".fits.gz", ".fits.fz", ".fits", ".fit", ".fts", ".jpeg", ".jpg", ".png", ".h5", ".hdf5",
                   ".txt", ".csv", ".dat"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def resolve_catalog(table, base_dir: str | os.PathLike | None = None) -> tuple[list[CatalogEntry], list[Problem]]:
    """Resolve each row of a catalogue to an id and (optionally) a file.

    Parameters
    ----------
    table : astropy.table.Table
    base_dir : path-like, optional
        Folder that relative paths are relative to (the catalogue's folder); the current folder when None.

    Returns
    -------
    entries : list of CatalogEntry
    problems : list of Problem
        One per row whose file is missing (naming the row's id and the path).

    Raises
    ------
    ReadError
        If the table has neither a file column nor an id column.
    """
    source = str(table.meta.get("source", "catalogue")) if hasattr(table, "meta") else "catalogue"
    file_col = find_column(table, FILE_COLUMNS)
    id_col = find_column(table, ID_COLUMNS)
    if file_col is None and id_col is None:
        raise ReadError(source, f"catalogue has neither a file column ({', '.join(FILE_COLUMNS[:5])}...) nor an id "
                                f"column ({', '.join(ID_COLUMNS[:5])}...); columns: {', '.join(table.colnames[:12])}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    hdu_col = find_column(table, HDU_COLUMNS) if file_col is not None else None
    others = [c for c in table.colnames if c not in (file_col, id_col, hdu_col)]
    entries: list[CatalogEntry] = []
    problems: list[Problem] = []
    for i, row in enumerate(table):
        path_text = _id_text(row[file_col]) if file_col is not None else None
        ident = _id_text(row[id_col]) if id_col is not None else None
        if ident is None:
            ident = _stem(path_text) if path_text else f"row{i}"
        path = None
        if path_text:
            candidate = Path(os.path.expanduser(path_text))
            if not candidate.is_absolute():
                candidate = base / candidate
            if not candidate.exists() and "\\" in path_text:
                alt = Path(path_text.replace("\\", "/"))
                candidate = alt if alt.is_absolute() else base / alt
            if not candidate.is_file():
                problems.append(Problem(str(candidate),
                                        f"catalogue row {i} (id {ident}): file not found: {candidate}"))
                continue
            path = candidate.absolute()
        columns = {c: _plain(row[c]) for c in others}
        hdu = _plain(row[hdu_col]) if hdu_col is not None else None
        hdu = int(hdu) if isinstance(hdu, (int, float)) and float(hdu).is_integer() and hdu >= 0 else None
        entries.append(CatalogEntry(row_index=i, id=ident, path=path, columns=columns, hdu=hdu))
    return entries, problems
