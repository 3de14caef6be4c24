"""Labels and splits for training: encoding class names, stratified train/validation/test splits, class weights
and the decision threshold chosen on the validation split."""

from __future__ import annotations

import numpy as np

__all__ = ["encode_labels", "stratified_split", "class_weights", "choose_threshold"]


def encode_labels(labels, class_names: list[str]) -> np.ndarray:
    """Labels (strings matching ``class_names``, or integer indices) -> int array, -1 where unknown/unlabelled."""
    lookup = {str(c): i for i, c in enumerate(class_names)}
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        if isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if 0 <= int(lab) < len(class_names):
                out[i] = int(lab)
            continue
        key = str(lab).strip()
        if key in lookup:
            out[i] = lookup[key]
    return out


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """Stratified train/val/test indices (into ``y``, only rows with y >= 0), sorted."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    idx = np.flatnonzero(y >= 0)
    yy = y[idx]
    counts = np.bincount(yy)
    if (counts[counts > 0] < 3).any() or (counts == 0).any():
        bad = [int(c) for c in np.flatnonzero(counts < 3)]
        raise ValueError(f"classes {bad} have fewer than 3 labelled examples; a stratified split needs at least 3")
    test = np.array([], dtype=np.int64)
    rest = idx
    if test_fraction > 0:
        rest, test = train_test_split(idx, test_size=test_fraction, stratify=yy, random_state=seed)
    val_rel = val_fraction / max(1e-9, 1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_rel, stratify=y[rest], random_state=seed + 1)
    return {"train": sorted(int(i) for i in train), "val": sorted(int(i) for i in val),
            "test": sorted(int(i) for i in test)}


def class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency ("balanced") weights, mean 1 over the training examples."""
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y_train) / (n_classes * np.maximum(counts, 1)), 0.0)
    return w


def choose_threshold(p_positive: np.ndarray, y: np.ndarray) -> float:
    """Decision threshold on P(class 1) that maximises accuracy on (validation) data.

    Scans 0.05..0.95 in steps of 0.01; among ties takes the middle of the best run, which is less sensitive to
    a handful of noisy labels than the first maximum.
    """
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    acc = np.array([((p_positive >= t).astype(int) == y).mean() for t in grid])
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    # longest contiguous run of best thresholds, its middle
    runs, start = [], best[0]
    for a, b in zip(best[:-1], best[1:]):
        if b != a + 1:
            runs.append((start, a))
            start = b
    runs.append((start, best[-1]))
    lo, hi = max(runs, key=lambda r: r[1] - r[0])
    return float(grid[(lo + hi) // 2])
