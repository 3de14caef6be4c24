"""stop_pool: a cancelled pool's workers end at once, and the pool's manager thread leaves no traceback."""

from __future__ import annotations

import time

import psutil
import pytest

from galdesk.procutil import stop_pool, worker_pool


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_stop_pool_ends_running_workers_now():
    pool = worker_pool(2)
    futures = [pool.submit(_sleep, 30.0) for _ in range(20)]   # 2 running, 1 in the call queue, the rest waiting
    deadline = time.monotonic() + 30
    while sum(f.running() for f in futures) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [psutil.Process(p.pid) for p in pool._processes.values()]
    assert len(workers) == 2
    t0 = time.monotonic()
    for f in futures:
        f.cancel()
    stop_pool(pool)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive and time.monotonic() - t0 < 5          # not the 30 s a running task would take
    time.sleep(0.5)                                         # the manager thread notices the dead workers
    assert all(f.done() for f in futures)
