"""Application state shared by the tabs: the open project and the current object (napari/glue style).

Views subscribe to these signals; tests change the state and check the views.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from galdesk.display import DisplaySettings

__all__ = ["AppState"]


class AppState(QObject):
    projectChanged = Signal(object)       # Project or None
    objectsChanged = Signal()             # rows were added / catalogue joined
    currentChanged = Signal(int)          # row in project.objects (-1 none)
    resultsChanged = Signal(str)          # name of a result set or journal kind that changed
    displayChanged = Signal(object)       # DisplaySettings
    problemsAdded = Signal(list)          # list[Problem]
    status = Signal(str)                  # a short message for the status bar

    def __init__(self, settings=None) -> None:
        super().__init__()
        self.project = None
        self.current = -1
        self.settings = settings
        self.display = DisplaySettings()
        self.problems: list = []

    def set_project(self, project) -> None:
        if self.project is not None and self.project is not project:
            self.project.close()
        self.project = project
        self.current = -1
        if project is not None:
            self.display = DisplaySettings.from_dict(project.display)
        self.projectChanged.emit(project)
        self.displayChanged.emit(self.display)

    def set_current(self, row: int) -> None:
        if row != self.current:
            self.current = row
            self.currentChanged.emit(row)

    def set_display(self, display: DisplaySettings) -> None:
        self.display = display
        if self.project is not None:
            self.project.set_display(**display.to_dict())
        self.displayChanged.emit(display)

    def add_problems(self, problems: list) -> None:
        if problems:
            self.problems.extend(problems)
            self.problemsAdded.emit(list(problems))
