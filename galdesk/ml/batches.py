"""Batch-level steps of training: reading rows of a stack, network input, validation loss, BatchNorm
recalibration and the EMA of the weights (used by :mod:`galdesk.ml.train`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from galdesk.ml.preprocess import augment_crop, crop_resize, resize_stack, scale

__all__ = ["take_rows", "batch_input", "evaluate_loss", "recalibrate_bn", "ema_update"]


def take_rows(stack, idx: np.ndarray) -> np.ndarray:
    """``stack[idx]`` as float32, for numpy arrays and h5py datasets (which need sorted, unique indices)."""
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(stack, np.ndarray):
        return np.asarray(stack[idx], dtype=np.float32)
    uniq, inv = np.unique(idx, return_inverse=True)
    return np.asarray(stack[uniq], dtype=np.float32)[inv]


def batch_input(stack, idx: np.ndarray, spec: dict, device: str, augment: bool, gen: torch.Generator | None):
    """Network input of the stack rows ``idx``: resized, scaled, cropped (randomly augmented if ``augment``)."""
    x = torch.as_tensor(take_rows(stack, idx)).to(device)
    x = scale(resize_stack(x, spec["stack_size"]), spec)
    x = augment_crop(x, spec, generator=gen) if augment else crop_resize(x, spec)
    return x.contiguous(memory_format=torch.channels_last)


def evaluate_loss(model, stack, idx, y, spec, device, batch_size, weight, amp, amp_dtype,
                   ctx) -> tuple[float, float, float | None]:
    """Weighted loss, accuracy (arg-max) and ROC AUC (binary: class 1; else macro one-vs-rest) on ``idx``."""
    model.eval()
    tot, correct, n = 0.0, 0, 0
    probs = []
    with torch.inference_mode():
        for i in range(0, len(idx), batch_size):
            ctx.check_cancelled()
            b = idx[i:i + batch_size]
            x = batch_input(stack, b, spec, device, False, None)
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


def recalibrate_bn(model, stack, idx, spec, device, batch_size, amp, amp_dtype, ctx) -> None:
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
                model(batch_input(stack, b, spec, device, False, None))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for parameters and float buffers (BatchNorm statistics)."""
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(m.detach(), alpha=1.0 - decay)
            else:
                e.copy_(m)
