"""Plain-NumPy helpers on a SciPy-style linkage matrix ``Z``.

Conventions (those of :func:`scipy.cluster.hierarchy.linkage`): with ``n`` leaves, ``Z`` has ``n - 1`` rows
``(a, b, height, size)``; leaves are nodes ``0 .. n-1`` and row ``i`` creates node ``n + i``; the root is node
``2n - 2``. A child always has a smaller id than its parent, so iterating rows forwards is bottom-up and backwards
is top-down.

The tree walks here are vectorised by pointer jumping (each step doubles how far every node has looked up the
tree), so they cost O(n log depth) NumPy work instead of an O(n) Python loop: a few milliseconds at 20,000 leaves,
which keeps a live cut preview responsive.
"""

from __future__ import annotations

import numpy as np

__all__ = ["n_leaves", "node_heights", "node_sizes", "parents", "children", "nearest_marked_ancestor",
           "path_sums", "check_linkage", "linkage_id"]


def check_linkage(Z) -> np.ndarray:
    """``Z`` as a float64 (n-1, 4) array; ValueError if it cannot be a linkage matrix."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != 4:
        raise ValueError(f"a linkage matrix has shape (n-1, 4), got {Z.shape}")
    n = Z.shape[0] + 1
    if Z.shape[0] and (Z[:, :2].min() < 0 or Z[:, :2].max() > 2 * n - 3):
        raise ValueError("linkage matrix refers to nodes outside 0 .. 2n-3")
    return Z


def n_leaves(Z) -> int:
    """Number of leaves of the tree."""
    return int(np.asarray(Z).shape[0]) + 1


def node_heights(Z) -> np.ndarray:
    """Height of every node (2n-1,): 0 for leaves, the merge distance for internal nodes."""
    Z = np.asarray(Z)
    return np.concatenate([np.zeros(n_leaves(Z)), Z[:, 2].astype(np.float64)])


def node_sizes(Z) -> np.ndarray:
    """Number of leaves under every node (2n-1,)."""
    Z = np.asarray(Z)
    return np.concatenate([np.ones(n_leaves(Z), np.int64), Z[:, 3].astype(np.int64)])


def children(Z) -> tuple[np.ndarray, np.ndarray]:
    """Left and right child of each internal node (rows of ``Z``), as int64 arrays."""
    Z = np.asarray(Z)
    return Z[:, 0].astype(np.int64), Z[:, 1].astype(np.int64)


def parents(Z) -> np.ndarray:
    """Parent of every node (2n-1,); the root is its own parent."""
    n = n_leaves(Z)
    par = np.empty(2 * n - 1, np.int64)
    a, b = children(Z)
    internal = np.arange(n, 2 * n - 1)
    par[a] = internal
    par[b] = internal
    par[2 * n - 2] = 2 * n - 2
    return par


def nearest_marked_ancestor(par: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """For every node, the nearest ancestor-or-self ``v`` with ``stop[v]`` (the root if none is).

    Pointer jumping: ``nxt[v] = v`` where ``stop[v]`` (or at the root), else the parent; then ``nxt = nxt[nxt]``
    until nothing changes (log2(depth) steps).
    """
    nxt = np.where(stop, np.arange(par.size), par)
    while True:
        nn = nxt[nxt]
        if np.array_equal(nn, nxt):
            return nxt
        nxt = nn


def path_sums(par: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For every node, the sum of ``values`` over the path from the node up to (and excluding) the root.

    ``values`` is (2n-1,) or (2n-1, k) (k sums at once); the root's own value is ignored. Integer values are
    summed exactly in int64, others in float64.
    """
    values = np.asarray(values)
    dtype = np.int64 if values.dtype.kind in "iub" else np.float64
    # one 1-D array per column: gathering rows of a 2-D array is ~3x slower
    cols = [np.array(values[:, j] if values.ndim == 2 else values, dtype=dtype)
            for j in range(values.shape[1] if values.ndim == 2 else 1)]
    root = par.size - 1
    for c in cols:
        c[root] = 0
    anc = par.copy()
    while anc.min() != root:            # the root has the largest id: all pointers are there when the min is
        for c in cols:
            c += c[anc]                 # c[root] stays 0, so a pointer already at the root adds nothing
        anc = anc[anc]
    return np.stack(cols, axis=1) if values.ndim == 2 else cols[0]


def linkage_id(Z) -> str:
    """A short fingerprint of a linkage matrix (cut sets name nodes of one particular tree)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(Z, dtype=np.float64).tobytes()).hexdigest()[:16]
