"""Clustering features for N cut-outs, label-free shape descriptors against the classifier's penultimate layer;
prints times and ratios.

1. features of N working-size cut-outs (64 px, 3 bands) with the copies that rotation consistency needs:
   :func:`galdesk.cluster.descriptors.describe_views` (the cut-out + 3 copies turned off the pixel grid) vs
   :func:`galdesk.cluster.features.view_features` with the bundled ``gz1-binary`` CNN (the cut-out + 3 turns of the
   square), on the CPU with the torch threads given;
2. the rest of ``galdesk cluster --unsupervised``: the bundled invariance projection
   (:mod:`galdesk.cluster.invariance`), Ward (fastcluster), the copies' nearest leaves and
   :func:`galdesk.cluster.consistency.suggest_cuts`;
3. what ``--train`` adds: learning the invariance on the cut-outs themselves
   (:func:`galdesk.cluster.invariance.learn_invariance`, 2,000 of them x 8 augmented copies).

The cut-outs are real Galaxy Zoo 1 JPEGs from ``../shared/data`` (repeated to reach N) when present, else synthetic
discs. Timings are single runs (the steps take seconds to minutes).

Run:  .venv/bin/python benchmarks/bench_features.py [--n 10000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cutouts(n: int, size: int = 64) -> tuple[np.ndarray, str]:
    """``n`` cut-outs (N, 3, size, size): real GZ1 ones (repeated) or synthetic discs."""
    gz1 = ROOT.parent / "shared" / "data" / "images" / "gz1"
    if (gz1 / "labels.csv").exists():
        from galdesk.ml.datasets import gz1_binary

        stack = gz1_binary(gz1, size=size, limit=min(n, 2000), seed=0)[0]
        return np.ascontiguousarray(np.resize(stack, (n, *stack.shape[1:]))), "GZ1 JPEG cut-outs"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        r = np.hypot(xx, yy * rng.uniform(0.3, 1.0))
        out[i] = 150 * np.exp(-r / rng.uniform(3, 8)) + 10 + rng.normal(0, 1, (3, size, size))
    return out, "synthetic discs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the CNN path")
    args = ap.parse_args()

    import torch

    from galdesk.cluster.consistency import nearest_leaves, suggest_cuts
    from galdesk.cluster.descriptors import describe_views
    from galdesk.cluster.features import VIEWS, view_features
    from galdesk.cluster.invariance import bundled_invariance, learn_invariance
    from galdesk.cluster.linkage import ward_linkage

    torch.set_num_threads(args.threads)
    stack, what = cutouts(args.n)
    print(f"{args.n} cut-outs ({what}), {stack.shape[-1]} px, torch threads {args.threads}")
    t0 = time.perf_counter()
    feats, _ = describe_views(stack, 4)
    t_desc = time.perf_counter() - t0
    t0 = time.perf_counter()
    view_features(stack, "gz1-binary", VIEWS[4], batch_size=256, device="cpu")
    t_cnn = time.perf_counter() - t0
    print(f"features + 3 copies: descriptors {t_desc:.1f} s ({1e3 * t_desc / args.n:.2f} ms per cut-out), "
          f"gz1-binary CNN {t_cnn:.1f} s; ratio descriptors/CNN {t_desc / t_cnn:.2f}")
    t0 = time.perf_counter()
    proj = bundled_invariance()
    tree = ward_linkage(proj.transform(feats[:, 0]))
    t_ward = time.perf_counter() - t0
    t0 = time.perf_counter()
    copies = proj.transform(feats[:, 1:].reshape(-1, feats.shape[-1])).reshape(args.n, 3, -1)
    leaf = nearest_leaves(tree.leaf_features, copies)
    sug = suggest_cuts(tree.Z, copy_leaf=leaf)
    t_sug = time.perf_counter() - t0
    print(f"projection + Ward {t_ward:.1f} s; nearest leaves + suggestion {t_sug:.1f} s -> {len(sug.clusters)} "
          f"clusters")
    t0 = time.perf_counter()
    learn_invariance(stack)
    print(f"--train: learning the invariance on 2,000 of the cut-outs {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
