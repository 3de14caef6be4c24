"""Model files from colleagues are untrusted: a card that does not match its weights, unusable preprocessing
constants, non-finite weights or a broken safetensors file give one clear error naming the file, never a
traceback later (an IndexError in an export, all-NaN probabilities in a project)."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys

import pytest
import torch

from galdesk.ml.models import ImageCNN
from galdesk.ml.weights import ModelCardError, load_model, save_model

SPEC = {"stack_size": 64, "input_size": 32, "crop_fraction": 0.5, "scaling": "standardize", "mean": [0.0] * 3,
        "std": [1.0] * 3}


@pytest.fixture
def good(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "good.safetensors"
    save_model(path, ImageCNN(2, in_channels=3, input_size=32, width=4, depth=2),
               {"class_names": ["elliptical", "spiral"], "preprocessing": dict(SPEC)})
    return path


def _edit_card(path, **changes):
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    for key, value in changes.items():
        if "." in key:
            a, b = key.split(".")
            card[a][b] = value
        else:
            card[key] = value
    card_path.write_text(json.dumps(card))


def test_the_good_model_loads(good):
    assert load_model(good).class_names == ["elliptical", "spiral"]


@pytest.mark.parametrize("changes, message", [
    ({"class_names": ["elliptical", "spiral", "merger"]}, "names 3 classes but the network has 2 outputs"),
    ({"class_names": ["galaxy"]}, "at least two names"),
    ({"class_names": ["a", "a"]}, "repeat"),
    ({"preprocessing.std": [1.0, 0.0, 1.0]}, "std must be positive"),
    ({"preprocessing.mean": [0.0, math.nan, 0.0]}, "not finite"),
    ({"preprocessing.input_size": 0}, "input_size"),
    ({"preprocessing.crop_fraction": 7}, "crop_fraction"),
    ({"decision_threshold": 1.5}, "decision_threshold"),
    ({"architecture.kind": "ResNet999"}, "unknown architecture"),
    ({"architecture.depth": "deep"}, "depth"),
    ({"architecture.n_classes": -1}, "n_classes"),
    ({"architecture.in_channels": 10**9}, "in_channels"),
])
def test_a_card_that_does_not_fit_is_refused_with_its_reason(good, changes, message):
    _edit_card(good, **changes)
    with pytest.raises(ModelCardError) as err:
        load_model(good)
    assert message in str(err.value) and str(good) in str(err.value)


def test_non_finite_weights_are_refused(tmp_path):
    model = ImageCNN(2, in_channels=3, input_size=32, width=4, depth=2)
    with torch.no_grad():
        next(model.parameters())[0].fill_(float("nan"))
    path = tmp_path / "nan.safetensors"
    save_model(path, model, {"class_names": ["elliptical", "spiral"], "preprocessing": dict(SPEC)})
    with pytest.raises(ModelCardError, match="NaN or infinite"):
        load_model(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "huge-header", "garbage", "bad-card-json"])
def test_broken_files_are_one_clear_error(good, damage):
    raw = good.read_bytes()
    if damage == "empty":
        good.write_bytes(b"")
    elif damage == "truncated":
        good.write_bytes(raw[: len(raw) // 2])
    elif damage == "huge-header":
        good.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    elif damage == "garbage":
        good.write_bytes(b"GIF89a" + bytes(range(256)) * 10)
    else:
        good.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelCardError) as err:
        load_model(good)
    assert str(good.stem) in str(err.value) and "\n" not in str(err.value)


def test_classify_with_a_bad_model_is_one_line_and_exit_2(good, tmp_path, shared_data):
    _edit_card(good, class_names=["elliptical", "spiral", "merger"])
    src = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:2]
    proj = tmp_path / "p"
    assert subprocess.run([sys.executable, "-m", "galdesk", "ingest", *map(str, src), "-o", str(proj)],
                          capture_output=True, timeout=120).returncode == 0
    r = subprocess.run([sys.executable, "-m", "galdesk", "classify", str(proj) + ".galdesk", "--model", str(good)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("galdesk classify:") and "network has 2 outputs" in r.stderr


def test_a_resume_checkpoint_is_checked_before_training(tmp_path):
    import numpy as np

    from galdesk.ml.train import TrainConfig, train_image_classifier

    stack = np.random.default_rng(0).normal(size=(12, 3, 32, 32)).astype(np.float32)
    labels = ["elliptical", "spiral"] * 6
    state = ImageCNN(2, in_channels=3, input_size=32, width=4, depth=2).state_dict()
    base = {"model": state, "split": {"train": list(range(8)), "val": [8, 9], "test": [10, 11]},
            "spec": dict(SPEC), "epoch": 0, "optimizer": {}, "class_names": ["elliptical", "spiral"]}
    cfg = TrainConfig(epochs=1, input_size=32, width=4, depth=2, device="cpu")
    cases = {"classes.pt": ({**base, "class_names": ["star", "galaxy"]}, "trained for classes"),
             "nan.pt": ({**base, "model": {k: v.float() * float("nan") if v.is_floating_point() else v
                                           for k, v in state.items()}}, "NaN or infinite"),
             "partial.pt": ({"model": state}, "missing split")}
    for name, (obj, message) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(ModelCardError, match=message):
            train_image_classifier(stack, labels, ["elliptical", "spiral"], cfg, resume_from=tmp_path / name)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "classes.pt").read_bytes()[:100])
    with pytest.raises(ModelCardError, match="not a galdesk training checkpoint"):
        train_image_classifier(stack, labels, ["elliptical", "spiral"], cfg, resume_from=tmp_path / "cut.pt")
