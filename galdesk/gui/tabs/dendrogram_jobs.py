"""The Dendrogram tab's worker jobs: plain functions of a project path (no Qt), run by
:class:`galdesk.gui.worker.TaskRunner`.

Each job opens the project on the worker thread (a Project and its journal connection belong to the thread that
opened them), calls the core (:mod:`galdesk.cluster.pipeline`, :mod:`galdesk.cluster.store`) and closes it again.
The core is imported when a job runs, not when the window starts.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["VQVAE_TRAIN", "CONTRASTIVE_TRAIN", "compute_job", "load_job", "save_job", "suggest_job", "current_author"]

VQVAE_TRAIN = "vqvae:train"   # model-combo entry: train a VQ-VAE on the project first
CONTRASTIVE_TRAIN = "contrastive:train"   # model-combo entry: train SimCLR features on the project first


@contextmanager
def _opened(path):
    from galdesk.project import Project

    project = Project.open(path)
    try:
        yield project
    finally:
        project.close()


def compute_job(path, model, rotations, average, threshold, author, ctx=None):
    """Features, tree and first cuts (:func:`galdesk.cluster.pipeline.cluster_and_cut`): ``(cm, cuts, summary)``.
    ``model`` :data:`VQVAE_TRAIN` / :data:`CONTRASTIVE_TRAIN` trains a VQ-VAE / SimCLR network on the project first;
    ``"morphology"`` measures it first where the project has none (statmorph on worker processes)."""
    from galdesk.cluster.pipeline import cluster_and_cut
    from galdesk.services.ingest import default_workers

    vqvae, contrastive = model == VQVAE_TRAIN, model == CONTRASTIVE_TRAIN
    with _opened(path) as project:
        return cluster_and_cut(project, model=None if (vqvae or contrastive) else model, rotations=rotations,
                               average=average, threshold=threshold, train_vqvae=vqvae,
                               train_contrastive=contrastive, author=author, source="gui", ctx=ctx,
                               workers=default_workers())


def load_job(path, ctx=None):
    """The stored tree and its cuts (:func:`galdesk.cluster.store.load_clustering`), or None."""
    from galdesk.cluster.store import load_clustering

    with _opened(path) as project:
        return load_clustering(project)


def save_job(path, cm, cuts, source, author, ctx=None):
    """Commit a cut set (:func:`galdesk.cluster.pipeline.apply_cuts`): its summary."""
    from galdesk.cluster.pipeline import apply_cuts

    with _opened(path) as project:
        return apply_cuts(project, cm, cuts, source=source, author=author)


def suggest_job(cm, threshold, min_size, ctx=None):
    """Cuts suggested by rotation consistency (:meth:`galdesk.cluster.model.ClusterModel.suggest`)."""
    return cm.suggest(threshold=threshold, min_size=min_size, ctx=ctx)


def current_author() -> str:
    """Who commits cuts from this desktop (:func:`galdesk.vetting.default_vetter`)."""
    from galdesk.vetting import default_vetter

    return default_vetter()
