"""Writing catalogue tables to CSV, FITS, ECSV and VOTable atomically, and reading them back.

Every write goes to a temporary file beside the target that is renamed over it (:func:`galdesk.fsutil.atomic_write`),
so a crash or a ``kill -9`` during a write leaves the old file as it was; an existing file is replaced only with
``overwrite=True`` (``--overwrite``).

Formats
-------
* **FITS**: an empty primary HDU and one ``BINTABLE`` (``EXTNAME = 'CATALOG'``) with ``TUNITn``, ``TNULLn`` for
  masked integer columns (masked floats are NaN, masked strings empty), ``TCOMMn`` descriptions and ``TUCDn``
  where one applies (both read by TOPCAT); provenance keywords in both headers: ``GALDESK``, ``DATE``, ``ORIGIN``,
  ``MODELID``, ``MODELHSH``, ``CUTSET``, ``MORPHVER``, ``SELECT``, ``JRNLSEQ``, ``NVETTERS``, plus
  ``HISTORY``/``COMMENT``.
  Text is ASCII (FITS allows nothing else): other characters are written as ``\\uXXXX`` escapes.
* **ECSV**: units, descriptions and provenance (``meta``) in the YAML header.
* **VOTable** (``.xml``, ``.vot``): units, descriptions, UCDs; provenance as ``INFO`` elements.
* **CSV**: plain, one header row, empty cells for missing values. It cannot carry units:
  :func:`galdesk.catalog.export.read_catalog` puts them back.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from galdesk import __version__
from galdesk.fsutil import atomic_write
from galdesk.warncap import suppress

__all__ = ["FORMATS", "format_for", "write_table", "check_output", "stale_temp_files", "read_table"]

#: File suffix -> format name.
FORMATS = {".csv": "csv", ".fits": "fits", ".fit": "fits", ".fts": "fits", ".ecsv": "ecsv", ".xml": "votable",
           ".vot": "votable", ".votable": "votable"}
def format_for(path: str | Path) -> str:
    """The format of ``path`` from its suffix; ValueError naming the file if unknown."""
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        raise ValueError(f"{path}: unknown export format {suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}") from None


_FITS_COMMENTS = {
    "GALDESK": "galdesk version that wrote this file",
    "DATE": "UTC date and time of the export",
    "ORIGIN": "software that wrote this file",
    "PROJECT": "galdesk project name",
    "MODELID": "classifier model id",
    "MODELHSH": "classifier weights hash",
    "CUTSET": "cluster cut-set version",
    "MORPHVER": "software of the morph_* columns",
    "SELECT": "rows: all, vetted or accepted",
    "VETTER": "decisions of this vetter only",
    "NVETTERS": "number of vetters in the journal",
    "JRNLSEQ": "last journal record included",
}


def _ascii(s: str) -> str:
    return s.encode("ascii", "backslashreplace").decode("ascii")


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def _unescape(s: str) -> str:
    """Undo :func:`_ascii` (only ``\\xXX``, ``\\uXXXX``, ``\\UXXXXXXXX`` sequences)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1)[1:], 16)), s)


def _unescape_column(col):
    from astropy.table import MaskedColumn

    vals = np.char.decode(np.asarray(col), "ascii") if col.dtype.kind == "S" else np.asarray(col).astype(str)
    if not any("\\" in v for v in vals):
        return col
    new = np.array([_unescape(v) for v in vals], dtype=str)
    return MaskedColumn(new, mask=np.ma.getmaskarray(col), unit=col.unit, description=col.description,
                        meta=col.meta)


