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

from galdesk.ml.batches import batch_input, ema_update, evaluate_loss, recalibrate_bn, take_rows
from galdesk.ml.cards import ModelCardError, check_weights
from galdesk.ml.device import choose_device
from galdesk.ml.infer import Predictions, classify_stack, evaluate, make_predictions
from galdesk.ml.labels import choose_threshold, class_weights, encode_labels, stratified_split
from galdesk.ml.models import ImageCNN
from galdesk.ml.preprocess import default_spec, fit_scaling, looks_8bit
from galdesk.ml.weights import LoadedModel, save_model
from galdesk.tasks import NullContext, TaskContext

__all__ = ["TrainConfig", "TrainResult", "train_image_classifier"]

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
    n = int(stack.shape[0])
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} stamps")
    y = encode_labels(labels, class_names)
    ckpt = None
    if resume_from is not None:
        ckpt = _load_checkpoint(resume_from, class_names)
        split, spec = ckpt["split"], ckpt["spec"]
        ctx.log(f"resuming from {resume_from} after epoch {ckpt['epoch']}")
    else:
        split = split or stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        spec = _fit_spec(stack, np.asarray(split["train"], dtype=np.int64), cfg)
    ckpt_path = Path(cfg.checkpoint_path) if cfg.checkpoint_path else (
        Path(out_path).with_suffix(".ckpt.pt") if out_path else None)
    run = _Run.start(stack, y, split, spec, class_names, cfg, ckpt)
    ctx.log(f"training {len(class_names)}-class ImageCNN on {run.device}: {len(run.train_idx)} train, "
            f"{len(run.val_idx)} val, {len(run.test_idx)} test")
    stopped_early = run.fit(ctx, on_epoch, ckpt_path)
    model = run.best_model()
    card = _card(run, class_names, stopped_early, ids, card_extra)
    loaded = LoadedModel(model=model, card=card, id=str(card.get("id", Path(out_path).stem if out_path else "model")),
                         hash="", device="cpu")
    metrics, test_pred = _final_metrics(run, loaded, card, class_names, ctx)
    path = None
    if out_path is not None:
        card = save_model(out_path, model, card)
        path = str(Path(out_path).with_suffix(".safetensors"))
        from galdesk.ml.weights import file_sha256  # noqa: PLC0415

        loaded = LoadedModel(model=model, card=card, id=card["id"], hash=file_sha256(path), path=path, device="cpu")
    ctx.progress(1.0, "training finished")
    return TrainResult(model=model, card=card, history=run.history, split=card["split"], metrics=metrics,
                       best_epoch=run.best_epoch, stopped_early=stopped_early, path=path, loaded=loaded,
                       test_predictions=test_pred)


