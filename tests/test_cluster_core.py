"""galdesk.cluster without data files: cuts against SciPy and hand-built trees, weighted Ward against fastcluster,
the NumPy dendrogram layout against SciPy's, rotation consistency and suggested cuts on synthetic features."""

from __future__ import annotations

import fastcluster
import numpy as np
import pytest
from scipy.cluster.hierarchy import dendrogram, fcluster, leaves_list

from galdesk.cluster import (
    cut_for_n_clusters,
    cut_tree,
    dendrogram_layout,
    effective_cut,
    frontier_to_cuts,
    labels_from_cuts,
    nearest_leaves,
    pick_node,
    rotation_consistency,
    suggest_cuts,
    ward_linkage,
    weighted_ward,
)
from galdesk.cluster.layout import subtree_nodes
from galdesk.tasks import Cancelled, RecordingContext


def partition(labels) -> set:
    """A labelling as a set of frozensets of indices (label values do not matter)."""
    labels = np.asarray(labels)
    return {frozenset(np.flatnonzero(labels == v).tolist()) for v in np.unique(labels)}


def blobs(n_per=60, centres=((0, 0), (20, 0), (0, 20), (20, 20)), d=6, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k, c in enumerate(centres):
        mu = np.zeros(d)
        mu[:2] = c
        X.append(mu + rng.normal(size=(n_per, d)))
        y += [k] * n_per
    return np.vstack(X), np.asarray(y)


# A hand-built tree over 6 leaves:            root 10 (h 10)
#                                             /           \
#                                     9 (h 5)              8 (h 2)
#                                    /      \             /     \
#                              6 (h 1)    7 (h 1.5)      4       5
#                              /   \      /   \
#                             0     1    2     3
HAND = np.array([[0, 1, 1.0, 2], [2, 3, 1.5, 2], [4, 5, 2.0, 2], [6, 7, 5.0, 4], [8, 9, 10.0, 6]])


@pytest.mark.parametrize("cuts, expected", [
    ({10: 6}, [{0, 1, 2, 3}, {4, 5}]),
    ({10: 5}, [{0, 1, 2, 3}, {4, 5}]),                         # a cut at a merge height keeps it (<=)
    ({10: 6, 9: 3}, [{0, 1}, {2, 3}, {4, 5}]),                  # the branch is cut finer
    ({10: 1.8, 9: 6}, [{0, 1, 2, 3}, {4}, {5}]),                # the branch is kept whole under a low global cut
    ({10: 20, 6: 0.5}, [{0}, {1}, {2, 3, 4, 5}]),               # inside one cluster: branch carved out
    ({10: 20, 9: 5}, [{0, 1, 2, 3}, {4, 5}]),                   # an entry is a boundary even at its own height
    ({7: 1.0}, [{0, 1, 4, 5}, {2}, {3}]),                       # no global entry: +inf outside the branch
    ({10: -1}, [{0}, {1}, {2}, {3}, {4}, {5}]),                 # below every merge: singletons
    ({}, [{0, 1, 2, 3, 4, 5}]),
    ({10: 6, 9: 3, 6: 0.1}, [{0}, {1}, {2, 3}, {4, 5}]),        # nested branch cuts: the deepest decides
])
def test_per_branch_cuts_on_a_hand_built_tree(cuts, expected):
    res = cut_tree(HAND, cuts)
    assert partition(res.labels) == {frozenset(s) for s in expected}
    assert res.n_clusters == len(expected) and res.sizes.sum() == 6
    # every leaf's label names a cluster whose top node is an ancestor-or-self of it
    for leaf, lab in enumerate(res.labels):
        top = res.cluster_nodes[lab]
        assert subtree_nodes(HAND, top)[leaf]


def test_node_cluster_marks_whole_subtrees_and_split_nodes():
    res = cut_tree(HAND, {10: 6, 9: 3})
    nc = res.node_cluster
    assert nc[10] == -1 and nc[9] == -1            # split
    assert nc[6] == nc[0] == nc[1] != -1
    assert nc[7] == nc[2] == nc[3] != nc[6]
    assert nc[8] == nc[4] == nc[5]
    assert effective_cut(HAND, {10: 6, 9: 3}, 6) == 3.0 and effective_cut(HAND, {10: 6}, 7) == 6.0


def test_clusters_are_numbered_left_to_right_in_the_dendrogram():
    lay = dendrogram_layout(HAND)
    res = cut_tree(HAND, {10: 1.8}, lay.leaf_order)
    seq = res.labels[lay.leaf_order]
    assert seq[0] == 0 and np.all(np.diff(np.unique(seq, return_index=True)[1]) > 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_cut_equals_scipy_fcluster(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(250, 5))
    Z = fastcluster.linkage_vector(X, method="ward")
    root = 2 * 250 - 2
    heights = Z[:, 2]
    ts = list(rng.uniform(0, heights.max() * 1.1, 20)) + list(heights[[0, 50, 120, 200, -2, -1]]) + [0.0]
    for t in ts:
        assert partition(labels_from_cuts(Z, {root: t})) == partition(fcluster(Z, t, criterion="distance")), t
    for k in (1, 2, 3, 7, 30, 250):
        t = cut_for_n_clusters(Z, k)
        assert len(np.unique(labels_from_cuts(Z, {root: t}))) == k
        assert partition(labels_from_cuts(Z, {root: t})) == partition(fcluster(Z, k, criterion="maxclust"))


def _reference_labels(Z, cuts):
    """Straight from the definition: per leaf, the deepest entry on its path decides; climb while inside that
    scope and at most its distance."""
    n = Z.shape[0] + 1
    parent = {}
    for i, (a, b) in enumerate(Z[:, :2].astype(int)):
        parent[a] = parent[b] = n + i
    height = {v: (0.0 if v < n else Z[v - n, 2]) for v in range(2 * n - 1)}
    root = 2 * n - 2
    out = []
    for leaf in range(n):
        path = [leaf]
        while path[-1] != root:
            path.append(parent[path[-1]])
        scope_i = next((i for i, v in enumerate(path) if v in cuts), None)
        t = cuts[path[scope_i]] if scope_i is not None else np.inf
        limit = scope_i if scope_i is not None else len(path) - 1
        top = leaf
        for i in range(1, limit + 1):
            if height[path[i]] <= t:
                top = path[i]
            else:
                break
        out.append((path[scope_i] if scope_i is not None else -1, top))
    return out


def test_random_per_branch_cut_sets_match_the_definition():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 3))
    Z = fastcluster.linkage_vector(X, method="ward")
    n = 120
    for trial in range(40):
        nodes = rng.choice(np.arange(n, 2 * n - 1), size=rng.integers(0, 8), replace=False)
        cuts = {int(v): float(rng.uniform(0, Z[v - n, 2] * 1.3)) for v in nodes}
        if rng.random() < 0.7:
            cuts[2 * n - 2] = float(rng.uniform(0, Z[-1, 2] * 1.1))
        ref = _reference_labels(Z, cuts)
        assert partition(labels_from_cuts(Z, cuts)) == partition([hash(r) for r in ref]), cuts


