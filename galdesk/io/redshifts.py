"""Redshifts from wherever the user has one: given on the command line, in a catalogue, in a DESI redshift file.

The readers already take a spectrum's redshift from its own file (SDSS ``SPECOBJ``, a DESI ``REDSHIFTS`` HDU or the
``redrock-*``/``zbest-*`` file beside a coadd, ``Z``/``REDSHIFT`` header keywords, a ``z = ...`` comment of a text
spectrum; see each format module). :class:`Redshifts` adds what the user gives for one run (``galdesk fit-lines
--z/--catalog``, a redrock file named among the sources, the Lines tab's z field) and applies it to a spectrum.

Order (the first that has a value wins)
---------------------------------------
1. ``z``: one redshift for a single target (``--z``); callers refuse it for several targets.
2. Catalogues, in the order given: the row whose id is the spectrum's id (DESI: ``TARGETID``), else the row that
   names the spectrum's file, when that file holds one spectrum (a row naming a multi-target file cannot say which
   target it means). Rows are matched exactly as ``galdesk ingest`` matches them
   (:func:`galdesk.io.catalog.resolve_catalog`: id column, file column relative to the catalogue, stem as id);
   the redshift is the column ``z`` or ``redshift`` (any case). A DESI ``redrock-*``/``zbest-*`` file is a
   catalogue too (``TARGETID``, ``Z``, ``ZWARN``, ``SPECTYPE``).
3. The file's own redshift, as read.

A value given explicitly wins over the file's own because it was given for this run; when the two differ by more
than :data:`DIFFER_DZ` ``(1 + z)`` a note says so. A value outside :data:`galdesk.io.reading.REDSHIFT_RANGE` is
ignored with a note. Where the redshift came from is ``spec.meta["z_source"]``; redrock's ``ZWARN`` is
``spec.meta["zwarn"]`` (non-zero: fitted, but flagged).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from galdesk.io.model import ReadError, SpectrumData

__all__ = ["Redshifts", "DIFFER_DZ", "Z_COLUMNS", "is_redshift_file", "check_z"]

#: Catalogue columns (lower case, in order of preference) read as the redshift.
Z_COLUMNS: tuple[str, ...] = ("z", "redshift")
#: A given redshift that differs from the file's by more than this times (1 + z) gets a note.
DIFFER_DZ = 1e-3


def is_redshift_file(path) -> bool:
    """True for a DESI ``redrock-*``/``zbest-*`` redshift file: the name, then its headers (never raises)."""
    from galdesk.io.formats.desi import REDSHIFT_PREFIXES
    from galdesk.io.formats.desi import is_redshift_file as desi_redshift_file

    p = Path(path)
    return (p.name.startswith(REDSHIFT_PREFIXES) and p.suffix.lower() in (".fits", ".fit", ".fts")
            and p.is_file() and desi_redshift_file(p))


def check_z(z) -> float:
    """``z`` as a float, ValueError unless it is a plausible redshift (:data:`galdesk.io.reading.REDSHIFT_RANGE`)."""
    from galdesk.io.reading import REDSHIFT_RANGE

    try:
        value = float(z)
    except (TypeError, ValueError):
        raise ValueError(f"redshift {z!r} is not a number") from None
    lo, hi = REDSHIFT_RANGE
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"redshift {value:g} is outside {lo:g} .. {hi:g}")
    return value


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


@dataclass
class Redshifts:
    """Redshifts given for one run (picklable: it travels to worker processes and Dask workers).

    Attributes
    ----------
    z : float or None
        One redshift for a single target.
    by_id, by_path : dict
        Object id / absolute file path -> ``{"z", "zwarn", "spectype", "source"}`` from the catalogues.
    catalogs : list of str
        The catalogues read, in order.
    """

    z: float | None = None
    by_id: dict[str, dict] = field(default_factory=dict)
    by_path: dict[str, dict] = field(default_factory=dict)
    catalogs: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, z=None, catalogs=()) -> Redshifts:
        """From a ``--z`` value (ValueError if implausible) and catalogue paths (ReadError if unusable)."""
        out = cls(z=None if z is None else check_z(z))
        for c in catalogs:
            out.add_catalog(c)
        return out

    def __bool__(self) -> bool:
        return self.z is not None or bool(self.by_id) or bool(self.by_path)

    def add_catalog(self, path) -> int:
        """Read a catalogue (CSV/ECSV/FITS/VOTable with a ``z``/``redshift`` column, or a DESI redrock/zbest file);
        returns how many rows gave a redshift. ReadError when it cannot be read or has no redshift column."""
        p = Path(path)
        name = p.name
        if is_redshift_file(p):
            rows = self._redrock_rows(p)
        else:
            rows = self._catalog_rows(p)
        n = 0
        for ident, fpath, info in rows:
            try:
                info["z"] = check_z(info["z"])
            except ValueError:
                continue
            info["source"] = name
            n += 1
            if ident is not None:
                self.by_id.setdefault(ident, info)
            if fpath is not None:
                self.by_path.setdefault(_key(fpath), info)
        self.catalogs.append(str(p))
        return n

    @staticmethod
    def _redrock_rows(p: Path):
        from galdesk.io.formats.common import text_or_none
        from galdesk.io.formats.desi import read_redshift_table

        try:
            table = read_redshift_table(p)
        except Exception as exc:  # noqa: BLE001 - one line naming the file
            raise ReadError(p, f"cannot read the redshift file: {' '.join(str(exc).split())[:200]}") from None
        for tid, row in table.items():
            info = {"z": row.get("Z")}
            if row.get("ZWARN") is not None:
                info["zwarn"] = int(row["ZWARN"])
            if row.get("SPECTYPE") is not None:
                info["spectype"] = text_or_none(row["SPECTYPE"])
            yield str(tid), None, info

    @staticmethod
    def _catalog_rows(p: Path):
        from galdesk.io.catalog import find_column, read_catalog, resolve_catalog

        table = read_catalog(p)
        zcol = find_column(table, Z_COLUMNS)
        if zcol is None or table[zcol].dtype.kind not in "fiu":
            raise ReadError(p, f"catalogue has no numeric redshift column ({' or '.join(Z_COLUMNS)}); columns: "
                               f"{', '.join(table.colnames[:12])}")
        zwarn = find_column(table, ("zwarn",))
        spectype = find_column(table, ("spectype",))
        entries, _missing = resolve_catalog(table, p.parent)  # rows naming missing files simply match by id
        rows = []
        for e in entries:
            z = e.columns.get(zcol)
            if z is None:
                continue
            info = {"z": z}
            if zwarn is not None and isinstance(e.columns.get(zwarn), (int, float)):
                info["zwarn"] = int(e.columns[zwarn])
            if spectype is not None and e.columns.get(spectype):
                info["spectype"] = str(e.columns[spectype])
            rows.append((str(e.id), e.path, info))
        return rows

    def lookup(self, spec: SpectrumData, n_in_file: int = 1) -> dict | None:
        """The catalogue entry for a spectrum: by id, else by its file when the file holds one spectrum."""
        hit = self.by_id.get(str(spec.id))
        if hit is None and n_in_file == 1 and spec.source:
            hit = self.by_path.get(_key(spec.source))
        return hit

    def apply(self, spec: SpectrumData, n_in_file: int = 1, default_source: str = "file") -> SpectrumData:
        """Set ``spec.redshift`` from what was given (in place; see the module docstring for the order), and
        ``meta["z_source"]``, ``meta["zwarn"]``, ``meta["spectype"]`` and ``meta["z_notes"]``."""
        meta = spec.meta
        own = spec.redshift
        if own is not None and not meta.get("z_source"):
            meta["z_source"] = default_source
        if self.z is not None:
            info = {"z": self.z, "source": "--z"}
        else:
            info = self.lookup(spec, n_in_file)
        if info is None:
            if own is None and self.catalogs:   # say why the catalogue did not help, instead of a bare "no redshift"
                where = f"id {spec.id!r}" + (f" or file {Path(spec.source).name!r}" if n_in_file == 1 and
                                             spec.source else "")
                meta.setdefault("z_notes", []).append(
                    f"no row of {', '.join(Path(c).name for c in self.catalogs)} matches this spectrum's {where}")
            return spec
        z = float(info["z"])
        if own is not None and abs(z - own) > DIFFER_DZ * (1 + own):
            meta.setdefault("z_notes", []).append(
                f"z = {z:.5f} from {info['source']} replaces the file's z = {own:.5f}")
        spec.redshift_err = spec.redshift_err if own is not None and z == own else None
        spec.redshift = z
        meta["z_source"] = info["source"]
        meta["z_given"] = True   # the user's: line fits keep it (galdesk.lines.redshift only notes an offset)
        for key in ("zwarn", "spectype"):
            if key in info:
                meta[key] = info[key]
            else:
                meta.pop(key, None)  # a flag on the file's redshift says nothing about the one given
        if info.get("spectype") and not spec.spec_class:
            spec.spec_class = info["spectype"]
        return spec
