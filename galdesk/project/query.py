"""Find, filter and sort the objects of a project by what the object table holds (ids, positions, catalogue
columns), for the Data tab's search bar and anyone else. No Qt.

* :func:`find_objects` — an id (exact, else every id containing the text, case-insensitive) or a position:
  "RA Dec" in degrees or sexagesimal ("150.1 2.2", "10:00:24 +02:12:00", "10h00m24s +2d12m"), optionally followed by
  a radius in arcsec (default :data:`DEFAULT_RADIUS_ARCSEC`); objects within the radius, nearest first (astropy
  angular separations).
* :func:`filter_rows` — conditions on columns joined by ``and`` and ``or`` (``and`` binds first, no brackets):
  ``z < 0.1 and gz1_label == 0``, ``kind == image``, ``spec_class == QSO or z > 1``; numbers compare as numbers,
  text as text; masked or missing values never pass.
* :func:`sort_rows` — by any column, missing values last.
"""

from __future__ import annotations

import operator
import re

import numpy as np

__all__ = ["find_objects", "filter_rows", "sort_rows", "parse_position", "DEFAULT_RADIUS_ARCSEC"]

DEFAULT_RADIUS_ARCSEC = 5.0
_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
        ">": operator.gt, "=": operator.eq}
_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>|=)\s*(.+?)\s*$")


def parse_position(text: str) -> tuple[float, float, float] | None:
    """``(ra_deg, dec_deg, radius_arcsec)`` from "RA Dec [radius]" (degrees or sexagesimal), or None when the text
    is not a position."""
    from astropy.coordinates import Angle

    parts = text.replace(",", " ").split()
    if len(parts) not in (2, 3, 6, 7):
        return None
    if len(parts) >= 6:   # "10 00 24 +02 12 00 [r]"
        parts = [":".join(parts[:3]), ":".join(parts[3:6]), *parts[6:]]
    try:
        sexagesimal = any(c in parts[0] for c in ":hms")
        ra = Angle(parts[0], unit="hourangle" if sexagesimal else "deg").deg
        dec = Angle(parts[1], unit="deg").deg
        radius = float(parts[2]) if len(parts) == 3 else DEFAULT_RADIUS_ARCSEC
    except (ValueError, TypeError):
        return None
    if not (-90 <= dec <= 90) or not radius > 0:
        return None
    return float(ra) % 360.0, float(dec), radius


def find_objects(table, text: str) -> tuple[np.ndarray, str]:
    """Object-table rows matching ``text`` (module docstring) and a sentence saying what was found."""
    text = text.strip()
    if not text or not len(table):
        return np.zeros(0, np.int64), ""
    pos = parse_position(text)
    if pos is not None and "ra" in table.colnames and "dec" in table.colnames:
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        ra = np.asarray(np.ma.filled(np.ma.asarray(table["ra"], dtype=float), np.nan))
        dec = np.asarray(np.ma.filled(np.ma.asarray(table["dec"], dtype=float), np.nan))
        ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
        if not ok.size:
            return np.zeros(0, np.int64), "no object has a position (RA/Dec)"
        sep = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg).separation(SkyCoord(pos[0] * u.deg, pos[1] * u.deg))
        arcsec = sep.arcsec
        inside = np.argsort(arcsec)[: int(np.count_nonzero(arcsec <= pos[2]))]
        if not inside.size:
            k = int(np.argmin(arcsec))
            return np.zeros(0, np.int64), (f"nothing within {pos[2]:g}\" of RA {pos[0]:.5f} Dec {pos[1]:+.5f}; "
                                           f"the nearest is {table['id'][ok[k]]} at {arcsec[k]:.1f}\"")
        return ok[inside].astype(np.int64), (f"{inside.size} within {pos[2]:g}\" of RA {pos[0]:.5f} Dec "
                                             f"{pos[1]:+.5f}, nearest first ({arcsec[inside[0]]:.2f}\")")
    ids = np.asarray(table["id"]).astype(str)
    exact = np.flatnonzero(ids == text)
    if exact.size:
        return exact.astype(np.int64), f"id {text}"
    hits = np.flatnonzero(np.char.find(np.char.lower(ids), text.lower()) >= 0)
    return hits.astype(np.int64), (f"{hits.size} ids contain {text!r}" if hits.size else f"no id contains {text!r}")


def _values(table, name: str):
    if name not in table.colnames:
        raise ValueError(f"no column {name!r} (columns: {', '.join(table.colnames)})")
    col = table[name]
    mask = np.ma.getmaskarray(np.ma.asarray(col))
    return np.asarray(col), mask


def filter_rows(table, expression: str, rows=None) -> np.ndarray:
    """The object-table rows (of ``rows``, default all) for which every condition of ``expression`` holds
    (ValueError naming what cannot be read)."""
    rows = np.arange(len(table)) if rows is None else np.asarray(rows, np.int64)
    keep = np.zeros(rows.size, bool)
    for group in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE):
        keep |= _all_of(table, group, rows)
    return rows[keep]


def _all_of(table, group: str, rows: np.ndarray) -> np.ndarray:
    keep = np.ones(rows.size, bool)
    for cond in re.split(r"\s+and\s+", group.strip(), flags=re.IGNORECASE):
        m = _COND.match(cond)
        if m is None:
            raise ValueError(f"cannot read {cond.strip()!r}: write COLUMN OP VALUE (OP one of < <= > >= == !=)")
        name, op, raw = m.group(1), _OPS[m.group(2)], m.group(3).strip().strip("'\"")
        values, mask = _values(table, name)
        values, mask = values[rows], mask[rows]
        if values.dtype.kind in "fiub":
            try:
                target = float(raw)
            except ValueError as exc:
                raise ValueError(f"{name} holds numbers; {raw!r} is not one") from exc
            with np.errstate(invalid="ignore"):
                ok = op(values.astype(float), target) & np.isfinite(values.astype(float))
        else:
            ok = np.array([op(str(v), raw) for v in values], bool)
        keep &= ok & ~mask
    return keep


def sort_rows(table, rows, column: str, descending: bool = False) -> np.ndarray:
    """``rows`` ordered by ``column`` (numbers as numbers, text as text), missing values last, ties in their
    order."""
    rows = np.asarray(rows, np.int64)
    values, mask = _values(table, column)
    values, mask = values[rows], mask[rows]
    if values.dtype.kind in "fiub":
        key = values.astype(float)
        missing = mask | ~np.isfinite(key)
        key = np.where(missing, 0.0, -key if descending else key)
        order = np.lexsort((key, missing))
    else:
        text = np.array([str(v) for v in values])
        order = np.argsort(text, kind="stable")
        if descending:
            order = order[::-1]
        order = order[np.argsort(mask[order], kind="stable")]
    return rows[order]
