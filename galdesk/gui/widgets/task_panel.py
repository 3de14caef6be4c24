"""One task panel: run button(s), Cancel, a progress bar with ETA and a status line around one
:class:`galdesk.gui.worker.TaskRunner` — the run/cancel/progress plumbing of every tab that starts long work.

- :meth:`TaskPanel.start` runs ``fn(*args, ctx=ctx, **kwargs)`` on a worker; a new start cancels the running job.
- While a job runs the panel is *busy*: its run buttons (and any widget given to :meth:`disable_while_busy`) are
  disabled and Cancel is enabled. It stops being busy before the job's result, error or cancel callback runs, so
  a callback sees the panel ready for the next job. :attr:`busyChanged` tells the owner.
- Progress reports move the bar (0 … 1000) and show ``"message   ETA 1 min 05 s"`` (:func:`galdesk.tasks.eta_text`).
- A failed job is logged with its traceback (:func:`galdesk.gui.errors.log_exception`), shown as
  ``"failed: …"`` and in a warning box titled with the panel's title.
- Cancel stops the job at its next check; its late results reach nobody.
- With :meth:`attach`, jobs started with a ``job_title`` also show in the window's status bar
  (:class:`galdesk.gui.widgets.activity.Activity`), whose Cancel is this panel's.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.errors import log_exception
from galdesk.gui.worker import TaskRunner
from galdesk.tasks import eta_text

__all__ = ["TaskPanel", "JOB_CANCELLED_TEXT"]

#: Status text when a job stops on a cancel it did not get from this panel's Cancel button
JOB_CANCELLED_TEXT = "cancelled; earlier results kept"


class TaskPanel(QWidget):
    """Buttons, Cancel, progress bar and status line for one job slot.

    Parameters
    ----------
    *run_texts : str
        Texts of the run buttons (:attr:`buttons`, in this order); connect their ``clicked`` to your start method.
    title : str
        Title of the warning box that shows a failure.
    cancel_text : str
        Status text after the user pressed Cancel.
    row : bool
        Lay everything out on one line (for a tab's toolbar) instead of buttons over bar over status.

    Signals
    -------
    busyChanged(bool)
        A job started (True) or ended / was cancelled (False), after the buttons were updated.
    """

    busyChanged = Signal(bool)

    def __init__(self, *run_texts: str, title: str = "", cancel_text: str = "cancelled", row: bool = False,
                 parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.cancel_text = cancel_text
        self.runner = TaskRunner(self)
        self._busy = False
        self._runnable = True
        self._also: list[QWidget] = []
        self._activity = None
        self._job = None
        self.buttons = [QPushButton(text) for text in run_texts]
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("")
        buttons = QHBoxLayout()
        for b in self.buttons:
            buttons.addWidget(b)
        buttons.addWidget(self.cancel_btn)
        if row:  # one line: buttons, Cancel, a short bar and the status text (a tab's toolbar)
            self.progress.setMaximumWidth(200)
            # a long status ("12 fitted, 3 skipped: ...") is cut, never widens the window; its tooltip has it all
            self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
            self.status.setMinimumWidth(60)
            lay = QHBoxLayout(self)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addLayout(buttons)
            lay.addWidget(self.progress)
            lay.addWidget(self.status, 1)
            return
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)

    # -- state -----------------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A job of this panel is running (and has not reported its end yet)."""
        return self._busy

    def set_runnable(self, runnable: bool) -> None:
        """Whether the run buttons may be pressed when no job runs (e.g. only with a project open)."""
        self._runnable = bool(runnable)
        self._update_enabled()

    def disable_while_busy(self, *widgets: QWidget) -> None:
        """More widgets (elsewhere in the tab) that are enabled exactly when the run buttons are."""
        self._also.extend(widgets)
        self._update_enabled()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def set_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 1000))

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_enabled()
        self.busyChanged.emit(busy)

    def _update_enabled(self) -> None:
        for w in (*self.buttons, *self._also):
            w.setEnabled(self._runnable and not self._busy)
        self.cancel_btn.setEnabled(self._busy)

    def attach(self, activity) -> None:
        """Show the jobs started with a ``job_title`` in ``activity`` (the status bar's) too."""
        self._activity = activity

    def _end_job(self) -> None:
        if self._job is not None:
            self._job.end()
            self._job = None

    # -- jobs ------------------------------------------------------------------------------------------------------
    def start(self, fn, *args, on_result=None, on_error=None, on_cancelled=None, progress: bool = True,
              job_title: str | None = None, **kwargs):
        """Run ``fn(*args, ctx=ctx, **kwargs)`` on the worker; callbacks run on the GUI thread.

        ``on_error`` runs after the failure was logged and shown; ``progress=False`` leaves the bar and the status
        line alone while the job reports; ``job_title``: show the job in the attached status-bar activity.
        """

        def done(value) -> None:
            self._end_job()
            self._set_busy(False)
            if on_result is not None:
                on_result(value)

        def failed(exc, tb) -> None:
            self._end_job()
            self._set_busy(False)
            self.fail(exc, tb)
            if on_error is not None:
                on_error(exc, tb)

        def stopped() -> None:
            self._end_job()
            self._set_busy(False)
            self.set_status(JOB_CANCELLED_TEXT)
            if on_cancelled is not None:
                on_cancelled()

        self._end_job()   # a new start cancels the running job
        worker = self.runner.start(fn, *args, on_result=done, on_error=failed, on_cancelled=stopped,
                                   on_progress=self.show_progress if progress else None, **kwargs)
        if self._activity is not None and job_title:
            self._job = self._activity.begin(job_title, self.cancel)
        self._set_busy(True)
        return worker

    def show_progress(self, fraction: float, message: str, eta: float) -> None:
        """A progress report: fraction 0..1, message, seconds left (negative: unknown)."""
        self.set_progress(fraction)
        e = eta_text(eta if eta >= 0 else None)
        self.set_status(message + (f"   ETA {e}" if e else ""))
        if self._job is not None:
            self._job.progress(fraction, message, eta)

    def fail(self, exc, tb: str | None = None) -> None:
        """Report a failure (of this panel's job or of another one of its owner): log, status line, warning box."""
        log_exception(exc, tb)
        self.set_status(f"failed: {exc}")
        QMessageBox.warning(self, self.title, str(exc))

    def cancel(self) -> None:
        """The Cancel button: stop the job and say so."""
        self.stop()
        self.set_status(self.cancel_text)

    def stop(self) -> None:
        """Stop the job without a word (the owner is about to start another, or its data went away)."""
        self.runner.cancel()
        self._end_job()
        if self._busy:
            self._set_busy(False)

    def shutdown(self, ms: int = 10000) -> None:
        """Cancel and wait for the worker thread (window closing)."""
        self.runner.cancel()
        self.runner.wait(ms)


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.widgets.task_panel
    import time

    from galdesk.gui.qtapp import make_app

    def count(n, ctx=None):
        for i in range(n):
            ctx.check_cancelled()
            time.sleep(0.05)
            ctx.progress((i + 1) / n, f"step {i + 1} of {n}")
        return n

    app = make_app()
    panel = TaskPanel("Run 100 steps", "Fail", title="Task panel preview")
    panel.buttons[0].clicked.connect(lambda: panel.start(count, 100, on_result=lambda n: panel.set_status(
        f"done: {n} steps")))
    panel.buttons[1].clicked.connect(lambda: panel.start(lambda ctx=None: 1 / 0))
    panel.resize(420, 120)
    panel.setWindowTitle("TaskPanel preview")
    panel.show()
    app.exec()
    panel.shutdown()
