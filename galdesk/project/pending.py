"""A segment that a writer fills before it takes the project's write lock: how an ingest streams.

An ingest reads files for minutes; holding the project's write lock all that time would make every other writer
(a vetter's save, a second ingest) wait or fail. Keeping every cut-out in memory until the end would make the
memory of an ingest grow with its size (3 GB for 20,000 3-band cut-outs at 64 px, counting copies). Instead it
writes each batch of cut-outs, as it is read, into ``pending-<uuid>.h5`` in the project folder
(:class:`PendingSegment`), holding only that file's own lock, ``pending-<uuid>.h5.lock``. At the end it takes the
project's write lock and :meth:`PendingSegment.finish` renames the file to the next segment name; the project then
commits it with the new object rows in one index write, as any append (:mod:`galdesk.project.segments`).

A resumable writer (an ingest, :mod:`galdesk.services.ingest`) passes a ``resume_key``: its file is then
``pending-ingest-<digest of the key>.h5`` and after each batch it records (:meth:`PendingSegment.record`) what is
durable in ``pending-ingest-<digest>.json`` beside it: one appended JSON line per batch (so a log costs what is
added) with the array counts and the writer's own state (files done, the batch's object rows and problems).
Killed, it leaves both; a new writer with the same key reopens the file cut back to the counts of the last whole
line (anything written after it, and a torn last line, are discarded) and gets the states back in
:attr:`PendingSegment.resumed`. A torn file, a log without a whole record, or one of another key or working size
starts afresh. The log
goes when the segment is committed or discarded. Cleaning keeps a resumable segment that has a log younger than
:data:`RESUME_DAYS` (its writer may come back); one without a log (nothing durable yet) or with an older log is a
leftover like any other dead writer's file.

Nothing of a pending segment is visible before that commit. A cancelled or failed ingest deletes its file; one
that was killed leaves it, and whoever next cleans the project (:meth:`galdesk.project.Project.clean_leftovers`)
removes the pending files whose lock no live process holds (:func:`stale_pending`). The OS releases a dead
process's lock, so a file that is still being written is never taken for a leftover.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np

from galdesk.io.model import SpectrumData
from galdesk.project.arrays import SegmentWriter

__all__ = ["PendingSegment", "stale_pending", "PENDING_RE", "RESUME_DAYS"]

PENDING_RE = re.compile(r"^pending-(ingest-)?[0-9a-f]{32}\.h5$")
#: a resumable pending segment whose log was last written longer ago than this is a leftover
RESUME_DAYS = 7


class PendingSegment:
    """``pending-<uuid>.h5`` being written by this process (module docstring); a context manager that deletes the
    file unless :meth:`finish` moved it into place.

    Parameters
    ----------
    folder : the project folder
    working_size, schema_version : of the project's segment files
    """

    def __init__(self, folder: str | Path, working_size: int, schema_version: int = 1,
                 resume_key: str | None = None) -> None:
        from filelock import FileLock, Timeout

        self.folder = Path(folder)
        self.key = resume_key
        #: the states each :meth:`record` of a killed writer with the same key saved, in order; None when new
        self.resumed: list[dict] | None = None
        self.counts: dict[str, int] = {}
        self.n_spectra = 0
        self._writer: SegmentWriter | None = None
        self.log_path: Path | None = None
        if resume_key is not None:
            digest = hashlib.sha256(resume_key.encode()).hexdigest()[:32]
            self.path = self.folder / f"pending-ingest-{digest}.h5"
            self.log_path = self.folder / f"pending-ingest-{digest}.json"
            self._lock = FileLock(str(self.path) + ".lock")
            try:
                self._lock.acquire(timeout=0)
            except Timeout:   # the same ingest is running now: this one is not resumable
                self.key, self.log_path = None, None
        if self.key is None:
            self.path = self.folder / f"pending-{uuid.uuid4().hex}.h5"
            self._lock = FileLock(str(self.path) + ".lock")
            self._lock.acquire(timeout=0)   # a new name: nobody else holds it
        try:
            if self.key is not None:
                self._reopen(working_size)
            if self._writer is None:
                self._writer = SegmentWriter(self.path, working_size, schema_version)
        except BaseException:
            self.discard()   # e.g. a full disk: no empty file is left
            raise

    def _reopen(self, working_size: int) -> None:
        """Continue the file a killed writer of the same key left, cut back to its log; else delete both."""
        from galdesk.fsutil import atomic_write

        try:
            lines = self.log_path.read_text().split("\n")[:-1]   # the last piece is empty, or a torn line
            head, records = json.loads(lines[0]), []
            for line in lines[1:]:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    break
            if head["key"] != self.key or int(head["working_size"]) != working_size or not records:
                raise ValueError("another ingest's log, or nothing logged")
            lines = lines[:1 + len(records)]
            atomic_write(self.log_path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
            self._writer = SegmentWriter.reopen(self.path, dict(records[-1]["counts"]), int(records[-1]["n_spectra"]))
            if int(self._writer.file.attrs["working_size"]) != working_size:
                raise ValueError("another working size")
        except Exception:  # noqa: BLE001 - no log, a torn log or a torn file: start afresh, never fail
            self._close_writer_quietly()
            for p in (self.path, self.log_path):
                try:
                    os.unlink(p)
                except OSError:
                    pass
            return
        self.counts, self.n_spectra = dict(self._writer.counts), self._writer.n_spectra
        self.resumed = [r["state"] for r in records]

    def record(self, state: dict) -> None:
        """Make what the file holds durable and append a log line with ``state`` (JSON: what this batch adds to the
        writer's own state), for a writer of the same key to continue from (module docstring); nothing without a
        resume key."""
        if self.key is None or self._writer is None:
            return
        self._writer.file.flush()
        with open(self.path, "rb") as fh:
            os.fsync(fh.fileno())
        line = json.dumps({"counts": self.counts, "n_spectra": self.n_spectra, "state": state}) + "\n"
        if self.resumed is None and not self.log_path.exists():
            head = {"key": self.key, "working_size": int(self._writer.file.attrs["working_size"])}
            line = json.dumps(head) + "\n" + line
        with open(self.log_path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def __enter__(self) -> "PendingSegment":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    @property
    def empty(self) -> bool:
        return not any(self.counts.values()) and not self.n_spectra

    def add(self, new_planes: dict[str, list[np.ndarray]], spectra: list[SpectrumData] = ()) -> None:
        """Append cut-outs (stack group -> list of (C, S, S)) and spectra after what the file holds."""
        w = self._writer
        if w is None:
            raise RuntimeError(f"{self.path.name} is closed")
        for group, planes in new_planes.items():
            if len(planes):
                w.add_planes(group, planes)
        w.add_spectra(list(spectra))
        self.counts, self.n_spectra = dict(w.counts), w.n_spectra

    def finish(self, name: str) -> Path:
        """Close the file, flush it to disk and rename it to the segment file ``name`` (the caller holds the
        project's write lock and commits the segment); returns the new path."""
        self._close_writer()
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())
        self._unlink_log()   # committed from here on: a killed commit is never resumed into a second copy
        target = self.folder / name
        os.replace(self.path, target)
        self._release()
        return target

    def discard(self) -> None:
        """Delete the file (nothing happens after :meth:`finish`); never raises for a file it cannot close."""
        try:
            self._close_writer()
        except Exception:  # noqa: BLE001 - a full disk fails the close; the file goes anyway
            self._writer = None
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._unlink_log()
        self._release()

    def _unlink_log(self) -> None:
        if self.log_path is not None:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def _close_writer_quietly(self) -> None:
        try:
            self._close_writer()
        except Exception:  # noqa: BLE001 - a torn file may fail to close
            self._writer = None

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
            try:
                os.unlink(self._lock.lock_file)
            except OSError:
                pass


def stale_pending(folder: str | Path) -> list[Path]:
    """Pending segment files of ``folder`` that no live process is writing, and their lock files."""
    folder = Path(folder)
    out = []
    for p in folder.glob("pending-*.h5"):
        if PENDING_RE.match(p.name) and not _resumable(p) and _unheld(p):
            out.append(p)
            if Path(str(p) + ".lock").exists():
                out.append(Path(str(p) + ".lock"))
            if p.with_suffix(".json").exists():
                out.append(p.with_suffix(".json"))
    for lock_file in folder.glob("pending-*.h5.lock"):
        data = Path(str(lock_file)[:-5])
        if PENDING_RE.match(data.name) and not data.exists() and _unheld(data):
            out.append(lock_file)
    for log in folder.glob("pending-ingest-*.json"):   # a log whose segment was committed or deleted
        data = log.with_suffix(".h5")
        if PENDING_RE.match(data.name) and not data.exists() and _unheld(data):
            out.append(log)
    return out


def _resumable(path: Path) -> bool:
    """``path`` is a resumable segment (``pending-ingest-``) whose log is younger than :data:`RESUME_DAYS`: kept
    for its writer to continue (module docstring)."""
    try:
        age = time.time() - path.with_suffix(".json").stat().st_mtime
    except OSError:
        return False   # no log: nothing of it is durable
    return path.name.startswith("pending-ingest-") and age < RESUME_DAYS * 86400


def _unheld(path: Path) -> bool:
    """Nobody holds the lock of the pending file ``path`` (its writer ended, or was killed)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return False
    lock.release()
    return True
