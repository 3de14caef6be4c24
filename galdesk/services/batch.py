"""Batch work over many files, on this machine or on a Dask cluster.

The task functions are the same plain functions the GUI and the CLI use (:func:`galdesk.lines.batch.fit_one`,
:func:`galdesk.services.ingest.read_chunk`); this module only decides where they run:

* ``scheduler=None``: worker processes on this machine (one per core);
* ``scheduler="local"``: a Dask ``LocalCluster`` started here (useful to try a cluster set-up);
* ``scheduler="tcp://host:8786"`` (or a scheduler file path): an existing ``dask.distributed`` cluster, e.g. one
  started with ``dask scheduler`` / ``dask worker`` or dask-jobqueue on an HPC system. The workers need galdesk
  installed and the files visible at the same paths.

Progress is reported as results arrive; cancel stops waiting and cancels the futures not yet run.
"""

from __future__ import annotations

from pathlib import Path

from galdesk.tasks import Cancelled, NullContext, TaskContext

__all__ = ["fit_lines_batch", "run_on_dask"]


def run_on_dask(fn, items: list, scheduler: str, ctx: TaskContext | None = None, n_workers: int | None = None,
                connect_timeout: float = 10.0, **kwargs) -> list:
    """``[fn(item, **kwargs) for item in items]`` on a Dask cluster, in input order, with progress and cancel.

    ``connect_timeout`` (s): how long to try to reach a remote scheduler before giving up with an OSError.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    ctx = ctx or NullContext()
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    elif Path(scheduler).is_file():
        client = Client(scheduler_file=scheduler, timeout=connect_timeout)
    else:
        client = Client(scheduler, timeout=connect_timeout)
    try:
        futures = client.map(fn, items, pure=False, **kwargs)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(items)
        done = 0
        for fut in as_completed(futures):
            if ctx.cancelled():
                client.cancel(futures)
                raise Cancelled()
            results[index[fut.key]] = fut.result()
            done += 1
            ctx.progress(done / max(len(items), 1), f"{done}/{len(items)} on the cluster")
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def fit_lines_batch(paths: list[str], config=None, scheduler: str | None = None, ctx: TaskContext | None = None,
                    n_workers: int | None = None) -> list[dict]:
    """Fit the emission lines of spectrum files; one dict per file (failures carry ``error``)."""
    from galdesk.lines.batch import fit_many, fit_one

    if scheduler is None:
        return [sf.to_dict() for sf in fit_many(paths, config, ctx=ctx, n_jobs=n_workers)]
    fits = run_on_dask(fit_one, [str(p) for p in paths], scheduler, ctx=ctx, n_workers=n_workers, config=config)
    return [sf.to_dict() for sf in fits]
