"""Training an image classifier from labels: stratified split, class weights, augmentation, early stopping,
checkpoints and resume, fixed seeds, per-epoch history for live curves.

``train_image_classifier(stack, labels, class_names, config, ctx)`` has the ``fn(..., ctx)`` shape: it reports
``ctx.progress`` and calls ``ctx.check_cancelled()`` every batch, and calls ``on_epoch(row)`` after each epoch.
A cancelled run leaves its last epoch checkpoint, from which ``resume_from=`` continues.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from galdesk.ml.device import choose_device
from galdesk.ml.infer import Predictions, classify_stack, evaluate, make_predictions
from galdesk.ml.models import ImageCNN
from galdesk.ml.preprocess import augment_crop, crop_resize, default_spec, fit_scaling, looks_8bit, resize_stack, scale
from galdesk.ml.weights import LoadedModel, save_model
from galdesk.tasks import NullContext, TaskContext

__all__ = ["TrainConfig", "TrainResult", "train_image_classifier", "stratified_split", "choose_threshold",
           "encode_labels", "class_weights"]

_log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Settings of a training run (all stored in the model card).

    Attributes
    ----------
    input_size : int
        Network input side (px) after the centre crop.
    crop_fraction : float
        Centre crop of the working-size stamp (galaxies fill the centre of survey cut-outs).
    stack_size : int or None
        Working size the model expects; None = the training stack's size.
    scaling : str
        "standardize" (per-channel mean/std of the training split; for 8-bit colour cut-outs), "asinh" (per-image
        robust asinh; for FITS in physical units) or "auto" (standardize if all pixels lie within 0..255).
    width, depth, dropout : model size (see :class:`galdesk.ml.models.ImageCNN`).
    epochs, batch_size, lr, weight_decay, label_smoothing : optimisation (AdamW, one-epoch warm-up then cosine).
    patience : int
        Early stopping: stop after this many epochs without a lower validation loss; the best epoch is kept.
    val_fraction, test_fraction : float
        Stratified split (test may be 0).
    class_weighting : bool
        Weight the loss by inverse class frequency of the training split.
    augment : bool
        Random rotation (any angle), flip, +-2 px shift and 5% scale jitter in training.
    bn_recalibration : int
        Before each validation, recompute the BatchNorm statistics of the evaluated (averaged) weights from this
        many training stamps (no augmentation, as at inference; 0 = off). Running statistics lag behind weights
        that change quickly, which made early validation accuracy swing between 0.3 and 0.85; recomputed ones
        are exact for the weights being validated and saved (as ``torch.optim.swa_utils.update_bn`` does).
    mixup : float
        Mixup (Zhang et al. 2018) Beta(alpha, alpha) parameter; 0 = off. A regulariser that is robust to label
        noise.
    ema_decay : float
        Keep an exponential moving average of the weights (per step; 0 disables). The average is what is
        validated, early-stopped and saved: it is steadier than the raw weights, whose validation loss jumps from
        epoch to epoch at these learning rates.
    tta : bool
        Average the 8 rotations/flips when computing validation/test metrics at the end.
    choose_threshold : bool
        Binary only: pick the decision threshold on the validation split (max accuracy) and store it in the card.
    seed : int
    device : str or None
        Explicit device; None = $GALDESK_DEVICE / auto.
    mixed_precision : bool
        fp16 autocast + gradient scaling on CUDA (ignored elsewhere).
    cpu_bf16 : bool
        bfloat16 autocast when training on the CPU: about 2x faster on CPUs with AVX512-BF16/AMX, slower on
        others, so off by default.
    num_threads : int or None
        ``torch.set_num_threads`` for CPU training.
    checkpoint_every : int
        Write a resumable checkpoint every this many epochs (needs ``out_path`` or ``checkpoint_path``).
    """

    input_size: int = 48
    crop_fraction: float = 0.5
    stack_size: int | None = None
    scaling: str = "auto"
    width: int = 16
    depth: int = 4
    dropout: float = 0.3
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    patience: int = 6
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    class_weighting: bool = True
    augment: bool = True
    mixup: float = 0.0
    ema_decay: float = 0.995
    bn_recalibration: int = 2048
    tta: bool = False
    choose_threshold: bool = True
    seed: int = 0
    device: str | None = None
    mixed_precision: bool = True
    cpu_bf16: bool = False
    num_threads: int | None = None
    checkpoint_every: int = 1
    checkpoint_path: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    """What a training run produced.

    ``history``: one dict per epoch (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``,
    ``val_auc``, ``lr``, ``seconds``).
    ``split``: indices into the stack given (``train``/``val``/``test``). ``metrics``: ``val``
    and ``test`` as returned by :func:`galdesk.ml.infer.evaluate`. ``loaded``: the trained model ready for
    :func:`galdesk.ml.infer.classify_stack`.
    """

    model: torch.nn.Module
    card: dict
    history: list[dict]
    split: dict
    metrics: dict
    best_epoch: int
    stopped_early: bool
    path: str | None = None
    loaded: LoadedModel | None = None
    test_predictions: Predictions | None = None
    extra: dict = field(default_factory=dict)


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


