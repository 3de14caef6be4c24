"""The project journal: an append-only SQLite log of everything a user decides or a fit produces.

SQLite in WAL mode with ``synchronous=FULL``: a record is on disk when :meth:`Journal.append` returns, so killing
the program at any moment loses nothing that was acknowledged. Records are never updated or deleted: undo and
redo are records too (see :mod:`galdesk.vetting`), and "the current value" of anything is derived by replaying.

Tables
------
``records(seq INTEGER PRIMARY KEY, kind TEXT, key TEXT, time TEXT, author TEXT, payload TEXT)`` —
``kind`` is e.g. ``"decision"``, ``"undo"``, ``"redo"``, ``"line_fit"``, ``"cuts"``; ``key`` the object id (or
another key); ``payload`` a JSON object. ``meta(key TEXT PRIMARY KEY, value TEXT)`` holds the schema version.

Several processes may hold the same journal open (the window and a ``galdesk vet`` in a terminal): SQLite
serialises the writers (``busy_timeout`` 10 s) and every reader sees each committed record. Readers that follow a
journal incrementally use :meth:`Journal.records` with ``since=`` (the last ``seq`` they saw).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from galdesk.jsonutil import json_default as _json_default

__all__ = ["Journal", "Record", "JOURNAL_SCHEMA_VERSION"]

JOURNAL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Record:
    """One journal record.

    Attributes
    ----------
    seq : int
        Position in the journal (1, 2, ...; strictly increasing, never reused).
    kind : str
        What the record is (``"decision"``, ``"undo"``, ``"line_fit"``, ...).
    key : str
        What it is about (usually an object id).
    time : str
        UTC time of the append, ISO 8601 with milliseconds.
    author : str
        Who appended it (the vetter's name for vetting records).
    payload : dict
        The content (JSON object).
    """

    seq: int
    kind: str
    key: str
    time: str
    author: str
    payload: dict

    def to_dict(self) -> dict:
        """Plain dict (for JSON output)."""
        return {"seq": self.seq, "kind": self.kind, "key": self.key, "time": self.time, "author": self.author,
                "payload": self.payload}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    """Append-only, crash-safe record store (one SQLite file).

    Thread-safe: one connection guarded by a lock (``check_same_thread=False``), so a worker thread may append
    line-fit results while the GUI thread appends decisions.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        #: True when the folder cannot be written (a colleague's project, a DVD, a read-only share): records can be
        #: read, appending raises PermissionError(EROFS)
        self.read_only = not os.access(self.path.parent, os.W_OK) or (
            self.path.exists() and not os.access(self.path, os.W_OK))
        if self.read_only:
            self._con = _connect_read_only(self.path)
            return
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            with self._disk_errors():
                self._con.execute("PRAGMA journal_mode=WAL")
                self._con.execute("PRAGMA synchronous=FULL")
                self._con.execute("PRAGMA busy_timeout=10000")
        except OSError:  # a full disk: the journal can still be read, appends say why they cannot be saved
            self._con.close()
            self.read_only = True
            self._con = _connect_read_only(self.path)
            return
        with self._lock, self._disk_errors():
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
                "key TEXT NOT NULL, time TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', payload TEXT NOT NULL)"
            )
            self._con.execute("CREATE INDEX IF NOT EXISTS records_kind_key ON records(kind, key)")
            self._con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self._con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(JOURNAL_SCHEMA_VERSION),))
            elif int(row[0]) > JOURNAL_SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: journal schema {row[0]} is newer than this galdesk understands "
                    f"({JOURNAL_SCHEMA_VERSION}); update galdesk"
                )

    # ---------------------------------------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only and not os.access(self.path.parent, os.W_OK):
            raise PermissionError(errno.EROFS, "the project is read-only: nothing can be saved in its journal; copy it "
                                  "somewhere writable (File > Save Project As) to vet or fit it", str(self.path))
        if self.read_only:
            raise OSError(errno.ENOSPC, "the disk is full: the record was not saved", str(self.path))

    @contextlib.contextmanager
    def _disk_errors(self):
        """SQLite's "database or disk is full" / "disk I/O error" as the OSError it is (the record was not saved;
        every earlier one is intact), so that the user gets one clear line."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "full" in text:
                raise OSError(errno.ENOSPC, "the disk is full: the record was not saved", str(self.path)) from exc
            if "i/o" in text or "readonly" in text:
                raise OSError(errno.EIO, f"the journal cannot be written ({exc}): the record was not saved",
                              str(self.path)) from exc
            raise

    def append(self, kind: str, key: str, payload: dict, author: str = "") -> Record:
        """Append one record and return it once it is durably on disk."""
        self._check_writable()
        text = json.dumps(payload, default=_json_default, allow_nan=True)
        t = _now()
        with self._lock, self._disk_errors():
            cur = self._con.execute(
                "INSERT INTO records (kind, key, time, author, payload) VALUES (?, ?, ?, ?, ?)",
                (kind, str(key), t, author, text),
            )
            seq = int(cur.lastrowid)
        return Record(seq, kind, str(key), t, author, payload)

    def append_many(self, rows: list[tuple[str, str, dict]], author: str = "") -> int:
        """Append many records in one transaction (batch results); returns how many."""
        self._check_writable()
        t = _now()
        with self._lock, self._disk_errors():
            self._con.execute("BEGIN")
            try:
                self._con.executemany(
                    "INSERT INTO records (kind, key, time, author, payload) VALUES (?, ?, ?, ?, ?)",
                    [(k, str(key), t, author, json.dumps(p, default=_json_default)) for k, key, p in rows],
                )
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return len(rows)

    def records(self, kinds: str | tuple[str, ...] | None = None, key: str | None = None, *,
                since: int | None = None, author: str | None = None, limit: int | None = None) -> list[Record]:
        """Records in append order, optionally filtered.

        Parameters
        ----------
        kinds : str or tuple of str, optional
            Only these kinds.
        key : str, optional
            Only this key.
        since : int, optional
            Only records with ``seq > since`` (to follow the journal incrementally).
        author : str, optional
            Only records by this author.
        limit : int, optional
            At most this many (the first ones after ``since``).
        """
        sql = "SELECT seq, kind, key, time, author, payload FROM records"
        cond, args = [], []
        if kinds is not None:
            kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            cond.append("kind IN (%s)" % ",".join("?" * len(kinds)))
            args.extend(kinds)
        if key is not None:
            cond.append("key = ?")
            args.append(str(key))
        if since is not None:
            cond.append("seq > ?")
            args.append(int(since))
        if author is not None:
            cond.append("author = ?")
            args.append(str(author))
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def get(self, seq: int) -> Record | None:
        """The record with this ``seq``, or None."""
        with self._lock:
            r = self._con.execute("SELECT seq, kind, key, time, author, payload FROM records WHERE seq=?",
                                  (int(seq),)).fetchone()
        return None if r is None else Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))

    def last_seq(self) -> int:
        """The highest ``seq`` in the journal (0 when empty): a snapshot marker for exports."""
        with self._lock:
            row = self._con.execute("SELECT MAX(seq) FROM records").fetchone()
        return int(row[0] or 0)

    def authors(self, kinds: str | tuple[str, ...] | None = None) -> list[str]:
        """Distinct authors (of some kinds), sorted."""
        sql = "SELECT DISTINCT author FROM records"
        args: list = []
        if kinds is not None:
            kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            sql += " WHERE kind IN (%s)" % ",".join("?" * len(kinds))
            args.extend(kinds)
        with self._lock:
            return sorted(r[0] for r in self._con.execute(sql, args).fetchall())

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file, else the problems found."""
        with self._lock:
            rows = self._con.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(r[0]) for r in rows)

    def latest(self, kind: str) -> dict[str, Record]:
        """The last record of ``kind`` per key (e.g. the current line fit of each object)."""
        out: dict[str, Record] = {}
        for rec in self.records(kind):
            out[rec.key] = rec
        return out

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return int(self._con.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            return int(self._con.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            try:
                if not self.read_only:
                    self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_SCHEMA_SQL = ("CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, "
               "time TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', payload TEXT NOT NULL)")


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a journal in a folder that cannot be written: the journal as it is (``mode=ro``,
    which also reads a write-ahead log left beside it), else as an immutable file, else (no journal at all) an empty
    in-memory one with the same tables."""
    if path.exists():
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                con = sqlite3.connect(f"{path.absolute().as_uri()}?{query}", uri=True, check_same_thread=False,
                                      isolation_level=None)
                con.execute("SELECT COUNT(*) FROM records").fetchone()
                return con
            except sqlite3.Error:
                continue
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    con.execute(_SCHEMA_SQL)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    return con
