"""Look at one widget alone (docs/architecture.md; Orange's WidgetPreview):
``python -m galdesk.gui.tabs.<tab> [PROJECT]`` opens that tab on a project, or on the sample project of
:func:`galdesk.services.demo.make_demo_project`."""

from __future__ import annotations

import sys

from galdesk.gui.qtapp import make_app

__all__ = ["preview_project_path", "preview_tab"]


def preview_project_path() -> str:
    """The project named on the command line, else the sample project (made on first use)."""
    from galdesk.services.demo import make_demo_project

    return sys.argv[1] if len(sys.argv) > 1 else str(make_demo_project())


def preview_tab(tab_class, title: str, setup=None, size=(1300, 800)) -> None:
    """Show ``tab_class(AppState())`` on the preview project; ``setup(tab)`` runs before the project opens."""
    from galdesk.gui.state import AppState
    from galdesk.project import Project

    app = make_app()
    state = AppState()
    tab = tab_class(state)
    path = preview_project_path()
    if setup is not None:
        setup(tab)
    tab.resize(*size)
    tab.setWindowTitle(title)
    tab.show()
    state.set_project(Project.open(path))
    app.exec()
    if hasattr(tab, "shutdown"):
        tab.shutdown()
    state.set_project(None)
