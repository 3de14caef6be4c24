"""From a project's cut-outs to a Ward tree with rotation-consistency look-ups, and from cut sets to saved clusters.

:func:`cluster_project` is what the Dendrogram tab's "Compute features & cluster" button and ``galdesk cluster``
run (on a worker / in the terminal, with progress and cancel):

1. CNN penultimate features of every cut-out under the identity and ``rotations - 1`` rotated/flipped views, in
   one pass (:func:`galdesk.cluster.features.view_features`); the features of the unrotated cut-outs (or, with
   ``average=True``, their mean over the views) are stored as result ``"features"``;
2. standardisation + PCA to ``n_components`` dimensions, fitted on the galaxies (the copies are projected with
   the same transform); for the shape descriptors, the label-free invariance of
   :mod:`galdesk.cluster.invariance` instead (bundled, or learned on the project);
3. Ward linkage (:func:`galdesk.cluster.linkage.ward_linkage`: exact, or through micro-clusters where exact Ward
   would take too long; the objects are the leaves either way);
4. the nearest dendrogram leaf of every rotated copy (non-identity views only: the unrotated view is the galaxy
   itself), for at most ``consistency_sample`` galaxies drawn at random (the look-up costs copies x leaves);
5. the tree is stored as result ``"linkage"``.

:class:`~galdesk.cluster.model.ClusterModel` holds the outcome and answers cuts, labels, consistency and suggestions
quickly enough for a live preview. :func:`cluster_and_cut` adds what a fresh tree needs before anyone looks at it: an
optional VQ-VAE trained on the project first, and a first committed cut set (:func:`first_cuts`).
"""

from __future__ import annotations

import time

import numpy as np

from galdesk.cluster.consistency import nearest_leaves
from galdesk.cluster.cuts import normalize_cuts
from galdesk.cluster.descriptors import describe_views
from galdesk.cluster.features import (
    DESCRIPTORS,
    DESCRIPTORS_PCA,
    VIEWS,
    descriptor_projection,
    fit_pca,
    is_descriptors,
    load_feature_model,
    main_band_count,
    n_views,
    stack_and_rows,
    view_features,
)
from galdesk.cluster.invariance import MIN_GALAXIES, bundled_invariance, bundled_path, learn_invariance
from galdesk.cluster.linkage import DIRECT_SECONDS, N_MICRO, ward_linkage
from galdesk.cluster.model import ClusterModel
from galdesk.cluster.morphology import is_morphology, measure_morphology, morphology_features
from galdesk.cluster.store import DEFAULT_CLUSTERS, save_clusters, save_linkage
from galdesk.project import as_project
from galdesk.project.results import load_morphology
from galdesk.tasks import NullContext, ScaledContext, TaskContext

__all__ = ["cluster_project", "apply_cuts", "first_cuts", "cluster_and_cut", "MORPH_COPY_SAMPLE"]

#: galaxies whose turned copies are measured again with statmorph for rotation consistency (seconds per copy)
MORPH_COPY_SAMPLE = 200


def _features(project, model, nv: int, seed: int, sample: int, workers: int, batch_size: int, device, ctx):
    """``(rows, features (N, V, D), info, copy_objects, copies, projection)``: the views of every cut-out
    (V = ``nv``), or for the morphology its stored values (V = 1) and, measured now, the turned copies of a random
    sample of at most ``min(sample, MORPH_COPY_SAMPLE)`` galaxies (``copy_objects``: their positions;
    ``copies (m, nv - 1, D)``); ``projection``: the shape descriptors' learned invariance (None: PCA)."""
    if is_morphology(model):
        rows = project.image_rows(main_band_count(project))
        n = rows.size
        m = min(n, sample, MORPH_COPY_SAMPLE) if nv > 1 and n >= 2 else 0
        pick = np.sort(np.random.default_rng(seed).choice(n, m, replace=False)) if m else None
        rows, base, finfo, copies = morphology_features(project, rows, copies=nv - 1 if m else 0, copy_rows=pick,
                                                        workers=workers, ctx=ctx)
        return rows, base[:, None], finfo, pick, copies, None
    if is_descriptors(model):
        rows, stack = stack_and_rows(project, main_band_count(project))
    else:
        loaded = load_feature_model(model)
        rows, stack = stack_and_rows(project, loaded)
    if rows.size < 2:
        return rows, None, None, None, None, None
    proj = None
    if is_descriptors(model):
        feats, finfo = describe_views(stack, nv, ctx=ScaledContext(ctx, 0.0, 0.7))
        proj = _invariance(model, stack, seed, finfo, ScaledContext(ctx, 0.7, 1.0))
    else:
        feats, finfo = view_features(stack, loaded, VIEWS[nv], ctx=ctx, batch_size=batch_size, device=device)
    return rows, feats, finfo, None, None, proj


