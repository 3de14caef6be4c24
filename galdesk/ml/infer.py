"""Batched inference with progress, cancel between batches, out-of-memory recovery; metrics and suspect labels.

:func:`classify_stack` never crashes on a full GPU: an out-of-memory error halves the batch and retries the same
objects; at batch 1 it moves the model to the CPU and goes on. It checks ``ctx.check_cancelled()`` before every
batch, so a cancel stops it within one batch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from galdesk.ml.device import choose_device
from galdesk.ml.preprocess import dihedral, preprocess
from galdesk.ml.weights import LoadedModel, load_model
from galdesk.tasks import NullContext, TaskContext

__all__ = ["Predictions", "classify_stack", "evaluate", "suspect_labels", "is_oom", "run_batches", "make_predictions"]

_log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Per-object outputs of a classifier.

    Attributes
    ----------
    probabilities : ndarray (N, K) float32
        Softmax class probabilities (averaged over views when TTA was used).
    predicted : ndarray (N,) int
        Index into ``class_names``. For a binary model with a ``decision_threshold`` in its card, class 1 is
        predicted where ``probabilities[:, 1] >= threshold``; otherwise the arg-max.
    class_names : list of str
    entropy : ndarray (N,) float32
        Shannon entropy of the probabilities divided by ln K: 0 = certain, 1 = uniform (ambiguous).
    margin : ndarray (N,) float32
        Top-1 minus top-2 probability: 1 = certain, 0 = a tie (ambiguous).
    model_id, model_hash, device : str
    threshold : float or None
    tta : int
        Number of views averaged (1 = no test-time augmentation).
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    class_names: list[str]
    entropy: np.ndarray
    margin: np.ndarray
    model_id: str = ""
    model_hash: str = ""
    device: str = "cpu"
    threshold: float | None = None
    tta: int = 1
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def predicted_names(self) -> np.ndarray:
        return np.asarray(self.class_names, dtype=object)[self.predicted]

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class."""
        return self.probabilities[np.arange(len(self)), self.predicted]

    def subset(self, index) -> "Predictions":
        idx = np.asarray(index)
        return Predictions(self.probabilities[idx], self.predicted[idx], list(self.class_names), self.entropy[idx],
                           self.margin[idx], self.model_id, self.model_hash, self.device, self.threshold, self.tta,
                           dict(self.info))

    def to_dict(self) -> dict:
        """Plain-Python summary (for a project file or JSON export)."""
        return {"probabilities": self.probabilities.tolist(), "predicted": self.predicted.tolist(),
                "class_names": list(self.class_names), "entropy": self.entropy.tolist(),
                "margin": self.margin.tolist(), "model_id": self.model_id, "model_hash": self.model_hash,
                "device": self.device, "threshold": self.threshold, "tta": self.tta}


def make_predictions(probs: np.ndarray, class_names: list[str], threshold: float | None = None, **kw) -> Predictions:
    """Predictions from a probability matrix (predicted class, normalised entropy and margin)."""
    probs = np.asarray(probs, dtype=np.float32)
    k = probs.shape[1]
    if k == 2 and threshold is not None:
        predicted = (probs[:, 1] >= threshold).astype(np.int64)
    else:
        predicted = probs.argmax(axis=1).astype(np.int64)
    p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    entropy = (-(p * np.log(p)).sum(axis=1) / math.log(k)).astype(np.float32)
    srt = np.sort(probs, axis=1)
    margin = (srt[:, -1] - srt[:, -2]).astype(np.float32) if k > 1 else np.ones(len(probs), np.float32)
    return Predictions(probs, predicted, list(class_names), entropy, margin, threshold=threshold, **kw)


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA/MPS/CPU out-of-memory error."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower())


def _free_cache(device: str) -> None:
    try:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        elif device == "mps":
            torch.mps.empty_cache()
    except Exception:  # pragma: no cover
        pass


