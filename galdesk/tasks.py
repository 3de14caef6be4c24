"""Progress and cancellation for long work.

Every long-running function in galdesk has the shape ``fn(..., ctx)``: it reports with
``ctx.progress(fraction, message)`` and calls ``ctx.check_cancelled()`` between batches. The same function runs
in the GUI worker (a QThread), in the terminal (:class:`ConsoleContext`) and on a Dask cluster
(:class:`NullContext`). Nothing here imports Qt.
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Cancelled", "TaskContext", "NullContext", "ConsoleContext", "RecordingContext", "ScaledContext",
           "eta_text"]


class Cancelled(Exception):
    """Raised by :meth:`TaskContext.check_cancelled` when the user asked the work to stop."""


class TaskContext:
    """Base context: thread-safe cancel flag, progress reporting with ETA.

    Subclasses override :meth:`report` to show progress somewhere.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._t0 = time.monotonic()
        self.fraction = 0.0
        self.message = ""

    # -- cancellation ---------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the work to stop. Safe to call from any thread."""
        self._cancel.set()

    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the user asked the work to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    # -- progress ---------------------------------------------------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1] with a short message."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.fraction = fraction
        if message:
            self.message = message
        self.report(fraction, self.message, self.eta())

    def eta(self) -> float | None:
        """Seconds left, extrapolated linearly from the elapsed time, or None before anything is known."""
        if self.fraction <= 0.0:
            return None
        elapsed = time.monotonic() - self._t0
        return elapsed * (1.0 - self.fraction) / self.fraction

    def restart_clock(self) -> None:
        self._t0 = time.monotonic()

    def report(self, fraction: float, message: str, eta: float | None) -> None:  # pragma: no cover - hook
        """Show progress; the base class does nothing."""

    def log(self, message: str) -> None:
        """A line of information for the user (CLI: stderr; GUI: status bar / log)."""


class NullContext(TaskContext):
    """A context that reports nowhere (Dask workers, scripts, tests)."""


class RecordingContext(TaskContext):
    """Keeps every progress report and log line: for tests."""

    def __init__(self, cancel_after: int | None = None) -> None:
        super().__init__()
        self.reports: list[tuple[float, str]] = []
        self.logs: list[str] = []
        self._cancel_after = cancel_after

    def report(self, fraction: float, message: str, eta: float | None) -> None:
        self.reports.append((fraction, message))
        if self._cancel_after is not None and len(self.reports) >= self._cancel_after:
            self.cancel()

    def log(self, message: str) -> None:
        self.logs.append(message)


def eta_text(seconds: float | None) -> str:
    """'1 min 05 s', '12 s' or '' for an unknown ETA."""
    if seconds is None or seconds != seconds:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class ScaledContext(TaskContext):
    """Maps a step's progress 0..1 into ``[lo, hi]`` of a parent context; cancel and log go to the parent."""

    def __init__(self, parent: TaskContext, lo: float, hi: float) -> None:
        super().__init__()
        self.parent, self.lo, self.hi = parent, float(lo), float(hi)

    def progress(self, fraction: float, message: str = "") -> None:
        self.parent.progress(self.lo + (self.hi - self.lo) * min(max(float(fraction), 0.0), 1.0), message)

    def cancel(self) -> None:
        self.parent.cancel()

    def cancelled(self) -> bool:
        return self.parent.cancelled()

    def check_cancelled(self) -> None:
        self.parent.check_cancelled()

    def log(self, message: str) -> None:
        self.parent.log(message)


class ConsoleContext(TaskContext):
    """Progress bar on a terminal (stderr); silent when ``quiet`` or when stderr is not a TTY."""

    def __init__(self, quiet: bool = False, stream=None, min_interval: float = 0.2) -> None:
        super().__init__()
        self._stream = stream or sys.stderr
        self._quiet = quiet
        self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._last = 0.0
        self._min_interval = min_interval

    def report(self, fraction: float, message: str, eta: float | None) -> None:
        if self._quiet or not self._tty:
            return
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self._min_interval:
            return
        self._last = now
        width = 30
        filled = int(round(fraction * width))
        bar = "#" * filled + "-" * (width - filled)
        eta_s = eta_text(eta)
        line = f"\r[{bar}] {fraction * 100:5.1f}% {message[:50]:<50} {('ETA ' + eta_s) if eta_s else ''}"
        self._stream.write(line)
        if fraction >= 1.0:
            self._stream.write("\n")
        self._stream.flush()

    def log(self, message: str) -> None:
        if not self._quiet:
            if self._tty:
                self._stream.write("\r" + " " * 100 + "\r")
            self._stream.write(message + "\n")
            self._stream.flush()
