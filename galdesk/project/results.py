"""Results as the engines store them in ``results/*.h5``, read back for vetting, export and the window.

``predictions`` is written by :func:`galdesk.ml.service.classify_project`, ``clusters`` by
:func:`galdesk.cluster.store.save_clusters`, ``morphology`` by :func:`galdesk.cluster.morphology.measure_morphology`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from galdesk.project.store import as_project

__all__ = ["StoredPredictions", "load_predictions", "load_clusters", "load_morphology", "as_project"]


@dataclass
class StoredPredictions:
    """The classifier's output (result ``"predictions"``), indexed by object-table row.

    Attributes
    ----------
    rows : ndarray of int, (N,)
        Rows of :attr:`galdesk.project.Project.objects`.
    prob : ndarray of float, (N, K)
    pred : ndarray of int, (N,)
    entropy, margin : ndarray of float, (N,)
        Shannon entropy (nats) of ``prob``; top-1 minus top-2 probability. Computed when the result lacks them.
    class_names : list of str
    model_id, model_hash, device : str or None
    summary : dict
        What the classification reported when it was stored (metrics, suspects, label column; see
        :func:`galdesk.ml.service.classify_project`); empty for older results.
    """

    rows: np.ndarray
    prob: np.ndarray
    pred: np.ndarray
    entropy: np.ndarray
    margin: np.ndarray
    class_names: list[str]
    model_id: str | None = None
    model_hash: str | None = None
    device: str | None = None
    summary: dict = field(default_factory=dict)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, (N,)."""
        return self.prob[np.arange(len(self.pred)), self.pred] if len(self.pred) else np.zeros(0)

    def label(self, i: int) -> str:
        """Class name predicted for entry ``i``."""
        return str(self.class_names[int(self.pred[i])])

    def row_index(self) -> dict[int, int]:
        """Object-table row -> entry index."""
        return {int(r): i for i, r in enumerate(self.rows)}


def load_predictions(project) -> StoredPredictions | None:
    """Read result ``"predictions"`` (None if the project has none)."""
    res = project.load_result("predictions")
    if res is None:
        return None
    arrays, attrs = res
    prob = np.asarray(arrays["prob"], dtype=float)
    if prob.ndim != 2:
        prob = prob.reshape(len(prob), -1)
    pred = np.asarray(arrays.get("pred", np.argmax(prob, axis=1)) if len(prob) else np.zeros(0), dtype=int)
    rows = np.asarray(arrays.get("row", np.arange(len(prob))), dtype=int)
    if "entropy" in arrays:
        entropy = np.asarray(arrays["entropy"], dtype=float)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.nansum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)
    if "margin" in arrays:
        margin = np.asarray(arrays["margin"], dtype=float)
    else:
        top = np.sort(prob, axis=1)
        margin = top[:, -1] - (top[:, -2] if prob.shape[1] > 1 else 0.0)
    names = [str(c) for c in attrs.get("class_names") or [f"class_{k}" for k in range(prob.shape[1])]]
    return StoredPredictions(rows, prob, pred, entropy, margin, names, _opt_str(attrs.get("model_id")),
                       _opt_str(attrs.get("model_hash")), _opt_str(attrs.get("device")),
                       dict(attrs.get("summary") or {}))


def load_clusters(project) -> tuple[np.ndarray, np.ndarray, object] | None:
    """Result ``"clusters"`` as ``(rows, labels, cut_version)``, or None. ``cut_version`` may be None."""
    res = project.load_result("clusters")
    if res is None:
        return None
    arrays, attrs = res
    labels = np.asarray(arrays["label"], dtype=int)
    rows = np.asarray(arrays.get("row", np.arange(len(labels))), dtype=int)
    return rows, labels, attrs.get("cut_version")


def load_morphology(project) -> tuple[np.ndarray, dict[str, np.ndarray], dict] | None:
    """Result ``"morphology"`` as ``(rows, columns, attrs)``: object-table rows, the ``morph_*`` columns by name
    (float32 values, int16 flags), and the attrs (statmorph version, band, ...); None if the project has none."""
    res = project.load_result("morphology")
    if res is None:
        return None
    arrays, attrs = res
    rows = np.asarray(arrays.pop("row"), dtype=np.int64)
    return rows, {k: np.asarray(v) for k, v in arrays.items() if k.startswith("morph_")}, attrs


def _opt_str(v) -> str | None:
    return None if v is None else str(v)
