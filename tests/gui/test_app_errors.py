"""Uncaught errors reach the user (a dialog) and the log file (with the traceback), from any thread."""

import sys
import threading


def test_uncaught_errors_are_logged_and_shown(qtbot, monkeypatch):
    from galdesk.config import log_path
    from galdesk.gui import errors
    from galdesk.gui.app import make_app

    make_app()
    shown = []
    monkeypatch.setattr(errors, "show_error", shown.append)
    old_hook, old_thread_hook = sys.excepthook, threading.excepthook
    try:
        errors.install_excepthooks()
        try:
            raise ValueError("NAXIS3 = -1 in cube.fits")
        except ValueError:
            sys.excepthook(*sys.exc_info())
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
    finally:
        sys.excepthook, threading.excepthook = old_hook, old_thread_hook
    assert shown == ["ValueError: NAXIS3 = -1 in cube.fits", "ZeroDivisionError: division by zero"]
    text = log_path().read_text()
    assert "cube.fits" in text and "Traceback" in text and "ZeroDivisionError" in text
