"""Dendrogram benchmarks, side by side with the obvious alternatives; prints times and ratios.

1. layout: :func:`galdesk.cluster.dendrogram_layout` (NumPy) vs ``scipy.cluster.hierarchy.dendrogram(Z,
   no_plot=True)``, with a check that the leaf orders are equal;
2. cuts: :func:`galdesk.cluster.labels_from_cuts` (global cut) vs ``scipy.cluster.hierarchy.fcluster``, and a
   per-branch cut set (what a drag preview costs);
3. rescoring rotation consistency of a cut (a table look-up once the copies' nearest leaves are known);
4. Ward linkage: fastcluster (direct), and the micro path (k-means micro-clusters, size-weighted Ward above them,
   exact Ward inside, galaxies as leaves): against exact Ward at ``--agree`` objects (time, and the adjusted Rand
   index of the partitions at 10/40/100 clusters), then at ``--micro`` objects with layout, a cut, the copies'
   nearest leaves and the suggested cuts;
5. (``--paint``) offscreen repaint of the whole tree as one curve: 1-px pen without antialiasing vs 2-px with.

Features are a synthetic 32-D Gaussian mixture (40 components), i.e. what PCA-reduced CNN features look like to
Ward. Timings are the best of ``--repeat`` runs.

Run:  .venv/bin/python benchmarks/bench_dendrogram.py [--sizes 2000,10000,20000] [--agree 20000] [--micro 100000]
      [--paint]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def features(n: int, d: int = 32, k: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    return (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float64)


def best(fn, repeat: int) -> tuple[float, object]:
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,10000,20000", help="N for the direct path (comma-separated)")
    ap.add_argument("--micro", type=int, default=100_000, help="N for the micro-cluster path (0: skip)")
    ap.add_argument("--agree", type=int, default=20_000,
                    help="N at which the micro path is compared with exact Ward (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paint", action="store_true", help="also time offscreen repaints (Qt)")
    args = ap.parse_args()

    import fastcluster
    from scipy.cluster.hierarchy import dendrogram, fcluster

    from galdesk.cluster import (
        cut_tree,
        dendrogram_layout,
        labels_from_cuts,
        nearest_leaves,
        rotation_consistency,
        suggest_cuts,
        ward_linkage,
    )
    from galdesk.cluster.linkage import choose_path

    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"{'N':>7}  {'step':<34} {'galdesk':>10} {'alternative':>12} {'ratio':>7}")
    trees = {}
    for n in sizes:
        X = features(n)
        t_link, Z = best(lambda: fastcluster.linkage_vector(X, method="ward"), 1)
        trees[n] = (X, Z)
        print(f"{n:>7}  {'Ward, fastcluster.linkage_vector':<34} {t_link:>9.2f}s {'':>12} {'':>7}")
        t_ours, lay = best(lambda: dendrogram_layout(Z), args.repeat)
        t_scipy, ref = best(lambda: dendrogram(Z, no_plot=True), max(1, args.repeat - 1))
        assert lay.leaf_order.tolist() == ref["leaves"], "leaf order differs from SciPy's"
        print(f"{n:>7}  {'layout vs scipy dendrogram(no_plot)':<34} {t_ours * 1e3:>8.1f}ms {t_scipy * 1e3:>10.1f}ms "
              f"{t_scipy / t_ours:>6.0f}x")
        root = 2 * n - 2
        t = float(Z[-20, 2])
        t_cut, _ = best(lambda: labels_from_cuts(Z, {root: t}), args.repeat)
        t_fc, _ = best(lambda: fcluster(Z, t, criterion="distance"), args.repeat)
        print(f"{n:>7}  {'global cut vs scipy fcluster':<34} {t_cut * 1e3:>8.1f}ms {t_fc * 1e3:>10.1f}ms "
              f"{t_fc / t_cut:>6.1f}x")
        res = cut_tree(Z, {root: t})
        branch = {int(v): float(Z[int(v) - n, 2]) * 0.5 for v in res.cluster_nodes if v >= n}
        t_branch, res2 = best(lambda: cut_tree(Z, {root: t, **branch}, lay.leaf_order), args.repeat)
        print(f"{n:>7}  {f'cut with {len(branch)} branch cuts (preview)':<34} {t_branch * 1e3:>8.1f}ms {'':>12} "
              f"{'':>7}  -> {res2.n_clusters} clusters")
        rng = np.random.default_rng(1)
        copies = X[:, None, :] + rng.normal(scale=0.5, size=(n, 3, X.shape[1]))
        t_nn, copy_leaf = best(lambda: nearest_leaves(X, copies), 1)
        t_score, _ = best(lambda: rotation_consistency(res2.labels, res2.labels[copy_leaf]), args.repeat)
        print(f"{n:>7}  {'nearest leaf of 3 copies each':<34} {t_nn:>9.2f}s {'':>12} {'':>7}")
        print(f"{n:>7}  {'rescore rotation consistency':<34} {t_score * 1e3:>8.1f}ms {'':>12} {'':>7}")

    if args.agree:
        # the micro path against exact Ward where both can run: the same partitions at the cuts a user makes?
        from sklearn.metrics import adjusted_rand_score

        n = args.agree
        X = features(n, seed=3)
        t_exact, Ze = best(lambda: fastcluster.linkage_vector(X, method="ward"), 1)
        t_m, tree = best(lambda: ward_linkage(X, max_direct=0, n_micro=2_000, seed=0), 1)
        ok, predicted = choose_path(X)
        print(f"{n:>7}  {'exact Ward vs micro path':<34} {t_exact:>9.2f}s {t_m:>11.2f}s {t_exact / t_m:>6.1f}x  "
              f"(choose_path predicted {predicted:.1f} s for exact; {tree.info['n_raised']} upper merges raised)")
        for k in (10, 40, 100):
            ari = adjusted_rand_score(fcluster(Ze, k, "maxclust"), fcluster(tree.Z, k, "maxclust"))
            print(f"{n:>7}  {f'  same partition at {k} clusters':<34} adjusted Rand index {ari:.3f}")

    if args.micro:
        n = args.micro
        X = features(n, seed=2)
        t0 = time.perf_counter()
        tree = ward_linkage(X, n_micro=2_000, seed=0)
        t_micro = time.perf_counter() - t0
        print(f"{n:>7}  {'Ward via 2,000 micro-clusters':<34} {t_micro:>9.2f}s {'':>12} {'':>7}  "
              f"method={tree.method} ({tree.info['path']}), leaves={tree.n_leaves}, process peak RSS "
              f"{rss_mb():.0f} MB (features alone {X.nbytes / 2**20:.0f} MB)")
        t_ours, lay = best(lambda: dendrogram_layout(tree.Z), args.repeat)
        print(f"{n:>7}  {'layout, galaxies as leaves':<34} {t_ours * 1e3:>8.1f}ms {'':>12} {'':>7}")
        root = 2 * n - 2
        t_cut, res = best(lambda: cut_tree(tree.Z, {root: float(tree.Z[-30, 2])}, lay.leaf_order), args.repeat)
        print(f"{n:>7}  {'global cut':<34} {t_cut * 1e3:>8.1f}ms {'':>12} {'':>7}  -> {res.n_clusters} clusters")
        rng = np.random.default_rng(1)
        sample = np.sort(rng.choice(n, min(n, 20_000), replace=False))
        copies = X[sample, None, :] + rng.normal(scale=0.5, size=(sample.size, 3, X.shape[1]))
        t_nn, copy_leaf = best(lambda: nearest_leaves(X, copies), 1)
        print(f"{n:>7}  {'nearest leaf of 3 copies of 20,000':<34} {t_nn:>9.2f}s {'':>12} {'':>7}")
        t_s, sug = best(lambda: suggest_cuts(tree.Z, copy_leaf=copy_leaf, objects=sample, max_clusters=50), 1)
        print(f"{n:>7}  {'suggested cuts':<34} {t_s:>9.2f}s {'':>12} {'':>7}  -> {len(sug.clusters)} clusters, "
              f"process peak RSS {rss_mb():.0f} MB")
        trees[n] = (X, tree.Z)

    if args.paint:
        import pyqtgraph as pg

        from galdesk.gui.app import make_app
        from galdesk.gui.widgets.dendrogram_plot import DendrogramPlot

        app = make_app()
        for n in sorted(trees):
            X, Z = trees[n]
            w = DendrogramPlot()
            w.resize(1200, 700)
            w.show()
            w.set_tree(dendrogram_layout(Z))
            app.processEvents()
            t1, _ = best(lambda: w.grab(), args.repeat)
            w.curve.setPen(pg.mkPen(w.TREE_PEN, width=2))
            w.curve.opts["antialias"] = True
            w.curve.update()
            t2, _ = best(lambda: w.grab(), 1)
            print(f"{n:>7}  {'repaint: 1px no-AA vs 2px AA':<34} {t1 * 1e3:>8.1f}ms {t2 * 1e3:>10.1f}ms "
                  f"{t2 / t1:>6.0f}x")
            w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