def test_frontier_to_cuts_reproduces_any_frontier():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 4))
    Z = fastcluster.linkage_vector(X, method="ward")
    n = 150
    for trial in range(30):
        frontier, stack = [], [2 * n - 2]
        while stack:                                 # a random antichain: split each node with probability p
            v = stack.pop()
            if v >= n and rng.random() < 0.75:
                stack += [int(Z[v - n, 0]), int(Z[v - n, 1])]
            else:
                frontier.append(v)
        cuts = frontier_to_cuts(Z, frontier)
        res = cut_tree(Z, cuts)
        assert set(res.cluster_nodes.tolist()) == set(frontier)
        assert len(cuts) <= len(frontier) + 1


def test_weighted_ward_equals_fastcluster_and_duplicated_points():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    assert np.allclose(weighted_ward(X, np.ones(200)), fastcluster.linkage_vector(X, method="ward"))
    U = rng.normal(size=(50, 4))
    w = rng.integers(1, 6, 50)
    Zd = fastcluster.linkage_vector(np.repeat(U, w, axis=0), method="ward")
    Zw = weighted_ward(U, w)
    # duplicates merge at height 0 first; above that, a group of w identical points is a weighted centroid
    assert np.allclose(Zd[-49:, 2], Zw[:, 2])
    assert np.all(Zw[:, 3] >= 2) and Zw[-1, 3] == 50