def _invariance(model, stack, seed: int, finfo: dict, ctx: TaskContext):
    """The projection of the shape descriptors ``model`` asks for (:mod:`galdesk.cluster.invariance`; None: PCA);
    notes which in ``finfo`` (``model_id``, ``model_hash``, ``projection`` in words, ``projection_kind``: ``"pca"``,
    ``"project"`` or the bundled invariance's id)."""
    mode = descriptor_projection(model)
    if mode == "pca":
        finfo.update(model_id=model.strip().lower(), projection="standardisation + PCA", projection_kind="pca")
        return None
    n, n_bands, size = (int(v) for v in np.shape(stack)[:3])
    proj = bundled_invariance() if mode == "auto" else None
    kind = proj.id if proj is not None and proj.fits(n_bands) else "project"
    if kind != "project":
        how = f"{proj.id} (bundled, learned without labels on {proj.card.get('n_galaxies', '?')} galaxies"
        learned_px = (proj.card.get("data") or {}).get("working_size_px")
        how += (f" at {learned_px} px; this project's cut-outs are {size} px)"
                if learned_px and int(learned_px) != size else ")")
    else:
        why = ("" if mode == "project" else
               f"the bundled invariance is not installed ({bundled_path()}); " if proj is None and mode == "auto"
               else f"no bundled invariance for {n_bands}-band cut-outs; ")
        if n < MIN_GALAXIES:
            if mode == "project":
                raise ValueError(f"learning the invariance needs at least {MIN_GALAXIES} galaxies, the project has "
                                 f"{n}; cluster with {DESCRIPTORS_PCA!r}"
                                 + (f" or the bundled one ({DESCRIPTORS!r})" if n_bands == 3 else ""))
            finfo.update(model_id=model.strip().lower(), projection_kind="pca",
                         projection=f"standardisation + PCA ({why}{n} galaxies are too few to learn one: "
                                    f"{MIN_GALAXIES} needed)")
            return None
        proj = learn_invariance(stack, seed=seed, ctx=ctx)
        how = (f"{why}learned on this project's {proj.card['n_galaxies']} galaxies "
               f"({proj.card['n_views']} augmented copies)")
    finfo.update(model_id=model.strip().lower(), model_hash=f"{finfo['model_hash']}+{proj.fingerprint}",
                 projection=how, projection_kind=kind)
    return proj


