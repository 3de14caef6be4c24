"""Fit many spectra: one process per core, progress and cancel, a failing spectrum never stops the batch.

:func:`fit_many` runs :func:`galdesk.lines.spectrum.fit_spectrum` (lmfit, full model selection) in a process pool; for
very large batches of one fixed model see :func:`galdesk.lines.vectorized.fit_complex_batch`.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from galdesk.io.model import ReadError
from galdesk.lines.config import FitConfig
from galdesk.lines.results import SpectrumFit
from galdesk.lines.spectrum import fit_spectrum
from galdesk.procutil import worker_pool
from galdesk.tasks import Cancelled, NullContext

__all__ = ["fit_many", "fit_one"]


def _load(item):
    if isinstance(item, (str, os.PathLike)):
        from galdesk.io.reading import read

        return read(item)[0]
    return item


def fit_one(item, config: FitConfig | None = None) -> SpectrumFit:
    """Read (if a path) and fit one spectrum; any error becomes ``SpectrumFit.error`` instead of an exception."""
    source = str(item) if isinstance(item, (str, os.PathLike)) else str(getattr(item, "source", "?"))
    try:
        spec = _load(item)
        return fit_spectrum(spec, config or FitConfig())
    except Cancelled:
        raise
    except Exception as exc:  # a bad file or a failed fit is one error entry, never the end of the batch
        why = exc.reason if isinstance(exc, ReadError) else f"{type(exc).__name__}: {exc}"
        return SpectrumFit(source=source, id=Path(source).stem, z=None, error=why)


def fit_many(spectra_or_paths, config: FitConfig | None = None, ctx=None, n_jobs: int | None = None
             ) -> list[SpectrumFit]:
    """Fit every spectrum with :func:`~galdesk.lines.spectrum.fit_spectrum`, in parallel processes.

    Parameters
    ----------
    spectra_or_paths : sequence of SpectrumData or path
        Paths are read in the worker with :func:`galdesk.io.reading.read` (first spectrum of the file).
    config : FitConfig
    ctx : TaskContext or None
        ``progress(done / total)`` after each spectrum; ``check_cancelled()`` between results — pending work is
        cancelled and :class:`~galdesk.tasks.Cancelled` raised.
    n_jobs : int or None
        Worker processes (default: all cores); 1 runs in this process (no pickling, easier debugging).

    Returns
    -------
    list of SpectrumFit
        In input order; failures have ``error`` set and no lines.
    """
    config = config or FitConfig()
    ctx = ctx or NullContext()
    items = list(spectra_or_paths)
    n = len(items)
    n_jobs = n_jobs or os.cpu_count() or 1
    results: list[SpectrumFit | None] = [None] * n
    if n_jobs <= 1 or n <= 1:
        for i, it in enumerate(items):
            ctx.check_cancelled()
            results[i] = fit_one(it, config)
            ctx.progress((i + 1) / n, f"{i + 1}/{n} spectra")
        return results  # type: ignore[return-value]
    done = 0
    with worker_pool(min(n_jobs, n)) as pool:  # workers end with this process, never orphans
        futures = {pool.submit(fit_one, it, config): i for i, it in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except Exception as exc:  # e.g. a worker died
                        src = str(items[i]) if isinstance(items[i], (str, os.PathLike)) else str(
                            getattr(items[i], "source", "?"))
                        results[i] = SpectrumFit(source=src, id=Path(src).stem, z=None,
                                                 error=f"{type(exc).__name__}: {exc}")
                    done += 1
                    ctx.progress(done / n, f"{done}/{n} spectra")
                ctx.check_cancelled()
        except (Cancelled, KeyboardInterrupt):  # Ctrl+C too: drop the queued work instead of waiting for it
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results  # type: ignore[return-value]
