"""Rotation consistency of a clustering, and per-branch cuts suggested by it.

A galaxy's morphology does not depend on how it is turned on the sky, so the rotated and flipped copies of one
cut-out should fall in the galaxy's own cluster (Cheng et al. 2021 used galaxy orientation to decide how many
clusters a hierarchical clustering supports). Here each copy's feature vector is assigned to the **nearest leaf**
of the dendrogram (an object, or on the micro-cluster path a micro-cluster centroid), in the same feature space
the tree was built in; the copy then belongs to whatever cluster that leaf belongs to under a cut set. The nearest
leaves are found once (:func:`nearest_leaves`), after which scoring any cut set is a table look-up — cheap enough
to rescore during a drag.

Score of a cluster: the fraction of its galaxies' copies that land in it. Score of a cut set: the same fraction
over all copies (``score``), and the fraction of galaxies all of whose copies land home (``strict``).

Suggestion rule (:func:`suggest_cuts`): start with the whole tree as one cluster and repeatedly take the highest
cluster node (largest Ward merge distance first), while fewer than ``max_clusters`` clusters exist:

* if **both** children hold at least ``min_size`` galaxies, split the node only if **both** stay
  rotation-consistent at or above ``threshold`` (a child's score counts its galaxies' copies that land inside
  that child);
* if one child is smaller than ``min_size`` (Ward isolates a few outliers — artefacts, stars, mergers — high in
  the tree), split it off as a small cluster of its own when the other child is consistent; it is too small to
  judge and is not split further. Without this, two outliers at the top would block every other split;
* if both children are smaller than ``min_size``, keep the node.

A node that is not split stays a cluster. Every suggested cluster of at least ``min_size`` galaxies is therefore
rotation-consistent at ``threshold`` (except the root, when even its first split is not), and no consistent split
near the top is skipped in favour of a deeper one. The chosen clusters become a small per-branch cut set by
:func:`galdesk.cluster.cuts.frontier_to_cuts`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from galdesk.cluster.cuts import frontier_to_cuts
from galdesk.cluster.layout import dendrogram_layout
from galdesk.cluster.tree import check_linkage, children, n_leaves, node_heights
from galdesk.tasks import NullContext, TaskContext

__all__ = ["Consistency", "Suggestion", "nearest_leaves", "rotation_consistency", "suggest_cuts",
           "default_max_clusters"]


def nearest_leaves(leaf_features, copies, ctx: TaskContext | None = None, block: int = 8_000_000,
                   method: str = "auto") -> np.ndarray:
    """Index of the nearest leaf (Euclidean) of every copy.

    Parameters
    ----------
    leaf_features : array (m, D)
    copies : array (..., D)
        E.g. (N, R, D): R rotated/flipped copies of N objects, projected into the same space.
    ctx : TaskContext, optional
        Progress and cancel between chunks.
    block : int
        Distances held at once by the brute-force search (chunks of copies x leaves; 8M float32 = 32 MB).
    method : {"auto", "brute", "kdtree"}
        Both are exact. A k-d tree (SciPy) is ~7x faster on PCA-reduced features, whose variance sits in a few
        directions, but several times slower than brute force (float32 matrix products) on isotropic
        high-dimensional data; "auto" times both on up to 1,024 copies (fewer where that many copies times the
        leaves would exceed ``block``) and continues with the faster.

    Returns
    -------
    ndarray (...,) int64
        Same leading shape as ``copies``.
    """
    import time  # noqa: PLC0415

    ctx = ctx or NullContext()
    L = np.asarray(leaf_features, dtype=np.float32)
    C = np.asarray(copies, dtype=np.float32)
    lead = C.shape[:-1]
    C = C.reshape(-1, C.shape[-1])
    if C.shape[1] != L.shape[1]:
        raise ValueError(f"copies have {C.shape[1]} features, leaves {L.shape[1]}")
    m, total = L.shape[0], C.shape[0]
    out = np.empty(total, np.int64)
    l2 = np.einsum("ij,ij->i", L, L)

    def brute(block_c: np.ndarray) -> np.ndarray:
        # |c - l|^2 = |c|^2 - 2 c.l + |l|^2; |c|^2 does not change the arg-min
        return np.argmin(l2[None, :] - 2.0 * (block_c @ L.T), axis=1)

    tree = None
    done = 0
    if method == "auto" and total * m > 20_000_000:
        probe = min(total, 1024, max(8, block // m))     # the probe's distances stay within the block too
        t0 = time.perf_counter()
        out[:probe] = brute(C[:probe])
        t_brute = time.perf_counter() - t0
        from scipy.spatial import cKDTree  # noqa: PLC0415

        t0 = time.perf_counter()
        tree = cKDTree(L)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree.query(C[:probe], k=1)
        t_query = time.perf_counter() - t0
        done = probe
        scale = (total - probe) / probe
        if t_build + t_query * scale >= t_brute * scale:
            tree = None
    elif method == "kdtree":
        from scipy.spatial import cKDTree  # noqa: PLC0415

        tree = cKDTree(L)
    elif method not in ("auto", "brute"):
        raise ValueError(f"unknown method {method!r}")
    step = max(64, int(block) // max(1, m)) if tree is None else 16384
    for i in range(done, total, step):
        ctx.check_cancelled()
        chunk = C[i:i + step]
        out[i:i + step] = brute(chunk) if tree is None else tree.query(chunk, k=1)[1]
        ctx.progress(min(1.0, (i + step) / total), "Assigning rotated copies")
    return out.reshape(lead)


@dataclass
class Consistency:
    """Rotation consistency of a labelling.

    Attributes
    ----------
    score : float
        Fraction of all copies that land in their galaxy's cluster.
    strict : float
        Fraction of galaxies all of whose copies land in their cluster.
    per_object : ndarray (Ns,) float
        Per galaxy (those that have copies), the fraction of its copies at home.
    per_cluster : ndarray (k,) float
        Per cluster, the fraction of its galaxies' copies that land in it; NaN for a cluster without copies.
    n_copies : ndarray (k,) int
        Copies counted per cluster.
    """

    score: float
    strict: float
    per_object: np.ndarray
    per_cluster: np.ndarray
    n_copies: np.ndarray


def rotation_consistency(labels, copy_labels, objects=None, n_clusters: int | None = None) -> Consistency:
    """How often rotated/flipped copies land in their galaxy's cluster.

    Parameters
    ----------
    labels : array (N,) int
        Cluster of each galaxy.
    copy_labels : array (Ns, R) int
        Cluster of each copy (e.g. ``leaf_labels[nearest_leaves(...)]``).
    objects : array (Ns,) int, optional
        Which galaxy each row of ``copy_labels`` belongs to (default: all, in order).
    n_clusters : int, optional
        Length of ``per_cluster`` (default ``max(labels) + 1``).
    """
    labels = np.asarray(labels, np.int64)
    copy_labels = np.asarray(copy_labels, np.int64)
    if copy_labels.ndim == 1:
        copy_labels = copy_labels[:, None]
    objects = np.arange(labels.size) if objects is None else np.asarray(objects, np.int64)
    if objects.size != copy_labels.shape[0]:
        raise ValueError("one row of copy labels per object")
    k = int(n_clusters if n_clusters is not None else (labels.max() + 1 if labels.size else 0))
    own = labels[objects]
    home = copy_labels == own[:, None]
    per_object = home.mean(axis=1) if home.size else np.zeros(objects.size)
    r = copy_labels.shape[1]
    hits = np.bincount(own, weights=home.sum(axis=1), minlength=k)[:k]
    n_copies = (np.bincount(own, minlength=k)[:k] * r).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_cluster = np.where(n_copies > 0, hits / np.maximum(n_copies, 1), np.nan)
    score = float(home.mean()) if home.size else float("nan")
    strict = float(np.all(home, axis=1).mean()) if home.size else float("nan")
    return Consistency(score, strict, per_object, per_cluster, n_copies)


@dataclass
class Suggestion:
    """Per-branch cuts proposed from rotation consistency.

    Attributes
    ----------
    cuts : dict {node: distance}
        A cut set reproducing ``clusters`` (for :func:`galdesk.cluster.cuts.cut_tree`).
    clusters : list of int
        The suggested cluster nodes, left to right.
    scores : dict {node: float}
        Rotation consistency of each suggested cluster (within-subtree; 1.0 for the root).
    decisions : list of dict
        Every node examined: ``node``, ``height``, ``split`` (bool), ``reason``, and the children's scores.
    threshold, min_size, max_clusters : the parameters used
    """

    cuts: dict
    clusters: list
    scores: dict
    decisions: list = field(default_factory=list)
    threshold: float = 0.0
    min_size: int = 0
    max_clusters: int = 0

    @property
    def stopped_at_cap(self) -> bool:
        """True when ``max_clusters`` stopped a split that rotation consistency would have allowed: the number of
        clusters is then the cap's, not the tree's (features that ignore what the copies change, e.g. the shape
        descriptors' learned invariance, are consistent at every depth)."""
        return any(d["reason"] == "max_clusters" and all(sc >= self.threshold for sc in d["scores"])
                   for d in self.decisions)


def default_max_clusters(n_objects: int) -> int:
    """The suggestion's default cap: 50 clusters, and at most one per 10 galaxies below 500 (features that stay
    consistent at every depth would otherwise cut 150 galaxies into 50 clusters, many of one galaxy)."""
    return int(min(50, max(2, int(n_objects) // 10)))


def suggest_cuts(Z, features=None, rotated_features=None, *, copy_leaf=None, objects=None, leaf_of=None,
                 leaf_sizes=None, threshold: float = 0.8, min_size: int | None = None,
                 max_clusters: int | None = None, ctx: TaskContext | None = None) -> Suggestion:
    """Per-branch cuts that keep every cluster rotation-consistent (the rule is in the module docstring).

    Parameters
    ----------
    Z : array (m-1, 4)
        Ward linkage over ``m`` leaves.
    features : array (m, D), optional
        Feature vector of each leaf (needed only when ``copy_leaf`` is not given).
    rotated_features : array (Ns, R, D), optional
        Features of the rotated/flipped copies of galaxies ``objects`` (needed only without ``copy_leaf``).
    copy_leaf : array (Ns, R) int, optional
        Nearest leaf of each copy (from :func:`nearest_leaves`), if already known.
    objects : array (Ns,) int, optional
        Galaxy of each row of copies (default ``arange(Ns)``).
    leaf_of : array (N,) int, optional
        Leaf of each galaxy (default: galaxy i is leaf i, the direct path).
    leaf_sizes : array (m,) int, optional
        Galaxies per leaf (default: ``bincount(leaf_of)``).
    threshold : float
        Smallest accepted rotation consistency of each child of a split, in [0, 1].
    min_size : int, optional
        Clusters smaller than this are not split further and need no consistency of their own (default
        max(3, 0.5% of the galaxies)).
    max_clusters : int, optional
        Stop splitting at this many clusters (default :func:`default_max_clusters`: 50, fewer below 500 galaxies).
    """
    ctx = ctx or NullContext()
    Z = check_linkage(Z)
    m = n_leaves(Z)
    if copy_leaf is None:
        if features is None or rotated_features is None:
            raise ValueError("give copy_leaf, or the leaf features and the rotated features")
        copy_leaf = nearest_leaves(features, rotated_features, ctx=ctx)
    copy_leaf = np.asarray(copy_leaf, np.int64)
    if copy_leaf.ndim == 1:
        copy_leaf = copy_leaf[:, None]
    objects = np.arange(copy_leaf.shape[0]) if objects is None else np.asarray(objects, np.int64)
    leaf_of = np.arange(m) if leaf_of is None else np.asarray(leaf_of, np.int64)
    leaf_sizes = np.bincount(leaf_of, minlength=m) if leaf_sizes is None else np.asarray(leaf_sizes, np.int64)
    n_obj = int(leaf_sizes.sum())
    if min_size is None:
        min_size = max(3, int(np.ceil(0.005 * n_obj)))
    if max_clusters is None:
        max_clusters = default_max_clusters(n_obj)
    lay = dendrogram_layout(Z)
    h = node_heights(Z)
    a, b = children(Z)
    scorer = _SubtreeScorer(lay, leaf_sizes, leaf_of, objects, copy_leaf)
    root = 2 * m - 2
    decisions: list[dict] = []
    frontier: list[int] = []
    scores: dict[int, float] = {root: 1.0}
    heap = [(-h[root], root)]
    while heap:
        ctx.check_cancelled()
        _, v = heapq.heappop(heap)
        if v < m:
            frontier.append(v)
            continue
        ca, cb = int(a[v - m]), int(b[v - m])
        rec = _split_decision(v, float(h[v]), (ca, cb), scorer, threshold, min_size,
                              room=len(frontier) + len(heap) + 2 <= max_clusters)
        decisions.append(rec)
        if not rec["split"]:
            frontier.append(v)
            continue
        scores[ca], scores[cb] = rec["scores"]
        for child, size in ((ca, rec["sizes"][0]), (cb, rec["sizes"][1])):
            if size < min_size:
                frontier.append(child)                      # too small to judge: not split further
            else:
                heapq.heappush(heap, (-h[child], child))
    frontier.sort(key=lambda v: lay.span_lo[v])
    cuts = frontier_to_cuts(Z, frontier)
    return Suggestion(cuts, frontier, {v: scores[v] for v in frontier}, decisions, float(threshold), int(min_size),
                      int(max_clusters))


class _SubtreeScorer:
    """Objects per node and rotation consistency of any subtree, from the dendrogram layout: every subtree is a
    contiguous range of leaf positions, so its objects are a prefix-sum difference and its copies one slice of the
    copies sorted by the position of their own leaf."""

    def __init__(self, lay, leaf_sizes, leaf_of, objects, copy_leaf) -> None:
        self.lay = lay
        cum = np.concatenate([[0], np.cumsum(leaf_sizes[lay.leaf_order])])
        self.count = cum[lay.span_hi] - cum[lay.span_lo]
        r = copy_leaf.shape[1]
        own_pos = np.repeat(lay.leaf_pos[leaf_of[objects]], r)
        copy_pos = lay.leaf_pos[copy_leaf].ravel()
        srt = np.argsort(own_pos, kind="stable")
        self.own_pos, self.copy_pos = own_pos[srt], copy_pos[srt]

    def score(self, v: int) -> float:
        """Share of the copies of node ``v``'s galaxies that land in ``v`` (NaN without copies)."""
        lo, hi = self.lay.span_lo[v], self.lay.span_hi[v]
        i0, i1 = np.searchsorted(self.own_pos, [lo, hi])
        if i1 == i0:
            return float("nan")
        q = self.copy_pos[i0:i1]
        return float(np.count_nonzero((q >= lo) & (q < hi)) / (i1 - i0))


def _split_decision(v: int, height: float, kids: tuple[int, int], scorer: _SubtreeScorer, threshold: float,
                    min_size: int, room: bool) -> dict:
    """Whether node ``v`` is split into its children ``kids`` (the rule of the module docstring), as the
    inspectable record :class:`Suggestion` keeps: node, height, children, sizes, scores, split, reason."""
    ca, cb = kids
    sa, sb = scorer.score(ca), scorer.score(cb)
    rec = {"node": int(v), "height": height, "children": [ca, cb],
           "sizes": [int(scorer.count[ca]), int(scorer.count[cb])], "scores": [sa, sb]}
    small_a, small_b = scorer.count[ca] < min_size, scorer.count[cb] < min_size
    if not room:
        rec.update(split=False, reason="max_clusters")
    elif small_a and small_b:
        rec.update(split=False, reason="min_size")
    elif small_a or small_b:
        big_score = sb if small_a else sa
        if big_score >= threshold:                          # NaN (no copies) never passes
            rec.update(split=True, reason="outliers split off")
        else:
            rec.update(split=False, reason="inconsistent")
    elif not (sa >= threshold and sb >= threshold):
        rec.update(split=False, reason="inconsistent")
    else:
        rec.update(split=True, reason="consistent")
    return rec