def _to_device(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """Move the model (a seam for tests that simulate a GPU)."""
    return module.to(device)


def run_batches(model: torch.nn.Module, n: int, make_batch: Callable[[int, int, str], torch.Tensor],
                ctx: TaskContext | None = None, batch_size: int = 64, device: str = "cpu", n_views: int = 1,
                view: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                autocast: bool | None = None, label: str = "classified",
                cpu_bf16: bool = False) -> tuple[np.ndarray, str, dict]:
    """Softmax probabilities ``(n, K)`` of ``model`` over ``n`` items, batch by batch.

    ``make_batch(i0, i1, device)`` returns the preprocessed input of items ``i0:i1`` on ``device``. With
    ``n_views > 1`` the probabilities are averaged over ``view(x, k)`` for k in range(n_views) (TTA).
    Mixed precision: fp16 autocast on CUDA; bf16 autocast on the CPU only when ``cpu_bf16`` (fast with
    AVX512-BF16/AMX, changes probabilities by well under 1%).
    Returns ``(probabilities, device finally used, info)``; ``info`` records batch-size changes and fallbacks.
    """
    ctx = ctx or NullContext()
    if autocast is None:
        autocast = device.startswith("cuda") or (device == "cpu" and cpu_bf16)
    model.eval()
    model = _to_device(model, device)
    out: list[np.ndarray] = []
    info: dict = {"batch_size": batch_size, "oom_events": 0, "fell_back_to_cpu": False}
    i = 0
    t0 = time.monotonic()
    while i < n:
        ctx.check_cancelled()
        j = min(n, i + batch_size)
        try:
            with torch.inference_mode():
                x = make_batch(i, j, device)
                dtype = torch.bfloat16 if device == "cpu" else torch.float16
                with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=autocast):
                    p = 0
                    for k in range(n_views):
                        xv = view(x, k) if (view is not None and n_views > 1) else x
                        p = p + torch.softmax(model(xv).float(), dim=1)
                    p = p / n_views
            p = p.float().cpu().numpy()
            if not out:    # one array for all, made once: small per-batch arrays left between the batches' large
                out.append(np.empty((n, p.shape[1]), np.float32))   # freed blocks would pin the heap (it grew)
            out[0][i:j] = p
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(exc):
                raise
            info["oom_events"] += 1
            _free_cache(device)
            if batch_size > 1:
                batch_size = max(1, batch_size // 2)
                ctx.log(f"out of memory on {device}: batch size halved to {batch_size}")
                _log.warning("out of memory on %s; batch size -> %d", device, batch_size)
                continue
            if device != "cpu":
                ctx.log(f"out of memory on {device} even at batch 1: continuing on the CPU")
                _log.warning("out of memory on %s at batch 1; falling back to CPU", device)
                device = "cpu"
                autocast = cpu_bf16
                model = _to_device(model, device)
                batch_size = max(1, info["batch_size"])
                info["fell_back_to_cpu"] = True
                continue
            raise
        i = j
        ctx.progress(i / n, f"{label} {i}/{n}")
    info["final_batch_size"] = batch_size
    info["seconds"] = time.monotonic() - t0
    probs = out[0] if out else np.zeros((0, 0), np.float32)
    return probs, device, info


def classify_stack(stack, model: LoadedModel | str, ctx: TaskContext | None = None, batch_size: int = 64,
                   device: str | None = None, tta: bool | int = False, setting: str | None = None,
                   cpu_bf16: bool = False) -> Predictions:
    """Classify a working-size stack of cut-outs.

    Parameters
    ----------
    stack : array-like (N, C, S, S) float32
        Raw pixel values as the project stores them (see :mod:`galdesk.ml.preprocess`); numpy array, torch tensor
        or an h5py dataset (read batch by batch).
    model : LoadedModel or str
        A loaded model, or a bundled name / file path for :func:`galdesk.ml.weights.load_model`.
    ctx : TaskContext, optional
        Progress (with ETA) after each batch; cancel checked before each batch (raises ``Cancelled``).
    batch_size : int
        Starting batch size; halved on out-of-memory.
    device : str, optional
        Explicit device; otherwise $GALDESK_DEVICE, then ``setting``, then cuda -> mps -> cpu.
    tta : bool or int
        Test-time averaging over the symmetries of the square: True = 8 views (4 rotations x flip), or 4 / 8.
    setting : str, optional
        The user's device setting (used when neither ``device`` nor $GALDESK_DEVICE choose).
    cpu_bf16 : bool
        bfloat16 autocast on the CPU (about 2-3x faster on CPUs with AVX512-BF16/AMX; probabilities change by
        well under 1%). Off by default.
    """
    ctx = ctx or NullContext()
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    if loaded.task != "image":
        raise ValueError(f"model {loaded.id!r} is a {loaded.task} model; use classify_spectra for spectra")
    spec = loaded.preprocessing
    dev = choose_device(device, setting)
    n = int(stack.shape[0])
    n_views = 8 if tta is True else (int(tta) if tta else 1)
    if n_views not in (1, 2, 4, 8):
        raise ValueError("tta must be False, True, 2, 4 or 8")
    views = {1: [0], 2: [0, 2], 4: [0, 1, 2, 3], 8: list(range(8))}[n_views]

    def make_batch(i0: int, i1: int, d: str) -> torch.Tensor:
        x = preprocess(np.asarray(stack[i0:i1], dtype=np.float32), spec, device=d)
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x

    if n == 0:
        probs = np.zeros((0, len(loaded.class_names)), np.float32)
        used, info = dev, {}
    else:
        probs, used, info = run_batches(loaded.model, n, make_batch, ctx=ctx, batch_size=batch_size, device=dev,
                                        n_views=n_views, view=lambda x, k: dihedral(x, views[k]), cpu_bf16=cpu_bf16)
    loaded.device = used
    return make_predictions(probs, loaded.class_names, loaded.decision_threshold, model_id=loaded.id,
                            model_hash=loaded.hash, device=used, tta=n_views, info=info)


def _label_indices(predictions: Predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    """(row indices with a known label, their class indices)."""
    lookup = {name: i for i, name in enumerate(predictions.class_names)}
    rows, y = [], []
    for r, lab in enumerate(labels):
        if lab is None:
            continue
        key = str(lab).strip()
        if key in lookup:
            rows.append(r)
            y.append(lookup[key])
    return np.asarray(rows, dtype=np.int64), np.asarray(y, dtype=np.int64)


def evaluate(predictions: Predictions, labels) -> dict:
    """Metrics against catalogue labels (strings); only rows whose label is one of the class names count.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``roc_auc`` (binary: of class 1 = the positive class; more classes:
        macro one-vs-rest; None when a class is missing), ``confusion_matrix`` (rows = catalogue, columns =
        predicted, nested lists in ``class_names`` order), ``class_names``, ``n_labelled``, ``n_per_class``.
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score  # noqa: PLC0415

    labels = list(labels)
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels for {len(predictions)} predictions")
    rows, y = _label_indices(predictions, labels)
    k = len(predictions.class_names)
    out = {"class_names": list(predictions.class_names), "n_labelled": int(rows.size), "accuracy": None,
           "balanced_accuracy": None, "roc_auc": None, "confusion_matrix": [[0] * k for _ in range(k)],
           "n_per_class": [int((y == c).sum()) for c in range(k)]}
    if rows.size == 0:
        return out
    pred = predictions.predicted[rows]
    prob = predictions.probabilities[rows]
    out["accuracy"] = float((pred == y).mean())
    out["balanced_accuracy"] = float(balanced_accuracy_score(y, pred)) if len(set(y.tolist())) > 1 else None
    out["confusion_matrix"] = confusion_matrix(y, pred, labels=list(range(k))).tolist()
    present = sorted(set(y.tolist()))
    try:
        if k == 2 and len(present) == 2:
            out["roc_auc"] = float(roc_auc_score(y, prob[:, 1]))
        elif k > 2 and len(present) == k:
            p = prob / prob.sum(axis=1, keepdims=True)
            out["roc_auc"] = float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(k))))
    except ValueError:
        out["roc_auc"] = None
    return out


def suspect_labels(predictions: Predictions, labels, threshold: float = 0.9) -> list[tuple[int, str, str, float]]:
    """Objects whose catalogue label the model confidently contradicts.

    Returns ``[(index, catalogue_label, predicted_label, confidence), ...]`` for rows with a known label where the
    predicted class differs and its probability is at least ``threshold``, most confident first.
    """
    rows, y = _label_indices(predictions, list(labels))
    out = []
    conf = predictions.confidence
    for r, c in zip(rows.tolist(), y.tolist()):
        p = int(predictions.predicted[r])
        if p != c and conf[r] >= threshold:
            out.append((r, predictions.class_names[c], predictions.class_names[p], float(conf[r])))
    out.sort(key=lambda t: -t[3])
    return out
