"""A segment that a writer fills before it takes the project's write lock: how an ingest streams.

An ingest reads files for minutes; holding the project's write lock all that time would make every other writer
(a vetter's save, a second ingest) wait or fail. Keeping every cut-out in memory until the end would make the
memory of an ingest grow with its size (3 GB for 20,000 3-band cut-outs at 64 px, counting copies). Instead it
writes each batch of cut-outs, as it is read, into ``pending-<uuid>.h5`` in the project folder
(:class:`PendingSegment`), holding only that file's own lock, ``pending-<uuid>.h5.lock``. At the end it takes the
project's write lock and :meth:`PendingSegment.finish` renames the file to the next segment name; the project then
commits it with the new object rows in one index write, as any append (:mod:`galdesk.project.segments`).

Nothing of a pending segment is visible before that commit. A cancelled or failed ingest deletes its file; one
that was killed leaves it, and whoever next cleans the project (:meth:`galdesk.project.Project.clean_leftovers`)
removes the pending files whose lock no live process holds (:func:`stale_pending`). The OS releases a dead
process's lock, so a file that is still being written is never taken for a leftover.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import numpy as np

from galdesk.io.model import SpectrumData
from galdesk.project.arrays import SegmentWriter

__all__ = ["PendingSegment", "stale_pending", "PENDING_RE"]

PENDING_RE = re.compile(r"^pending-[0-9a-f]{32}\.h5$")


class PendingSegment:
    """``pending-<uuid>.h5`` being written by this process (module docstring); a context manager that deletes the
    file unless :meth:`finish` moved it into place.

    Parameters
    ----------
    folder : the project folder
    working_size, schema_version : of the project's segment files
    """

    def __init__(self, folder: str | Path, working_size: int, schema_version: int = 1) -> None:
        from filelock import FileLock

        self.folder = Path(folder)
        self.path = self.folder / f"pending-{uuid.uuid4().hex}.h5"
        self._lock = FileLock(str(self.path) + ".lock")
        self._lock.acquire(timeout=0)   # a new name: nobody else holds it
        self._writer: SegmentWriter | None = None
        try:
            self._writer = SegmentWriter(self.path, working_size, schema_version)
        except BaseException:
            self.discard()   # e.g. a full disk: no empty file is left
            raise
        self.counts: dict[str, int] = {}
        self.n_spectra = 0

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
        self._release()

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
        if PENDING_RE.match(p.name) and _unheld(p):
            out.append(p)
            if Path(str(p) + ".lock").exists():
                out.append(Path(str(p) + ".lock"))
    for lock_file in folder.glob("pending-*.h5.lock"):
        data = Path(str(lock_file)[:-5])
        if PENDING_RE.match(data.name) and not data.exists() and _unheld(data):
            out.append(lock_file)
    return out


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
