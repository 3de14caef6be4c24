"""Is a project whole? One pass over its files before a window or a command relies on them, so that a damaged
project is refused with one message naming each damaged file, instead of failing later, once per thumbnail or per
dialog (a truncated ``arrays.h5`` used to raise in every ``rowCount()`` of the thumbnail grid).

Checked, cheaply (milliseconds, whatever the project's size):

* ``objects.ecsv`` reads as a table with the columns galdesk writes;
* the arrays index (``arrays.json``, or the single ``arrays.h5`` of an older project) reads; every image group the
  objects name has a stack, long enough for the rows they point at, and enough spectra are stored; every segment
  file exists, has what the index says, and its first and last cut-out and last spectrum read (a truncated file
  fails there);
* ``journal.sqlite``, when present, is a SQLite database with the journal's table (read-only query).

:func:`project_problems` lists what is wrong (empty: whole); :func:`check_project` raises
:class:`~galdesk.project.store.ProjectError` with all of it in one message.
"""

from __future__ import annotations

import sqlite3

import numpy as np

__all__ = ["project_problems", "check_project"]

_NEEDED = ("id", "kind", "group", "row")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def project_problems(project) -> list[str]:
    """What is damaged in ``project`` (a :class:`~galdesk.project.store.Project`), one line per file."""
    problems: list[str] = []
    path = project.path / "objects.ecsv"
    try:
        objects = project.objects
        missing = [c for c in _NEEDED if c not in objects.colnames]
        if missing:
            problems.append(f"{path}: not a galdesk object table (no column {', '.join(missing)})")
            objects = None
    except Exception as exc:  # noqa: BLE001 - any parse failure of a damaged file is the same problem to a user
        problems.append(f"{path}: unreadable ({_first_line(exc)})")
        objects = None
    if objects is not None and len(objects):
        problems += _array_problems(project, objects)
    problems += _journal_problems(project.path / "journal.sqlite")
    return problems


def _array_problems(project, objects) -> list[str]:
    kind = np.asarray(objects["kind"]).astype(str)
    groups = np.asarray(objects["group"]).astype(str)
    rows = np.asarray(objects["row"]).astype(np.int64)
    images = kind == "image"
    store = project.arrays
    try:
        segments = store.segments()
    except Exception as exc:  # noqa: BLE001 - a damaged index or a legacy file that does not open
        name = store.index_path if store.index_path.exists() else project.path / "arrays.h5"
        return [f"{name}: damaged ({_first_line(exc)})"]
    if not segments:
        return [f"{store.index_path}: missing (the object table lists {len(objects)} objects)"]
    out = [f"{project.path / s.file}: missing" for s in segments if not (project.path / s.file).exists()]
    if out:
        return out
    counts = store.group_counts()
    for group in sorted(set(groups[images].tolist())):
        sel = rows[images & (groups == group)]
        if group not in counts:
            out.append(f"{store.index_path}: no stack {group!r} for {sel.size} image objects")
        elif sel.size and sel.max() >= counts[group]:
            out.append(f"{store.index_path}: stack {group!r} holds {counts[group]} cut-outs, the object table "
                       f"points at row {int(sel.max())}")
    n_spec = int(np.count_nonzero(kind == "spectrum"))
    if n_spec and store.n_spectra() < n_spec:
        out.append(f"{store.index_path}: {store.n_spectra()} spectra stored, the object table lists {n_spec}")
    return out or [p for s in segments if (p := _segment_problem(project.path / s.file, s))]


def _segment_problem(path, segment) -> str | None:
    """One segment file: it opens, its stacks and spectra have the lengths the index says, and its first and last
    cut-out and last spectrum read (a truncated file fails there)."""
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as f:
            for group, n in segment.stacks.items():
                ds = f[f"stacks/{group}"]
                if ds.shape[0] < n:
                    return f"{path}: stack {group!r} holds {ds.shape[0]} cut-outs, the index says {n}"
                for r in {0, n - 1} if n else ():
                    ds[r]
            if segment.spectra:
                offsets = f["spectra/offsets"][...]
                if offsets.size - 1 < segment.spectra or offsets[-1] > f["spectra/flux"].shape[0]:
                    return f"{path}: the spectra index points past the stored flux"
                f["spectra/flux"][int(offsets[-2]):int(offsets[-1])]
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, ValueError... for damaged files
        return f"{path}: damaged ({_first_line(exc)})"
    return None


def _journal_problems(path) -> list[str]:
    if not path.exists():
        return []
    try:
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "records" not in tables:     # empty: a journal not yet written, created on first use
                return [f"{path}: not a vetting journal (tables {', '.join(sorted(tables))})"]
            if tables:
                con.execute("SELECT COUNT(*) FROM records").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "unable to open" in str(exc):       # a read-only folder without the WAL index: read later, not damaged
            return []
        return [f"{path}: not a readable vetting journal ({_first_line(exc)})"]
    except sqlite3.DatabaseError as exc:
        return [f"{path}: not a readable vetting journal ({_first_line(exc)})"]
    return []


def check_project(project) -> None:
    """Raise :class:`~galdesk.project.store.ProjectError` listing every damaged file of ``project``."""
    from galdesk.project.store import ProjectError  # noqa: PLC0415

    problems = project_problems(project)
    if problems:
        raise ProjectError(f"{project.path}: damaged project\n" + "\n".join(f"  {p}" for p in problems))