def _rows(stack, idx: np.ndarray) -> np.ndarray:
    """``stack[idx]`` as float32, for numpy arrays and h5py datasets (which need sorted, unique indices)."""
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(stack, np.ndarray):
        return np.asarray(stack[idx], dtype=np.float32)
    uniq, inv = np.unique(idx, return_inverse=True)
    return np.asarray(stack[uniq], dtype=np.float32)[inv]


def _batch_input(stack, idx: np.ndarray, spec: dict, device: str, augment: bool, gen: torch.Generator | None):
    x = torch.as_tensor(_rows(stack, idx)).to(device)
    x = scale(resize_stack(x, spec["stack_size"]), spec)
    x = augment_crop(x, spec, generator=gen) if augment else crop_resize(x, spec)
    return x.contiguous(memory_format=torch.channels_last)


def _evaluate_loss(model, stack, idx, y, spec, device, batch_size, weight, amp, amp_dtype,
                   ctx) -> tuple[float, float, float | None]:
    """Weighted loss, accuracy (arg-max) and ROC AUC (binary: class 1; else macro one-vs-rest) on ``idx``."""
    model.eval()
    tot, correct, n = 0.0, 0, 0
    probs = []
    with torch.inference_mode():
        for i in range(0, len(idx), batch_size):
            ctx.check_cancelled()
            b = idx[i:i + batch_size]
            x = _batch_input(stack, b, spec, device, False, None)
            t = torch.as_tensor(y[b], device=device)
            with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype, enabled=amp):
                logits = model(x).float()
            tot += float(F.cross_entropy(logits, t, weight=weight, reduction="sum"))
            correct += int((logits.argmax(1) == t).sum())
            probs.append(torch.softmax(logits, 1).cpu().numpy())
            n += len(b)
    auc = None
    if n:
        from sklearn.metrics import roc_auc_score  # noqa: PLC0415

        p, yy = np.concatenate(probs), y[idx]
        try:
            if p.shape[1] == 2:
                auc = float(roc_auc_score(yy, p[:, 1]))
            elif len(set(yy.tolist())) == p.shape[1]:
                auc = float(roc_auc_score(yy, p, multi_class="ovr", average="macro"))
        except ValueError:
            auc = None
    return tot / max(n, 1), correct / max(n, 1), auc


