"""QApplication set-up and the GUI entry point (error reporting lives in :mod:`galdesk.gui.errors`)."""

from __future__ import annotations

import sys

from galdesk.gui.errors import install_excepthooks, setup_logging

__all__ = ["run_gui", "make_app"]


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

    setup_logging()
    app = make_app()
    install_excepthooks()
    from galdesk.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if paths:
        QTimer.singleShot(0, lambda: win.open_paths(paths))
    return int(app.exec())
