"""Thread-local capture of warnings.

``warnings.catch_warnings`` changes process-wide state: used on a worker thread (a reader collecting a corrupt
file's astropy warnings, an export silencing them) it also records or swallows a warning raised at the same moment
on the GUI thread, and restores the state under the other thread's feet. :func:`capture` instead routes warnings
raised *in the current thread* inside the block to a list (or drops them), through one ``warnings.showwarning``
hook that passes every other warning on unchanged.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

__all__ = ["capture", "suppress"]

_tls = threading.local()
_lock = threading.Lock()


class _Hook:
    """``warnings.showwarning`` replacement: the innermost active capture of this thread, else the previous hook."""

    def __init__(self, previous) -> None:
        self.previous = previous

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        frames = getattr(_tls, "frames", None)
        if frames:
            record, drop = frames[-1]
            if drop and issubclass(category, drop):
                return
            if record is not None:
                record.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
                return
        self.previous(message, category, filename, lineno, file, line)


def _ensure_hook() -> None:
    with _lock:
        if not isinstance(warnings.showwarning, _Hook):
            warnings.showwarning = _Hook(warnings.showwarning)


def _reset_once_registries() -> None:
    # warnings already shown once at a code location are suppressed by the "default" action; invalidating the
    # registries (what catch_warnings does on entry) lets a second bad file report the same warning again
    mutated = getattr(warnings, "_filters_mutated", None) or getattr(warnings, "_filters_mutated_lock_held", None)
    if mutated is not None:
        try:
            mutated()
        except Exception:  # noqa: BLE001 - private API; without it a repeated warning is reported once
            pass


@contextlib.contextmanager
def _frame(record: list | None, drop: tuple):
    _ensure_hook()
    frames = _tls.__dict__.setdefault("frames", [])
    frames.append((record, drop))
    if record is not None:
        _reset_once_registries()
    try:
        yield
    finally:
        frames.pop()


@contextlib.contextmanager
def capture(ignore: tuple[type[Warning], ...] = ()):
    """Collect the warnings this thread raises inside the block; yields the list of
    :class:`warnings.WarningMessage`. Categories in ``ignore`` are dropped. Other threads are not affected.

    Warnings whose filter action is "ignore" (e.g. DeprecationWarning by default) or "error" never reach the hook.
    """
    rec: list = []
    with _frame(rec, tuple(ignore)):
        yield rec


@contextlib.contextmanager
def suppress(*categories: type[Warning]):
    """Drop the warnings of the given categories (default: all) that this thread raises inside the block; others
    are shown as usual. Other threads are not affected."""
    with _frame(None, tuple(categories) or (Warning,)):
        yield