def test_ward_linkage_direct_and_micro_paths():
    X, y = blobs(n_per=400, d=4)
    direct = ward_linkage(X, max_direct=5000, n_micro=80)
    assert direct.method == "direct" and direct.n_leaves == len(X) and direct.info["path"] == "max_direct=5000"
    assert np.allclose(direct.Z, fastcluster.linkage_vector(X, method="ward"))
    ctx = RecordingContext()
    micro = ward_linkage(X, ctx=ctx, max_direct=500, n_micro=80, seed=1)
    # every object is a leaf on the micro path too
    assert micro.method == "micro" and micro.n_leaves == len(X) and micro.leaves_are_objects
    assert np.array_equal(micro.leaf_of, np.arange(len(X))) and micro.leaf_sizes.sum() == len(X)
    assert micro.micro_of.shape == (len(X),) and micro.info["n_micro_used"] == len(np.unique(micro.micro_of)) <= 80
    assert "micro-clusters, exact inside each" in micro.describe()
    assert ctx.reports[-1][0] == 1.0
    # four far-apart blobs: four clusters, each exactly one blob
    root = 2 * micro.n_leaves - 2
    labels = cut_tree(micro.Z, {root: cut_for_n_clusters(micro.Z, 4)}).labels[micro.leaf_of]
    assert partition(labels) == partition(y)
    with pytest.raises(Cancelled):
        ward_linkage(X, ctx=RecordingContext(cancel_after=3), max_direct=500, n_micro=80)


def test_micro_path_is_exact_ward_inside_each_micro_cluster_under_their_weighted_ward():
    from scipy.cluster.hierarchy import is_monotonic, is_valid_linkage, to_tree

    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(c, 1.0, size=(300, 6)) for c in (0.0, 3.0, 9.0)])
    t = ward_linkage(X, max_direct=100, n_micro=40, seed=2)
    Z, n = t.Z, len(X)
    assert is_valid_linkage(Z) and is_monotonic(Z) and Z[-1, 3] == n
    root = to_tree(Z)
    by_members = {}
    for node in _nodes(root):
        by_members[frozenset(node.pre_order())] = node
    upper_heights = []
    for c in np.unique(t.micro_of):
        members = np.flatnonzero(t.micro_of == c)
        node = by_members.get(frozenset(members.tolist()))
        assert node is not None, f"micro-cluster {c} is not one subtree"
        if members.size > 1:   # its subtree is fastcluster's Ward of its members (same merge heights)
            sub = fastcluster.linkage_vector(X[members], method="ward")
            inner = sorted(x.dist for x in _nodes(node) if not x.is_leaf())
            assert np.allclose(inner, sorted(sub[:, 2]))
        upper_heights.append(node.dist)
    # above the micro-clusters: the size-weighted Ward of their centroids, raised only where a child is higher
    cents = np.array([X[t.micro_of == c].mean(axis=0) for c in np.unique(t.micro_of)])
    sizes = np.bincount(t.micro_of)
    Zu = weighted_ward(cents, sizes[sizes > 0])
    top = np.sort(Z[:, 2])[-(len(cents) - 1):]
    assert t.info["n_raised"] >= 0 and np.all(top >= np.sort(Zu[:, 2]) - 1e-9)
    assert np.isclose(Z[-1, 2], max(Zu[-1, 2], max(upper_heights)))


def _nodes(node):
    stack, out = [node], []
    while stack:
        x = stack.pop()
        out.append(x)
        if not x.is_leaf():
            stack.extend([x.left, x.right])
    return out


def test_the_path_is_chosen_by_the_measured_cost_of_exact_ward():
    from galdesk.cluster.linkage import PROBE, choose_path

    rng = np.random.default_rng(0)
    X = rng.normal(size=(PROBE + 500, 8))
    assert choose_path(X[:PROBE], direct_seconds=0.0) == (True, 0.0)       # nothing to gain from a probe
    ok, predicted = choose_path(X, direct_seconds=1e9)
    assert ok and predicted > 0
    assert choose_path(X, direct_seconds=predicted / 100)[0] is False
    t = ward_linkage(X, direct_seconds=0.0, n_micro=50)
    assert t.method == "micro" and t.n_leaves == len(X) and "predicted" in t.info["path"]
    assert ward_linkage(X, direct_seconds=1e9, n_micro=50).method == "direct"
    assert ward_linkage(X[:40], direct_seconds=0.0, n_micro=50).method == "direct"   # fewer than micro-clusters