def cluster_project(project, model="gz1-binary", rotations: int = 4, average: bool = False,
                    n_components: int = 32, max_direct: int | None = None, n_micro: int = N_MICRO, seed: int = 0,
                    direct_seconds: float = DIRECT_SECONDS,
                    consistency_sample: int = 20_000, batch_size: int = 64, device: str | None = None,
                    ctx: TaskContext | None = None, save: bool = True, workers: int = 1) -> ClusterModel:
    """Features, PCA, Ward tree and rotated-copy look-ups of a project (steps in the module docstring).

    Parameters
    ----------
    project : Project or path
    model : str or LoadedModel
        Image CNN whose penultimate layer gives the features (bundled name or file), or ``"descriptors"``: the
        label-free shape descriptors of :mod:`galdesk.cluster.descriptors` (copies turned off the pixel grid;
        ``"descriptors:project"`` learns their invariance on the project, ``"descriptors:pca"`` takes PCA), or
        ``"morphology"``: the stored statmorph result of :mod:`galdesk.cluster.morphology` (its turned copies are
        measured again, for a random sample of at most :data:`MORPH_COPY_SAMPLE` galaxies; ``average`` has no
        views to average there).
    rotations : 0, 4 or 8
        Views computed: 4 rotations, or rotations and flips. 0: no copies (no consistency, no suggestions).
    average : bool
        Cluster the mean feature over the views instead of the unrotated cut-out's.
    n_components : int
        PCA dimensions kept (capped by the feature size).
    max_direct, n_micro, direct_seconds
        Exact Ward while it is predicted to take at most ``direct_seconds`` (or, with ``max_direct``, up to that
        many objects); above, exact Ward inside ``n_micro`` k-means micro-clusters under the size-weighted Ward of
        the micro-clusters, every object still a leaf (:func:`galdesk.cluster.linkage.ward_linkage`).
    seed : int
        For the micro-clusters and the consistency sample.
    consistency_sample : int
        Largest number of galaxies whose copies are looked up.
    ctx : TaskContext, optional
    save : bool
        Store ``"features"`` and ``"linkage"`` in the project.
    workers : int
        Processes measuring the morphology's turned copies.
    """
    ctx = ctx or NullContext()
    project = as_project(project)
    if save:
        project.check_writable("the features and the tree")
    t0 = time.monotonic()
    nv = n_views(rotations or False)
    ctx.progress(0.0, "Loading model")
    rows, feats, finfo, copy_objects, copies, proj = _features(project, model, nv, seed, consistency_sample, workers,
                                                         batch_size, device, ScaledContext(ctx, 0.0, 0.6))
    if rows.size < 2:
        raise ValueError(f"{project.path}: need at least two cut-outs the model can take to cluster, "
                         f"found {rows.size}")
    t_feat = time.monotonic() - t0
    base = feats.mean(axis=1) if average else feats[:, 0]
    if save:
        project.save_result("features", {"row": rows, "features": base.astype(np.float32)},
                            {**finfo, "rotations": nv if average else 1})
    ctx.check_cancelled()
    ctx.progress(0.6, "PCA" if proj is None else "Projecting")
    pca = fit_pca(base, n_components) if proj is None else proj
    X = pca.transform(base)
    tree = ward_linkage(X, ctx=ScaledContext(ctx, 0.62, 0.9), max_direct=max_direct, n_micro=n_micro, seed=seed,
                        direct_seconds=direct_seconds)
    copy_leaf, copy_objects = _copy_leaves(feats, pca, tree, consistency_sample, seed, ScaledContext(ctx, 0.9, 0.99),
                                           copy_objects, copies)
    info = {"model_id": finfo["model_id"], "model_hash": finfo["model_hash"], "device": finfo["device"],
            "layer": finfo["layer"], "feature_dim": finfo["dim"], "rotations": nv, "average": bool(average),
            "n_components": pca.n_components, "explained_variance": float(np.sum(pca.explained_variance_ratio)),
            "projection": finfo.get("projection", "standardisation + PCA"),
            "projection_kind": finfo.get("projection_kind", "pca"),
            "method": tree.method, "n_objects": int(rows.size), "n_leaves": tree.n_leaves,
            "seconds_features": t_feat, "seconds_linkage": float(tree.info.get("seconds", 0.0)),
            "seconds": time.monotonic() - t0, "consistency_sample": int(0 if copy_objects is None
                                                                          else copy_objects.size)}
    cm = ClusterModel(tree, rows, copy_leaf, copy_objects, info)
    if save:
        save_linkage(project, cm)
    ctx.progress(1.0, f"Clustered {rows.size} objects ({tree.method} Ward, {tree.n_leaves} leaves)")
    return cm


def _copy_leaves(feats, pca, tree, sample: int, seed: int, ctx: TaskContext, objects=None, copies=None):
    """Nearest leaf of the rotated copies (views 1..) of at most ``sample`` random galaxies, or of ``copies``
    (m, V-1, D) of the galaxies ``objects`` measured elsewhere (the morphology's): ``(copy_leaf, copy_objects)``,
    or ``(None, None)`` without copies."""
    if copies is None:
        n, nv = feats.shape[:2]
        if nv < 2:
            return None, None
        rng = np.random.default_rng(seed)
        objects = np.arange(n) if n <= sample else np.sort(rng.choice(n, sample, replace=False))
        copies = feats[objects, 1:]
    if objects is None or objects.size == 0:
        return None, None
    flat = pca.transform(copies.reshape(-1, copies.shape[-1])).reshape(objects.size, copies.shape[1], -1)
    return nearest_leaves(tree.leaf_features, flat, ctx=ctx), objects


def apply_cuts(project, cm: ClusterModel, cuts, author: str = "", source: str = "",
               cut_version: int | None = None) -> dict:
    """Cut ``cm`` with ``cuts``, save result ``"clusters"`` and a journal record; returns a summary dict
    (``cut_version``, ``n_clusters``, ``sizes``, ``consistency``, ``per_cluster``, ``cuts``)."""
    cuts = normalize_cuts(cuts, cm.tree.n_leaves)
    cut = cm.cut(cuts)
    labels = cm.labels(cut)
    cons = cm.consistency(cut)
    score = None if cons is None else cons.score
    version = save_clusters(project, labels, cm.rows, cuts, cut_version=cut_version, author=author, source=source,
                            linkage_id=cm.linkage_id, method=cm.tree.method, model_id=cm.info.get("model_id"),
                            model_hash=cm.info.get("model_hash"), consistency=score,
                            cluster_nodes=cut.cluster_nodes.tolist())
    return {"cut_version": version, "n_clusters": cut.n_clusters,
            "sizes": np.bincount(labels, minlength=cut.n_clusters).tolist(), "consistency": score,
            "strict_consistency": None if cons is None else cons.strict,
            "per_cluster": None if cons is None else [None if v != v else float(v) for v in cons.per_cluster],
            "cuts": {int(k): float(v) for k, v in cuts.items()}, "method": cm.tree.method}


