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


_HALF_WRITTEN = """
import sys, time
from galdesk.procutil import stop_pool, worker_pool

def big(n):
    return b"x" * n

if __name__ == "__main__":
    pool = worker_pool(2)
    futures = [pool.submit(big, 150_000_000) for _ in range(12)]   # results far larger than a pipe's buffer
    time.sleep(float(sys.argv[1]))                                # stop while a result is half written
    stop_pool(pool)
    print("stopped", flush=True)
"""


@pytest.mark.parametrize("delay", [0.4, 0.7, 1.0, 1.3])
def test_a_pool_stopped_while_a_worker_writes_its_result_lets_the_process_exit(tmp_path, delay):
    """Terminating a worker in the middle of sending its result left the pool's manager thread reading the rest
    of the message forever, and the interpreter's exit joined that thread: a full disk that stopped an ingest hung
    the command instead of ending it with its message."""
    import subprocess
    import sys

    script = tmp_path / "half.py"
    script.write_text(_HALF_WRITTEN)
    r = subprocess.run([sys.executable, str(script), str(delay)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "stopped" in r.stdout, r.stderr[-2000:]