@pytest.mark.parametrize("n", [2, 3, 17, 400])
def test_layout_matches_scipy_dendrogram(n):
    rng = np.random.default_rng(n)
    Z = fastcluster.linkage_vector(rng.normal(size=(n, 3)), method="ward")
    lay = dendrogram_layout(Z)
    ref = dendrogram(Z, no_plot=True)
    assert lay.leaf_order.tolist() == ref["leaves"] == leaves_list(Z).tolist()
    ours = sorted(tuple(np.round(np.r_[lay.x.reshape(-1, 5)[i, :4], lay.y.reshape(-1, 5)[i, :4]], 9))
                  for i in range(n - 1))
    theirs = sorted(tuple(np.round(np.r_[(np.asarray(ic) - 5) / 10, dc], 9))
                    for ic, dc in zip(ref["icoord"], ref["dcoord"]))
    assert ours == theirs
    assert np.isnan(lay.x[4::5]).all() and lay.x.size == 5 * (n - 1)
    assert np.array_equal(lay.leaf_pos[lay.leaf_order], np.arange(n))
    assert np.all(lay.span_hi - lay.span_lo == np.r_[np.ones(n), Z[:, 3]])


def test_pick_node_by_bar_and_by_leg():
    lay = dendrogram_layout(HAND)
    root = 10
    assert pick_node(lay, lay.node_x[root], 10.0, px=0.01, py=0.01) == root
    # the left leg of the root leads down to node 9: clicking it picks the branch 9
    xa = lay.node_x[9]
    assert pick_node(lay, xa, 7.0, px=0.01, py=0.01) == 9
    # a leg down to a leaf picks the node that owns the leg
    assert pick_node(lay, lay.node_x[4], 1.0, px=0.01, py=0.01) == 8
    assert pick_node(lay, 100.0, 100.0, px=0.01, py=0.01) is None


def test_rotation_consistency_identical_and_random_copies():
    X, y = blobs(n_per=50)
    rng = np.random.default_rng(1)
    Z = fastcluster.linkage_vector(X, method="ward")
    root = 2 * len(X) - 2
    res = cut_tree(Z, {root: cut_for_n_clusters(Z, 8)})
    same = nearest_leaves(X, np.repeat(X[:, None], 3, axis=1))
    assert np.array_equal(same, np.repeat(np.arange(len(X))[:, None], 3, axis=1))
    c = rotation_consistency(res.labels, res.labels[same])
    assert c.score == 1.0 and c.strict == 1.0 and np.all(c.per_cluster == 1.0)
    noise = rng.normal(size=(len(X), 3, X.shape[1])) * X.std(axis=0) + X.mean(axis=0)
    c2 = rotation_consistency(res.labels, res.labels[nearest_leaves(X, noise)])
    assert c2.score < 0.5 and c2.strict < c2.score
    # a subset of galaxies with copies
    sub = np.arange(0, len(X), 4)
    c3 = rotation_consistency(res.labels, res.labels[same[sub]], objects=sub)
    assert c3.score == 1.0 and np.nansum(c3.n_copies) == 3 * sub.size


def test_suggested_cuts_find_the_consistent_clusters():
    X, y = blobs(n_per=50, d=6)
    rng = np.random.default_rng(2)
    Z = fastcluster.linkage_vector(X, method="ward")
    # copies that move within their blob: consistent at the blob level, not below it
    copies = X[:, None, :] + rng.normal(scale=1.0, size=(len(X), 3, X.shape[1]))
    sug = suggest_cuts(Z, X, copies, threshold=0.9, min_size=5)
    labels = labels_from_cuts(Z, sug.cuts)
    assert partition(labels) == partition(y)
    assert len(sug.clusters) == 4 and all(s >= 0.9 for s in sug.scores.values())
    assert sug.decisions[0]["node"] == 2 * len(X) - 2 and sug.decisions[0]["split"]
    # identical copies are always consistent: splitting stops only at min_size / max_clusters
    ident = suggest_cuts(Z, X, X[:, None, :], threshold=0.9, min_size=5, max_clusters=12)
    assert len(ident.clusters) == 12
    # random copies: not even the first split is consistent
    noise = rng.normal(size=(len(X), 3, X.shape[1])) * 10
    none = suggest_cuts(Z, X, noise, threshold=0.9, min_size=5)
    assert none.clusters == [2 * len(X) - 2] and len(np.unique(labels_from_cuts(Z, none.cuts))) == 1


