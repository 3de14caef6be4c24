"""A clustered project: the Ward tree of its objects, the rotated copies' leaves, and quick cuts and scores.

Made by :func:`galdesk.cluster.pipeline.cluster_project`, stored and loaded by :mod:`galdesk.cluster.store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from galdesk.cluster.consistency import Consistency, Suggestion, rotation_consistency, suggest_cuts
from galdesk.cluster.cuts import CutResult, cut_for_n_clusters, cut_tree
from galdesk.cluster.layout import DendrogramLayout, dendrogram_layout
from galdesk.cluster.linkage import WardTree
from galdesk.cluster.tree import linkage_id
from galdesk.tasks import TaskContext

__all__ = ["ClusterModel"]


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

    def suggest(self, threshold: float = 0.8, min_size: int | None = None, max_clusters: int | None = None,
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
