"""Run a task function ``fn(*args, ctx=ctx)`` on a QThread with progress, result, error and cancel signals.

Pattern (superqt / glue): a QObject moved to a QThread; ``run()`` emits ``result``, ``cancelled`` or
``error(exc, traceback_text)``, then ``finished`` from a ``finally``. Cancel is a direct call that sets a
``threading.Event`` (a queued signal would wait behind the very loop it should stop). ``finished`` is connected to
``thread.quit`` with ``Qt.DirectConnection`` (a queued quit was seen to deadlock ``wait()``). Widgets are never
touched from the worker: results are applied in slots on the GUI thread.
"""

from __future__ import annotations

import traceback

import shiboken6
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


class _Relay(QObject):
    """Lives on the GUI thread and calls one job's callbacks there.

    Connecting a worker signal straight to a lambda or a plain function would run it on the *worker* thread (the
    signal's sender lives there and a callable has no thread of its own), where touching a widget crashes Qt.
    Connecting to the slots of this object makes every callback a queued call on the GUI thread. It has no Qt
    parent and is not deleted with ``deleteLater``: Python drops it once the runner has seen its job finish (a
    parented relay deleted later was seen to be deleted twice when its dialog closed).
    """

    def __init__(self, callbacks: dict, runner: "TaskRunner") -> None:
        super().__init__()
        self.callbacks = callbacks
        self._runner = runner   # its bookkeeping still runs when a cancel has cleared the callbacks

    def _alive(self) -> bool:
        # the window (and with it the runner) may have closed while the job ran: then nobody is told
        return shiboken6.isValid(self._runner)

    def _call(self, name, *args) -> None:
        fn = self.callbacks.get(name)
        if fn is not None and self._alive():
            fn(*args)

    @Slot(object)
    def on_result(self, value) -> None:
        self._call("result", value)

    @Slot(object, str)
    def on_error(self, exc, tb) -> None:
        self._call("error", exc, tb)

    @Slot(float, str, float)
    def on_progress(self, fraction, message, eta) -> None:
        self._call("progress", fraction, message, eta)

    @Slot()
    def on_cancelled(self) -> None:
        self._call("cancelled")

    @Slot(str)
    def on_message(self, text) -> None:
        self._call("message", text)

    @Slot()
    def on_finished(self) -> None:
        if self._alive():
            self._runner._on_finished(self)


class TaskRunner(QObject):
    """Owns one job slot: starting a new job cancels the previous one.

    Usage::

        runner = TaskRunner(parent)
        runner.start(fn, arg, on_result=..., on_error=..., on_progress=...)

    Callbacks (any callable, lambdas included) always run on the GUI thread; those of a cancelled job are not
    called with its late results.
    """

    started = Signal()
    done = Signal()   # after result/error/cancel handlers ran

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: Worker | None = None
        self._relay: _Relay | None = None
        # cancelled jobs, kept alive (thread, worker, relay) until their worker says it finished
        self._old: list[tuple[QThread, Worker, _Relay]] = []
        self._spent: list[_Relay] = []

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, fn, *args, on_result=None, on_error=None, on_progress=None, on_cancelled=None,
              on_message=None, **kwargs) -> Worker:
        self.cancel()
        thread = QThread()
        worker = Worker(fn, *args, **kwargs)
        worker.moveToThread(thread)
        relay = _Relay({"result": on_result, "error": on_error, "progress": on_progress,
                        "cancelled": on_cancelled, "message": on_message}, self)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit, Qt.DirectConnection)
        worker.result.connect(relay.on_result)
        worker.error.connect(relay.on_error)
        worker.progress.connect(relay.on_progress)
        worker.cancelled.connect(relay.on_cancelled)
        worker.message.connect(relay.on_message)
        worker.finished.connect(relay.on_finished)
        self._thread, self._worker, self._relay = thread, worker, relay
        thread.start()
        self.started.emit()
        return worker

    def cancel(self) -> None:
        """Cancel the running job (it ends at its next check); keep it referenced until its thread ends."""
        if self._worker is not None and self._thread is not None:
            self._worker.cancel()
            self._relay.callbacks = {}   # a cancelled job's late results reach nobody
            self._old.append((self._thread, self._worker, self._relay))
        self._thread = self._worker = self._relay = None

    def wait(self, ms: int = 30000) -> bool:
        """Block until the current (and cancelled) jobs end: for tests and shutdown."""
        ok = True
        for t in [job[0] for job in self._old] + ([self._thread] if self._thread else []):
            ok &= t.wait(ms)
        return ok

    def _on_finished(self, relay: _Relay) -> None:
        # the worker's signals reach the GUI thread in order: its result/cancel already went to the relay, so the
        # job's objects can go now (its thread ends at once: quit() was called directly)
        for job in [j for j in self._old if j[2] is relay]:
            job[0].wait(2000)
        self._old = [j for j in self._old if j[2] is not relay]
        self._spent = [relay]   # we are inside one of its slots: drop it at the next job's end, not now
        if relay is self._relay:
            if self._thread is not None:
                self._thread.wait(2000)
            self._thread = self._worker = self._relay = None
            self.done.emit()
