"""Fit many spectra: one process per core, progress and cancel, a failing spectrum never stops the batch.

:func:`fit_many` runs :func:`galdesk.lines.spectrum.fit_spectrum` (lmfit, full model selection) in a process pool; for
very large batches of one fixed model see :func:`galdesk.lines.vectorized.fit_complex_batch`.

Every target of every file
--------------------------
A file may hold many spectra (a DESI coadd: one per fibre). Each gives its own :class:`SpectrumFit`, in file
order: ``status`` "fitted", "skipped" (``skip_reason``: a sky, empty or fully masked fibre, or ``"no redshift"``)
or "error". A worker first reads a file and fits its first target (:func:`fit_chunk`); a file with more targets is
then split into chunks of targets that other workers fit in parallel (each reads the file again: reading is cheap
next to fitting). A spectrum without a redshift is never fitted (its lines could not be placed).

:class:`FitBook` collects the chunks as they finish and says which targets are still missing: a batch that was
stopped, given the chunks it had finished (``fit_many(done=...)``, kept through ``on_chunk`` by
:class:`galdesk.services.batch.LinesCheckpoint`), fits only the others.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from galdesk.io.model import ReadError, SpectrumData
from galdesk.lines.config import FitConfig
from galdesk.lines.results import SpectrumFit
from galdesk.lines.spectrum import fit_spectrum
from galdesk.procutil import stop_pool, worker_pool
from galdesk.tasks import Cancelled, NullContext

__all__ = ["FitBook", "fit_many", "fit_target", "fit_chunk", "fit_file", "fit_record", "target_info", "chunks",
           "record_status", "batch_summary", "NO_REDSHIFT", "STAR", "MIN_CHUNK"]

#: ``skip_reason`` of a spectrum its file classes as a star (``FitConfig.fit_stars`` fits it anyway).
STAR = "a star (the file's class is STAR): galaxy templates and nebular lines do not apply (--fit-stars fits it)"
#: ``skip_reason`` of a spectrum without a redshift.
NO_REDSHIFT = "no redshift"
#: Fewest targets of one file that a worker fits per task (each task reads the file).
MIN_CHUNK = 4


def target_info(spec, fitted: bool = True) -> dict:
    """``z_source``, ``zwarn`` and ``notes`` of a spectrum's fit (``fitted``: it is fitted, not skipped), from what
    the reader and :class:`galdesk.io.redshifts.Redshifts` put in its ``meta``."""
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    zwarn = meta.get("zwarn")
    zwarn = int(zwarn) if isinstance(zwarn, (int, float)) and math.isfinite(zwarn) else None
    notes = list(meta.get("z_notes") or [])
    if zwarn and spec.redshift is not None and fitted:
        notes.append(f"ZWARN = {zwarn}: the redshift fitter flagged z = {spec.redshift:.5f}; fitted at it anyway")
    z_source = meta.get("z_source") or ("file" if spec.redshift is not None else None)
    return {"z_source": z_source if spec.redshift is not None else None, "zwarn": zwarn, "notes": notes}


def fit_record(sf: SpectrumFit) -> dict:
    """:meth:`SpectrumFit.to_dict` (whose verdicts of a spectrum that was not fitted, skipped or failed, are None:
    it has no broad-line test and no continuum, rather than "no broad component needed" and a local one)."""
    return sf.to_dict()


def record_status(r: dict) -> str:
    """``"fitted"``, ``"skipped"`` or ``"error"`` of a result record (records written before ``status`` existed:
    ``error`` set means error, else fitted)."""
    return r.get("status") or ("error" if r.get("error") else ("skipped" if r.get("skip_reason") else "fitted"))


def batch_summary(results: list[dict]) -> str:
    """``fitted 3/5 spectra (2 skipped, 0 errors)`` for result records."""
    counts = {k: sum(1 for r in results if record_status(r) == k) for k in ("fitted", "skipped", "error")}
    return (f"fitted {counts['fitted']}/{len(results)} spectra ({counts['skipped']} skipped, "
            f"{counts['error']} error{'s' if counts['error'] != 1 else ''})")


def fit_target(spec: SpectrumData, config: FitConfig | None = None, redshifts=None, n_in_file: int = 1,
               default_source: str = "file") -> SpectrumFit:
    """Fit one spectrum; never raises (but :class:`~galdesk.tasks.Cancelled`).

    ``redshifts`` (:class:`galdesk.io.redshifts.Redshifts`) is applied first; a spectrum marked
    ``meta["skip_reason"]`` by its reader or without a redshift is returned skipped, a failed fit with ``error``.
    """
    if redshifts is not None:
        redshifts.apply(spec, n_in_file, default_source=default_source)
    base = {"source": str(spec.source), "id": str(spec.id), "z": spec.redshift,
            "flux_unit": str(getattr(spec, "flux_unit", "") or "")}
    reason = spec.meta.get("skip_reason") if isinstance(spec.meta, dict) else None
    if reason is None and spec.redshift is None:
        reason = NO_REDSHIFT
    config = config or FitConfig()
    if reason is None and str(spec.spec_class or "").strip().upper() == "STAR" and not config.fit_stars:
        reason = STAR
    if reason:
        return SpectrumFit(**base, skip_reason=str(reason), **target_info(spec, fitted=False))
    info = target_info(spec)
    try:
        sf = fit_spectrum(spec, config)
    except Cancelled:
        raise
    except Exception as exc:  # a failed fit is one error entry, never the end of the batch
        return SpectrumFit(**base, error=f"{type(exc).__name__}: {exc}", **info)
    sf.z_source, sf.zwarn, sf.notes = info["z_source"], info["zwarn"], info["notes"] + list(sf.notes)
    return sf


def _errors(source: str, start: int, stop: int | None, why: str) -> list[SpectrumFit]:
    """Error entries for targets ``start:stop`` of a file that could not be read or fitted (the file's stem as id
    for its first or only target, ``stem[k]`` for the k-th of a later chunk)."""
    stem = Path(source).stem
    if start == 0 and stop in (None, 1):
        return [SpectrumFit(source=source, id=stem, z=None, error=why)]
    return [SpectrumFit(source=source, id=f"{stem}[{k}]", z=None, error=why) for k in range(start, stop or start + 1)]


def fit_chunk(task, config: FitConfig | None = None, redshifts=None, ctx=None) -> tuple[int, list[SpectrumFit]]:
    """Fit targets ``start:stop`` of one item; ``task`` is ``(item, start, stop)`` (``stop`` None: to the end).

    ``item`` is a path (read here, every target kept: :func:`galdesk.io.reading.read` with ``keep_skipped``) or a
    :class:`~galdesk.io.model.SpectrumData` (one target). Returns ``(number of targets in the item, fits)``; a file
    that cannot be read gives one error entry per target asked for (one if the count is unknown).
    """
    item, start, stop = task
    ctx = ctx or NullContext()
    if not isinstance(item, (str, os.PathLike)):
        return 1, [fit_target(item, config, redshifts)] if start == 0 else []
    path = str(item)
    try:
        from galdesk.io.reading import read

        targets = read(path, kind="spectrum", keep_skipped=True)
    except Cancelled:
        raise
    except Exception as exc:  # a bad file is one error entry (per target asked for), never the end of the batch
        why = exc.reason if isinstance(exc, ReadError) else f"{type(exc).__name__}: {exc}"
        errors = _errors(path, start, stop, why)
        return start + len(errors), errors
    out = []
    for spec in targets[start:stop]:
        ctx.check_cancelled()
        out.append(fit_target(spec, config, redshifts, n_in_file=len(targets)))
    return len(targets), out


def fit_file(path, config: FitConfig | None = None, redshifts=None, ctx=None) -> list[SpectrumFit]:
    """Every target of one file, fitted in this process (one entry per target, in file order)."""
    return fit_chunk((path, 0, None), config, redshifts, ctx)[1]


def chunks(n_targets: int, first: int, n_jobs: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the tasks that fit targets ``first:n_targets`` on ``n_jobs`` workers: about two
    chunks per worker, never fewer than :data:`MIN_CHUNK` targets."""
    rest = n_targets - first
    if rest <= 0:
        return []
    size = max(MIN_CHUNK, math.ceil(rest / (2 * max(n_jobs, 1))))
    return [(s, min(s + size, n_targets)) for s in range(first, n_targets, size)]



