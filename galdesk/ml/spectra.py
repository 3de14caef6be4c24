"""Spectrum classification with a 1-D CNN on a fixed rest-frame log-lambda grid.

Preparation (:func:`prepare_spectra`): air wavelengths are converted to vacuum, shifted to the rest frame with the
spectrum's redshift, masked/bad pixels are interpolated over, the flux is interpolated onto a log-lambda grid and
divided by its median over the covered part of the grid. Grid pixels the spectrum does not cover are set to the
continuum level (1) and flagged in a coverage mask, which the network sees as a second channel. The resampling
is flux-conserving (the mean of the spectrum over each grid pixel), so coarse grids do not miss narrow lines.

Default label set: star-forming / narrow-line AGN / broad-line AGN / passive (:data:`SPECTRUM_CLASSES`); any other
label set can be trained. :func:`sdss_label` maps SDSS CLASS/SUBCLASS onto it.

The real labelled spectra available to this project are few (~140), so :func:`cross_validate_spectra` reports
stratified k-fold results next to a logistic-regression and a majority-class baseline on the same inputs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from galdesk.io.model import SpectrumData
from galdesk.ml.device import choose_device
from galdesk.ml.infer import Predictions, evaluate, make_predictions, run_batches
from galdesk.ml.labels import class_weights, encode_labels, stratified_split
from galdesk.ml.models import SpectrumCNN
from galdesk.ml.weights import LoadedModel, load_model, save_model
from galdesk.tasks import NullContext, TaskContext

__all__ = ["SPECTRUM_CLASSES", "default_grid", "air_to_vacuum", "prepare_spectra", "sdss_label",
           "SpectrumTrainConfig", "SpectrumTrainResult", "train_spectrum_classifier", "classify_spectra",
           "cross_validate_spectra"]

SPECTRUM_CLASSES = ["star-forming", "narrow-line AGN", "broad-line AGN", "passive"]


def default_grid(lam_min: float = 3600.0, lam_max: float = 7000.0, n_pix: int = 1024) -> np.ndarray:
    """Rest-frame vacuum wavelengths (Angstrom), evenly spaced in log lambda.

    The default 3600-7000 A in 1024 pixels (~65 km/s per pixel, close to SDSS's 69 km/s) spans [OII] 3727 to
    [SII] 6731, which low-redshift SDSS and 6dFGS spectra cover.
    """
    return np.exp(np.linspace(np.log(lam_min), np.log(lam_max), int(n_pix)))


def air_to_vacuum(wave_air: np.ndarray) -> np.ndarray:
    """Air -> vacuum wavelength (Angstrom), Morton (2000) / Ciddor (1996) as used by the IAU and SDSS."""
    wave_air = np.asarray(wave_air, dtype=np.float64)
    s2 = (1e4 / wave_air) ** 2
    n = 1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (1.301065924522e2 - s2) + 1.599740894897e-4 / (
        3.892568793293e1 - s2)
    return wave_air * n


def _edges(grid: np.ndarray) -> np.ndarray:
    """Pixel edges of a log-spaced grid (geometric midpoints, extrapolated at both ends)."""
    lg = np.log(grid)
    mid = 0.5 * (lg[1:] + lg[:-1])
    return np.exp(np.concatenate([[2 * lg[0] - mid[0]], mid, [2 * lg[-1] - mid[-1]]]))


def _one(spec: SpectrumData, grid: np.ndarray, clip: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    wave = np.asarray(spec.wavelength, dtype=np.float64)
    flux = np.asarray(spec.flux, dtype=np.float64)
    good = (~np.asarray(spec.mask, dtype=bool)) & np.isfinite(flux) & np.isfinite(wave)
    ivar = np.asarray(spec.ivar, dtype=np.float64) if spec.ivar is not None else None
    if ivar is not None and ivar.shape == flux.shape and (ivar > 0).any():
        good &= ivar > 0
    out = np.ones(grid.size, dtype=np.float32)
    cov = np.zeros(grid.size, dtype=np.float32)
    if good.sum() < 10:
        return out, cov
    if not spec.vacuum:
        wave = air_to_vacuum(wave)
    z = float(spec.redshift) if spec.redshift is not None and np.isfinite(spec.redshift) else 0.0
    rest = wave[good] / (1.0 + z)
    f = flux[good]
    order = np.argsort(rest)
    rest, f = rest[order], f[order]
    edges = _edges(grid)
    inside = (edges[:-1] >= rest[0]) & (edges[1:] <= rest[-1])
    if inside.sum() < 10:
        return out, cov
    # flux-conserving rebin: mean of the (linearly interpolated) spectrum over each grid pixel, so a grid coarser
    # than the data averages narrow lines instead of point-sampling past them; masked pixels are bridged linearly
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(rest))])
    lo, hi = edges[:-1][inside], edges[1:][inside]
    vals = (np.interp(hi, rest, cum) - np.interp(lo, rest, cum)) / (hi - lo)
    med = np.median(vals)
    if not np.isfinite(med) or med <= 0:
        med = np.mean(np.abs(vals))
    if not np.isfinite(med) or med <= 0:
        return out, cov
    out[inside] = np.clip(vals / med, clip[0], clip[1])
    cov[inside] = 1.0
    return out, cov


def prepare_spectra(spectra: Sequence[SpectrumData], grid: np.ndarray | None = None, return_coverage: bool = False,
                    clip: tuple[float, float] = (-5.0, 50.0)):
    """Spectra -> ``(N, n_pix)`` float32 median-normalised rest-frame flux on ``grid``.

    Parameters
    ----------
    spectra : sequence of SpectrumData
        Redshift from ``spectrum.redshift`` (0 when unknown: then the grid is in the observed frame).
    grid : ndarray, optional
        Rest-frame vacuum wavelengths in Angstrom (default :func:`default_grid`).
    return_coverage : bool
        Also return the ``(N, n_pix)`` coverage mask (1 where the spectrum has data).
    clip : (float, float)
        Normalised flux is clipped to this range (cosmic rays, bad sky subtraction).
    """
    grid = default_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    flux = np.ones((len(spectra), grid.size), dtype=np.float32)
    cov = np.zeros((len(spectra), grid.size), dtype=np.float32)
    for i, s in enumerate(spectra):
        flux[i], cov[i] = _one(s, grid, clip)
    return (flux, cov) if return_coverage else flux


def network_input(flux: np.ndarray, coverage: np.ndarray | None = None) -> np.ndarray:
    """``(N, 2, n_pix)``: continuum-subtracted flux (0 outside coverage) and the coverage mask."""
    flux = np.asarray(flux, dtype=np.float32)
    cov = np.ones_like(flux) if coverage is None else np.asarray(coverage, dtype=np.float32)
    return np.stack([(flux - 1.0) * cov, cov], axis=1)


def sdss_label(spec_class: str | None, subclass: str | None) -> str | None:
    """SDSS CLASS/SUBCLASS -> one of :data:`SPECTRUM_CLASSES` (None for stars and unknowns).

    QSO or any BROADLINE subclass -> broad-line AGN; GALAXY AGN -> narrow-line AGN; GALAXY STARFORMING/STARBURST ->
    star-forming; GALAXY with no subclass (no lines strong enough to classify) -> passive. The last is a proxy:
    SDSS leaves SUBCLASS empty when its emission lines are too weak for the BPT classification.
    """
    c = (spec_class or "").strip().upper()
    sub = (subclass or "").strip().upper()
    if c == "QSO" or "BROADLINE" in sub:
        return "broad-line AGN"
    if c != "GALAXY":
        return None
    if "AGN" in sub:
        return "narrow-line AGN"
    if "STARFORMING" in sub or "STARBURST" in sub:
        return "star-forming"
    if sub == "":
        return "passive"
    return None


@dataclass
class SpectrumTrainConfig:
    """Settings for the spectrum CNN (stored in the model card). See :class:`galdesk.ml.train.TrainConfig`."""

    width: int = 16
    depth: int = 5
    kernel: int = 7
    dropout: float = 0.3
    epochs: int = 60
    batch_size: int = 16
    lr: float = 5e-3
    weight_decay: float = 1e-3
    patience: int = 12
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    class_weighting: bool = True
    augment: bool = True
    max_shift_px: int = 4
    noise: float = 0.02
    seed: int = 0
    device: str | None = None
    num_threads: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "SpectrumTrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SpectrumTrainResult:
    model: torch.nn.Module
    card: dict
    history: list[dict]
    split: dict
    metrics: dict
    best_epoch: int
    path: str | None = None
    loaded: LoadedModel | None = None
    extra: dict = field(default_factory=dict)


def _as_input(data, grid) -> np.ndarray:
    """SpectrumData list, ``(N, n_pix)`` prepared flux, or ``(N, 2, n_pix)`` network input -> network input."""
    if isinstance(data, np.ndarray) or isinstance(data, torch.Tensor):
        arr = np.asarray(data, dtype=np.float32)
        return arr if arr.ndim == 3 else network_input(arr)
    flux, cov = prepare_spectra(list(data), grid, return_coverage=True)
    return network_input(flux, cov)


def _augment(x: torch.Tensor, cfg: SpectrumTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random shift by up to ``max_shift_px`` pixels (redshift error), flux scale +-10%, Gaussian noise."""
    n = x.shape[0]
    if cfg.max_shift_px:
        shifts = torch.randint(-cfg.max_shift_px, cfg.max_shift_px + 1, (n,), generator=gen)
        x = torch.stack([torch.roll(x[i], int(shifts[i]), dims=-1) for i in range(n)])
    sc = 1.0 + 0.1 * (2 * torch.rand((n, 1, 1), generator=gen) - 1)
    noise = cfg.noise * torch.randn(x[:, :1].shape, generator=gen)
    flux = (x[:, :1] * sc + noise) * x[:, 1:2]
    return torch.cat([flux, x[:, 1:2]], dim=1)


def train_spectrum_classifier(spectra, labels, class_names: list[str] | None = None,
                              config: SpectrumTrainConfig | None = None, ctx: TaskContext | None = None,
                              out_path: str | Path | None = None, grid: np.ndarray | None = None,
                              on_epoch: Callable[[dict], None] | None = None, split: dict | None = None,
                              ids=None, card_extra: dict | None = None) -> SpectrumTrainResult:
    """Train :class:`galdesk.ml.models.SpectrumCNN`.

    Parameters
    ----------
    spectra : list of SpectrumData, or an array from :func:`prepare_spectra` / :func:`network_input`
    labels : sequence of str (class names) or int; anything else is unlabelled
    class_names : list of str, default :data:`SPECTRUM_CLASSES`
    config : SpectrumTrainConfig
    ctx : TaskContext, optional (progress per batch, cancel per batch)
    out_path : path, optional (``.safetensors`` + card)
    grid : rest-frame wavelength grid (default :func:`default_grid`); stored in the card
    split : dict, optional (``train``/``val``/``test`` indices); default a stratified split
    """
    cfg = config or SpectrumTrainConfig()
    ctx = ctx or NullContext()
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    class_names = [str(c) for c in (class_names or SPECTRUM_CLASSES)]
    k = len(class_names)
    grid = default_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    x_all = _as_input(spectra, grid)
    n_pix = x_all.shape[-1]
    y = encode_labels(list(labels), class_names)
    split = split or stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    tr = np.asarray(split["train"], dtype=np.int64)
    va = np.asarray(split["val"], dtype=np.int64)
    te = np.asarray(split.get("test", []), dtype=np.int64)
    device = choose_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SpectrumCNN(k, n_pix, in_channels=2, width=cfg.width, depth=cfg.depth, kernel=cfg.kernel,
                        dropout=cfg.dropout).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    w_np = class_weights(y[tr], k) if cfg.class_weighting else np.ones(k)
    weight = torch.as_tensor(w_np, dtype=torch.float32, device=device)
    xt = torch.as_tensor(x_all)
    yt = torch.as_tensor(y)
    history: list[dict] = []
    best_loss, best_epoch, bad, best_state = float("inf"), -1, 0, None
    for epoch in range(cfg.epochs):
        t0 = time.monotonic()
        tot, correct, seen = _spectrum_epoch(model, opt, xt, yt, tr, weight, cfg, gen, device, epoch, ctx)
        val_loss, val_acc = _spectrum_validation(model, xt, yt, va, weight, device, k, tot / max(seen, 1))
        row = {"epoch": epoch + 1, "train_loss": tot / max(seen, 1), "train_accuracy": correct / max(seen, 1),
               "val_loss": val_loss, "val_accuracy": val_acc, "seconds": time.monotonic() - t0}
        history.append(row)
        if on_epoch is not None:
            on_epoch(dict(row))
        if val_loss < best_loss - 1e-4:
            best_loss, best_epoch, bad = val_loss, epoch + 1, 0
            best_state = {kk: v.detach().cpu().clone() for kk, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to("cpu").eval()
    card = _spectrum_card(class_names, grid, cfg, split, best_epoch, history, w_np, ids, card_extra)
    loaded = LoadedModel(model=model, card=card, id=str(card.get("id", "spectrum-model")), hash="", device="cpu")
    metrics = {}
    str_labels = np.asarray([class_names[v] if v >= 0 else "" for v in y], dtype=object)
    if len(te):
        metrics["test"] = evaluate(classify_spectra(x_all[te], loaded), str_labels[te])
    card["metrics"] = metrics
    path = None
    if out_path is not None:
        card = save_model(out_path, model, card)
        path = str(Path(out_path).with_suffix(".safetensors"))
        loaded = load_model(path)
    return SpectrumTrainResult(model=model, card=card, history=history, split=card["split"], metrics=metrics,
                               best_epoch=best_epoch, path=path, loaded=loaded)


def _spectrum_epoch(model, opt, xt, yt, tr, weight, cfg: SpectrumTrainConfig, gen, device, epoch: int,
                    ctx: TaskContext) -> tuple[float, int, int]:
    """One pass over the training rows ``tr`` in shuffled batches; (summed loss, correct, seen)."""
    steps = max(1, math.ceil(len(tr) / cfg.batch_size))
    model.train()
    perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
    tot, correct, seen = 0.0, 0, 0
    for b in range(steps):
        ctx.check_cancelled()
        bi = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        if len(bi) < 2:
            continue
        xb = xt[bi]
        if cfg.augment:
            xb = _augment(xb, cfg, gen)
        xb, tb = xb.to(device), yt[bi].to(device)
        logits = model(xb)
        loss = F.cross_entropy(logits, tb, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tot += loss.item() * len(bi)
        correct += int((logits.argmax(1) == tb).sum())
        seen += len(bi)
        ctx.progress((epoch + (b + 1) / steps) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}")
    return tot, correct, seen


def _spectrum_validation(model, xt, yt, va, weight, device, k: int, train_loss: float) -> tuple[float, float]:
    """Weighted loss and accuracy on the validation rows ``va`` (without any: the training loss and NaN)."""
    model.eval()
    with torch.inference_mode():
        lv = model(xt[va].to(device)).float() if len(va) else torch.zeros((0, k))
        val_loss = float(F.cross_entropy(lv, yt[va].to(device), weight=weight)) if len(va) else train_loss
        val_acc = float((lv.argmax(1).cpu() == yt[va]).float().mean()) if len(va) else float("nan")
    return val_loss, val_acc


def _spectrum_card(class_names, grid, cfg, split, best_epoch, history, w_np, ids, card_extra) -> dict:
    """The model card of a trained spectrum CNN (grid, normalisation, training settings and history, split)."""
    card = {"task": "spectrum", "class_names": class_names,
            "preprocessing": {"grid": {"lam_min": float(grid[0]), "lam_max": float(grid[-1]), "n_pix": int(grid.size),
                                       "spacing": "log", "frame": "rest", "medium": "vacuum"},
                              "normalisation": "median over covered grid pixels; input = (flux-1)*coverage, coverage",
                              "clip": [-5.0, 50.0]},
            "training": {"config": asdict(cfg), "n_train": len(split["train"]), "n_val": len(split["val"]),
                         "n_test": len(split.get("test", [])), "best_epoch": best_epoch, "history": history,
                         "class_weights": [float(v) for v in w_np]},
            "split": {key: [int(i) for i in split.get(key, [])] for key in ("train", "val", "test")}}
    if ids is not None:
        ids = list(ids)
        card["split"]["ids"] = {p: [str(ids[i]) for i in card["split"][p]] for p in ("train", "val", "test")}
    if card_extra:
        card.update(card_extra)
    return card


def _grid_from_card(card: dict) -> np.ndarray:
    g = (card.get("preprocessing") or {}).get("grid") or {}
    if not g:
        return default_grid()
    return default_grid(g["lam_min"], g["lam_max"], g["n_pix"])


def classify_spectra(spectra, model: LoadedModel | str, ctx: TaskContext | None = None, batch_size: int = 256,
                     device: str | None = None) -> Predictions:
    """Classify spectra (SpectrumData list or prepared arrays) with a spectrum model; see
    :func:`galdesk.ml.infer.classify_stack` for batching, cancel and out-of-memory behaviour."""
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    x = _as_input(spectra, _grid_from_card(loaded.card))
    dev = choose_device(device)
    if len(x) == 0:
        probs, used, info = np.zeros((0, len(loaded.class_names)), np.float32), dev, {}
    else:
        probs, used, info = run_batches(loaded.model, len(x), lambda i0, i1, d: torch.as_tensor(x[i0:i1]).to(d),
                                        ctx=ctx, batch_size=batch_size, device=dev)
    return make_predictions(probs, loaded.class_names, loaded.decision_threshold, model_id=loaded.id,
                            model_hash=loaded.hash, device=used, info=info)


def cross_validate_spectra(spectra, labels, class_names: list[str] | None = None,
                           config: SpectrumTrainConfig | None = None, n_splits: int = 5, n_repeats: int = 1,
                           grid: np.ndarray | None = None, ctx: TaskContext | None = None,
                           baselines: bool = True) -> dict:
    """Stratified k-fold cross-validation of the spectrum CNN, with baselines on the same folds.

    Each fold trains on the other folds (an inner stratified validation split is used for early stopping) and
    predicts the held-out fold, so every labelled spectrum is predicted exactly once per repeat by a model that
    never saw it. Returns pooled out-of-fold metrics (:func:`galdesk.ml.infer.evaluate`) for ``cnn``,
    ``logistic`` (L2 logistic regression on the same input, C chosen by inner CV) and ``majority``, plus
    per-fold accuracies and their spread.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold  # noqa: PLC0415

    cfg = config or SpectrumTrainConfig()
    ctx = ctx or NullContext()
    class_names = [str(c) for c in (class_names or SPECTRUM_CLASSES)]
    grid = default_grid() if grid is None else grid
    x_all = _as_input(spectra, grid)
    y_all = encode_labels(list(labels), class_names)
    keep = np.flatnonzero(y_all >= 0)
    x, y = x_all[keep], y_all[keep]
    present = sorted(set(y.tolist()))
    names = [class_names[c] for c in present]
    remap = {c: i for i, c in enumerate(present)}
    y = np.array([remap[v] for v in y])
    str_y = np.asarray([names[v] for v in y], dtype=object)
    k_splits = min(n_splits, int(np.bincount(y).min()))
    if k_splits < 2:
        raise ValueError("every class needs at least two labelled spectra for cross-validation")
    rskf = RepeatedStratifiedKFold(n_splits=k_splits, n_repeats=n_repeats, random_state=cfg.seed)
    folds = list(rskf.split(np.zeros(len(y)), y))
    out_probs = {"cnn": np.zeros((n_repeats, len(y), len(names))),
                 "logistic": np.zeros((n_repeats, len(y), len(names))),
                 "majority": np.zeros((n_repeats, len(y), len(names)))}
    fold_acc = {m: [] for m in out_probs}
    for f, (tr, te) in enumerate(folds):
        rep = f // k_splits
        ctx.check_cancelled()
        ctx.progress(f / len(folds), f"fold {f + 1}/{len(folds)}")
        # inner split of the training folds: validation for early stopping
        inner = stratified_split(np.where(np.isin(np.arange(len(y)), tr), y, -1), cfg.val_fraction, 0.0,
                                 cfg.seed + f) if np.bincount(y[tr]).min() >= 3 else {"train": list(tr), "val": []}
        fold_cfg = SpectrumTrainConfig.from_dict({**asdict(cfg), "seed": cfg.seed + f})
        res = train_spectrum_classifier(x, [names[v] for v in y], names, fold_cfg, grid=grid,
                                        split={"train": inner["train"], "val": inner["val"], "test": []})
        p = classify_spectra(x[te], res.loaded).probabilities
        out_probs["cnn"][rep, te] = p
        if baselines:
            out_probs["logistic"][rep, te] = _logistic(x[tr], y[tr], x[te], len(names), cfg.seed)
            prior = np.bincount(y[tr], minlength=len(names)) / len(tr)
            out_probs["majority"][rep, te] = prior
        for m in out_probs:
            fold_acc[m].append(float((out_probs[m][rep, te].argmax(1) == y[te]).mean()))
    result = {"class_names": names, "n": int(len(y)), "n_per_class": np.bincount(y).tolist(),
              "n_splits": k_splits, "n_repeats": n_repeats, "config": asdict(cfg), "methods": {}}
    for m in out_probs if baselines else ["cnn"]:
        evs = [evaluate(make_predictions(out_probs[m][r], names), str_y) for r in range(n_repeats)]
        accs = [e["accuracy"] for e in evs]
        aucs = [e["roc_auc"] for e in evs if e["roc_auc"] is not None]
        result["methods"][m] = {
            "accuracy": float(np.mean(accs)), "accuracy_repeat_std": float(np.std(accs)),
            "balanced_accuracy": float(np.mean([e["balanced_accuracy"] for e in evs])),
            "roc_auc": float(np.mean(aucs)) if aucs else None,
            "fold_accuracy_mean": float(np.mean(fold_acc[m])), "fold_accuracy_std": float(np.std(fold_acc[m])),
            "confusion_matrix": evs[0]["confusion_matrix"]}
    ctx.progress(1.0, "cross-validation finished")
    return result


def _logistic(x_tr, y_tr, x_te, k, seed) -> np.ndarray:
    from sklearn.linear_model import LogisticRegressionCV  # noqa: PLC0415

    a, b = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    cv = max(2, min(5, int(np.bincount(y_tr).min())))
    clf = LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=cv, max_iter=2000, class_weight="balanced")
    clf.fit(a, y_tr)
    p = np.zeros((len(b), k))
    p[:, clf.classes_] = clf.predict_proba(b)
    return p
