"""The status bar's activity: every long job, whichever tab started it, shows its progress there with a Cancel."""

import threading

import pytest

from galdesk.gui.app import make_app  # noqa: E402


def _until_cancelled(gate, ctx=None):
    ctx.progress(0.25, "a quarter")
    while not gate.is_set():
        ctx.check_cancelled()
        gate.wait(0.02)
    return 1


@pytest.fixture
def activity(qtbot):
    from galdesk.gui.widgets.activity import Activity

    make_app()
    a = Activity()
    qtbot.addWidget(a)
    return a


def test_the_newest_job_is_shown_and_the_others_counted(activity):
    stopped = []
    first = activity.begin("Ingest", lambda: stopped.append("ingest"))
    second = activity.begin("Classify", lambda: stopped.append("classify"))
    second.progress(0.5, "5000/10000", 65.0)
    first.progress(0.1, "Read 16/160 files")
    assert not activity.isHidden()
    assert activity.label.text() == "Classify: 5000/10000  (ETA 1 min 05 s)" and activity.bar.value() == 500
    assert activity.more.text() == "+1 more" and "Ingest: Read 16/160 files (10%)" in activity.more.toolTip()
    activity.cancel_btn.click()            # cancels the job shown, and only it
    assert stopped == ["classify"] and activity.label.text().startswith("Ingest")
    assert activity.more.text() == ""
    first.end()
    first.end()                            # twice is harmless
    assert activity.isHidden() and activity.jobs == []


def test_a_panel_job_with_a_title_shows_in_the_activity_and_its_cancel_is_the_panels(qtbot, activity, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from galdesk.gui.widgets.task_panel import TaskPanel

    boxes = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: boxes.append((title, text)))
    panel = TaskPanel("Run", title="Test", cancel_text="stopped by you")
    qtbot.addWidget(panel)
    panel.attach(activity)
    gate = threading.Event()
    try:
        panel.start(_until_cancelled, gate, job_title="Fit all spectra")
        qtbot.waitUntil(lambda: activity.bar.value() == 250, timeout=5000)
        assert activity.label.text().startswith("Fit all spectra: a quarter")
        activity.cancel_btn.click()
        assert panel.status.text() == "stopped by you" and not panel.busy
        assert activity.isHidden()
        panel.start(_until_cancelled, gate)            # no title: a short job, not in the status bar
        qtbot.waitUntil(lambda: panel.progress.value() == 250, timeout=5000)
        assert activity.isHidden()
        gate.set()
        qtbot.waitUntil(lambda: not panel.busy, timeout=5000)
        gate.clear()
        panel.start(lambda ctx=None: 1 / 0, job_title="Broken")
        qtbot.waitUntil(lambda: not panel.busy, timeout=5000)
        assert activity.isHidden() and boxes == [("Test", "division by zero")]   # a failed job leaves it too
    finally:
        gate.set()
        panel.shutdown()


def test_the_window_attaches_every_tabs_panel_and_shows_its_own_jobs(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from galdesk.gui.main_window import MainWindow

    monkeypatch.setenv("GALDESK_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    make_app()
    w = MainWindow(settings={})
    qtbot.addWidget(w)
    panels = [getattr(t, "panel", None) or getattr(t, "tasks", None) for t in w.extra_tabs.values()]
    attached = [p for p in panels if p is not None and getattr(p, "_activity", None) is w.activity]
    assert len(attached) >= 3                          # Classify, Dendrogram, Lines
    gate = threading.Event()
    try:
        w._start("Ingest", _until_cancelled, gate)
        qtbot.waitUntil(lambda: activity_text(w).startswith("Ingest: a quarter"), timeout=5000)
        w.activity.cancel_btn.click()
        assert w.activity.isHidden()
    finally:
        gate.set()
        w.runner.cancel()
        w.runner.wait(5000)


def activity_text(w):
    return w.activity.label.text()

