"""The object table's file, ``objects.ecsv``: one astropy ECSV file (TOPCAT and astropy read it as it is) that new
objects are *appended* to, so that adding objects to a large project costs what is added.

A write ends with a *commit*: ``{"bytes": L, "tail": crc}``, the file's length and a CRC-32 of its last
:data:`TAIL` bytes. The project keeps the commit in its arrays index (:mod:`galdesk.project.segments`), written
atomically together with the list of array segments, so one file write commits both. A reader reads the first ``L``
bytes when the file still starts with what was committed (same tail CRC): rows appended by a writer that has not
committed yet (or that crashed before it did) are not read, and :func:`truncate_to_commit` cuts them off. When the
tail does not match, the file was rewritten whole (atomically, by :func:`write_table`) after the commit was
recorded, and it is read whole: a whole rewrite is complete by construction.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from galdesk.fsutil import atomic_write

__all__ = ["read_table", "write_table", "append_rows", "commit_of", "committed_length", "truncate_to_commit",
           "can_append", "TAIL"]

#: bytes before the committed length that identify the committed content
TAIL = 256


def commit_of(path: str | Path, length: int | None = None) -> dict:
    """The commit of ``path`` at ``length`` bytes (the whole file by default)."""
    with open(path, "rb") as fh:
        n = os.fstat(fh.fileno()).st_size if length is None else int(length)
        fh.seek(max(0, n - TAIL))
        tail = fh.read(min(n, TAIL))
    return {"bytes": n, "tail": zlib.crc32(tail)}


def committed_length(path: str | Path, commit: dict | None) -> int | None:
    """How many bytes of ``path`` are committed: ``commit["bytes"]`` when the file still holds that content, None to
    read the whole file (no commit recorded, or the file was rewritten whole since)."""
    if not commit:
        return None
    n = int(commit.get("bytes", -1))
    try:
        if os.path.getsize(path) < n or commit_of(path, n)["tail"] != commit.get("tail"):
            return None
    except OSError:
        return None
    return n


def read_table(path: str | Path, commit: dict | None):
    """The table in ``path`` as committed (see the module docstring)."""
    from astropy.table import Table

    n = committed_length(path, commit)
    if n is None:
        return Table.read(path, format="ascii.ecsv")
    with open(path, "rb") as fh:
        text = fh.read(n).decode("utf-8")
    return Table.read(text.splitlines(), format="ascii.ecsv")


def write_table(path: str | Path, table) -> dict:
    """Write ``table`` to ``path`` whole and atomically; returns the commit."""
    atomic_write(path, lambda tmp: table.write(tmp, format="ascii.ecsv", overwrite=True))
    return commit_of(path)


def _schema(table) -> list:
    return [(c, table[c].dtype.kind, str(table[c].unit or ""), hasattr(table[c], "mask")) for c in table.colnames]


def can_append(old, new) -> bool:
    """Whether ``new`` (``old`` plus rows at the end) can be written as lines appended to ``old``'s file: the same
    columns, kinds, units and maskedness (so the file's header describes the new rows too)."""
    return len(new) > len(old) and _schema(old) == _schema(new)


def append_rows(path: str | Path, table, start: int, commit: dict | None) -> dict:
    """Append rows ``start:`` of ``table`` to ``path`` (after its committed length: an uncommitted tail is cut off
    first) as ECSV data lines, fsync; returns the new commit (the caller records it)."""
    import io

    buf = io.StringIO()
    table[start:].write(buf, format="ascii.ecsv")
    lines = buf.getvalue().splitlines(keepends=True)
    body = [ln for ln in lines if not ln.startswith("#")][1:]    # no header, no column-name line
    n = committed_length(path, commit)
    with open(path, "r+b") as fh:
        if n is not None:
            fh.truncate(n)
        fh.seek(0, os.SEEK_END)
        fh.write("".join(body).encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    return commit_of(path)


def truncate_to_commit(path: str | Path, commit: dict | None) -> bool:
    """Cut off rows appended after the commit (a writer that crashed before committing); True if anything was."""
    n = committed_length(path, commit)
    if n is None or os.path.getsize(path) == n:
        return False
    with open(path, "r+b") as fh:
        fh.truncate(n)
    return True
