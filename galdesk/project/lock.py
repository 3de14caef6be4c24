"""One writer at a time per project, across processes (an OS file lock through the maintained ``filelock`` package).

Writes that rewrite project files (objects, arrays, results, manifest) happen under :class:`ProjectLock`: a second
writer waits up to ``timeout`` seconds, then gets :class:`ProjectBusy`, whose message says who holds the project
("ingest by PID 1234 on host since 2026-12-02T10:00:00+00:00"). Readers never take the lock. The journal (SQLite
in WAL mode) has its own locking and is not covered: two vetters may decide at the same time.

The lock file is ``NAME.galdesk/.lock``; beside it ``.lock.json`` says who holds it (informational: the OS lock is
the truth, and it is released when the holder dies, so a crash never leaves a project locked).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["ProjectLock", "ProjectBusy", "LOCK_NAME", "DEFAULT_TIMEOUT"]

LOCK_NAME = ".lock"
#: Seconds a writer waits for another one to finish before it gives up (``GALDESK_LOCK_TIMEOUT`` overrides).
DEFAULT_TIMEOUT = 30.0

# One OS lock per project folder and process, shared by every Project instance of that folder (the window's and a
# worker's): nested holds in one thread are free, two threads of one process take turns like two processes do.
_LOCKS: dict[str, object] = {}
_GUARD = threading.Lock()
_DEPTH = threading.local()


class ProjectBusy(Exception):
    """Another process is writing the project (the message names it and what it does)."""


class ProjectLock:
    """A re-entrant (per thread) write lock on a project folder, across processes and threads.

    Use as ``with lock.hold("ingest"): ...``; nested holds in the same thread are free, whichever ProjectLock or
    Project instance of the folder they come from.
    """

    def __init__(self, folder: str | Path, timeout: float | None = None) -> None:
        from filelock import FileLock

        self.folder = Path(folder)
        from galdesk.config import limit

        self.timeout = float(timeout if timeout is not None
                             else limit("lock_timeout", DEFAULT_TIMEOUT, allow_zero=True))
        self._key = str(self.folder.resolve())
        with _GUARD:
            if self._key not in _LOCKS:
                _LOCKS[self._key] = FileLock(str(self.folder / LOCK_NAME))  # thread-local: one fd per thread
            self._lock = _LOCKS[self._key]

    def _depths(self) -> dict:
        d = getattr(_DEPTH, "d", None)
        if d is None:
            d = _DEPTH.d = {}
        return d

    @property
    def info_path(self) -> Path:
        return self.folder / (LOCK_NAME + ".json")

    def holder(self) -> dict:
        """Who says they hold the lock (``pid``, ``host``, ``what``, ``since``), or {} if nobody wrote it."""
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def describe_holder(self) -> str:
        h = self.holder()
        if not h:
            return "another process"
        return f"{h.get('what') or 'a write'} by PID {h.get('pid')} on {h.get('host')} since {h.get('since')}"

    def hold(self, what: str = "write"):
        """Context manager: hold the lock while the block runs (ProjectBusy after ``timeout`` seconds)."""
        return _Hold(self, what)

    def _acquire(self, what: str) -> None:
        from filelock import Timeout

        depths = self._depths()
        depth = depths.get(self._key, 0)
        if depth == 0:
            try:
                self._lock.acquire(timeout=self.timeout)
            except Timeout:
                raise ProjectBusy(f"{self.folder}: project is busy ({self.describe_holder()}); try again when it "
                                  f"has finished (waited {self.timeout:g} s)") from None
            self._write_info(what)
        depths[self._key] = depth + 1

    def _release(self) -> None:
        depths = self._depths()
        depths[self._key] = depths.get(self._key, 1) - 1
        if depths[self._key] == 0:
            try:
                self.info_path.unlink()
            except OSError:
                pass
            self._lock.release()

    def _write_info(self, what: str) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            self.info_path.write_text(json.dumps(info), encoding="utf-8")
        except OSError:
            pass  # informational only


class _Hold:
    def __init__(self, lock: ProjectLock, what: str) -> None:
        self.lock, self.what = lock, what

    def __enter__(self) -> ProjectLock:
        self.lock._acquire(self.what)
        return self.lock

    def __exit__(self, *exc) -> None:
        self.lock._release()