class FitBook:
    """The fits of each input item as its chunks arrive: what is left to fit, the progress made, the results.

    A batch that was stopped continues from the chunks it had finished (kept by the caller through ``on_chunk``,
    e.g. :class:`galdesk.services.batch.LinesCheckpoint`): :meth:`add` them again and :meth:`todo` gives only the
    targets still missing.

    Parameters
    ----------
    n : int
        Number of input items (files or spectra).
    on_chunk : callable or None
        ``on_chunk(i, start, n_targets, fits)`` for each chunk of fits added with ``keep`` (item ``i``, its targets
        ``start:start + len(fits)`` of ``n_targets``): a chunk that was fitted, not the error entries that stand in
        for a task whose worker failed.
    """

    def __init__(self, n: int, on_chunk=None) -> None:
        self.total: list[int | None] = [None] * n
        self.parts: list[dict[int, list]] = [{} for _ in range(n)]
        self.on_chunk = on_chunk

    def add(self, i: int, start: int, n_targets: int, fits: list, keep: bool = True) -> bool:
        """Record a chunk; True when it is the item's first (its target count was not known before)."""
        first = self.total[i] is None
        if first:
            self.total[i] = max(n_targets, start + len(fits))
        self.parts[i][start] = list(fits)
        if keep and self.on_chunk is not None:
            self.on_chunk(i, start, self.total[i], self.parts[i][start])
        return first

    def gaps(self, i: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of the runs of item ``i``'s targets that no chunk holds (its count must be known)."""
        out, at = [], 0
        for start in sorted(self.parts[i]):
            if start > at:
                out.append((at, start))
            at = max(at, start + len(self.parts[i][start]))
        if at < (self.total[i] or 0):
            out.append((at, self.total[i]))
        return out

    def todo(self, n_jobs: int, only=None) -> list[tuple[int, int, int | None]]:
        """``(item, start, stop)`` of the tasks still to run on ``n_jobs`` workers (of the items ``only``, default
        all): an item whose target count is unknown is read and fitted whole by one worker (``n_jobs`` 1) or first
        its first target alone (then :meth:`add` tells the count); the gaps of the others, whole (``n_jobs`` 1)
        or in :func:`chunks`."""
        out: list[tuple[int, int, int | None]] = []
        for i in range(len(self.total)) if only is None else only:
            if self.total[i] is None:
                out.append((i, 0, None if n_jobs <= 1 else 1))
                continue
            for a, b in self.gaps(i):
                out.extend([(i, a, b)] if n_jobs <= 1 else [(i, s, e) for s, e in chunks(b, a, n_jobs)])
        return out

    def fraction(self) -> float:
        done = 0.0
        for total, parts in zip(self.total, self.parts):
            if total:
                done += min(1.0, sum(len(p) for p in parts.values()) / total)
        return done / max(len(self.total), 1)

    def n_fits(self) -> int:
        return sum(len(p) for parts in self.parts for p in parts.values())

    def results(self) -> list:
        """Every fit, items in input order and targets in file order."""
        return [sf for parts in self.parts for start in sorted(parts) for sf in parts[start]]


def fit_many(spectra_or_paths, config: FitConfig | None = None, ctx=None, n_jobs: int | None = None,
             redshifts=None, done=None, on_chunk=None) -> list:
    """Fit every target of every item with :func:`~galdesk.lines.spectrum.fit_spectrum`, in parallel processes.

    Parameters
    ----------
    spectra_or_paths : sequence of SpectrumData or path
        Paths are read in the workers with :func:`galdesk.io.reading.read`; every spectrum of a file is fitted.
    config : FitConfig
    ctx : TaskContext or None
        ``progress(fraction)`` as targets are fitted; ``check_cancelled()`` between results — pending work is
        cancelled and :class:`~galdesk.tasks.Cancelled` raised.
    n_jobs : int or None
        Worker processes (default: all cores); 1 runs in this process (no pickling, easier debugging).
    redshifts : galdesk.io.redshifts.Redshifts or None
        Redshifts given for this run (``--z``, catalogues), applied before each fit.
    done : iterable of (item, start, n_targets, fits) or None
        Chunks finished by an earlier run of the same batch (what ``on_chunk`` was given): not fitted again, their
        fits returned as they are (e.g. result records read back from a checkpoint).
    on_chunk : callable or None
        ``on_chunk(item, start, n_targets, fits)`` as each chunk is fitted (:class:`FitBook`), in this process.

    Returns
    -------
    list of SpectrumFit
        One per target, items in input order and targets in file order; ``status`` says fitted, skipped
        (``skip_reason``) or error (``error``, no lines). The targets of ``done`` chunks hold what ``done`` held.
    """
    config = config or FitConfig()
    ctx = ctx or NullContext()
    items = list(spectra_or_paths)
    n_jobs = n_jobs or os.cpu_count() or 1
    book = FitBook(len(items))
    for chunk in done or ():
        book.add(*chunk)
    book.on_chunk = on_chunk
    if n_jobs <= 1:
        todo = book.todo(1)
        for k, (i, a, b) in enumerate(todo):
            ctx.check_cancelled()
            book.add(i, a, *fit_chunk((items[i], a, b), config, redshifts, ctx))
            ctx.progress(book.fraction(), f"{book.n_fits()} spectra fitted, {k + 1}/{len(todo)} tasks")
        return book.results()
    if len(items) == 1 and book.total[0] is None:  # one file: its first target here (no pool for a single
        ctx.check_cancelled()                      # spectrum), the rest on the pool
        book.add(0, 0, *fit_chunk((items[0], 0, 1), config, redshifts))
    todo = book.todo(n_jobs)
    if todo:
        _run_pool(items, todo, book, config, redshifts, ctx, n_jobs)
    return book.results()


def _run_pool(items, todo, book: FitBook, config, redshifts, ctx, n_jobs: int) -> None:
    """Run the chunks ``todo`` (item index, start, stop) on a process pool, adding each file's further chunks
    once its first one says how many targets it holds."""
    files = any(isinstance(it, (str, os.PathLike)) for it in items)  # a file may split into many tasks
    # workers end with this process, never orphans
    with worker_pool(n_jobs if files else min(n_jobs, len(todo))) as pool:
        futures = {}

        def submit(i: int, a: int, b: int | None) -> None:
            futures[pool.submit(fit_chunk, (items[i], a, b), config, redshifts)] = (i, a, b)

        for task in todo:
            submit(*task)
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i, a, b = futures.pop(fut)
                    keep = True
                    try:
                        n_targets, fits = fut.result()
                    except Exception as exc:  # e.g. a worker died: error entries, not kept (a restart refits)
                        why = f"{type(exc).__name__}: {exc}"
                        if isinstance(items[i], (str, os.PathLike)):
                            fits = _errors(str(items[i]), a, b, why)
                        else:
                            fits = [SpectrumFit(source=str(items[i].source), id=str(items[i].id), z=None, error=why)]
                        n_targets, keep = book.total[i] or a + len(fits), False
                    if book.add(i, a, n_targets, fits, keep=keep):
                        for task in book.todo(n_jobs, only=[i]):
                            submit(*task)
                    pending = set(futures)
                    ctx.progress(book.fraction(), f"{book.n_fits()} spectra fitted")
                ctx.check_cancelled()
        except (Cancelled, KeyboardInterrupt):  # Ctrl+C too: drop the queued work instead of waiting for it
            for fut in futures:
                fut.cancel()
            stop_pool(pool)
            raise
