"""Worker processes that end with their parent, so that a killed command or a closed window leaves no orphans.

:func:`worker_pool` is a :class:`concurrent.futures.ProcessPoolExecutor` whose workers run :func:`die_with_parent`
first: on Linux the kernel sends them SIGKILL when the process that started them dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread in each worker notices that its parent is gone (its
parent pid changes) within a second and ends the worker. No galdesk imports.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import ProcessPoolExecutor

__all__ = ["die_with_parent", "stop_pool", "worker_pool"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (worker) process end when ``parent_pid`` (default: its parent now) dies."""
    parent = os.getppid() if parent_pid is None else int(parent_pid)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the request was in place
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="galdesk-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def worker_pool(max_workers: int, mp_context=None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (:func:`die_with_parent`)."""
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=mp_context, initializer=die_with_parent,
                               initargs=(os.getpid(),))


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: queued work is dropped and running workers are terminated.

    ``shutdown(wait=False)`` alone lets each worker finish the task it holds, and the interpreter's exit joins
    them, so a cancelled command would wait for its longest running fit. Python 3.14 has
    ``terminate_workers()``; before that the pool's worker processes are terminated one by one.
    """
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    results = getattr(pool, "_result_queue", None)
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
    else:
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:
            _quiet_threads.add(manager)
            _install_excepthook()
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:
            try:
                proc.terminate()
            except (OSError, ValueError, AttributeError):  # already gone or closed
                pass
    _unblock_manager(workers, results)


def _unblock_manager(workers: list, results) -> None:
    """A worker terminated while it was writing its result leaves half a message in the result pipe; the pool's
    manager thread then waits for the rest forever, and so does the interpreter's exit, which joins it (seen when
    a full disk stopped an ingest). Once the workers are gone, closing this process's end of the pipe's writing
    side gives that read an end of file, which the manager thread takes for a broken pool, and it ends."""
    for proc in workers:
        try:
            proc.join(2.0)
        except (OSError, ValueError, AssertionError, AttributeError):
            pass
    writer = getattr(results, "_writer", None)
    if writer is not None and not any(_alive(p) for p in workers):
        try:
            writer.close()
        except OSError:
            pass


def _alive(proc) -> bool:
    try:
        return proc.is_alive()
    except (ValueError, AssertionError):  # closed
        return False


_quiet_threads: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()


def _install_excepthook() -> None:
    """Silence the pool manager threads of stopped pools: on Python < 3.12 a pool whose workers were terminated
    sets an exception on its cancelled futures and its manager thread dies with a traceback (InvalidStateError)
    that means nothing to a user who pressed Ctrl+C. Other threads keep the hook they had; installed again if
    someone (a test runner) replaced it since."""
    previous = threading.excepthook
    if getattr(previous, "_galdesk_quiet", False):
        return

    def hook(args) -> None:
        if args.thread is not None and args.thread in _quiet_threads:
            return
        previous(args)

    hook._galdesk_quiet = True
    threading.excepthook = hook