def _load_checkpoint(path, class_names: list[str]) -> dict:
    """A checkpoint to resume from, checked: loadable without running code, for these classes, finite weights."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated files and pickled code alike
        raise ModelCardError(f"{path}: not a galdesk training checkpoint ({type(exc).__name__}: "
                             f"{str(exc)[:160]})") from None
    keys = ("model", "split", "spec", "epoch", "optimizer")
    missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ModelCardError(f"{path}: not a galdesk training checkpoint (missing {', '.join(missing)})")
    if list(ckpt.get("class_names") or class_names) != list(class_names):
        raise ModelCardError(f"{path}: the checkpoint was trained for classes {ckpt.get('class_names')}, "
                             f"not {list(class_names)}")
    check_weights(path, ckpt["model"])
    return ckpt


def _fit_spec(stack, train_idx: np.ndarray, cfg: TrainConfig) -> dict:
    """The preprocessing of a new run: working size, crop, and the scaling fitted on the training split."""
    scaling = cfg.scaling
    if scaling == "auto":
        scaling = "standardize" if looks_8bit(np.asarray(stack[:256])) else "asinh"
    spec = default_spec(cfg.stack_size or int(stack.shape[-1]), cfg.input_size, cfg.crop_fraction, scaling)
    return fit_scaling(take_rows(stack, train_idx), spec)


@dataclass
class _Run:
    """One training run: data, split, model, optimiser, random generator and early-stopping state (everything a
    checkpoint holds), with the epoch loop as methods so that each step reads on its own."""

    stack: object
    y: np.ndarray
    split: dict
    spec: dict
    class_names: list[str]
    cfg: TrainConfig
    device: str
    amp: bool
    amp_dtype: object
    model: torch.nn.Module
    opt: object
    scaler: object
    class_w: np.ndarray
    weight: torch.Tensor
    gen: torch.Generator
    ema_model: torch.nn.Module | None
    history: list = field(default_factory=list)
    best_loss: float = float("inf")
    best_epoch: int = -1
    bad: int = 0
    best_state: dict | None = None
    step: int = 0
    start_epoch: int = 0

    @property
    def train_idx(self) -> np.ndarray:
        return np.asarray(self.split["train"], dtype=np.int64)

    @property
    def val_idx(self) -> np.ndarray:
        return np.asarray(self.split["val"], dtype=np.int64)

    @property
    def test_idx(self) -> np.ndarray:
        return np.asarray(self.split.get("test", []), dtype=np.int64)

    @classmethod
    def start(cls, stack, y, split, spec, class_names, cfg: TrainConfig, ckpt: dict | None) -> "_Run":
        """A new run (seeded model, AdamW, class weights of the training split), or the checkpoint's state."""
        device = choose_device(cfg.device)
        amp = bool(cfg.mixed_precision and device.startswith("cuda"))
        amp_dtype = torch.float16
        if device == "cpu" and cfg.cpu_bf16:
            amp, amp_dtype = True, torch.bfloat16
        k, c = len(class_names), int(stack.shape[1])
        torch.manual_seed(cfg.seed)
        model = ImageCNN(k, in_channels=c, input_size=cfg.input_size, width=cfg.width, depth=cfg.depth,
                         dropout=cfg.dropout)
        model = model.to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
        train_idx = np.asarray(split["train"], dtype=np.int64)
        w_np = class_weights(y[train_idx], k) if cfg.class_weighting else np.ones(k)
        weight = torch.as_tensor(w_np, dtype=torch.float32, device=device)
        gen = torch.Generator().manual_seed(cfg.seed)
        ema_model = copy.deepcopy(model) if cfg.ema_decay > 0 else None
        run = cls(stack, y, split, spec, list(class_names), cfg, device, amp, amp_dtype, model, opt, scaler, w_np,
                  weight, gen, ema_model)
        if ckpt is not None:
            run._restore(ckpt)
        return run

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        if self.ema_model is not None and ckpt.get("ema") is not None:
            self.ema_model.load_state_dict(ckpt["ema"])
        self.step = int(ckpt.get("step", 0))
        self.opt.load_state_dict(ckpt["optimizer"])
        self.history = list(ckpt["history"])
        self.best_loss, self.best_epoch = float(ckpt["best_loss"]), int(ckpt["best_epoch"])
        self.bad = int(ckpt["bad_epochs"])
        self.best_state = ckpt["best_state"]
        self.gen.set_state(ckpt["generator"])
        if ckpt.get("torch_rng") is not None:  # dropout and mixup draw from torch's global generator
            torch.set_rng_state(ckpt["torch_rng"])
        self.start_epoch = int(ckpt["epoch"]) + 1

    def fit(self, ctx: TaskContext, on_epoch, ckpt_path: Path | None) -> bool:
        """Epochs until ``cfg.epochs`` or early stopping; returns whether it stopped early."""
        cfg = self.cfg
        for epoch in range(self.start_epoch, cfg.epochs):
            if self.bad >= cfg.patience:
                return True
            t0 = time.monotonic()
            tot, correct, seen = self._train_epoch(epoch, ctx)
            val_loss, val_acc, val_auc = self._validate(epoch, ctx)
            row = {"epoch": epoch + 1, "train_loss": tot / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                   "val_loss": val_loss, "val_accuracy": val_acc, "val_auc": val_auc,
                   "lr": self.opt.param_groups[0]["lr"], "seconds": time.monotonic() - t0}
            self.history.append(row)
            ctx.log(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | "
                    f"val loss {val_loss:.4f} acc {val_acc:.3f} auc {val_auc or float('nan'):.4f} "
                    f"({row['seconds']:.0f} s)")
            if on_epoch is not None:
                on_epoch(dict(row))
            if ckpt_path is not None and cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
                _save_checkpoint(ckpt_path, self.model, self.opt, epoch, self.history, self.best_state,
                                 self.best_loss, self.best_epoch, self.bad, self.gen, self.split, self.spec, cfg,
                                 self.class_names, self.ema_model, self.step)
        return self.bad >= cfg.patience and len(self.history) < cfg.epochs

    def _train_epoch(self, epoch: int, ctx: TaskContext) -> tuple[float, int, int]:
        """One pass over the training split in shuffled batches; (summed loss, correct, seen)."""
        cfg, train_idx = self.cfg, self.train_idx
        steps = max(1, math.ceil(len(train_idx) / cfg.batch_size))
        self.model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=self.gen).numpy()]
        tot, correct, seen = 0.0, 0, 0
        for b in range(steps):
            ctx.check_cancelled()
            bi = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(bi) < 2:  # BatchNorm needs two samples
                continue
            for g in self.opt.param_groups:
                g["lr"] = _lr_at(epoch + b / steps, cfg)
            loss, logits, t = self._step(bi)
            tot += loss.item() * len(bi)
            correct += int((logits.argmax(1) == t).sum())
            seen += len(bi)
            frac = (epoch + (b + 1) / steps) / cfg.epochs
            ctx.progress(frac, f"epoch {epoch + 1}/{cfg.epochs} batch {b + 1}/{steps} loss {tot / seen:.3f}")
        return tot, correct, seen

    def _step(self, bi: np.ndarray):
        """One optimiser step on the batch ``bi`` (augmentation, mixup, weighted label-smoothed cross-entropy,
        EMA update); returns (loss, logits, targets)."""
        cfg, device = self.cfg, self.device
        x = batch_input(self.stack, bi, self.spec, device, cfg.augment, self.gen)
        t = torch.as_tensor(self.y[bi], device=device)
        lam, t2 = 1.0, t
        if cfg.mixup > 0:  # torch's global generator, like dropout: its state is saved in checkpoints
            lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
            perm_b = torch.randperm(len(bi), generator=self.gen).to(device)
            x, t2 = lam * x + (1 - lam) * x[perm_b], t[perm_b]
        with torch.autocast(device_type=device.split(":")[0], dtype=self.amp_dtype, enabled=self.amp):
            logits = self.model(x)
            loss = lam * F.cross_entropy(logits.float(), t, weight=self.weight, label_smoothing=cfg.label_smoothing)
            if lam < 1.0:
                loss = loss + (1 - lam) * F.cross_entropy(logits.float(), t2, weight=self.weight,
                                                          label_smoothing=cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        if self.ema_model is not None:
            ema_update(self.ema_model, self.model, min(cfg.ema_decay, (1 + self.step) / (10 + self.step)))
        return loss, logits, t

    def _validate(self, epoch: int, ctx: TaskContext) -> tuple[float, float, float | None]:
        """Validation loss/accuracy/AUC of the evaluated model (EMA if any, BatchNorm recalibrated if asked);
        keeps the best state and counts epochs without improvement."""
        cfg, train_idx = self.cfg, self.train_idx
        evaluated = self.ema_model if self.ema_model is not None else self.model
        if cfg.bn_recalibration:
            sub = train_idx if len(train_idx) <= cfg.bn_recalibration else np.sort(
                train_idx[torch.randperm(len(train_idx), generator=self.gen).numpy()[:cfg.bn_recalibration]])
            if evaluated is self.model:
                evaluated = copy.deepcopy(self.model)  # keep the training model's own running statistics
            recalibrate_bn(evaluated, self.stack, sub, self.spec, self.device, 256, self.amp, self.amp_dtype, ctx)
        val_loss, val_acc, val_auc = evaluate_loss(evaluated, self.stack, self.val_idx, self.y, self.spec,
                                                    self.device, 256, self.weight, self.amp, self.amp_dtype, ctx)
        if val_loss < self.best_loss - 1e-4:
            self.best_loss, self.best_epoch, self.bad = val_loss, epoch + 1, 0
            self.best_state = {kk: v.detach().to("cpu").clone() for kk, v in evaluated.state_dict().items()}
        else:
            self.bad += 1
        return val_loss, val_acc, val_auc

    def best_model(self) -> torch.nn.Module:
        """The model at the epoch with the lowest validation loss, on the CPU in eval mode."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        self.ema_model = None
        return self.model.to("cpu").to(memory_format=torch.contiguous_format)


def _card(run: _Run, class_names: list[str], stopped_early: bool, ids, card_extra: dict | None) -> dict:
    """The model card of a finished run (preprocessing, training settings and history, split)."""
    cfg = run.cfg
    train_idx, val_idx, test_idx = run.train_idx, run.val_idx, run.test_idx
    card = {"task": "image", "class_names": class_names, "preprocessing": run.spec,
            "training": {"config": asdict(cfg), "n_train": len(train_idx), "n_val": len(val_idx),
                         "n_test": len(test_idx), "class_weights": [float(v) for v in run.class_w],
                         "best_epoch": run.best_epoch, "epochs_run": len(run.history), "stopped_early": stopped_early,
                         "device": run.device, "history": run.history},
            "split": {"train": [int(i) for i in train_idx], "val": [int(i) for i in val_idx],
                      "test": [int(i) for i in test_idx]}}
    if len(class_names) == 2:
        card["positive_class"] = class_names[1]
    if ids is not None:
        ids = list(ids)
        card["split"]["ids"] = {part: [str(ids[i]) for i in card["split"][part]] for part in ("train", "val", "test")}
    if card_extra:
        card.update(card_extra)
    return card


def _final_metrics(run: _Run, loaded: LoadedModel, card: dict, class_names: list[str], ctx: TaskContext):
    """Threshold on the validation split only, then metrics; the test split is touched once, at the very end.
    Sets the card's threshold and metrics; returns (metrics, test predictions or None)."""
    cfg, y, stack = run.cfg, run.y, run.stack
    val_idx, test_idx = run.val_idx, run.test_idx
    metrics: dict = {}
    str_labels = np.asarray([class_names[v] if v >= 0 else "" for v in y], dtype=object)
    ctx.log("evaluating on the validation split")
    pv = classify_stack(_Take(stack, val_idx), loaded, ctx=_Quiet(ctx), batch_size=256, device=run.device,
                        tta=cfg.tta)
    if len(class_names) == 2 and cfg.choose_threshold and len(val_idx):
        card["decision_threshold"] = choose_threshold(pv.probabilities[:, 1], y[val_idx])
        card["threshold_rule"] = "maximum accuracy on the validation split (never the test split)"
        pv = make_predictions(pv.probabilities, class_names, card["decision_threshold"])
    metrics["val"] = evaluate(pv, str_labels[val_idx])
    test_pred = None
    if len(test_idx):
        ctx.log("evaluating on the held-out test split")
        test_pred = classify_stack(_Take(stack, test_idx), loaded, ctx=_Quiet(ctx), batch_size=256,
                                   device=run.device, tta=cfg.tta)
        metrics["test"] = evaluate(test_pred, str_labels[test_idx])
        metrics["test"]["tta"] = bool(cfg.tta)
    metrics["how_measured"] = ("model = epoch with the lowest validation loss; "
                               + ("decision threshold chosen on the validation split; " if "decision_threshold" in card
                                  else "") + "test = stratified held-out split never used for training, early "
                               "stopping or the threshold" + ("; 8-fold rotation/flip test-time averaging"
                                                              if cfg.tta else ""))
    card["metrics"] = metrics
    return metrics, test_pred


class _Take:
    """Lazy row subset of a stack (numpy array or h5py dataset) with the slicing classify_stack uses."""

    def __init__(self, stack, idx: np.ndarray) -> None:
        self.stack, self.idx = stack, np.asarray(idx, dtype=np.int64)
        self.shape = (len(self.idx),) + tuple(stack.shape[1:])

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, sl):
        return take_rows(self.stack, self.idx[sl])


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
