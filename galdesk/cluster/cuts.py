"""Per-branch cuts of a dendrogram and the flat clusters they give.

A **cut set** is a dict ``{node_id: distance}``: "inside the subtree of ``node_id``, cut at this height". The
root's entry (node ``2n - 2``) is the global cut; a missing root entry means +inf (the whole tree is one cluster
unless a branch entry says otherwise). Node ids are those of the linkage matrix (see :mod:`galdesk.cluster.tree`).

Semantics: each leaf's cluster is decided by the **deepest** cut entry on its path to the root (the nearest
ancestor-or-self with an entry, its *scope*). Within that scope, the leaf's cluster is the largest subtree that
contains the leaf, lies inside the scope node and has height <= the scope's distance (SciPy's ``fcluster(...,
criterion="distance")`` rule, ties included). Consequences:

* with only a root entry ``t`` the result is exactly ``fcluster(Z, t, "distance")``;
* an entry on node ``v`` always makes ``v``'s subtree a boundary: no cluster straddles it. An entry at or above
  ``v``'s own height makes the whole branch one cluster; a lower one splits the branch more finely than its
  surroundings. If ``v`` lies inside a cluster ``u`` of an outer scope, ``u`` minus ``v``'s subtree stays one
  cluster (what a user means by "cut this branch" while looking at one cluster).

:func:`frontier_to_cuts` goes the other way: from a chosen set of cluster nodes to a small cut set that
reproduces them (used by the suggestions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galdesk.cluster.tree import (
    check_linkage,
    children,
    n_leaves,
    nearest_marked_ancestor,
    node_heights,
    node_sizes,
    parents,
)

__all__ = ["CutResult", "cut_tree", "labels_from_cuts", "normalize_cuts", "cuts_to_json", "cut_for_n_clusters",
           "frontier_to_cuts", "effective_cut"]


def normalize_cuts(cuts, n: int | None = None) -> dict[int, float]:
    """``{int node: float distance}`` from any mapping (JSON keys are strings); ValueError for bad node ids."""
    out: dict[int, float] = {}
    for k, v in dict(cuts or {}).items():
        node = int(k)
        if n is not None and not 0 <= node <= 2 * n - 2:
            raise ValueError(f"cut on node {node}: the tree has nodes 0 .. {2 * n - 2}")
        out[node] = float(v)
    return out


def cuts_to_json(cuts) -> dict[str, float]:
    """A cut set with string keys (for JSON attrs and journal payloads), in node order."""
    return {str(k): float(v) for k, v in sorted(normalize_cuts(cuts).items())}


@dataclass
class CutResult:
    """Flat clusters of a tree under a cut set.

    Attributes
    ----------
    labels : ndarray (n,) int64
        Cluster of each leaf, numbered 0 .. k-1 in the order clusters first appear from left to right in
        ``leaf_order`` (the dendrogram's order when given, else leaf id order).
    node_cluster : ndarray (2n-1,) int64
        Cluster of every node whose whole subtree belongs to one cluster root, -1 for nodes that are split.
        (A node inside cluster ``c`` whose subtree holds a deeper scope is still marked ``c`` only if it is
        not split; drawing code uses this to highlight a cluster's links.)
    cluster_nodes : ndarray (k,) int64
        The top node of each cluster (its root in the tree). For a cluster ``u`` minus a deeper branch, the
        node ``u``.
    sizes : ndarray (k,) int64
        Leaves per cluster.
    """

    labels: np.ndarray
    node_cluster: np.ndarray
    cluster_nodes: np.ndarray
    sizes: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_nodes.size)


def cut_tree(Z, cuts, leaf_order: np.ndarray | None = None) -> CutResult:
    """Flat clusters of the tree ``Z`` under the per-branch cut set ``cuts`` (see the module docstring).

    Parameters
    ----------
    Z : array (n-1, 4)
        Linkage matrix with non-decreasing heights along every path to the root (Ward's is).
    cuts : dict
        ``{node_id: distance}``; distances in the units of ``Z[:, 2]``.
    leaf_order : array (n,), optional
        Leaf ids in display order; clusters are numbered in this order.
    """
    Z = check_linkage(Z)
    n = n_leaves(Z)
    cuts = normalize_cuts(cuts, n)
    root = 2 * n - 2
    if n == 1:
        return CutResult(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64))
    h = node_heights(Z)
    par = parents(Z)
    has = np.zeros(2 * n - 1, bool)
    value = np.full(2 * n - 1, np.inf)
    if cuts:
        nodes = np.fromiter(cuts.keys(), np.int64, len(cuts))
        has[nodes] = True
        value[nodes] = np.fromiter(cuts.values(), np.float64, len(cuts))
    has[root] = True            # a missing global cut is +inf: value[root] stays inf
    scope = nearest_marked_ancestor(par, has)
    ok = h <= value[scope]
    ok[:n] = True               # a leaf is always a cluster of its own at worst (even for a negative cut)
    # a cluster root: not split, and the top of its chain (the root, a scope of its own, or a split parent)
    top = ok & (has | ~ok[par])
    top[root] = ok[root]
    # walk up from every node through unsplit, non-top nodes to its cluster root; stop on split nodes
    owner = nearest_marked_ancestor(par, top | ~ok)
    owner = np.where(ok, owner, -1)
    leaf_owner = owner[:n]
    order = np.arange(n) if leaf_order is None else np.asarray(leaf_order, np.int64)
    # number clusters by first appearance along the display order
    seq = leaf_owner[order]
    uniq, first = np.unique(seq, return_index=True)
    cluster_nodes = uniq[np.argsort(first, kind="stable")]
    rank = np.full(2 * n - 1, -1, np.int64)
    rank[cluster_nodes] = np.arange(cluster_nodes.size)
    labels = rank[leaf_owner]
    node_cluster = np.where(owner >= 0, rank[np.maximum(owner, 0)], -1)
    sizes = np.bincount(labels, minlength=cluster_nodes.size).astype(np.int64)
    return CutResult(labels.astype(np.int64), node_cluster.astype(np.int64), cluster_nodes.astype(np.int64), sizes)


def labels_from_cuts(Z, cuts, leaf_order: np.ndarray | None = None) -> np.ndarray:
    """Cluster label (0 .. k-1) of each leaf of ``Z`` under the per-branch cut set ``cuts``.

    See :func:`cut_tree` and the module docstring for the semantics; with ``cuts = {root: t}`` the partition is
    that of ``scipy.cluster.hierarchy.fcluster(Z, t, criterion="distance")``.
    """
    return cut_tree(Z, cuts, leaf_order).labels


def effective_cut(Z, cuts, node: int) -> float:
    """The distance that applies inside ``node``: its own entry, else its nearest ancestor's (inf if none)."""
    cuts = normalize_cuts(cuts)
    par = parents(Z)
    v = int(node)
    while True:
        if v in cuts:
            return cuts[v]
        if par[v] == v:
            return float("inf")
        v = int(par[v])


def cut_for_n_clusters(Z, k: int) -> float:
    """A global cut height that gives ``k`` clusters (midway between the two merge heights that bracket it).

    With tied merge heights the exact count may be unreachable; the cut then gives the nearest larger count.
    """
    Z = check_linkage(Z)
    n = n_leaves(Z)
    k = int(k)
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters from {n} objects")
    hs = np.sort(Z[:, 2])
    if k == 1:
        return float(hs[-1]) if hs.size else 0.0
    lo = hs[n - k - 1] if n - k - 1 >= 0 else 0.0   # the last merge kept
    hi = hs[n - k]                                    # the first merge undone
    return float(0.5 * (lo + hi))


def frontier_to_cuts(Z, frontier) -> dict[int, float]:
    """A small cut set whose clusters are exactly the subtrees of ``frontier`` (a set of nodes that covers
    every leaf once).

    Top-down from the root: a global cut just above the highest frontier node; a node that must be split but
    would not be under the inherited cut gets its own entry (the highest frontier height below it); a frontier
    node that would be split gets an entry at its own height.
    """
    Z = check_linkage(Z)
    n = n_leaves(Z)
    root = 2 * n - 2
    frontier = {int(f) for f in frontier}
    h = node_heights(Z)
    a, b = children(Z)
    sizes = node_sizes(Z)
    if sum(int(sizes[f]) for f in frontier) != n:
        raise ValueError("frontier nodes must cover every leaf exactly once")
    if root in frontier:
        return {root: float(h[root])}
    # highest frontier node below each internal node (bottom-up)
    is_front = np.zeros(2 * n - 1, bool)
    is_front[list(frontier)] = True
    best = np.where(is_front, h, -np.inf)
    for i in range(n - 1):
        v = n + i
        if not is_front[v]:
            best[v] = max(best[a[i]], best[b[i]])
    cuts: dict[int, float] = {root: float(best[root])}
    stack = [(root, float(best[root]))]
    while stack:
        v, t = stack.pop()
        if is_front[v]:
            if h[v] > t:
                cuts[v] = float(h[v])
            continue
        if v < n:
            raise ValueError(f"leaf {v} is not covered by the frontier")
        if h[v] <= t:                      # would stay whole: give it its own, lower cut
            t = float(best[v])
            if h[v] <= t:                  # tie with a frontier node below: only explicit entries work
                t = float(np.nextafter(h[v], -np.inf))
            cuts[v] = t
        i = v - n
        stack.append((int(a[i]), t))
        stack.append((int(b[i]), t))
    return cuts