def first_cuts(cm: ClusterModel, threshold: float = 0.8, n_clusters: int = DEFAULT_CLUSTERS,
               ctx: TaskContext | None = None):
    """The first cut set of a fresh tree: the cuts suggested by rotation consistency (``threshold``) when the tree
    has rotated copies, else a global cut into ``n_clusters`` clusters. Returns ``(cuts, suggestion)``, the
    :class:`~galdesk.cluster.consistency.Suggestion` or None for the global cut."""
    if cm.has_copies:
        sug = cm.suggest(threshold=threshold, ctx=ctx)
        return sug.cuts, sug
    return cm.cuts_for(n_clusters=min(n_clusters, cm.tree.n_leaves)), None


def cluster_and_cut(project, model="gz1-binary", rotations: int = 4, average: bool = False, threshold: float = 0.8,
                    train_vqvae: bool = False, author: str = "", source: str = "gui",
                    ctx: TaskContext | None = None, workers: int = 1,
                    train_contrastive: bool = False) -> tuple[ClusterModel, dict[int, float], dict]:
    """Features, tree and a first committed cut set, in one go (the Dendrogram tab's "Compute features & cluster").

    Parameters
    ----------
    project : Project or path
    model : str
        Feature model for :func:`cluster_project` (ignored with ``train_vqvae`` / ``train_contrastive``).
    rotations, average
        As :func:`cluster_project`.
    threshold : float
        Rotation-consistency threshold of the suggested first cuts (:func:`first_cuts`).
    train_vqvae : bool
        Train a VQ-VAE on the project's cut-outs first (:func:`galdesk.ml.vqvae.train_project_vqvae`, saved in
        ``PROJECT/models/vqvae.safetensors``) and take its features.
    train_contrastive : bool
        Train self-supervised SimCLR features on the project's cut-outs first
        (:func:`galdesk.ml.contrastive.train_project_contrastive`, saved in
        ``PROJECT/models/contrastive.safetensors``) and take them.
    workers : int
        Processes for statmorph when ``model`` is ``"morphology"``: a project without the stored result is
        measured first (:func:`galdesk.cluster.morphology.measure_morphology`), then its turned copies.
    author, source : str
        For the journal record of the first cuts; ``source`` is replaced by ``"suggest"`` for suggested cuts.

    Returns
    -------
    (ClusterModel, cuts, summary)
        The tree (layout computed), its first cut set and the :func:`apply_cuts` summary.
    """
    ctx = ctx or NullContext()
    project = as_project(project)
    lo = 0.0
    if train_vqvae:
        from galdesk.ml.vqvae import train_project_vqvae  # noqa: PLC0415 - torch only when asked for

        model = train_project_vqvae(project, ctx=ScaledContext(ctx, 0.0, 0.6))
        lo = 0.6
    elif train_contrastive:
        from galdesk.ml.contrastive import train_project_contrastive  # noqa: PLC0415 - torch only when asked for

        model = train_project_contrastive(project, ctx=ScaledContext(ctx, 0.0, 0.6))
        lo = 0.6
    elif is_morphology(model) and load_morphology(project) is None:
        measure_morphology(project, workers=workers, ctx=ScaledContext(ctx, 0.0, 0.6))
        lo = 0.6
    cm = cluster_project(project, model=model, rotations=rotations, average=average, ctx=ScaledContext(ctx, lo, 0.97),
                         workers=workers)
    _ = cm.layout                     # computed on the caller's (worker) thread
    cuts, suggestion = first_cuts(cm, threshold=threshold, ctx=ctx)
    out = apply_cuts(project, cm, cuts, source="suggest" if suggestion is not None else source, author=author)
    out["stopped_at_max_clusters"] = bool(suggestion is not None and suggestion.stopped_at_cap)
    ctx.progress(1.0, f"Clustered {cm.n_objects} galaxies: {out['n_clusters']} clusters")
    return cm, cuts, out
