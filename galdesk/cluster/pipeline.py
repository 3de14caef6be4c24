"""From a project's cut-outs to a Ward tree with rotation-consistency look-ups, and from cut sets to saved clusters.

:func:`cluster_project` is what the Dendrogram tab's "Compute features & cluster" button and ``galdesk cluster``
run (on a worker / in the terminal, with progress and cancel):

1. CNN penultimate features of every cut-out under the identity and ``rotations - 1`` rotated/flipped views, in
   one pass (:func:`galdesk.features.view_features`); the features of the unrotated cut-outs (or, with
   ``average=True``, their mean over the views) are stored as result ``"features"``;
2. standardisation + PCA to ``n_components`` dimensions, fitted on the galaxies (the copies are projected with
   the same transform);
3. Ward linkage (:func:`galdesk.cluster.linkage.ward_linkage`: exact, or micro-clusters above 20,000 objects);
4. the nearest dendrogram leaf of every rotated copy (non-identity views only: the unrotated view is the galaxy
   itself), for at most ``consistency_sample`` galaxies drawn at random (the look-up costs copies x leaves);
5. the tree is stored as result ``"linkage"``.

:class:`ClusterModel` holds the outcome and answers cuts, labels, consistency and suggestions quickly enough for
a live preview.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from galdesk.cluster.consistency import Consistency, Suggestion, nearest_leaves, rotation_consistency, suggest_cuts
from galdesk.cluster.cuts import CutResult, cut_for_n_clusters, cut_tree, normalize_cuts
from galdesk.cluster.layout import DendrogramLayout, dendrogram_layout
from galdesk.cluster.linkage import MAX_DIRECT, N_MICRO, WardTree, ward_linkage
from galdesk.cluster.tree import linkage_id
from galdesk.tasks import NullContext, TaskContext

__all__ = ["ClusterModel", "cluster_project", "apply_cuts", "ScaledContext"]


class ScaledContext(TaskContext):
    """Maps a step's progress 0..1 into ``[lo, hi]`` of a parent context; cancel and log go to the parent."""

    def __init__(self, parent: TaskContext, lo: float, hi: float) -> None:
        super().__init__()
        self.parent, self.lo, self.hi = parent, float(lo), float(hi)

    def progress(self, fraction: float, message: str = "") -> None:
        self.parent.progress(self.lo + (self.hi - self.lo) * min(max(float(fraction), 0.0), 1.0), message)

    def cancel(self) -> None:
        self.parent.cancel()

    def cancelled(self) -> bool:
        return self.parent.cancelled()

    def check_cancelled(self) -> None:
        self.parent.check_cancelled()

    def log(self, message: str) -> None:
        self.parent.log(message)


@dataclass
class ClusterModel:
    """A Ward tree of a project's objects and what is needed to cut and score it.

    Attributes
    ----------
    tree : WardTree
    rows : ndarray (N,) int64
        Object-table row of each object (object ``i`` of the tree is row ``rows[i]``).
    copy_leaf : ndarray (Ns, R) int64 or None
        Nearest leaf of each rotated/flipped copy of the galaxies ``copy_objects``.
    copy_objects : ndarray (Ns,) int64 or None
        Object index (into ``rows``) of each row of ``copy_leaf``.
    info : dict
        Model id/hash, rotations, PCA size, timings, ...
    """

    tree: WardTree
    rows: np.ndarray
    copy_leaf: np.ndarray | None = None
    copy_objects: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    _layout: DendrogramLayout | None = field(default=None, repr=False)
    _id: str | None = field(default=None, repr=False)

    @property
    def Z(self) -> np.ndarray:  # noqa: N802 - the usual name
        return self.tree.Z

    @property
    def n_objects(self) -> int:
        return int(self.rows.size)

    @property
    def root(self) -> int:
        return 2 * self.tree.n_leaves - 2

    @property
    def linkage_id(self) -> str:
        if self._id is None:
            self._id = linkage_id(self.tree.Z)
        return self._id

    @property
    def layout(self) -> DendrogramLayout:
        if self._layout is None:
            self._layout = dendrogram_layout(self.tree.Z)
        return self._layout

    @property
    def has_copies(self) -> bool:
        return self.copy_leaf is not None and self.copy_leaf.size > 0

    def cut(self, cuts) -> CutResult:
        """Clusters of the tree's leaves under ``cuts`` (numbered left to right)."""
        return cut_tree(self.tree.Z, cuts, self.layout.leaf_order)

    def labels(self, cut: CutResult) -> np.ndarray:
        """Cluster of each object."""
        return cut.labels[self.tree.leaf_of]

    def object_sizes(self, cut: CutResult) -> np.ndarray:
        return np.bincount(self.labels(cut), minlength=cut.n_clusters)

    def consistency(self, cut: CutResult) -> Consistency | None:
        """Rotation consistency of a cut (None without rotated copies)."""
        if not self.has_copies:
            return None
        labels = self.labels(cut)
        return rotation_consistency(labels, cut.labels[self.copy_leaf], self.copy_objects, cut.n_clusters)

    def suggest(self, threshold: float = 0.8, min_size: int | None = None, max_clusters: int = 50,
                ctx: TaskContext | None = None) -> Suggestion:
        """Cuts suggested by rotation consistency (:func:`galdesk.cluster.consistency.suggest_cuts`)."""
        if not self.has_copies:
            raise ValueError("no rotated copies: cluster with rotations=4 or 8 to get suggestions")
        return suggest_cuts(self.tree.Z, copy_leaf=self.copy_leaf, objects=self.copy_objects,
                            leaf_of=self.tree.leaf_of, leaf_sizes=self.tree.leaf_sizes, threshold=threshold,
                            min_size=min_size, max_clusters=max_clusters, ctx=ctx)

    def cuts_for(self, n_clusters: int | None = None, distance: float | None = None) -> dict[int, float]:
        """A global cut set: ``{root: distance}``, or the distance that gives ``n_clusters`` leaf clusters."""
        if distance is None:
            k = min(int(n_clusters or 1), self.tree.n_leaves)
            distance = cut_for_n_clusters(self.tree.Z, k)
        return {self.root: float(distance)}


