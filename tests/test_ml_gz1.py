"""galdesk.ml on real Galaxy Zoo 1 cut-outs: a tiny training run, checkpoint/resume, and the bundled model's
accuracy on held-out images (the test split saved in its card). Skips when ../shared/data is absent."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch  # noqa: E402
from conftest import need

from galdesk.ml.datasets import GZ1_BINARY_CLASSES, gz1_binary, gz1_stack, read_gz1_labels  # noqa: E402
from galdesk.ml.infer import classify_stack, evaluate, suspect_labels  # noqa: E402
from galdesk.ml.train import TrainConfig, train_image_classifier  # noqa: E402
from galdesk.ml.weights import bundled_dir, file_sha256, list_bundled, load_model  # noqa: E402
from galdesk.tasks import Cancelled, RecordingContext  # noqa: E402

TINY = dict(input_size=32, crop_fraction=0.5, width=8, depth=3, batch_size=32, lr=3e-3, num_threads=2, seed=0,
            val_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="module")
def gz1(shared_data):
    root = shared_data / "images" / "gz1"
    return need(root / "labels.csv").parent


@pytest.fixture(scope="module")
def small(gz1):
    return gz1_binary(gz1, size=64, limit=200, seed=1)


def test_stack_matches_the_project_input_contract(gz1, small):
    stack, labels, ids = small
    assert stack.shape == (200, 3, 64, 64) and stack.dtype == np.float32
    assert 0 <= stack.min() and stack.max() <= 255
    assert set(labels) <= set(GZ1_BINARY_CLASSES)


def test_train_tiny_model_on_real_subset(tmp_path, small):
    stack, labels, ids = small
    rows = []
    ctx = RecordingContext()
    res = train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, TrainConfig(epochs=3, **TINY), ctx=ctx,
                                 out_path=tmp_path / "tiny.safetensors", on_epoch=rows.append, ids=ids)
    assert len(rows) == len(res.history) == 3
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learns
    assert {"train_loss", "val_loss", "val_accuracy", "epoch"} <= set(rows[0])
    sp = res.split
    assert not (set(sp["train"]) & set(sp["test"])) and not (set(sp["val"]) & set(sp["test"]))
    assert len(sp["train"]) + len(sp["val"]) + len(sp["test"]) == 200
    frac = np.mean(labels[sp["test"]] == "spiral")
    assert abs(frac - np.mean(labels == "spiral")) < 0.05  # stratified
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card["sha256"] == file_sha256(tmp_path / "tiny.safetensors")
    assert card["split"]["ids"]["test"] == [ids[i] for i in sp["test"]]
    assert 0.05 <= card["decision_threshold"] <= 0.95
    assert card["metrics"]["test"]["n_labelled"] == len(sp["test"])
    assert card["preprocessing"]["scaling"] == "standardize" and len(card["preprocessing"]["mean"]) == 3
    assert (tmp_path / "tiny.ckpt.pt").exists()
    assert ctx.reports and ctx.reports[-1][0] == 1.0
    # the saved file reproduces the in-memory model's predictions
    lm = load_model(tmp_path / "tiny.safetensors")
    p = classify_stack(stack[sp["test"]], lm, device="cpu")
    assert np.allclose(p.probabilities, res.test_predictions.probabilities, atol=1e-5)


def test_cancel_then_resume_from_checkpoint(tmp_path, small):
    stack, labels, _ = small
    cfg = TrainConfig(epochs=3, **TINY)
    steps = int(np.ceil(120 / cfg.batch_size))  # 60% of 200 in training
    ctx = RecordingContext(cancel_after=steps + 2)  # cancels during the second epoch
    with pytest.raises(Cancelled):
        train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, cfg, ctx=ctx, out_path=tmp_path / "r.safetensors")
    ckpt = tmp_path / "r.ckpt.pt"
    saved = torch.load(ckpt, weights_only=True)  # checkpoints are safe to load
    assert saved["epoch"] == 0 and len(saved["history"]) == 1
    rows = []
    res = train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, cfg, out_path=tmp_path / "r.safetensors",
                                 resume_from=ckpt, on_epoch=rows.append)
    assert [r["epoch"] for r in res.history] == [1, 2, 3] and [r["epoch"] for r in rows] == [2, 3]
    assert res.split["test"] == saved["split"]["test"]


def test_resumed_training_is_bit_identical(tmp_path, small):
    """Interrupting a run (with mixup and dropout) and resuming it gives exactly the weights of an uninterrupted run:
    every random draw comes from state saved in the checkpoint."""
    stack, labels, _ = small
    cfg = TrainConfig(epochs=3, mixup=0.2, **TINY)
    full = train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, cfg, out_path=tmp_path / "full.safetensors")
    steps = int(np.ceil(120 / cfg.batch_size))
    with pytest.raises(Cancelled):
        train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, cfg, ctx=RecordingContext(cancel_after=steps + 2),
                               out_path=tmp_path / "cut.safetensors")
    torch.manual_seed(12345)  # whatever else ran in between must not matter
    torch.rand(100)
    res = train_image_classifier(stack, labels, GZ1_BINARY_CLASSES, cfg, out_path=tmp_path / "cut.safetensors",
                                 resume_from=tmp_path / "cut.ckpt.pt")
    a, b = full.model.state_dict(), res.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in res.history] == [r["train_loss"] for r in full.history]


# -- the bundled model ------------------------------------------------------------------------------------------------
def _bundled_card():
    return json.loads((bundled_dir() / "gz1-binary.json").read_text())  # shipped in the package: must exist


def test_bundled_model_is_listed_and_small():
    card = _bundled_card()
    names = [m["name"] for m in list_bundled()]
    assert "gz1-binary" in names
    w = bundled_dir() / "gz1-binary.safetensors"
    assert w.stat().st_size < 5e6
    assert card["sha256"] == file_sha256(w)
    assert card["class_names"] == ["elliptical", "spiral"]
    assert card["metrics"]["test"]["accuracy"] >= 0.91 and card["metrics"]["test"]["roc_auc"] >= 0.965


def test_bundled_model_on_held_out_images(gz1, monkeypatch):
    """~300 GZ1 images from the card's held-out test split: accuracy within a few points of the card's figure."""
    card = _bundled_card()

    def no_network(*a, **k):
        raise AssertionError("the bundled model must load offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    lm = load_model("gz1-binary", device="cpu")
    assert lm.hash == card["sha256"]
    test_ids = set(card["split"]["ids"]["test"])
    assert not test_ids & set(card["split"]["ids"]["train"])
    rows = [r for r in read_gz1_labels(gz1) if r["objid"] in test_ids]
    rng = np.random.default_rng(0)
    rows = [rows[i] for i in np.sort(rng.choice(len(rows), size=min(300, len(rows)), replace=False))]
    stack, rows = gz1_stack(gz1, size=card["preprocessing"]["stack_size"], rows=rows)
    labels = ["elliptical" if r["gz1_class"] == 0 else "spiral" for r in rows]
    ctx = RecordingContext()
    p = classify_stack(stack, lm, ctx=ctx, batch_size=64, device="cpu")
    ev = evaluate(p, labels)
    assert ev["n_labelled"] == len(rows)
    assert ev["accuracy"] >= card["metrics"]["test"]["accuracy"] - 0.04
    assert ev["accuracy"] >= 0.88 and ev["roc_auc"] >= 0.94
    assert p.model_id == "gz1-binary" and p.model_hash == card["sha256"] and p.device == "cpu"
    sus = suspect_labels(p, labels, threshold=0.9)
    assert len(sus) < 0.1 * len(rows)
    assert all(conf >= 0.9 and cat != pred for _, cat, pred, conf in sus)
