"""Ward linkage of feature vectors, direct or through micro-clusters for very large samples.

Two paths, chosen by their cost (:func:`choose_path`: exact Ward is timed on 2,000 of the objects and scaled to
``N``) or by a fixed ``max_direct``. The objects are the leaves on both paths, so per-branch cuts and galleries reach
single galaxies at any size.

``"direct"`` (exact Ward predicted to take at most ``direct_seconds``, default 5 s: about 15,000 objects of 32-D
features on a 2-core machine)
    :func:`fastcluster.linkage_vector` with ``method="ward"`` (Müllner 2013): O(N·D) memory, the exact Ward tree
    of the objects. SciPy's ``linkage`` would need 8·N² bytes (3.2 GB at 20k). Its time is quadratic: 4.6 s at
    16,000, 21 s at 32,000, ~2 min at 80,000.
``"micro"`` (above)
    Mini-batch k-means (Sculley 2010; in NumPy, see :func:`_micro_clusters`) to ``n_micro`` (default 2,000)
    micro-clusters, then a **size-weighted** Ward linkage of their centroids (:func:`weighted_ward`): merging two
    micro-clusters costs exactly what merging the two groups of objects would cost under Ward's criterion, so the
    upper tree is Ward's tree of the objects *given* the micro-clusters. Inside each micro-cluster the objects get
    their exact Ward tree (fastcluster), hung where the micro-cluster was a leaf (:func:`stitch_micro`); upper
    merges lower than a micro-cluster's own top split are raised to it, so heights stay monotonic
    (``info["n_raised"]``). What differs from exact Ward is only which objects share a micro-cluster: a few hundred
    objects each at 10^5-10^6, far below a cut among a few dozen clusters.

:attr:`WardTree.leaf_of` maps each object to its leaf (the identity for trees made now; projects clustered by
earlier versions above 20,000 objects stored trees whose leaves were micro-clusters, and still load), and
:attr:`WardTree.method` records which path was taken.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from galdesk.tasks import NullContext, TaskContext

__all__ = ["WardTree", "ward_linkage", "weighted_ward", "choose_path", "stitch_micro", "DIRECT_SECONDS",
           "N_MICRO", "PROBE"]

DIRECT_SECONDS = 5.0
N_MICRO = 2_000
PROBE = 2_000


@dataclass
class WardTree:
    """A Ward tree of ``N`` objects.

    Attributes
    ----------
    Z : ndarray (m-1, 4) float64
        SciPy-format linkage matrix over ``m`` leaves. Heights are Ward distances in feature units
        (``sqrt(2 n_a n_b / (n_a + n_b)) * |c_a - c_b|``); the 4th column counts *leaves* (as SciPy expects).
    leaf_of : ndarray (N,) int64
        Leaf of each object (the identity on the direct path).
    leaf_features : ndarray (m, D) float32
        Feature vector of each leaf: the object's own, or its micro-cluster's centroid.
    leaf_sizes : ndarray (m,) int64
        Objects per leaf (all ones on the direct path).
    method : str
        ``"direct"`` or ``"micro"``.
    info : dict
        ``seconds``, ``n_objects``, ``n_leaves``, ``max_direct``, ``n_micro``, ``seed``, ``path`` (how the path was
        chosen); on the micro path ``n_micro_used``, ``inertia`` and ``n_raised`` (upper merges raised to keep the
        heights monotonic, see :func:`stitch_micro`).
    micro_of : ndarray (N,) int64 or None
        Micro-cluster of each object (micro path only; not stored with the project).
    """

    Z: np.ndarray
    leaf_of: np.ndarray
    leaf_features: np.ndarray
    leaf_sizes: np.ndarray
    method: str
    info: dict = field(default_factory=dict)
    micro_of: np.ndarray | None = None

    @property
    def n_objects(self) -> int:
        return int(self.leaf_of.size)

    @property
    def n_leaves(self) -> int:
        return int(self.Z.shape[0]) + 1

    @property
    def leaves_are_objects(self) -> bool:
        """Whether every object is its own leaf (always for trees made now; not for micro-cluster-leaf trees
        stored by earlier versions)."""
        return self.n_leaves == self.n_objects

    def describe(self) -> str:
        """How the tree was made, in words (for the Dendrogram tab and the command line)."""
        if self.method == "direct":
            return "exact Ward (fastcluster)"
        k = self.info.get("n_micro_used")
        if self.leaves_are_objects:
            return (f"Ward of {k if k is not None else 'k-means'} micro-clusters, exact inside each; galaxies as "
                    f"leaves")
        return f"Ward on {self.n_leaves} micro-clusters as leaves (an earlier version's tree)"

    def object_sizes(self, leaf_labels: np.ndarray) -> np.ndarray:
        """Objects per cluster for a leaf labelling."""
        return np.bincount(np.asarray(leaf_labels)[self.leaf_of], minlength=int(np.max(leaf_labels)) + 1)


def ward_linkage(features, ctx: TaskContext | None = None, max_direct: int | None = None, n_micro: int = N_MICRO,
                 seed: int = 0, direct_seconds: float = DIRECT_SECONDS) -> WardTree:
    """Ward linkage of ``features`` (N, D): exact with fastcluster while that is predicted to take at most
    ``direct_seconds`` (or, with ``max_direct``, up to that many objects), else through ``n_micro`` micro-clusters
    with every object still a leaf (see the module docstring).

    Parameters
    ----------
    features : array (N, D)
        Feature vectors (Euclidean distances are meaningful: standardise or PCA first).
    ctx : TaskContext, optional
        Progress; cancel is checked between the micro-cluster batches and before/after the linkage
        (fastcluster itself cannot be interrupted).
    max_direct : int, optional
        A fixed switch: exact up to this many objects. None (default): chosen by :func:`choose_path`.
    n_micro : int
        Micro-clusters of the micro path.
    seed : int
        Seed of the micro-cluster k-means and of the probe (the direct path is deterministic).
    direct_seconds : float
        Longest predicted time of the exact path when ``max_direct`` is None.

    Notes
    -----
    The path taken is recorded in :attr:`WardTree.method`, and why in ``info["path"]``. Memory on the micro path
    is O(N·D) for the features plus chunks of 8192 x ``n_micro`` distances (float32, 64 MB).
    """
    ctx = ctx or NullContext()
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("features contain NaN or inf")
    n = X.shape[0]
    t0 = time.monotonic()
    info = {"n_objects": n, "max_direct": None if max_direct is None else int(max_direct), "n_micro": int(n_micro),
            "seed": int(seed), "direct_seconds": float(direct_seconds)}
    if n <= n_micro:
        direct, info["path"] = True, f"no more objects than micro-clusters ({n_micro})"
    elif max_direct is not None:
        direct, info["path"] = n <= max_direct, f"max_direct={int(max_direct)}"
    else:
        direct, predicted = choose_path(X, direct_seconds, seed)
        info.update(path=f"exact Ward predicted to take {predicted:.1f} s (limit {direct_seconds:g} s)",
                    predicted_direct_seconds=predicted)
    if direct:
        ctx.check_cancelled()
        ctx.progress(0.0, f"Ward linkage of {n} objects")
        if n == 1:
            Z = np.zeros((0, 4))
        else:
            import fastcluster  # noqa: PLC0415 - imports scipy.spatial (~0.3 s): not at start-up

            Z = np.asarray(fastcluster.linkage_vector(X, method="ward"), dtype=np.float64)
        ctx.check_cancelled()
        info.update(seconds=time.monotonic() - t0, n_leaves=n)
        ctx.progress(1.0, f"Ward linkage of {n} objects")
        return WardTree(Z, np.arange(n, dtype=np.int64), X.astype(np.float32), np.ones(n, np.int64), "direct", info)

    micro_of, centroids, sizes, inertia = _micro_clusters(X, int(n_micro), seed, ctx)
    ctx.progress(0.9, f"Weighted Ward linkage of {len(sizes)} micro-clusters")
    upper = weighted_ward(centroids, sizes, ctx=ctx)
    ctx.progress(0.95, f"Exact Ward inside {len(sizes)} micro-clusters")
    Z, n_raised = stitch_micro(X, micro_of, upper, ctx=ctx)
    info.update(seconds=time.monotonic() - t0, n_leaves=n, n_micro_used=int(len(sizes)), inertia=float(inertia),
                n_raised=n_raised)
    ctx.progress(1.0, f"Ward linkage of {n} objects via {len(sizes)} micro-clusters")
    return WardTree(Z, np.arange(n, dtype=np.int64), X.astype(np.float32), np.ones(n, np.int64), "micro", info,
                    micro_of=micro_of)


def choose_path(X: np.ndarray, direct_seconds: float = DIRECT_SECONDS, seed: int = 0) -> tuple[bool, float]:
    """Whether exact Ward of ``X`` is predicted to take at most ``direct_seconds``, and the prediction.

    Measured, not assumed: fastcluster is timed on ``PROBE`` random rows of ``X`` itself (same dimension, same
    machine and load) and the time scaled by ``(N / PROBE)**2.1``: its nearest-neighbour chain is quadratic in N,
    and the time per pair grew by a fifth from 2,000 to 32,000 objects as the data left the caches (1.7e-8 ->
    2.0e-8 s, 32-D, on this 2-core machine). The probe costs about a fifteenth of a second.
    """
    import fastcluster  # noqa: PLC0415 - imports scipy.spatial (~0.3 s): not at start-up

    n = X.shape[0]
    if n <= PROBE:
        return True, 0.0
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(n, PROBE, replace=False))]
    t0 = time.perf_counter()
    fastcluster.linkage_vector(sample, method="ward")
    predicted = (time.perf_counter() - t0) * (n / PROBE) ** 2.1
    return predicted <= direct_seconds, float(predicted)


def stitch_micro(X: np.ndarray, micro_of: np.ndarray, upper: np.ndarray,
                 ctx: TaskContext | None = None) -> tuple[np.ndarray, int]:
    """One linkage over the ``N`` objects: exact Ward (fastcluster) inside every micro-cluster, each micro-cluster's
    subtree hung where the micro-cluster is a leaf of ``upper`` (the size-weighted Ward of the micro-clusters).

    A micro-cluster's own top split can be higher than the merge that joins it to a neighbour in ``upper`` (Ward
    heights grow with the sizes merged). Such upper merges are raised to their highest child, so heights never
    decrease towards the root (what a dendrogram and a distance cut need); the count of raised merges is returned.

    Returns
    -------
    (Z, n_raised)
        SciPy-format linkage over leaves ``0 .. N-1`` (the objects), rows sorted by height; the number of merges of
        ``upper`` that were raised.
    """
    import fastcluster  # noqa: PLC0415 - imports scipy.spatial (~0.3 s): not at start-up

    n = X.shape[0]
    m = int(upper.shape[0]) + 1
    order = np.argsort(micro_of, kind="stable")
    bounds = np.searchsorted(micro_of[order], np.arange(m + 1))
    rows = np.empty((n - 1, 4))
    root_of = np.empty(m, np.int64)      # node id (pre-sort numbering) of each micro-cluster's subtree root
    nxt = 0                              # next row; node of row r is n + r
    for c in range(m):
        if c % 64 == 0 and ctx is not None:
            ctx.check_cancelled()
        members = order[bounds[c]:bounds[c + 1]]
        k = members.size
        if k == 1:
            root_of[c] = members[0]
            continue
        Zc = np.asarray(fastcluster.linkage_vector(X[members], method="ward"), dtype=np.float64)
        ids = np.concatenate([members, n + nxt + np.arange(k - 1)])     # local node id -> global node id
        rows[nxt:nxt + k - 1, :2] = ids[Zc[:, :2].astype(np.int64)]
        rows[nxt:nxt + k - 1, 2:] = Zc[:, 2:]
        nxt += k - 1
        root_of[c] = n + nxt - 1
    # the upper tree: its leaves are the micro-clusters' roots, its internal node m + i is row nxt + i
    up_ids = np.concatenate([root_of, n + nxt + np.arange(m - 1)])
    h = np.concatenate([np.zeros(n), rows[:nxt, 2], np.zeros(m - 1)])
    size = np.concatenate([np.ones(n), rows[:nxt, 3], np.zeros(m - 1)])
    n_raised = 0
    for i in range(m - 1):
        a, b = up_ids[int(upper[i, 0])], up_ids[int(upper[i, 1])]
        height = float(upper[i, 2])
        top = max(h[a], h[b])
        if top > height:
            height = top
            n_raised += 1
        r = nxt + i
        rows[r] = (min(a, b), max(a, b), height, size[a] + size[b])
        h[n + r], size[n + r] = height, size[a] + size[b]
    # number the internal nodes by height (SciPy's order); stable: a child keeps its place before its parent
    rank = np.argsort(rows[:, 2], kind="stable")
    new_id = np.arange(2 * n - 1)
    new_id[n + rank] = n + np.arange(n - 1)
    Z = rows[rank]
    ab = new_id[Z[:, :2].astype(np.int64)]
    Z[:, 0], Z[:, 1] = ab.min(axis=1), ab.max(axis=1)
    return Z, n_raised


def _assign(X: np.ndarray, centers: np.ndarray, ctx: TaskContext | None = None, lo: float = 0.0,
            hi: float = 1.0, chunk: int = 8192) -> np.ndarray:
    """Nearest centre of every row of ``X`` (float32 GEMM in chunks: bounded memory, cancel between chunks)."""
    c = centers.astype(np.float32)
    c2 = np.einsum("ij,ij->i", c, c)
    out = np.empty(X.shape[0], np.int64)
    for i in range(0, X.shape[0], chunk):
        if ctx is not None:
            ctx.check_cancelled()
        xb = X[i:i + chunk].astype(np.float32)
        out[i:i + chunk] = np.argmin(c2[None, :] - 2.0 * (xb @ c.T), axis=1)   # |x|^2 is the same for all centres
        if ctx is not None:
            ctx.progress(lo + (hi - lo) * min(X.shape[0], i + chunk) / X.shape[0], "Assigning objects to "
                         "micro-clusters")
    return out


def _micro_clusters(X: np.ndarray, k: int, seed: int, ctx: TaskContext):
    """Mini-batch k-means (Sculley 2010: per-centre learning rate 1/count) in NumPy float32, then exact means.

    Written here rather than taken from scikit-learn: importing sklearn costs ~1.5 s and its ``partial_fit`` spends
    two distance passes per batch; this needs one, and checks cancel between batches. Micro-clusters need only a
    fine, even partition (the Ward tree above them does the clustering), so centres start at ``k`` distinct random
    objects and ~100-400 batches refine them.
    """
    n, d = X.shape
    rng = np.random.default_rng(seed)
    batch = 4096
    n_steps = int(np.clip(np.ceil(3 * n / batch), 100, 400))
    centers = X[np.sort(rng.choice(n, k, replace=False))].astype(np.float64)
    counts = np.ones(k)
    ctx.progress(0.0, f"Micro-clusters: {k} centres")
    for step in range(n_steps):
        ctx.check_cancelled()
        idx = np.sort(rng.integers(0, n, batch))
        xb = X[idx]
        lab = _assign(xb, centers, chunk=batch)
        m = np.bincount(lab, minlength=k).astype(np.float64)
        hit = m > 0
        sums = np.empty((k, d))
        for j in range(d):
            sums[:, j] = np.bincount(lab, weights=xb[:, j], minlength=k)
        counts += m
        # c += (sum_b - m c) / count: each centre moves towards its batch mean with rate m / count
        centers[hit] += (sums[hit] - m[hit, None] * centers[hit]) / counts[hit, None]
        if step % 10 == 0:
            ctx.progress(0.5 * (step + 1) / n_steps, f"Micro-clusters: batch {step + 1}/{n_steps}")
    labels = _assign(X, centers, ctx, 0.5, 0.9)
    # drop empty micro-clusters and use the exact means of the objects assigned
    sizes = np.bincount(labels, minlength=k)
    keep = np.flatnonzero(sizes > 0)
    remap = np.full(k, -1, np.int64)
    remap[keep] = np.arange(keep.size)
    leaf_of = remap[labels]
    sizes = sizes[keep].astype(np.int64)
    cent = np.empty((keep.size, d))
    for j in range(d):
        cent[:, j] = np.bincount(leaf_of, weights=X[:, j], minlength=keep.size)
    cent /= sizes[:, None]
    inertia = 0.0
    for i in range(0, n, 65536):            # in chunks: a full N x D difference would double the memory
        diff = X[i:i + 65536] - cent[leaf_of[i:i + 65536]]
        inertia += float(np.einsum("ij,ij->", diff, diff))
    return leaf_of, cent, sizes, inertia


def weighted_ward(centroids, weights, ctx: TaskContext | None = None) -> np.ndarray:
    """Ward linkage of clusters given by their centroids and sizes (nearest-neighbour chain, O(m²·D) time,
    O(m·D) memory).

    The distance between clusters ``a`` and ``b`` is ``sqrt(2 w_a w_b / (w_a + w_b)) * |c_a - c_b|``, SciPy's
    Ward convention, which for unit weights is the Euclidean distance between points: with all weights 1 the
    result equals ``fastcluster.linkage_vector(centroids, method="ward")``. Ward's distance is reducible, so the
    nearest-neighbour chain finds the same merges as the greedy algorithm.

    Returns
    -------
    ndarray (m-1, 4)
        SciPy-format linkage matrix; the 4th column counts leaves (centroids), not weights.
    """
    ctx = ctx or NullContext()
    X = np.array(centroids, dtype=np.float64)
    w = np.array(weights, dtype=np.float64)
    m = X.shape[0]
    if m != w.size:
        raise ValueError("one weight per centroid")
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    if m < 2:
        return np.zeros((0, 4))
    active = np.ones(m, bool)
    merges_a = np.empty(m - 1, np.int64)
    merges_b = np.empty(m - 1, np.int64)
    merges_d = np.empty(m - 1)
    chain: list[int] = []
    n_merged = 0
    steps = 0
    first_active = 0
    while n_merged < m - 1:
        if not chain:
            while not active[first_active]:
                first_active += 1
            chain.append(first_active)
        a = chain[-1]
        diff = X - X[a]
        d2 = np.einsum("ij,ij->i", diff, diff) * (2.0 * w * w[a] / (w + w[a]))
        d2[~active] = np.inf
        d2[a] = np.inf
        b = int(np.argmin(d2))
        if len(chain) > 1 and d2[chain[-2]] <= d2[b]:
            b = chain[-2]                       # ties go back along the chain (guarantees termination)
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            lo, hi = (a, b) if a < b else (b, a)
            merges_a[n_merged], merges_b[n_merged] = lo, hi
            merges_d[n_merged] = np.sqrt(d2[b])
            n_merged += 1
            wa, wb = w[lo], w[hi]
            X[lo] = (wa * X[lo] + wb * X[hi]) / (wa + wb)
            w[lo] = wa + wb
            active[hi] = False
            X[hi] = 0.0
        else:
            chain.append(b)
        steps += 1
        if steps % 512 == 0:
            ctx.check_cancelled()
    return _relabel(merges_a, merges_b, merges_d, m)


def _relabel(ma: np.ndarray, mb: np.ndarray, md: np.ndarray, m: int) -> np.ndarray:
    """Merges found in chain order, named by representative leaves -> SciPy linkage (sorted by height, nodes
    numbered m, m+1, ... in that order). Stable sort: a tie keeps a cluster's own merge before the merges
    that use it."""
    order = np.argsort(md, kind="stable")
    uf = list(range(m))
    node = list(range(m))
    size = [1] * m

    def find(x: int) -> int:
        while uf[x] != x:
            uf[x] = uf[uf[x]]
            x = uf[x]
        return x

    Z = np.empty((m - 1, 4))
    for i, k in enumerate(order.tolist()):
        ra, rb = find(int(ma[k])), find(int(mb[k]))
        na, nb = node[ra], node[rb]
        Z[i, 0], Z[i, 1] = (na, nb) if na < nb else (nb, na)
        Z[i, 2] = md[k]
        Z[i, 3] = size[ra] + size[rb]
        uf[rb] = ra
        size[ra] += size[rb]
        node[ra] = m + i
    return Z