def cluster_project(project, model="gz1-binary", rotations: int = 4, average: bool = False,
                    n_components: int = 32, max_direct: int = MAX_DIRECT, n_micro: int = N_MICRO, seed: int = 0,
                    consistency_sample: int = 20_000, batch_size: int = 64, device: str | None = None,
                    ctx: TaskContext | None = None, save: bool = True) -> ClusterModel:
    """Features, PCA, Ward tree and rotated-copy look-ups of a project (steps in the module docstring).

    Parameters
    ----------
    project : Project or path
    model : str or LoadedModel
        Image CNN whose penultimate layer gives the features (bundled name or file).
    rotations : 0, 4 or 8
        Views computed: 4 rotations, or rotations and flips. 0: no copies (no consistency, no suggestions).
    average : bool
        Cluster the mean feature over the views instead of the unrotated cut-out's.
    n_components : int
        PCA dimensions kept (capped by the feature size).
    max_direct, n_micro : int
        Above ``max_direct`` objects Ward runs on ``n_micro`` MiniBatchKMeans micro-clusters.
    seed : int
        For the micro-clusters and the consistency sample.
    consistency_sample : int
        Largest number of galaxies whose copies are looked up.
    ctx : TaskContext, optional
    save : bool
        Store ``"features"`` and ``"linkage"`` in the project.
    """
    from galdesk.features import VIEWS, _loaded, _n_views, _stack_and_rows, fit_pca, view_features  # noqa: PLC0415
    from galdesk.project import Project  # noqa: PLC0415

    ctx = ctx or NullContext()
    project = project if isinstance(project, Project) else Project.open(project)
    t0 = time.monotonic()
    nv = _n_views(rotations or False)
    ctx.progress(0.0, "Loading model")
    loaded = _loaded(model)
    rows, stack = _stack_and_rows(project, loaded)
    if rows.size < 2:
        raise ValueError(f"{project.path}: need at least two cut-outs the model can take to cluster, "
                         f"found {rows.size}")
    feats, finfo = view_features(stack, loaded, VIEWS[nv], ctx=ScaledContext(ctx, 0.0, 0.6),
                                 batch_size=batch_size, device=device)
    t_feat = time.monotonic() - t0
    base = feats.mean(axis=1) if average else feats[:, 0]
    if save:
        project.save_result("features", {"row": rows, "features": base.astype(np.float32)},
                            {**finfo, "rotations": nv if average else 1})
    ctx.check_cancelled()
    ctx.progress(0.6, "PCA")
    pca = fit_pca(base, n_components)
    X = pca.transform(base)
    tree = ward_linkage(X, ctx=ScaledContext(ctx, 0.62, 0.9), max_direct=max_direct, n_micro=n_micro, seed=seed)
    copy_leaf = copy_objects = None
    if nv > 1:
        n = rows.size
        rng = np.random.default_rng(seed)
        copy_objects = np.arange(n) if n <= consistency_sample else np.sort(rng.choice(n, consistency_sample,
                                                                                     replace=False))
        copies = pca.transform(feats[copy_objects, 1:].reshape(-1, feats.shape[-1]))
        copies = copies.reshape(copy_objects.size, nv - 1, -1)
        copy_leaf = nearest_leaves(tree.leaf_features, copies, ctx=ScaledContext(ctx, 0.9, 0.99))
    info = {"model_id": finfo["model_id"], "model_hash": finfo["model_hash"], "device": finfo["device"],
            "layer": finfo["layer"], "feature_dim": finfo["dim"], "rotations": nv, "average": bool(average),
            "n_components": pca.n_components,
            "explained_variance": float(np.sum(pca.explained_variance_ratio)),
            "method": tree.method, "n_objects": int(rows.size), "n_leaves": tree.n_leaves,
            "seconds_features": t_feat, "seconds_linkage": float(tree.info.get("seconds", 0.0)),
            "seconds": time.monotonic() - t0, "consistency_sample": int(0 if copy_objects is None
                                                                          else copy_objects.size)}
    cm = ClusterModel(tree, rows, copy_leaf, copy_objects, info)
    if save:
        from galdesk.cluster.store import save_linkage  # noqa: PLC0415

        save_linkage(project, cm)
    ctx.progress(1.0, f"Clustered {rows.size} objects ({tree.method} Ward, {tree.n_leaves} leaves)")
    return cm


def apply_cuts(project, cm: ClusterModel, cuts, author: str = "", source: str = "",
               cut_version: int | None = None) -> dict:
    """Cut ``cm`` with ``cuts``, save result ``"clusters"`` and a journal record; returns a summary dict
    (``cut_version``, ``n_clusters``, ``sizes``, ``consistency``, ``per_cluster``, ``cuts``)."""
    from galdesk.cluster.store import save_clusters  # noqa: PLC0415

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
