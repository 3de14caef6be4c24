"""QApplication set-up, error reporting (dialog + log file) and the GUI entry point."""

from __future__ import annotations

import logging
import sys
import threading
import traceback

__all__ = ["run_gui", "make_app", "log_exception", "install_excepthooks"]

_log = logging.getLogger("galdesk")


def _setup_logging() -> None:
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
    _setup_logging()
    _log.error("%s\n%s", exc, tb_text or "".join(traceback.format_exception(exc)))


def _show_error(text: str) -> None:
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
        _show_error(f"{exc_type.__name__}: {exc}")

    def thread_hook(args):
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def make_app(argv=None):
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("galdesk")
    app.setOrganizationName("galdesk")
    # FITS arrays are (y, x): no transposes. Big curves: no antialiasing (see ARCHITECTURE.md).
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")
    return app


def run_gui(paths: list[str] | None = None) -> int:
    """Open the main window (with files, folders or a project) and run the event loop."""
    from PySide6.QtCore import QTimer

    _setup_logging()
    app = make_app()
    install_excepthooks()
    from galdesk.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if paths:
        QTimer.singleShot(0, lambda: win.open_paths(paths))
    return int(app.exec())