def test_outliers_at_the_top_do_not_block_the_suggestion():
    X, y = blobs(n_per=50, d=6)
    far = np.full((2, X.shape[1]), 200.0) + np.arange(2)[:, None]
    X = np.vstack([X, far])
    y = np.r_[y, 4, 4]
    rng = np.random.default_rng(4)
    Z = fastcluster.linkage_vector(X, method="ward")
    copies = X[:, None, :] + rng.normal(scale=1.0, size=(len(X), 3, X.shape[1]))
    sug = suggest_cuts(Z, X, copies, threshold=0.9, min_size=5)
    assert sug.decisions[0]["reason"] == "outliers split off"
    assert partition(labels_from_cuts(Z, sug.cuts)) == partition(y)


def test_nearest_leaves_methods_agree():
    X, _ = blobs(n_per=400, d=8)
    rng = np.random.default_rng(6)
    copies = X[:, None, :] + rng.normal(scale=0.3, size=(len(X), 3, X.shape[1]))
    brute = nearest_leaves(X, copies, method="brute")
    assert brute.shape == (len(X), 3)
    assert np.array_equal(nearest_leaves(X, copies, method="kdtree"), brute)
    assert np.array_equal(nearest_leaves(X, copies, method="auto"), brute)     # 4800 x 1600: probes both


def test_pure_node_labels_against_a_direct_check():
    """A node's label is its leaves' shared cluster, -1 where they differ: the runs of equal labels against looking
    at every node's leaves, for a global cut with a branch carved out of one cluster, and for labels that come
    back after a gap (not a cut's: the same label in separate runs)."""
    from galdesk.cluster.cuts import cut_tree
    from galdesk.cluster.layout import dendrogram_layout, pure_node_labels

    rng = np.random.default_rng(3)
    n = 700
    Z = fastcluster.linkage_vector(rng.normal(size=(n, 4)), method="ward")
    lay = dendrogram_layout(Z)
    cuts = {2 * n - 2: float(Z[-9, 2]), n + 650: 0.3 * float(Z[650, 2])}
    ordered = cut_tree(Z, cuts, lay.leaf_order).labels[lay.leaf_order]
    pure = pure_node_labels(lay, ordered)
    for v in range(2 * n - 1):
        seg = ordered[lay.span_lo[v]:lay.span_hi[v]]
        assert pure[v] == (seg[0] if np.all(seg == seg[0]) else -1), v
    assert np.all(pure[:n] == ordered[lay.leaf_pos[np.arange(n)]])     # a leaf is its own cluster's
    assert (pure[n:] == -1).sum() >= 8                                    # the links above the cuts
    scattered = rng.integers(0, 2, n)
    pure = pure_node_labels(lay, scattered)
    for v in range(2 * n - 1):
        seg = scattered[lay.span_lo[v]:lay.span_hi[v]]
        assert pure[v] == (seg[0] if np.all(seg == seg[0]) else -1), v


def test_the_default_cap_scales_down_on_small_samples():
    """Features consistent at every depth split until the cap: by default 50, and one cluster per 10 galaxies
    below 500, so 150 galaxies do not become 50 clusters of two or three."""
    from galdesk.cluster.consistency import default_max_clusters, suggest_cuts

    assert [default_max_clusters(n) for n in (5, 150, 499, 500, 10**6)] == [2, 15, 49, 50, 50]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    Z = fastcluster.linkage_vector(X, method="ward")
    sug = suggest_cuts(Z, X, X[:, None, :], threshold=0.9)        # identical copies: always consistent
    assert len(sug.clusters) == 15 == sug.max_clusters and sug.stopped_at_cap
    assert not suggest_cuts(Z, X, X[:, None, :], threshold=0.9, max_clusters=500).stopped_at_cap
