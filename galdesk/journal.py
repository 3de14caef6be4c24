"""The project journal: an append-only SQLite log of everything a user decides or a fit produces.

SQLite in WAL mode with ``synchronous=FULL``: a record is on disk when :meth:`Journal.append` returns, so killing
the program at any moment loses nothing that was acknowledged. Records are never updated or deleted: undo and
redo are records too (see :mod:`galdesk.vetting`), and "the current value" of anything is derived by replaying.

Tables
------
``records(seq INTEGER PRIMARY KEY, kind TEXT, key TEXT, time TEXT, author TEXT, payload TEXT)`` —
``kind`` is e.g. ``"decision"``, ``"undo"``, ``"redo"``, ``"line_fit"``, ``"cuts"``; ``key`` the object id (or
another key); ``payload`` a JSON object. ``meta(key TEXT PRIMARY KEY, value TEXT)`` holds the schema version.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["Journal", "Record", "JOURNAL_SCHEMA_VERSION"]

JOURNAL_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Record:
    seq: int
    kind: str
    key: str
    time: str
    author: str
    payload: dict


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
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.execute("PRAGMA busy_timeout=10000")
        with self._lock:
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
    def append(self, kind: str, key: str, payload: dict, author: str = "") -> Record:
        """Append one record and return it once it is durably on disk."""
        text = json.dumps(payload, default=_json_default, allow_nan=True)
        t = _now()
        with self._lock:
            cur = self._con.execute(
                "INSERT INTO records (kind, key, time, author, payload) VALUES (?, ?, ?, ?, ?)",
                (kind, str(key), t, author, text),
            )
            seq = int(cur.lastrowid)
        return Record(seq, kind, str(key), t, author, payload)

    def append_many(self, rows: list[tuple[str, str, dict]], author: str = "") -> int:
        """Append many records in one transaction (batch results); returns how many."""
        t = _now()
        with self._lock:
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

    def records(self, kinds: str | tuple[str, ...] | None = None, key: str | None = None) -> list[Record]:
        """All records (optionally of some kinds / one key) in append order."""
        sql = "SELECT seq, kind, key, time, author, payload FROM records"
        cond, args = [], []
        if kinds is not None:
            kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            cond.append("kind IN (%s)" % ",".join("?" * len(kinds)))
            args.extend(kinds)
        if key is not None:
            cond.append("key = ?")
            args.append(str(key))
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY seq"
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

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
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _json_default(obj):
    """numpy scalars and arrays into JSON."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
