"""Batch work over many files, on this machine or on a Dask cluster.

The task functions are the same plain functions the GUI and the CLI use (:func:`galdesk.lines.batch.fit_chunk`,
:func:`galdesk.services.ingest.read_chunk`); this module only decides where they run:

* ``scheduler=None``: worker processes on this machine (one per core);
* ``scheduler="local"``: a Dask ``LocalCluster`` started here (useful to try a cluster set-up);
* ``scheduler="tcp://host:8786"`` (or a scheduler file path): an existing ``dask.distributed`` cluster, e.g. one
  started with ``dask scheduler`` / ``dask worker`` or dask-jobqueue on an HPC system. The workers need galdesk
  installed and the files visible at the same paths.

Progress is reported as results arrive; cancel stops waiting and cancels the futures not yet run. The results are
committed here, by the one process that started the batch; until then each finished chunk is kept on disk
(:mod:`galdesk.services.checkpoint`), so that a killed ``classify``, ``features`` or ``fit-lines -o TABLE`` batch,
started again, runs only the chunks it had not finished.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from galdesk.jsonutil import json_default
from galdesk.services.checkpoint import Checkpoint
from galdesk.tasks import Cancelled, NullContext, TaskContext

__all__ = ["fit_lines_batch", "run_on_dask", "stream_on_dask", "classify_batch", "features_batch",
           "LinesCheckpoint", "lines_checkpoint", "BATCH_FOLDER"]

#: the folder beside a ``batch fit-lines`` output table that holds the checkpoints of its unfinished runs
BATCH_FOLDER = ".galdesk-batch"


def _client(scheduler: str, n_workers: int | None, connect_timeout: float):
    """``(client, cluster or None)`` for a scheduler address, scheduler file or ``"local"``."""
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    if Path(scheduler).is_file():
        return Client(scheduler_file=scheduler, timeout=connect_timeout), None
    return Client(scheduler, timeout=connect_timeout), None


def _map(client, fn, items: list, ctx: TaskContext, label: str, checkpoint=None, **kwargs) -> list:
    """``[fn(item, **kwargs) ...]`` on the client's cluster, in input order, with progress and cancel; with a
    :class:`~galdesk.services.checkpoint.Checkpoint`, the items it holds are not run again and each new result is
    kept in it as it arrives."""
    from dask.distributed import as_completed

    done = checkpoint.load() if checkpoint is not None else {}
    done = {i: r for i, r in done.items() if i < len(items)}
    if done:
        ctx.log(f"resuming: {len(done)} of {len(items)} {label} already done")
    todo = [i for i in range(len(items)) if i not in done]
    futures = client.map(fn, [items[i] for i in todo], pure=False, **kwargs)
    index = {f.key: i for f, i in zip(futures, todo)}
    results: list = [done.get(i) for i in range(len(items))]
    n_done = len(done)
    for fut in as_completed(futures):
        if ctx.cancelled():
            client.cancel(futures)
            raise Cancelled()
        i = index[fut.key]
        results[i] = fut.result()
        if checkpoint is not None:
            checkpoint.save(i, results[i])
        n_done += 1
        ctx.progress(n_done / max(len(items), 1), f"{n_done}/{len(items)} {label} on the cluster")
    return results


def run_on_dask(fn, items: list, scheduler: str, ctx: TaskContext | None = None, n_workers: int | None = None,
                connect_timeout: float = 10.0, checkpoint=None, **kwargs) -> list:
    """``[fn(item, **kwargs) for item in items]`` on a Dask cluster, in input order, with progress and cancel.

    ``connect_timeout`` (s): how long to try to reach a remote scheduler before giving up with an OSError.
    ``checkpoint``: keep finished items there and skip those it already holds (:mod:`galdesk.services.checkpoint`;
    ``fn`` then returns ``(array, json-able dict)``).
    """
    ctx = ctx or NullContext()
    client, cluster = _client(scheduler, n_workers, connect_timeout)
    try:
        return _map(client, fn, items, ctx, "tasks", checkpoint=checkpoint, **kwargs)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def stream_on_dask(fn, items: list, scheduler: str, ctx: TaskContext | None = None, n_workers: int | None = None,
                   connect_timeout: float = 10.0, ahead: int = 4, **kwargs):
    """Yield ``fn(item, **kwargs)`` for each item, in input order, computed on a Dask cluster with at most ``ahead``
    tasks per worker thread submitted and not yet yielded: memory holds a few results, not all of them (an
    ingest's decoded cut-outs). Progress as results arrive; cancel between them."""
    from dask.distributed import wait

    ctx = ctx or NullContext()
    client, cluster = _client(scheduler, n_workers, connect_timeout)
    try:
        limit = max(2, ahead * max(1, sum((client.nthreads() or {}).values())))
        futures: dict[int, object] = {}
        submitted = 0
        for i in range(len(items)):
            while submitted < len(items) and submitted - i < limit:
                futures[submitted] = client.submit(fn, items[submitted], pure=False, **kwargs)
                submitted += 1
            fut = futures.pop(i)
            while not fut.done():
                if ctx.cancelled():
                    client.cancel(list(futures.values()) + [fut])
                    raise Cancelled()
                try:
                    wait([fut], timeout=0.2)
                except TimeoutError:
                    pass
            result = fut.result()
            fut.release()
            ctx.progress((i + 1) / max(len(items), 1), f"{i + 1}/{len(items)} tasks on the cluster")
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def fit_lines_batch(paths: list[str], config=None, scheduler: str | None = None, ctx: TaskContext | None = None,
                    n_workers: int | None = None, z=None, catalogs=(), checkpoint=None) -> list[dict]:
    """Fit the emission lines of every target of spectrum files; one dict per target (``status`` fitted, skipped
    or error; failures carry ``error``).

    ``z``/``catalogs``: redshifts given for this run (:func:`galdesk.lines.service.plan_redshifts`: a ``--z`` for
    more than one target is a ValueError, an unusable catalogue a ReadError, both before any work). A file's first
    target is fitted with its reading; a file with more targets is then split into chunks fitted on the other
    workers (:class:`galdesk.lines.batch.FitBook`). ``checkpoint`` (:func:`lines_checkpoint`): each finished chunk
    is kept there, and the chunks it already holds are not fitted again (the caller clears it once the results
    are committed). The records are JSON's (tuples as lists, numpy numbers as Python's), the same whether they were
    fitted now or read back from the checkpoint.
    """
    from galdesk.lines.batch import FitBook, fit_many
    from galdesk.lines.service import plan_redshifts

    ctx = ctx or NullContext()
    files, redshifts = plan_redshifts([str(p) for p in paths], 0, z, catalogs)
    redshifts = redshifts or None
    done = [c for c in checkpoint.load() if c[0] < len(files)] if checkpoint is not None else []
    if done:
        ctx.log(f"resuming: {sum(len(c[3]) for c in done)} spectra of {len({c[0] for c in done})} files "
                "already fitted")
    on_chunk = checkpoint.save if checkpoint is not None else None
    if scheduler is None:
        fits = fit_many(files, config, ctx=ctx, n_jobs=n_workers, redshifts=redshifts, done=done, on_chunk=on_chunk)
    else:
        book = FitBook(len(files))
        for chunk in done:
            book.add(*chunk)
        book.on_chunk = on_chunk
        _fit_on_dask([str(f) for f in files], config, redshifts, scheduler, ctx, n_workers, book)
        fits = book.results()
    return [_plain(sf) for sf in fits]


def _plain(fit) -> dict:
    """The JSON record of a :class:`~galdesk.lines.results.SpectrumFit` (or of a record read back)."""
    from galdesk.lines.batch import fit_record
    from galdesk.lines.results import SpectrumFit

    return json.loads(json.dumps(fit_record(fit) if isinstance(fit, SpectrumFit) else fit, default=json_default))


def _fit_on_dask(files: list[str], config, redshifts, scheduler: str, ctx: TaskContext, n_workers, book) -> None:
    """The targets of ``files`` that :class:`~galdesk.lines.batch.FitBook` ``book`` lacks, on a Dask cluster:
    each file's first target (and its count), then the other chunks, added to ``book`` as they finish."""
    from dask.distributed import as_completed

    from galdesk.lines.batch import fit_chunk

    if not book.todo(1):  # all kept by the checkpoint: no cluster needed
        ctx.progress(1.0, f"{len(files)} files fitted before")
        return
    client, cluster = _client(scheduler, n_workers, 10.0)
    try:
        n_cores = max(1, sum((client.nthreads() or {}).values()))
        tasks: dict = {}

        def submit(i: int, a: int, b: int | None):
            fut = client.submit(fit_chunk, (files[i], a, b), pure=False, config=config, redshifts=redshifts)
            tasks[fut.key] = (fut, (i, a, b))
            return fut

        running = as_completed([submit(*t) for t in book.todo(n_cores)])
        for fut in running:
            _fut, (i, a, _b) = tasks.pop(fut.key)
            n_targets, fits = fut.result()  # a task that failed (a lost worker) stops the batch: a restart resumes
            fut.release()
            if book.add(i, a, n_targets, fits):
                for task in book.todo(n_cores, only=[i]):
                    running.add(submit(*task))
            ctx.progress(book.fraction(), f"{book.n_fits()} spectra fitted on the cluster")
            if ctx.cancelled():
                client.cancel([f for f, _ in tasks.values()])
                raise Cancelled()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    ctx.progress(1.0, f"{len(files)} files on the cluster")


def _stat(path) -> list:
    """``[path, size, mtime_ns]`` of a file (None, None when it is not there)."""
    try:
        st = Path(path).stat()
        return [str(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), None, None]


class LinesCheckpoint:
    """The finished chunks of a ``batch fit-lines`` run (:func:`lines_checkpoint`), as result records.

    Each chunk, ``(item, start, n_targets, fits)`` as :class:`galdesk.lines.batch.FitBook` reports it, is one file
    of a :class:`~galdesk.services.checkpoint.Checkpoint`, written atomically by this process: the records
    (:func:`galdesk.lines.batch.fit_record`, skips and errors with their reasons included) in JSON, whose numbers
    read back exactly.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._next: int | None = None

    @property
    def path(self) -> Path:
        """The folder of this batch's chunks."""
        return self.checkpoint.path

    def load(self) -> list[tuple[int, int, int, list[dict]]]:
        """``(item, start, n_targets, records)`` of every chunk kept (one that cannot be read is fitted again)."""
        kept = self.checkpoint.load()
        self._next = max(self.checkpoint.numbers(), default=-1) + 1
        out = []
        for _n, (_array, meta) in sorted(kept.items()):
            try:
                chunk = (int(meta["item"]), int(meta["start"]), int(meta["n_targets"]), list(meta["fits"]))
            except (KeyError, TypeError, ValueError):
                continue
            if chunk[0] >= 0 and chunk[1] >= 0 and all(isinstance(r, dict) for r in chunk[3]):
                out.append(chunk)
        return out

    def save(self, item: int, start: int, n_targets: int, fits: list) -> None:
        """Keep one finished chunk (``FitBook``'s ``on_chunk``)."""
        if self._next is None:
            self._next = max(self.checkpoint.numbers(), default=-1) + 1
        meta = {"item": item, "start": start, "n_targets": n_targets, "fits": [_plain(f) for f in fits]}
        self.checkpoint.save(self._next, (np.zeros(0, np.uint8), meta))
        self._next += 1

    def clear(self) -> None:
        """Remove the chunks (the table is written), and ``.galdesk-batch`` when nothing else is in it."""
        self.checkpoint.clear()


def lines_checkpoint(paths: list[str], config, output, z=None, catalogs=()) -> LinesCheckpoint:
    """The checkpoint of ``batch fit-lines PATHS -o OUTPUT``: in ``.galdesk-batch/`` beside the output table (there
    is no project), keyed by each input file's path, size and modification time, the
    :class:`~galdesk.lines.config.FitConfig` (and its template file's), ``z`` and the catalogues' files, and
    galdesk's version: a changed input or option never reuses fits made from the old one."""
    import dataclasses

    from galdesk import __version__
    from galdesk.lines.config import FitConfig

    config = config or FitConfig()
    key = {"files": [_stat(p) for p in paths], "config": dataclasses.asdict(config), "z": z,
           "catalogs": [_stat(c) for c in catalogs or ()], "version": __version__,
           "templates": _stat(config.stellar_templates) if config.stellar_templates else None}
    folder = Path(output).resolve().parent / BATCH_FOLDER
    return LinesCheckpoint(Checkpoint(None, "fit-lines", key, folder=folder))


def _chunks_on_dask(task: str, fn, project, index: np.ndarray, chunk: int, scheduler: str, ctx: TaskContext,
                    n_workers: int | None, key: dict, **kwargs) -> tuple[list, str, Checkpoint]:
    """``fn(part, project=..., **kwargs)`` for the stack rows ``index`` in parts of ``chunk``, on a Dask cluster,
    resumable (:class:`~galdesk.services.checkpoint.Checkpoint` keyed by ``key``, the rows, the chunk size and the
    device asked for); returns the ``(array, meta)`` results, the devices they ran on ("cpu (Dask)") and the
    checkpoint to clear once the caller has committed the results."""
    parts = [index[a:a + chunk] for a in range(0, index.size, chunk)]
    checkpoint = Checkpoint(project.path, task, {**key, "device": kwargs.get("device"), "index": index,
                                                 "chunk": chunk})
    done = run_on_dask(fn, parts, scheduler, ctx=ctx, n_workers=n_workers, project=str(project.path),
                       checkpoint=checkpoint, **kwargs) if parts else []
    used = "+".join(sorted({meta["device"] for _, meta in done}) or ["cpu"]) + " (Dask)"
    return done, used, checkpoint


def classify_batch(project, model: str, scheduler: str, ctx: TaskContext | None = None, n_workers: int | None = None,
                   device: str | None = None, tta: bool = False, label_column: str | None = None,
                   label_map: dict | None = None, chunk: int = 2048) -> dict:
    """:func:`galdesk.ml.service.classify_project` with the cut-outs classified on a Dask cluster, ``chunk`` at a
    time (each worker reads its cut-outs from the project's files, which it must see at the same path); the
    predictions are stored here. Returns the same summary. A batch that was killed continues from its finished
    chunks (:mod:`galdesk.services.checkpoint`)."""
    from galdesk.ml.infer import make_predictions
    from galdesk.ml.service import classify_chunk, classify_targets, store_predictions
    from galdesk.ml.weights import load_model
    from galdesk.project import as_project

    ctx = ctx or NullContext()
    project = as_project(project)
    project.check_writable("predictions")
    loaded = load_model(model)
    _group, rows, index = classify_targets(project, loaded)
    done, used, checkpoint = _chunks_on_dask("classify", classify_chunk, project, index, chunk, scheduler, ctx,
                                             n_workers, {"model": loaded.hash, "tta": tta}, model=str(model),
                                             device=device, tta=tta)
    probs = np.concatenate([p for p, _ in done]) if done else np.zeros((0, len(loaded.class_names)), np.float32)
    n_views = 8 if tta is True else (int(tta) if tta else 1)
    preds = make_predictions(probs, loaded.class_names, loaded.decision_threshold, model_id=loaded.id,
                             model_hash=loaded.hash, device=used, tta=n_views)
    summary = store_predictions(project, rows, preds, label_column, label_map)
    checkpoint.clear()
    return summary


def features_batch(project, model: str = "gz1-binary", rotations=False, scheduler: str = "local",
                   ctx: TaskContext | None = None, n_workers: int | None = None, device: str | None = None,
                   chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """:func:`galdesk.cluster.features.extract_features` with the cut-outs run through the network on a Dask
    cluster, ``chunk`` at a time; the result ``"features"`` is stored here, the same as a local run's. A batch that
    was killed continues from its finished chunks (:mod:`galdesk.services.checkpoint`)."""
    from galdesk.cluster.features import VIEWS, feature_targets, features_chunk, n_views
    from galdesk.project import as_project

    ctx = ctx or NullContext()
    project = as_project(project)
    project.check_writable("the features")
    nv = n_views(rotations)
    loaded, rows, index = feature_targets(project, model)
    if not index.size:
        raise ValueError(f"{project.path}: no cut-outs the model can take")
    done, used, checkpoint = _chunks_on_dask("features", features_chunk, project, index, chunk, scheduler, ctx,
                                             n_workers, {"model": loaded.hash, "views": VIEWS[nv]},
                                             model=str(model), views=VIEWS[nv], device=device)
    features = np.concatenate([f for f, _ in done]).mean(axis=1).astype(np.float32)
    info = {**done[0][1], "device": used}
    project.save_result("features", {"row": rows, "features": features}, {**info, "rotations": nv})
    checkpoint.clear()
    return rows, features
