"""The progress/cancel context every long task takes."""

import io

import pytest

from galdesk.tasks import Cancelled, ConsoleContext, RecordingContext, eta_text


def test_cancel_raises_only_after_cancel():
    ctx = RecordingContext()
    ctx.check_cancelled()
    ctx.cancel()
    assert ctx.cancelled()
    with pytest.raises(Cancelled):
        ctx.check_cancelled()


def test_progress_clamps_and_eta_extrapolates():
    ctx = RecordingContext()
    assert ctx.eta() is None
    ctx.progress(1.5, "done")
    assert ctx.reports[-1] == (1.0, "done")
    ctx.progress(0.5)
    assert ctx.reports[-1] == (0.5, "done")  # message kept
    assert ctx.eta() >= 0.0


def test_recording_context_cancels_after_k_reports():
    ctx = RecordingContext(cancel_after=3)
    for i in range(2):
        ctx.progress(i / 10)
    assert not ctx.cancelled()
    ctx.progress(0.3)
    assert ctx.cancelled()


def test_eta_text():
    assert eta_text(None) == ""
    assert eta_text(5) == "5 s"
    assert eta_text(65) == "1 min 05 s"
    assert eta_text(3700) == "1 h 01 min"


def test_console_context_silent_when_not_a_tty():
    buf = io.StringIO()
    ctx = ConsoleContext(stream=buf)
    ctx.progress(0.5, "half")
    assert buf.getvalue() == ""
    ctx.log("a line")
    assert "a line" in buf.getvalue()
