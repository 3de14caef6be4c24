"""The GUI entry point: the main window on a QApplication with error reporting installed.

:func:`make_app` (from :mod:`galdesk.gui.qtapp`) is importable from here too; error reporting lives in
:mod:`galdesk.gui.errors`.
"""

from __future__ import annotations

from galdesk.gui.errors import install_excepthooks, setup_logging
from galdesk.gui.qtapp import make_app

__all__ = ["run_gui", "make_app"]


def run_gui(paths: list[str] | None = None) -> int:
    """Open the main window (with files, folders or a project) and run the event loop."""
    from PySide6.QtCore import QTimer

    setup_logging()
    app = make_app()
    install_excepthooks()
    from galdesk.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if paths:
        QTimer.singleShot(0, lambda: win.open_paths(paths))
    return int(app.exec())
