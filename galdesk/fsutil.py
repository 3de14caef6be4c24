"""File-system helpers shared by the project store, settings and exports (no galdesk imports)."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_write", "current_umask", "new_file_mode"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux ``/proc``); elsewhere set and
    restored at once under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def new_file_mode(path: str | Path) -> int:
    """The permission bits a write to ``path`` should leave: an existing file's own (an overwrite keeps them), else
    what ``open()`` would give a new file under the umask (0o666 & ~umask: 0o644 under umask 022)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` and rename it over ``path``.

    The temporary file is fsynced before the rename; on any error it is removed and ``path`` is untouched. The
    result has the permissions of the file it replaces, or those of a new file under the umask (colleagues can read
    a shared project or catalogue as they could any file the user writes), never ``mkstemp``'s private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
