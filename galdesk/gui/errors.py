"""Errors reach the user: uncaught exceptions (GUI thread and other threads) go to the log file in the user's
data folder, with their traceback, and to an error dialog; failed worker jobs are logged the same way.

Used by :mod:`galdesk.gui.app` (which installs the hooks) and by every window or panel that reports a failed job.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback

__all__ = ["setup_logging", "log_exception", "show_error", "install_excepthooks"]

_log = logging.getLogger("galdesk")


def setup_logging() -> None:
    """Log to ``config.log_path()`` (stderr when that folder cannot be written); follows a changed data folder."""
    from galdesk.config import log_path

    path = log_path()
    if any(getattr(h, "galdesk_path", None) == path for h in _log.handlers):
        return
    for h in list(_log.handlers):   # the data folder changed (GALDESK_DATA_DIR): log to the new one
        _log.removeHandler(h)
        h.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.galdesk_path = path
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)


def log_exception(exc, tb_text: str | None = None) -> None:
    """Write ``exc`` and its traceback (``tb_text``, or the exception's own) to the log file."""
    setup_logging()
    _log.error("%s\n%s", exc, tb_text or "".join(traceback.format_exception(exc)))


def show_error(text: str) -> None:
    """An error dialog naming the log file, shown on the GUI thread whatever thread calls this."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from galdesk.config import log_path

    app = QApplication.instance()
    if app is None:
        return

    def show():
        QMessageBox.critical(None, "galdesk: unexpected error", f"{text}\n\nThe traceback was written to "
                             f"{log_path()}. Your project and decisions are saved as you go.")

    QTimer.singleShot(0, app, show)  # always on the GUI thread


def install_excepthooks() -> None:
    """Uncaught exceptions (GUI thread and other threads) -> log file + error dialog, never a silent exit."""

    def hook(exc_type, exc, tb):
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log_exception(exc, text)
        sys.__stderr__.write(text)
        show_error(f"{exc_type.__name__}: {exc}")

    def thread_hook(args):
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
