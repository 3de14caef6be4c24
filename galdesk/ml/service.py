"""Classification of a project's cut-outs (the ml engine's project service): the glue between the project store
and :mod:`galdesk.ml`.

``classify_project`` and ``train_project`` are the functions behind ``galdesk classify`` / ``galdesk train`` and
the Classify tab: plain functions with a progress/cancel context, no Qt. Results go to the project as result
``"predictions"`` (arrays ``row``, ``prob``, ``pred``, ``entropy``, ``margin``; attrs ``class_names``,
``model_id``, ``model_hash``, ``device``, ``threshold``) so that the Vet tab and the export read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galdesk.ml import DEFAULT_MODEL
from galdesk.project import Project, as_project
from galdesk.project.objects import BASE_COLUMNS, cell_str
from galdesk.project.store import stack_group
from galdesk.tasks import NullContext, TaskContext

__all__ = ["classify_project", "classify_targets", "store_predictions", "classify_chunk", "train_project",
           "catalogue_labels", "parse_label_map", "label_columns",
           "prediction_rows", "binary_roc", "PREDICTION_ORDERS", "DEFAULT_MODEL", "prediction_agreement"]



def parse_label_map(text: str | dict | None) -> dict[str, str]:
    """``"spiral_clockwise=spiral,edge_on_disk=spiral"`` (or a dict) -> mapping of catalogue value -> class."""
    if not text:
        return {}
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    out = {}
    for part in str(text).split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def catalogue_labels(project: Project, column: str, rows: np.ndarray, label_map: dict | None = None) -> list:
    """Catalogue labels (strings, or None where missing) of object rows, mapped through ``label_map``."""
    objs = project.objects
    if column not in objs.colnames:
        raise KeyError(f"{project.path}: no catalogue column {column!r} (columns: {', '.join(objs.colnames)})")
    label_map = label_map or {}
    out = []
    for r in rows:
        v = cell_str(objs[column][int(r)]).strip()
        out.append(label_map.get(v, v) if v else None)
    return out


def prediction_agreement(project: Project, preds, column: str | None, label_map: dict | None = None) -> dict:
    """Object row -> True (the model agrees with the catalogue's label), False (it does not); rows without a
    catalogue label, or without a ``column``, are left out."""
    if not column or column not in project.objects.colnames:
        return {}
    rows = np.asarray(preds.rows, np.int64)
    labels = catalogue_labels(project, column, rows, label_map)
    return {int(r): preds.label(i) == lab for i, (r, lab) in enumerate(zip(rows, labels)) if lab is not None}


def label_columns(project: Project) -> list[str]:
    """Object-table columns that may hold class labels: the catalogue's columns, plus the spectroscopic class."""
    return [c for c in project.objects.colnames if c not in BASE_COLUMNS or c in ("spec_class", "subclass")]


#: Orders of :func:`prediction_rows`
PREDICTION_ORDERS = ("ambiguous", "confident", "catalogue")


def prediction_rows(preds, predicted: str | None = None, order: str = "ambiguous") -> np.ndarray:
    """Object-table rows of stored predictions (:class:`galdesk.project.results.StoredPredictions`) to review.

    Parameters
    ----------
    predicted : str, optional
        Keep only objects predicted as this class.
    order : {"ambiguous", "confident", "catalogue"}
        Highest entropy first, highest top-class probability first, or the stored order (ties keep it too).
    """
    keep = np.ones(len(preds.rows), bool)
    if predicted is not None:
        keep &= np.asarray([preds.label(i) == predicted for i in range(len(preds.rows))], bool)
    idx = np.flatnonzero(keep)
    if order == "ambiguous":
        idx = idx[np.argsort(-preds.entropy[idx], kind="stable")]
    elif order == "confident":
        idx = idx[np.argsort(-preds.confidence[idx], kind="stable")]
    elif order != "catalogue":
        raise ValueError(f"unknown order {order!r} (choose from {', '.join(PREDICTION_ORDERS)})")
    return preds.rows[idx]


def binary_roc(project: Project, preds, label_column: str, label_map: dict | None = None):
    """ROC curve of a two-class prediction against catalogue labels: ``(false_positive_rate, true_positive_rate)``
    arrays, or None when the model has not two classes or the labelled objects do not show both."""
    from sklearn.metrics import roc_curve

    if preds is None or len(preds.class_names) != 2:
        return None
    labels = catalogue_labels(project, label_column, preds.rows, label_map)
    y = np.array([preds.class_names.index(lab) if lab in preds.class_names else -1 for lab in labels])
    ok = y >= 0
    if len(set(y[ok].tolist())) < 2:
        return None
    fpr, tpr, _ = roc_curve(y[ok], preds.prob[ok, 1])
    return fpr, tpr


def classify_project(project, model: str = DEFAULT_MODEL, device: str | None = None,
                     label_column: str | None = None, label_map: dict | None = None, tta: bool = False,
                     batch_size: int = 64, suspect_threshold: float = 0.9, ctx: TaskContext | None = None) -> dict:
    """Classify every cut-out of the project whose band count fits the model, store and summarise the result.

    Returns
    -------
    dict
        ``classified``, ``device``, ``model`` (id), ``model_hash``, ``class_names``, ``skipped`` (objects with
        another band count), ``metrics`` (accuracy, ROC AUC, confusion matrix, n_labelled against
        ``label_column``; empty without one) and ``suspects`` (catalogue labels the model confidently contradicts).
    """
    from galdesk.ml.infer import classify_stack
    from galdesk.ml.weights import load_model

    ctx = ctx or NullContext()
    project = as_project(project)
    project.check_writable("predictions")
    ctx.progress(0.0, "Loading model")
    loaded = load_model(model)
    group, rows, index = classify_targets(project, loaded)
    # read a batch at a time from the files: memory does not grow with the project
    preds = classify_stack(project.stack_view(group, index), loaded, ctx=ctx, batch_size=batch_size, device=device,
                           tta=tta)
    out = store_predictions(project, rows, preds, label_column, label_map, suspect_threshold)
    ctx.progress(1.0, f"Classified {len(preds)} objects on {preds.device}")
    return out


def classify_targets(project: Project, loaded) -> tuple[str, np.ndarray, np.ndarray]:
    """``(group, object rows, stack rows)`` of the cut-outs a loaded model can take (its band count)."""
    in_ch = int((loaded.card.get("architecture") or {}).get("in_channels") or 3)
    rows = project.image_rows(in_ch)
    return stack_group(in_ch), rows, np.asarray(project.objects["row"])[rows].astype(np.int64)


def store_predictions(project: Project, rows: np.ndarray, preds, label_column: str | None = None,
                      label_map: dict | None = None, suspect_threshold: float = 0.9) -> dict:
    """Store predictions of object ``rows`` as the project's result ``predictions``, with the summary (metrics
    and suspects against ``label_column``) that :func:`classify_project` returns."""
    from galdesk.ml.infer import evaluate, suspect_labels

    out = {"classified": int(len(preds)), "skipped": int(project.n_images - len(preds)), "device": preds.device,
           "model": preds.model_id, "model_hash": preds.model_hash, "class_names": preds.class_names,
           "metrics": {}, "suspects": []}
    if label_column:
        labels = catalogue_labels(project, label_column, rows, label_map)
        out["metrics"] = evaluate(preds, labels)
        ids = np.asarray(project.objects["id"]).astype(str)
        out["suspects"] = [{"id": ids[rows[i]], "catalogue": cat, "predicted": pred, "confidence": conf}
                           for i, cat, pred, conf in suspect_labels(preds, labels, suspect_threshold)]
    # the summary travels with the predictions, so that a reopened project shows its metrics and suspects again
    # (at most 200 suspects kept: HDF5 attributes must stay under 64 kB; n_suspects counts them all)
    summary = {"metrics": out["metrics"], "suspects": out["suspects"][:200], "n_suspects": len(out["suspects"]),
               "label_column": label_column, "label_map": label_map or {}, "skipped": out["skipped"]}
    project.save_result("predictions", {"row": rows, "prob": preds.probabilities, "pred": preds.predicted,
                                        "entropy": preds.entropy, "margin": preds.margin},
                        {"class_names": preds.class_names, "model_id": preds.model_id,
                         "model_hash": preds.model_hash, "device": preds.device, "threshold": preds.threshold,
                         "tta": preds.tta, "label_column": label_column, "summary": summary})
    return out


def classify_chunk(index, project, model: str, device: str | None = None, tta: bool = False,
                   batch_size: int = 64) -> tuple[np.ndarray, dict]:
    """``(probabilities, {"device": device})`` of the cut-outs at stack rows ``index`` of ``project`` (a path: this
    runs on a cluster worker, which reads them from the project's files)."""
    from galdesk.ml.infer import classify_stack
    from galdesk.ml.weights import load_model

    project = as_project(project)
    loaded = load_model(model)
    group = classify_targets(project, loaded)[0]
    preds = classify_stack(project.stack_view(group, index), loaded, batch_size=batch_size, device=device, tta=tta)
    return preds.probabilities, {"device": preds.device}


def train_project(project, label_column: str, output: str | Path | None = None, class_names: list[str] | None = None,
                  label_map: dict | None = None, config=None, ctx: TaskContext | None = None, on_epoch=None,
                  resume_from: str | Path | None = None) -> dict:
    """Train an image CNN on the project's labelled cut-outs (catalogue column ``label_column``).

    ``class_names`` default: the distinct mapped labels, sorted. The model is saved to ``output`` (default
    ``PROJECT/models/<column>.safetensors``) with its card, split and metrics.
    """
    from galdesk.ml.train import TrainConfig, train_image_classifier

    ctx = ctx or NullContext()
    project = as_project(project)
    if output is None:
        project.check_writable("a model in the project")
    groups = project.stack_groups()
    if not groups:
        raise ValueError(f"{project.path}: no cut-outs to train on")
    # the band count with the most objects
    counts = {g: int(np.count_nonzero(np.asarray(project.objects["group"]) == g)) for g in groups}
    group = max(counts, key=counts.get)
    rows = project.image_rows(int(group[1:]))
    labels = catalogue_labels(project, label_column, rows, label_map)
    if class_names is None:
        class_names = sorted({lab for lab in labels if lab})
    if len(class_names) < 2:
        raise ValueError(f"column {label_column!r} has fewer than two classes among the cut-outs")
    output = Path(output) if output else project.path / "models" / f"{label_column}.safetensors"
    output.parent.mkdir(parents=True, exist_ok=True)
    stack = project.stack(group)[np.asarray(project.objects["row"])[rows].astype(int)]
    ids = np.asarray(project.objects["id"]).astype(str)[rows]
    cfg = config if config is not None else TrainConfig()
    res = train_image_classifier(stack, labels, list(class_names), cfg, ctx=ctx, out_path=output,
                                 resume_from=resume_from, on_epoch=on_epoch, ids=list(ids),
                                 card_extra={"trained_on": str(project.path), "label_column": label_column})
    return {"model": str(res.path or output), "class_names": list(class_names), "best_epoch": res.best_epoch,
            "stopped_early": res.stopped_early, "metrics": res.metrics, "history": res.history,
            "n_labelled": int(sum(1 for lab in labels if lab in class_names))}
