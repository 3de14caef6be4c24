"""The vetting queue: which objects to look at, in which order (ambiguous, suspect, disagreement, broad, random)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from galdesk.project.results import as_project, load_clusters, load_predictions
from galdesk.vetting.replay import Replay
from galdesk.vetting.schema import QUEUE_ORDERS

__all__ = ["build_queue"]


def build_queue(project, order: str = "ambiguous", *, classes: Iterable[str] | None = None,
                clusters: Iterable[int] | None = None, min_confidence: float | None = None,
                max_confidence: float | None = None, kind: str | None = None, vetter: str | None = None,
                exclude_decided: bool = True, seed: int = 0, catalog_column: str | None = None,
                label_map: dict | None = None, limit: int | None = None) -> list[str]:
    """The object ids to vet, in the chosen order.

    Parameters
    ----------
    project : Project or path
    order : {"ambiguous", "suspect", "disagreement", "broad", "random"}
        ``ambiguous``: highest classifier entropy first (ties: smallest top-1 minus top-2 margin).
        ``suspect``: the catalogue label differs from a confident prediction; largest
        ``p(predicted) - p(catalogue label)`` first. ``disagreement``: the prediction differs from the majority
        prediction of the object's cluster; purest clusters first, then most confident predictions.
        ``broad``: line fits that need a broad component, largest ``delta_bic`` first. ``random``: a seeded
        permutation of everything (an unbiased audit sample).
    classes : iterable of str, optional
        Keep objects predicted as one of these classes.
    clusters : iterable of int, optional
        Keep objects in these clusters.
    min_confidence, max_confidence : float, optional
        Keep objects whose top probability is within these bounds.
    kind : {"image", "spectrum"}, optional
    vetter : str, optional
        With ``exclude_decided``: leave out what this vetter decided (default: what anyone decided). Objects the
        vetter (anyone) skipped go to the end.
    exclude_decided : bool
    seed : int
        For ``random``.
    catalog_column : str, optional
        For ``suspect``: the object-table column holding the catalogue label; default: the catalogue column
        whose values match the most class names.
    label_map : dict, optional
        For ``suspect``: catalogue value -> class name (e.g. ``{"clockwise spiral": "spiral"}``).
    limit : int, optional
        At most this many ids.

    Returns
    -------
    list of str
        Object ids, each once.
    """
    project = as_project(project)
    if order not in QUEUE_ORDERS:
        raise ValueError(f"unknown queue order {order!r}; expected one of {', '.join(QUEUE_ORDERS)}")
    objs = project.objects
    n = len(objs)
    if n == 0:
        return []
    ids = np.asarray(objs["id"]).astype(str)
    preds = load_predictions(project)
    pred_of_row = np.full(n, -1)
    conf = np.full(n, np.nan)
    if preds is not None:
        ok = (preds.rows >= 0) & (preds.rows < n)
        pred_of_row[preds.rows[ok]] = np.flatnonzero(ok)
        conf[preds.rows[ok]] = preds.confidence[ok]
    clus = load_clusters(project)
    cluster_of_row = np.full(n, np.iinfo(np.int64).min)
    if clus is not None:
        ok = (clus[0] >= 0) & (clus[0] < n)
        cluster_of_row[clus[0][ok]] = clus[1][ok]

    keep = _filter(project, objs, preds, pred_of_row, conf, clus, cluster_of_row, kind=kind, classes=classes,
                   clusters=clusters, min_confidence=min_confidence, max_confidence=max_confidence)
    rows = _ordered_rows(project, order, objs, ids, preds, pred_of_row, conf, cluster_of_row, clus, keep, seed,
                         catalog_column, label_map)

    queue = list(dict.fromkeys(str(ids[r]) for r in rows))  # each id once, first occurrence wins
    if exclude_decided:
        state = Replay.from_journal(project.journal).combined(vetter)
        decided = {k for k, v in state.items() if v["label"] is not None}
        skipped = {k for k, v in state.items() if v["label"] is None and v["skipped"]}
        queue = [q for q in queue if q not in decided and q not in skipped] + [q for q in queue if q in skipped]
    return queue[:limit] if limit is not None else queue


def _filter(project, objs, preds, pred_of_row, conf, clus, cluster_of_row, *, kind, classes, clusters,
            min_confidence, max_confidence) -> np.ndarray:
    """Rows that pass the filters of :func:`build_queue` (ValueError for a filter the project cannot answer)."""
    n = len(objs)
    keep = np.ones(n, bool)
    if kind is not None:
        keep &= np.asarray(objs["kind"]) == kind
    if classes is not None:
        if preds is None:
            raise ValueError(f"{project.path}: no predictions, cannot filter by class")
        wanted = {str(c) for c in classes}
        unknown = wanted - set(preds.class_names)
        if unknown:
            raise ValueError(f"unknown class(es) {sorted(unknown)}; the model's classes are {preds.class_names}")
        pred_name = np.array([preds.label(i) if i >= 0 else "" for i in pred_of_row], dtype=object)
        keep &= np.isin(pred_name, list(wanted))
    if clusters is not None:
        if clus is None:
            raise ValueError(f"{project.path}: no clusters, cannot filter by cluster")
        keep &= np.isin(cluster_of_row, [int(c) for c in clusters])
    if min_confidence is not None:
        keep &= conf >= float(min_confidence)
    if max_confidence is not None:
        keep &= conf <= float(max_confidence)

    return keep


def _ordered_rows(project, order, objs, ids, preds, pred_of_row, conf, cluster_of_row, clus, keep, seed,
                  catalog_column, label_map) -> np.ndarray:
    if order == "random":
        rows = np.flatnonzero(keep)
        return rows[np.random.default_rng(seed).permutation(len(rows))]
    if order == "broad":
        fits = project.journal.latest("line_fit")
        cand = []
        for r in np.flatnonzero(keep):
            rec = fits.get(ids[r])
            if rec is not None and rec.payload.get("broad_needed"):
                d = _float(rec.payload.get("delta_bic"))
                cand.append((-(d if math.isfinite(d) else -np.inf), r))
        return np.array([r for _, r in sorted(cand)], dtype=int)
    if preds is None:
        raise ValueError(f"{project.path}: queue order {order!r} needs classifier predictions; run classify first")
    has = keep & (pred_of_row >= 0)
    idx = np.maximum(pred_of_row, 0)
    if order == "ambiguous":
        rows = np.flatnonzero(has)
        ent = preds.entropy[idx[rows]]
        mar = preds.margin[idx[rows]]
        return rows[np.lexsort((rows, mar, -ent))]
    if order == "suspect":
        col = catalog_column or _guess_catalog_column(objs, preds.class_names, label_map)
        if col is None:
            raise ValueError(f"{project.path}: no catalogue column with labels matching the classes "
                             f"{preds.class_names}; give catalog_column (and label_map)")
        if col not in objs.colnames:
            raise ValueError(f"{project.path}: no column {col!r} in the object table")
        cls_index = {c.lower(): k for k, c in enumerate(preds.class_names)}
        lmap = {str(k).strip().lower(): str(v) for k, v in (label_map or {}).items()}
        values = objs[col]
        mask = np.ma.getmaskarray(values)
        cand = []
        for r in np.flatnonzero(has):
            if mask[r]:
                continue
            v = str(values[r]).strip().lower()
            k = cls_index.get(lmap.get(v, v).lower())
            i = idx[r]
            if k is None or k == preds.pred[i]:
                continue
            cand.append((-(preds.prob[i, preds.pred[i]] - preds.prob[i, k]), r))
        return np.array([r for _, r in sorted(cand)], dtype=int)
    # disagreement
    if clus is None:
        raise ValueError(f"{project.path}: queue order 'disagreement' needs cluster labels; cluster first")
    both = has & (cluster_of_row != np.iinfo(np.int64).min)
    majority: dict[int, tuple[int, float]] = {}
    for c in np.unique(cluster_of_row[both]):
        members = np.flatnonzero(both & (cluster_of_row == c))
        if len(members) < 2:
            continue
        counts = np.bincount(preds.pred[idx[members]], minlength=len(preds.class_names))
        majority[int(c)] = (int(np.argmax(counts)), float(counts.max() / len(members)))
    cand = []
    for r in np.flatnonzero(both):
        m = majority.get(int(cluster_of_row[r]))
        if m is None or preds.pred[idx[r]] == m[0]:
            continue
        cand.append((-m[1], -conf[r], r))
    return np.array([t[-1] for t in sorted(cand)], dtype=int)


def _guess_catalog_column(objs, class_names, label_map) -> str | None:
    from galdesk.project.objects import BASE_COLUMNS

    names = {c.lower() for c in class_names} | {str(k).strip().lower() for k in (label_map or {})}
    best, best_hits = None, 0
    for col in objs.colnames:
        if col in BASE_COLUMNS and col != "spec_class":
            continue
        if np.asarray(objs[col]).dtype.kind not in "US":
            continue
        values = np.char.lower(np.char.strip(np.asarray(objs[col]).astype(str)))
        hits = int(np.isin(values, list(names)).sum())
        if hits > best_hits:
            best, best_hits = col, hits
    return best


def _float(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")
