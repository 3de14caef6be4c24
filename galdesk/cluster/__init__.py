"""Hierarchical (Ward) clustering of learned features with per-branch cuts and rotation consistency.

Modules: :mod:`~galdesk.cluster.linkage` (Ward: fastcluster, or micro-clusters for very large N),
:mod:`~galdesk.cluster.cuts` (per-branch cut sets -> labels), :mod:`~galdesk.cluster.consistency` (rotation
consistency, suggested cuts), :mod:`~galdesk.cluster.layout` (dendrogram geometry in NumPy),
:mod:`~galdesk.cluster.features` (CNN / VQ-VAE features, PCA), :mod:`~galdesk.cluster.model` (the clustered
tree), :mod:`~galdesk.cluster.store` (results and journal), :mod:`~galdesk.cluster.pipeline` (project -> tree);
the command is :mod:`galdesk.cli.cluster` (``galdesk cluster``). See ``docs/clustering.md``.

Importing this package imports NumPy only (fastcluster, scikit-learn and torch load when used).
"""

from galdesk.cluster.consistency import Consistency, Suggestion, nearest_leaves, rotation_consistency, suggest_cuts
from galdesk.cluster.cuts import (
                                         CutResult,
                                         cut_for_n_clusters,
                                         cut_tree,
                                         effective_cut,
                                         frontier_to_cuts,
                                         labels_from_cuts,
                                         normalize_cuts,
)
from galdesk.cluster.layout import DendrogramLayout, dendrogram_layout, leaf_order, pick_node
from galdesk.cluster.linkage import WardTree, ward_linkage, weighted_ward
from galdesk.cluster.model import ClusterModel
from galdesk.cluster.pipeline import apply_cuts, cluster_project
from galdesk.cluster.store import load_cuts, load_linkage, save_clusters

__all__ = ["ward_linkage", "weighted_ward", "WardTree", "cut_tree", "labels_from_cuts", "CutResult",
           "normalize_cuts", "cut_for_n_clusters", "frontier_to_cuts", "effective_cut", "rotation_consistency",
           "nearest_leaves", "suggest_cuts", "Consistency", "Suggestion", "dendrogram_layout", "leaf_order",
           "pick_node", "DendrogramLayout", "save_clusters", "load_cuts", "load_linkage", "ClusterModel",
           "cluster_project", "apply_cuts"]
