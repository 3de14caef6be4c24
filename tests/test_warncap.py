"""galdesk.warncap: warnings captured or silenced on one thread leave the other threads' warnings alone."""

import threading
import warnings

import pytest

from galdesk.warncap import capture, suppress


@pytest.fixture
def shown(monkeypatch):
    """What reaches the normal warnings display (the hook installed by capture passes it on)."""
    got = []
    monkeypatch.setattr(warnings, "showwarning", lambda m, c, f, n, file=None, line=None: got.append(str(m)))
    return got


def test_capture_records_every_occurrence_and_drops_ignored(shown):
    for _ in range(2):  # the same warning at the same place is reported by each read, not once per process
        with capture(ignore=(RuntimeWarning,)) as caught:
            warnings.warn("bad header card", UserWarning)
            warnings.warn("overflow", RuntimeWarning)
        assert [str(w.message) for w in caught] == ["bad header card"]
    with suppress():
        warnings.warn("quiet", UserWarning)
    with suppress(RuntimeWarning):
        warnings.warn("still shown", UserWarning)
    assert shown == ["still shown"]


def test_other_threads_are_not_affected(shown):
    """A worker capturing (or silencing) warnings while the main thread raises its own: neither sees the other's."""
    inside, done = threading.Event(), threading.Event()
    result = {}

    def worker():
        with capture() as caught:
            warnings.warn("worker's corrupt file", UserWarning)
            inside.set()
            done.wait(5)
        result["caught"] = [str(w.message) for w in caught]

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    warnings.warn("GUI thread warning", UserWarning)  # raised while the worker's capture is active
    done.set()
    t.join(5)
    assert result["caught"] == ["worker's corrupt file"]
    assert shown == ["GUI thread warning"]
