"""Clustering results in a project: the tree (result ``"linkage"``), the current clusters (result ``"clusters"``)
and every cut change (journal records of kind ``"cuts"``).

``"clusters"`` (read by :func:`galdesk.project.results.load_clusters` and the export's ``cluster`` column)
    arrays ``row`` (object-table rows), ``label`` (int, 0 .. k-1); attrs ``cut_version`` (int, increasing),
    ``cuts`` ({"node": distance}), ``linkage_id`` (fingerprint of the tree the node ids refer to),
    ``n_clusters``, ``method``, ``model_id``, ``model_hash``, ``consistency`` and anything the caller adds.
``"linkage"``
    arrays ``Z``, ``row``, ``leaf_of``, ``leaf_sizes``, optionally ``copy_leaf`` (nearest leaf of each rotated copy)
    and ``copy_objects``; attrs ``method``, ``linkage_id``, the feature model and PCA settings, timings.
journal ``"cuts"``
    key = ``linkage_id``; payload ``cut_version``, ``cuts``, ``n_clusters``, ``sizes``, ``consistency``,
    ``source`` — append-only, so every cut set ever committed can be recovered.
"""

from __future__ import annotations

import numpy as np

from galdesk.cluster.cuts import cuts_to_json, normalize_cuts
from galdesk.cluster.linkage import WardTree
from galdesk.cluster.model import ClusterModel

__all__ = ["save_clusters", "load_cuts", "next_cut_version", "save_linkage", "load_linkage", "cut_history",
           "load_clustering", "DEFAULT_CLUSTERS"]

DEFAULT_CLUSTERS = 8   # the first global cut of a tree when nothing better is known


def next_cut_version(project) -> int:
    """1 + the number of cut records so far (the journal is append-only, so versions never repeat)."""
    return int(project.journal.count("cuts")) + 1


def save_clusters(project, labels, rows, cuts, cut_version: int | None = None, author: str = "",
                  source: str = "", **attrs) -> int:
    """Write result ``"clusters"`` and append a ``"cuts"`` journal record; returns the cut version.

    Parameters
    ----------
    project : Project
    labels : array (N,) int
        Cluster of each object.
    rows : array (N,) int
        Object-table rows of those objects.
    cuts : dict {node: distance}
        The cut set that produced ``labels``.
    cut_version : int, optional
        Default: :func:`next_cut_version`.
    author, source : str
        Who committed the cuts and from where (``"gui"``, ``"cli"``, ``"suggest"``...), for the journal.
    **attrs
        More attributes for the result (``linkage_id``, ``method``, ``consistency``...).
    """
    labels = np.asarray(labels, np.int64)
    rows = np.asarray(rows, np.int64)
    if labels.shape != rows.shape:
        raise ValueError(f"{labels.size} labels for {rows.size} rows")
    version = int(cut_version) if cut_version is not None else next_cut_version(project)
    cj = cuts_to_json(cuts)
    sizes = np.bincount(labels).tolist() if labels.size else []
    meta = {k: _plain(v) for k, v in attrs.items()}
    meta.update(cut_version=version, cuts=cj, n_clusters=len(sizes))
    # the journal first: if the result write fails, the record of what the user chose is still there
    project.journal.append("cuts", str(meta.get("linkage_id", "")),
                           {"cut_version": version, "cuts": cj, "n_clusters": len(sizes), "sizes": sizes,
                            "source": source, **{k: meta[k] for k in ("linkage_id", "method", "consistency",
                                                                      "model_id") if k in meta}},
                           author=author)
    project.save_result("clusters", {"row": rows, "label": labels}, meta)
    return version


def load_cuts(project) -> tuple[dict[int, float], dict] | None:
    """The cut set of the stored clusters and all their attrs, or None."""
    res = project.load_result("clusters")
    if res is None:
        return None
    _, attrs = res
    return normalize_cuts(attrs.get("cuts") or {}), attrs


def cut_history(project, linkage_id: str | None = None) -> list:
    """Journal ``"cuts"`` records (all, or those of one tree), oldest first."""
    return project.journal.records("cuts", key=linkage_id)


def save_linkage(project, model) -> None:
    """Store a :class:`galdesk.cluster.model.ClusterModel` as result ``"linkage"``."""
    t = model.tree
    arrays = {"Z": t.Z, "row": model.rows, "leaf_of": t.leaf_of, "leaf_sizes": t.leaf_sizes}
    if t.micro_of is not None:
        arrays["micro_of"] = t.micro_of
    if model.copy_leaf is not None:
        arrays["copy_leaf"] = model.copy_leaf
        arrays["copy_objects"] = model.copy_objects
    attrs = {k: _plain(v) for k, v in model.info.items()}
    attrs.update(method=t.method, linkage_id=model.linkage_id, tree_info={k: _plain(v) for k, v in t.info.items()})
    project.save_result("linkage", arrays, attrs)


def load_linkage(project):
    """The stored :class:`galdesk.cluster.model.ClusterModel`, or None."""
    res = project.load_result("linkage")
    if res is None:
        return None
    arrays, attrs = res
    Z = np.asarray(arrays["Z"], np.float64).reshape(-1, 4)
    m = Z.shape[0] + 1
    tree = WardTree(Z, np.asarray(arrays["leaf_of"], np.int64), np.zeros((m, 0), np.float32),
                    np.asarray(arrays["leaf_sizes"], np.int64), str(attrs.get("method", "direct")),
                    dict(attrs.get("tree_info") or {}),
                    micro_of=np.asarray(arrays["micro_of"], np.int64) if "micro_of" in arrays else None)
    info = {k: v for k, v in attrs.items() if k not in ("tree_info",)}
    return ClusterModel(tree, np.asarray(arrays["row"], np.int64),
                        np.asarray(arrays["copy_leaf"], np.int64) if "copy_leaf" in arrays else None,
                        np.asarray(arrays["copy_objects"], np.int64) if "copy_objects" in arrays else None, info)


def load_clustering(project, n_clusters: int = DEFAULT_CLUSTERS):
    """The stored tree and the cut set to show with it, or None without a stored tree.

    The cuts are the stored ones when they belong to this tree (same ``linkage_id``), else a global cut into
    ``n_clusters`` clusters (at most one per leaf). The dendrogram layout is computed here, so that a caller on a
    worker thread leaves none of it to the GUI thread.

    Returns
    -------
    (ClusterModel, dict {node: distance}) or None
    """
    cm = load_linkage(project)
    if cm is None:
        return None
    _ = cm.layout
    stored = load_cuts(project)
    if stored is not None and stored[1].get("linkage_id") == cm.linkage_id:
        return cm, stored[0]
    return cm, cm.cuts_for(n_clusters=min(n_clusters, cm.tree.n_leaves))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v