def _write_fits(table, tmp) -> None:
    from astropy.io import fits
    from astropy.table import MaskedColumn

    t = table.copy(copy_data=True)
    meta = dict(t.meta)
    t.meta.clear()
    for name in t.colnames:
        col = t[name]
        if col.dtype.kind == "U":  # FITS text is ASCII
            vals = [_ascii(str(v)) for v in np.asarray(col)]
            mask = np.ma.getmaskarray(col)
            t[name] = MaskedColumn(np.array(vals, dtype=str) if vals else np.zeros(0, "U1"), mask=mask,
                                   unit=col.unit, description=col.description)
    with suppress():  # e.g. unit strings astropy finds unusual
        hdu = fits.table_to_hdu(t)
    hdu.name = "CATALOG"
    for i, name in enumerate(t.colnames, start=1):
        unit = t[name].unit
        if unit is not None and f"TUNIT{i}" not in hdu.header:  # logarithmic units (dex) that FITS has no word for
            hdu.header[f"TUNIT{i}"] = unit.to_string()
    primary = fits.PrimaryHDU()
    for h in (primary.header, hdu.header):
        for key, value in meta.items():
            if len(key) <= 8 and isinstance(value, (str, int, float, bool)):
                h[key] = (_ascii(value) if isinstance(value, str) else value, _FITS_COMMENTS.get(key, ""))
        h.add_history(f"galdesk {__version__} export of project {_ascii(str(meta.get('PROJECT', '')))}")
        h.add_comment("Curated galaxy catalogue: classifier predictions, clusters, emission-line fits and "
                      "vetting decisions.")
        h.add_comment("Masked values: NaN (floats), TNULL (integers), empty (text).")
    for i, name in enumerate(t.colnames, start=1):
        desc = t[name].description
        if desc:
            hdu.header[f"TCOMM{i}"] = _ascii(desc)[:68]
        ucd = table[name].meta.get("ucd") if hasattr(table[name], "meta") else None
        if ucd:
            hdu.header[f"TUCD{i}"] = ucd
    fits.HDUList([primary, hdu]).writeto(tmp, overwrite=True, checksum=True)


def _write_csv(table, tmp) -> None:
    t = table.copy(copy_data=False)
    t.meta.clear()
    t.write(tmp, format="ascii.csv", overwrite=True)


def _write_ecsv(table, tmp) -> None:
    with suppress():
        table.write(tmp, format="ascii.ecsv", overwrite=True)


def _write_votable(table, tmp) -> None:
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    t = table.copy(copy_data=False)
    meta = dict(t.meta)
    t.meta.clear()
    with suppress():  # VOUnit deprecation notes about erg
        vot = from_table(t)
        vtab = vot.get_first_table()
        for fld in vtab.fields:
            ucd = table[fld.name].meta.get("ucd") if fld.name in table.colnames else None
            if ucd:
                fld.ucd = ucd
        for key, value in meta.items():
            vot.resources[0].infos.append(Info(name=key, value=str(value)))
        vot.to_xml(str(tmp))


_WRITERS = {"csv": _write_csv, "fits": _write_fits, "ecsv": _write_ecsv, "votable": _write_votable}


def stale_temp_files(path: str | Path) -> list[str]:
    """Temporary files left beside ``path`` by interrupted writes (``.NAME.*.tmp``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(str(p) for p in path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_table(table, path: str | Path, format: str | None = None, overwrite: bool = False) -> str:
    """Write ``table`` to ``path`` atomically (temporary file + rename); returns the format used.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (the file is not touched).
    ValueError
        Unknown format.
    """
    path = Path(path)
    fmt = check_output(path, format, overwrite)
    atomic_write(path, lambda tmp: _WRITERS[fmt](table, tmp))
    return fmt


def check_output(path: str | Path, format: str | None = None, overwrite: bool = False) -> str:
    """The format :func:`write_table` would write ``path`` in, checked before any work is done: ValueError for an
    unknown format, IsADirectoryError / FileNotFoundError for a folder or a missing parent folder (no folder is
    made for a mistyped path), FileExistsError for an existing file without ``overwrite``."""
    path = Path(path)
    fmt = format or format_for(path)
    if fmt not in _WRITERS:
        raise ValueError(f"{path}: unknown export format {fmt!r}; use one of {', '.join(_WRITERS)}")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: file exists; use --overwrite to replace it")
    return fmt


def read_table(path: str | Path, fmt: str, text_columns=()):
    """Read a table written by :func:`write_table` (``fmt`` as :func:`format_for` gives it).

    FITS text, which is ASCII, gets its ``\\uXXXX`` escapes decoded back into the original characters; CSV columns
    named in ``text_columns`` stay text (ids that look like numbers). CSV carries no units.
    """
    from astropy.table import Table

    with suppress():
        if fmt == "fits":
            t = Table.read(path, format="fits", hdu="CATALOG")
            for c in t.colnames:
                if t[c].dtype.kind in "US":
                    t[c] = _unescape_column(t[c])
            return t
        if fmt == "ecsv":
            return Table.read(path, format="ascii.ecsv")
        if fmt == "votable":
            return Table.read(path, format="votable")
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
        text = {c: str for c in header if c in text_columns}
        return Table.read(path, format="ascii.csv", converters=text)