def _lr_at(epoch_float: float, cfg: TrainConfig) -> float:
    warm = 1.0
    if epoch_float < warm:
        return cfg.lr * max(epoch_float / warm, 0.05)
    t = (epoch_float - warm) / max(cfg.epochs - warm, 1e-9)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def train_image_classifier(stack, labels, class_names: list[str], config: TrainConfig | None = None,
                           ctx: TaskContext | None = None, out_path: str | Path | None = None,
                           resume_from: str | Path | None = None, on_epoch: Callable[[dict], None] | None = None,
                           ids=None, split: dict | None = None, card_extra: dict | None = None) -> TrainResult:
    """Train :class:`galdesk.ml.models.ImageCNN` on a working-size stack.

    Parameters
    ----------
    stack : array-like (N, C, S, S) float32
        Raw pixel values as stored by the project (numpy array or h5py dataset).
    labels : sequence (N,)
        Class names (strings) or indices; anything else (None, "", unknown names) is unlabelled and not used.
    class_names : list of str
        The label set; for a binary task class 1 is the "positive" class of ROC AUC and the threshold.
    config : TrainConfig
    ctx : TaskContext, optional
        Progress per batch, cancel checked per batch (raises ``Cancelled``; the last epoch checkpoint remains).
    out_path : path, optional
        Where to save the final model (``.safetensors`` + card ``.json``); the checkpoint goes beside it as
        ``<stem>.ckpt.pt`` unless ``config.checkpoint_path`` says otherwise.
    resume_from : path, optional
        A checkpoint written by an earlier run: continues from its last epoch with its split and preprocessing.
    on_epoch : callable, optional
        Called with each history row (for live loss/accuracy curves).
    ids : sequence, optional
        Object ids, stored with the split in the card so that held-out objects can be found again.
    split : dict, optional
        Use this split (``train``/``val``/``test`` index lists) instead of drawing one.
    card_extra : dict, optional
        Extra card entries (description, data provenance, ...).
    """
    cfg = config or TrainConfig()
    ctx = ctx or NullContext()
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    class_names = [str(c) for c in class_names]
    k = len(class_names)
    n, c, s = int(stack.shape[0]), int(stack.shape[1]), int(stack.shape[-1])
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} stamps")
    y = encode_labels(labels, class_names)
    device = choose_device(cfg.device)
    amp = bool(cfg.mixed_precision and device.startswith("cuda"))
    amp_dtype = torch.float16
    if device == "cpu" and cfg.cpu_bf16:
        amp, amp_dtype = True, torch.bfloat16
    use_scaler = amp and amp_dtype == torch.float16
    ckpt_path = Path(cfg.checkpoint_path) if cfg.checkpoint_path else (
        Path(out_path).with_suffix(".ckpt.pt") if out_path else None)

    ckpt = None
    if resume_from is not None:
        ckpt = torch.load(str(resume_from), map_location="cpu", weights_only=True)
        split = ckpt["split"]
        spec = ckpt["spec"]
        ctx.log(f"resuming from {resume_from} after epoch {ckpt['epoch']}")
    else:
        split = split or stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        scaling = cfg.scaling
        if scaling == "auto":
            scaling = "standardize" if looks_8bit(np.asarray(stack[:256])) else "asinh"
        spec = default_spec(cfg.stack_size or s, cfg.input_size, cfg.crop_fraction, scaling)
        spec = fit_scaling(_rows(stack, np.asarray(split["train"], dtype=np.int64)), spec)
    train_idx = np.asarray(split["train"], dtype=np.int64)
    val_idx = np.asarray(split["val"], dtype=np.int64)
    test_idx = np.asarray(split.get("test", []), dtype=np.int64)

    torch.manual_seed(cfg.seed)
    model = ImageCNN(k, in_channels=c, input_size=cfg.input_size, width=cfg.width, depth=cfg.depth,
                     dropout=cfg.dropout)
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    w_np = class_weights(y[train_idx], k) if cfg.class_weighting else np.ones(k)
    weight = torch.as_tensor(w_np, dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(cfg.seed)

    history: list[dict] = []
    best_loss, best_epoch, bad, start_epoch, step = float("inf"), -1, 0, 0, 0
    best_state = None
    ema_model = copy.deepcopy(model) if cfg.ema_decay > 0 else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        if ema_model is not None and ckpt.get("ema") is not None:
            ema_model.load_state_dict(ckpt["ema"])
        step = int(ckpt.get("step", 0))
        opt.load_state_dict(ckpt["optimizer"])
        history = list(ckpt["history"])
        best_loss, best_epoch, bad = float(ckpt["best_loss"]), int(ckpt["best_epoch"]), int(ckpt["bad_epochs"])
        best_state = ckpt["best_state"]
        gen.set_state(ckpt["generator"])
        if ckpt.get("torch_rng") is not None:  # dropout and mixup draw from torch's global generator
            torch.set_rng_state(ckpt["torch_rng"])
        start_epoch = int(ckpt["epoch"]) + 1

    steps = max(1, math.ceil(len(train_idx) / cfg.batch_size))
    stopped_early = False
    ctx.log(f"training {k}-class ImageCNN on {device}: {len(train_idx)} train, {len(val_idx)} val, "
            f"{len(test_idx)} test")
    for epoch in range(start_epoch, cfg.epochs):
        if bad >= cfg.patience:
            stopped_early = True
            break
        t0 = time.monotonic()
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        tot, correct, seen = 0.0, 0, 0
        for b in range(steps):
            ctx.check_cancelled()
            bi = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(bi) < 2:  # BatchNorm needs two samples
                continue
            for g in opt.param_groups:
                g["lr"] = _lr_at(epoch + b / steps, cfg)
            x = _batch_input(stack, bi, spec, device, cfg.augment, gen)
            t = torch.as_tensor(y[bi], device=device)
            lam, t2 = 1.0, t
            if cfg.mixup > 0:  # torch's global generator, like dropout: its state is saved in checkpoints
                lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
                perm_b = torch.randperm(len(bi), generator=gen).to(device)
                x, t2 = lam * x + (1 - lam) * x[perm_b], t[perm_b]
            with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype, enabled=amp):
                logits = model(x)
                loss = lam * F.cross_entropy(logits.float(), t, weight=weight, label_smoothing=cfg.label_smoothing)
                if lam < 1.0:
                    loss = loss + (1 - lam) * F.cross_entropy(logits.float(), t2, weight=weight,
                                                              label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            if ema_model is not None:
                _ema_update(ema_model, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
            tot += loss.item() * len(bi)
            correct += int((logits.argmax(1) == t).sum())
            seen += len(bi)
            frac = (epoch + (b + 1) / steps) / cfg.epochs
            ctx.progress(frac, f"epoch {epoch + 1}/{cfg.epochs} batch {b + 1}/{steps} loss {tot / seen:.3f}")
        evaluated = ema_model if ema_model is not None else model
        if cfg.bn_recalibration:
            sub = train_idx if len(train_idx) <= cfg.bn_recalibration else np.sort(
                train_idx[torch.randperm(len(train_idx), generator=gen).numpy()[:cfg.bn_recalibration]])
            if evaluated is model:
                evaluated = copy.deepcopy(model)  # keep the training model's own running statistics
            _recalibrate_bn(evaluated, stack, sub, spec, device, 256, amp, amp_dtype, ctx)
        val_loss, val_acc, val_auc = _evaluate_loss(evaluated, stack, val_idx, y, spec, device, 256, weight, amp,
                                                    amp_dtype, ctx)
        row = {"epoch": epoch + 1, "train_loss": tot / max(seen, 1), "train_accuracy": correct / max(seen, 1),
               "val_loss": val_loss, "val_accuracy": val_acc, "val_auc": val_auc, "lr": opt.param_groups[0]["lr"],
               "seconds": time.monotonic() - t0}
        history.append(row)
        if val_loss < best_loss - 1e-4:
            best_loss, best_epoch, bad = val_loss, epoch + 1, 0
            best_state = {kk: v.detach().to("cpu").clone() for kk, v in evaluated.state_dict().items()}
        else:
            bad += 1
        ctx.log(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | "
                f"val loss {val_loss:.4f} acc {val_acc:.3f} auc {val_auc or float('nan'):.4f} "
                f"({row['seconds']:.0f} s)")
        if on_epoch is not None:
            on_epoch(dict(row))
        if ckpt_path is not None and cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
            _save_checkpoint(ckpt_path, model, opt, epoch, history, best_state, best_loss, best_epoch, bad, gen,
                             split, spec, cfg, class_names, ema_model, step)
    if bad >= cfg.patience and len(history) < cfg.epochs:
        stopped_early = True

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    model = model.to("cpu").to(memory_format=torch.contiguous_format)
    del ema_model

    card = {"task": "image", "class_names": class_names, "preprocessing": spec,
            "training": {"config": asdict(cfg), "n_train": len(train_idx), "n_val": len(val_idx),
                         "n_test": len(test_idx), "class_weights": [float(v) for v in w_np],
                         "best_epoch": best_epoch, "epochs_run": len(history), "stopped_early": stopped_early,
                         "device": device, "history": history},
            "split": {"train": [int(i) for i in train_idx], "val": [int(i) for i in val_idx],
                      "test": [int(i) for i in test_idx]}}
    if k == 2:
        card["positive_class"] = class_names[1]
    if ids is not None:
        ids = list(ids)
        card["split"]["ids"] = {part: [str(ids[i]) for i in card["split"][part]] for part in ("train", "val", "test")}
    if card_extra:
        card.update(card_extra)
    loaded = LoadedModel(model=model, card=card, id=str(card.get("id", Path(out_path).stem if out_path else "model")),
                         hash="", device="cpu")

    # threshold on the validation split only, then metrics; the test split is touched once, at the very end
    metrics: dict = {}
    str_labels = np.asarray([class_names[v] if v >= 0 else "" for v in y], dtype=object)
    ctx.log("evaluating on the validation split")
    pv = classify_stack(_Take(stack, val_idx), loaded, ctx=_Quiet(ctx), batch_size=256, device=device, tta=cfg.tta)
    if k == 2 and cfg.choose_threshold and len(val_idx):
        card["decision_threshold"] = choose_threshold(pv.probabilities[:, 1], y[val_idx])
        card["threshold_rule"] = "maximum accuracy on the validation split (never the test split)"
        pv = make_predictions(pv.probabilities, class_names, card["decision_threshold"])
    metrics["val"] = evaluate(pv, str_labels[val_idx])
    test_pred = None
    if len(test_idx):
        ctx.log("evaluating on the held-out test split")
        test_pred = classify_stack(_Take(stack, test_idx), loaded, ctx=_Quiet(ctx), batch_size=256, device=device,
                                   tta=cfg.tta)
        metrics["test"] = evaluate(test_pred, str_labels[test_idx])
        metrics["test"]["tta"] = bool(cfg.tta)
    metrics["how_measured"] = ("model = epoch with the lowest validation loss; "
                               + ("decision threshold chosen on the validation split; " if "decision_threshold" in card
                                  else "") + "test = stratified held-out split never used for training, early "
                               "stopping or the threshold" + ("; 8-fold rotation/flip test-time averaging"
                                                              if cfg.tta else ""))
    card["metrics"] = metrics

    path = None
    if out_path is not None:
        card = save_model(out_path, model, card)
        path = str(Path(out_path).with_suffix(".safetensors"))
        from galdesk.ml.weights import file_sha256  # noqa: PLC0415

        loaded = LoadedModel(model=model, card=card, id=card["id"], hash=file_sha256(path), path=path, device="cpu")
    ctx.progress(1.0, "training finished")
    return TrainResult(model=model, card=card, history=history, split=card["split"], metrics=metrics,
                       best_epoch=best_epoch, stopped_early=stopped_early, path=path, loaded=loaded,
                       test_predictions=test_pred)


class _Take:
    """Lazy row subset of a stack (numpy array or h5py dataset) with the slicing classify_stack uses."""

    def __init__(self, stack, idx: np.ndarray) -> None:
        self.stack, self.idx = stack, np.asarray(idx, dtype=np.int64)
        self.shape = (len(self.idx),) + tuple(stack.shape[1:])

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, sl):
        return _rows(self.stack, self.idx[sl])


class _Quiet(TaskContext):
    """Forwards cancel checks to the outer context but not progress (the evaluation is a short tail)."""

    def __init__(self, outer: TaskContext) -> None:
        super().__init__()
        self._outer = outer

    def cancelled(self) -> bool:
        return self._outer.cancelled()

    def check_cancelled(self) -> None:
        self._outer.check_cancelled()

    def log(self, message: str) -> None:
        self._outer.log(message)


def _recalibrate_bn(model, stack, idx, spec, device, batch_size, amp, amp_dtype, ctx) -> None:
    """Recompute BatchNorm running mean/var of ``model`` as exact averages over ``idx`` (train-mode forward)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or len(idx) < 2:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            ctx.check_cancelled()
            b = idx[i:i + batch_size]
            if len(b) < 2:
                continue
            with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype, enabled=amp):
                model(_batch_input(stack, b, spec, device, False, None))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for parameters and float buffers (BatchNorm statistics)."""
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(m.detach(), alpha=1.0 - decay)
            else:
                e.copy_(m)


def _save_checkpoint(path: Path, model, opt, epoch, history, best_state, best_loss, best_epoch, bad, gen, split,
                     spec, cfg, class_names, ema_model=None, step=0) -> None:
    """A resumable checkpoint loadable with ``torch.load(weights_only=True)`` (tensors and plain types only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"model": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
           "optimizer": copy.deepcopy(opt.state_dict()), "epoch": int(epoch), "history": history,
           "best_state": best_state, "best_loss": float(best_loss), "best_epoch": int(best_epoch),
           "bad_epochs": int(bad), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
           "split": split, "spec": spec,
           "config": asdict(cfg), "class_names": list(class_names), "step": int(step),
           "ema": None if ema_model is None else {k: v.detach().to("cpu") for k, v in ema_model.state_dict().items()}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, str(tmp))
    tmp.replace(path)
