"""The status bar's activity: one progress bar, message with ETA and Cancel for whatever long job runs, whichever
tab or menu started it (an ingest from the File menu, a classification, clustering, a batch of line fits).

A job registers with :meth:`Activity.begin` (a :class:`~galdesk.gui.widgets.task_panel.TaskPanel` does it for the
jobs its owner gives a title) and gets an :class:`ActivityJob` to report progress to and end. The newest running
job is shown; with several, "+N more" says so and its tooltip lists them; Cancel stops the job shown. Hidden when
nothing runs.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from galdesk.tasks import eta_text

__all__ = ["Activity", "ActivityJob"]


class ActivityJob:
    """One job shown by an :class:`Activity`: report with :meth:`progress`, finish with :meth:`end`."""

    def __init__(self, activity: "Activity", title: str, cancel) -> None:
        self.activity, self.title, self.cancel = activity, title, cancel
        self.fraction, self.message = 0.0, title
        self.ended = False

    def progress(self, fraction: float, message: str = "", eta: float = -1.0) -> None:
        e = eta_text(eta if eta is not None and eta >= 0 else None)
        self.fraction = float(fraction)
        self.message = f"{self.title}: {message}" if message else self.title
        self.message += f"  (ETA {e})" if e else ""
        self.activity._refresh()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.activity._remove(self)


class Activity(QWidget):
    """Progress, message and Cancel of the running jobs, for the status bar (module docstring).

    Signals
    -------
    changed(int)
        The number of running jobs, after it changed.
    """

    changed = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.jobs: list[ActivityJob] = []
        self.label = QLabel("")
        # a long message is cut, never widens the window (1,280 px screens); the tooltip has it all
        self.label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.label.setMinimumWidth(180)
        self.label.setMaximumWidth(420)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(160)
        self.more = QLabel("")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the job shown; what it finished before stays")
        self.cancel_btn.clicked.connect(self.cancel_shown)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.more, self.cancel_btn):
            lay.addWidget(w)
        self.hide()

    @property
    def shown(self) -> ActivityJob | None:
        """The job on display: the newest one still running."""
        return self.jobs[-1] if self.jobs else None

    def begin(self, title: str, cancel) -> ActivityJob:
        """A new job called ``title``; ``cancel()`` stops it (the Cancel button while it is shown)."""
        job = ActivityJob(self, title, cancel)
        self.jobs.append(job)
        self._refresh()
        self.changed.emit(len(self.jobs))
        return job

    def cancel_shown(self) -> None:
        job = self.shown
        if job is not None:
            job.cancel()
            job.end()     # a job whose owner stops it silently ends here too

    def _remove(self, job: ActivityJob) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
            self._refresh()
            self.changed.emit(len(self.jobs))

    def _refresh(self) -> None:
        job = self.shown
        if job is None:
            self.hide()
            return
        self.bar.setValue(int(max(0.0, min(1.0, job.fraction)) * 1000))
        self.label.setText(job.message)
        self.label.setToolTip(job.message)
        others = self.jobs[:-1]
        self.more.setText(f"+{len(others)} more" if others else "")
        self.more.setToolTip("\n".join(f"{j.message} ({j.fraction:.0%})" for j in others))
        self.show()
