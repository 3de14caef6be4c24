"""The QApplication and pyqtgraph settings every galdesk window needs: for the entry point
(:func:`galdesk.gui.app.run_gui`), widget previews and tests alike."""

from __future__ import annotations

import sys

__all__ = ["make_app"]


def make_app(argv=None):
    """The QApplication (created once) with galdesk's names and pyqtgraph options."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("galdesk")
    app.setOrganizationName("galdesk")
    # FITS arrays are (y, x): no transposes. Big curves: no antialiasing (see docs/architecture.md).
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")
    return app
