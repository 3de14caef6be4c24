"""The task panel: busy state of its buttons, progress with ETA, result / failure / cancel texts."""

import threading

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton  # noqa: E402

from galdesk.gui.app import make_app  # noqa: E402
from galdesk.tasks import Cancelled  # noqa: E402


@pytest.fixture
def panel(qtbot):
    from galdesk.gui.widgets.task_panel import TaskPanel

    make_app()
    p = TaskPanel("Run", "Other", title="Test", cancel_text="stopped by you")
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_busy_while_running_then_result(qtbot, panel):
    gate = threading.Event()
    extra = QPushButton("elsewhere")
    panel.disable_while_busy(extra)
    busy = []
    panel.busyChanged.connect(busy.append)

    def job(n, ctx=None):
        ctx.progress(0.5, "half way")
        gate.wait(10)
        return n * 2

    results = []
    panel.start(job, 21, on_result=lambda v: results.append((v, panel.busy, panel.buttons[0].isEnabled())))
    assert panel.busy and panel.cancel_btn.isEnabled()
    assert not any(b.isEnabled() for b in panel.buttons) and not extra.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() == 500, timeout=5000)
    assert panel.status.text().startswith("half way")
    gate.set()
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [(42, False, True)]       # ready again before the result callback runs
    assert extra.isEnabled() and not panel.cancel_btn.isEnabled() and busy == [True, False]


def test_progress_text_shows_the_eta(panel):
    panel.show_progress(0.25, "reading", 65.0)
    assert panel.progress.value() == 250 and panel.status.text() == "reading   ETA 1 min 05 s"
    panel.show_progress(0.5, "reading", -1.0)
    assert panel.status.text() == "reading"


def test_runnable_gates_the_buttons(panel):
    panel.set_runnable(False)
    assert not panel.buttons[0].isEnabled()
    panel.set_runnable(True)
    assert panel.buttons[0].isEnabled()


def test_failure_is_logged_and_shown(qtbot, panel, monkeypatch):
    from galdesk.config import log_path

    boxes = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: boxes.append((title, text)))
    errors = []

    def job(ctx=None):
        raise ValueError("no cut-outs in NGC 4993")

    panel.start(job, on_error=lambda exc, tb: errors.append(exc))
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert boxes == [("Test", "no cut-outs in NGC 4993")]
    assert panel.status.text() == "failed: no cut-outs in NGC 4993" and not panel.busy
    assert "NGC 4993" in log_path().read_text()


def test_cancel_button_and_a_job_that_cancels_itself(qtbot, panel):
    started = threading.Event()

    def loop(ctx=None):
        started.set()
        while True:
            ctx.check_cancelled()
            threading.Event().wait(0.01)

    panel.start(loop)
    started.wait(5)
    panel.cancel_btn.click()
    assert not panel.busy and panel.buttons[0].isEnabled() and panel.status.text() == "stopped by you"
    assert panel.runner.wait(5000)

    def give_up(ctx=None):
        raise Cancelled()

    cancelled = []
    panel.start(give_up, on_cancelled=lambda: cancelled.append(1))
    qtbot.waitUntil(lambda: bool(cancelled), timeout=5000)
    assert panel.status.text() == "cancelled; earlier results kept" and not panel.busy
