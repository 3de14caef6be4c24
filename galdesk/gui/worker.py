"""Run a task function ``fn(*args, ctx=ctx)`` on a QThread with progress, result, error and cancel signals.

Pattern (superqt / glue): a QObject moved to a QThread; ``run()`` emits ``result``, ``cancelled`` or
``error(exc, traceback_text)``, then ``finished`` from a ``finally``. Cancel is a direct call that sets a
``threading.Event`` (a queued signal would wait behind the very loop it should stop). ``finished`` is connected to
``thread.quit`` with ``Qt.DirectConnection`` (a queued quit was seen to deadlock ``wait()``). Widgets are never
touched from the worker: results are applied in slots on the GUI thread.
"""

from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from galdesk.tasks import Cancelled, TaskContext

__all__ = ["Worker", "TaskRunner", "QtTaskContext"]


class QtTaskContext(TaskContext):
    """A TaskContext whose progress and log lines are emitted as Qt signals of its worker."""

    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self._worker = worker

    def report(self, fraction: float, message: str, eta: float | None) -> None:
        self._worker.progress.emit(fraction, message, -1.0 if eta is None else float(eta))

    def log(self, message: str) -> None:
        self._worker.message.emit(message)


class Worker(QObject):
    progress = Signal(float, str, float)   # fraction, message, eta seconds (-1 unknown)
    message = Signal(str)
    result = Signal(object)
    error = Signal(object, str)            # exception, traceback text
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn, *args, **kwargs) -> None:
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.ctx = QtTaskContext(self)

    @Slot()
    def run(self) -> None:
        try:
            out = self._fn(*self._args, ctx=self.ctx, **self._kwargs)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure reaches the user as a signal
            self.error.emit(exc, traceback.format_exc())
        else:
            if self.ctx.cancelled():
                self.cancelled.emit()
            else:
                self.result.emit(out)
        finally:
            self.finished.emit()

    def cancel(self) -> None:
        """Ask the task to stop (direct call: safe from the GUI thread while the worker runs)."""
        self.ctx.cancel()


class TaskRunner(QObject):
    """Owns one job slot: starting a new job cancels the previous one.

    Usage::

        runner = TaskRunner(parent)
        runner.start(fn, arg, on_result=..., on_error=..., on_progress=...)
    """

    started = Signal()
    done = Signal()   # after result/error/cancel handlers ran

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: Worker | None = None
        self._old: list[tuple[QThread, Worker]] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, fn, *args, on_result=None, on_error=None, on_progress=None, on_cancelled=None,
              on_message=None, **kwargs) -> Worker:
        self.cancel()
        thread = QThread()
        worker = Worker(fn, *args, **kwargs)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit, Qt.DirectConnection)
        if on_result:
            worker.result.connect(on_result)
        if on_error:
            worker.error.connect(on_error)
        if on_progress:
            worker.progress.connect(on_progress)
        if on_cancelled:
            worker.cancelled.connect(on_cancelled)
        if on_message:
            worker.message.connect(on_message)
        worker.finished.connect(self._on_finished)
        self._thread, self._worker = thread, worker
        thread.start()
        self.started.emit()
        return worker

    def cancel(self) -> None:
        """Cancel the running job (it ends at its next check); keep it referenced until its thread ends."""
        if self._worker is not None and self._thread is not None:
            self._worker.cancel()
            self._old.append((self._thread, self._worker))
        self._thread = self._worker = None

    def wait(self, ms: int = 30000) -> bool:
        """Block until the current (and cancelled) jobs end: for tests and shutdown."""
        ok = True
        for t, _ in self._old + ([(self._thread, self._worker)] if self._thread else []):
            ok &= t.wait(ms)
        return ok

    @Slot()
    def _on_finished(self) -> None:
        sender = self.sender()
        for t, w in [tw for tw in self._old if tw[1] is sender]:
            t.wait(2000)  # quit() was called directly: the thread ends at once
        self._old = [(t, w) for t, w in self._old if w is not sender]
        if sender is self._worker:
            if self._thread is not None:
                self._thread.wait(2000)
            self._thread = self._worker = None
            self.done.emit()
