"""galdesk.ml without real data: device choice, weights round trip, inference (cancel, OOM), metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch  # noqa: E402

from galdesk.ml import device as gdev  # noqa: E402
from galdesk.ml.infer import Predictions, classify_stack, evaluate, make_predictions, suspect_labels  # noqa: E402
from galdesk.ml.models import ImageCNN, SpectrumCNN, build_model  # noqa: E402
from galdesk.ml.preprocess import augment_crop, crop_resize, default_spec, dihedral, fit_scaling, preprocess  # noqa
from galdesk.ml.weights import LoadedModel, load_model, save_model  # noqa: E402
from galdesk.tasks import Cancelled, RecordingContext  # noqa: E402


def _tiny(k=2, c=3, size=16) -> ImageCNN:
    torch.manual_seed(0)
    return ImageCNN(k, in_channels=c, input_size=size, width=4, depth=2).eval()


def _spec(c=3, stack=32, inp=16, crop=0.5):
    spec = default_spec(stack, inp, crop)
    spec["mean"], spec["std"] = [10.0] * c, [5.0] * c
    return spec


def _loaded(model, spec, names=("elliptical", "spiral"), threshold=None) -> LoadedModel:
    card = {"class_names": list(names), "preprocessing": spec, "architecture": getattr(model, "config", {})}
    if threshold is not None:
        card["decision_threshold"] = threshold
    return LoadedModel(model=model, card=card, id="tiny", hash="abc")


# -- device ---------------------------------------------------------------------------------------------------------
def test_import_does_not_load_torch():
    code = "import sys, galdesk.ml, galdesk.ml.device as d; d.choose_device; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_choose_device_order(monkeypatch):
    monkeypatch.delenv(gdev.ENV_VAR, raising=False)
    avail = {"cpu": True, "cuda": True, "mps": True}
    monkeypatch.setattr(gdev, "device_available", lambda k: avail[k.split(":")[0]])
    monkeypatch.setattr(gdev, "_torch", lambda: type("T", (), {"cuda": type("C", (), {"device_count": staticmethod(
        lambda: 1)})})())
    assert gdev.choose_device() == "cuda"  # auto: cuda first
    avail["cuda"] = False
    assert gdev.choose_device() == "mps"
    avail["mps"] = False
    assert gdev.choose_device() == "cpu"
    avail.update(cuda=True, mps=True)
    assert gdev.choose_device(setting="mps") == "mps"
    monkeypatch.setenv(gdev.ENV_VAR, "cpu")
    assert gdev.choose_device(setting="mps") == "cpu"  # environment beats the setting
    assert gdev.choose_device("cuda", setting="mps") == "cuda"  # the argument beats both
    assert gdev.choose_device("auto", setting="mps") == "cpu"  # "auto" is no choice: env decides
    monkeypatch.delenv(gdev.ENV_VAR)
    avail["cuda"] = False
    assert gdev.choose_device("cuda") == "mps"  # unavailable choice: warn and choose automatically


def test_describe_device_cpu():
    assert "CPU" in gdev.describe_device("cpu")


# -- models and preprocessing ---------------------------------------------------------------------------------------
def test_models_shapes_and_rebuild():
    m = ImageCNN(3, in_channels=1, input_size=32, width=4, depth=3)
    assert m(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    assert isinstance(build_model(m.config), ImageCNN)
    s = SpectrumCNN(4, n_pix=256, in_channels=2, width=4, depth=3)
    assert s(torch.zeros(2, 2, 256)).shape == (2, 4)
    assert build_model(s.config).config == s.config


def test_preprocess_resizes_crops_and_scales():
    spec = _spec(stack=32, inp=16, crop=0.5)
    x = np.full((2, 3, 64, 64), 10.0, np.float32)  # a stack at another working size is resized first
    x[:, :, 16:48, 16:48] = 20.0
    out = preprocess(x, spec)
    assert out.shape == (2, 3, 16, 16)
    assert torch.allclose(out, torch.full_like(out, 2.0), atol=1e-5)  # centre crop sees only the bright square


def test_augment_rotation_is_aligned_with_the_centre_crop():
    """A round blob at the stamp centre looks the same after any rotation/flip: the fused augmentation must then
    reproduce the plain centre crop (checks the sampling grid is centred and scaled like crop_resize)."""
    spec = _spec(stack=32, inp=16, crop=0.5)
    yy, xx = np.mgrid[0:32, 0:32] - 15.5
    blob = np.exp(-(xx ** 2 + yy ** 2) / (2 * 3.0 ** 2)).astype(np.float32)
    x = torch.as_tensor(np.broadcast_to(blob, (4, 3, 32, 32)).copy())
    ref = crop_resize(x, spec)
    out = augment_crop(x, spec, generator=torch.Generator().manual_seed(0), max_shift_px=0.0, scale_jitter=0.0)
    assert out.shape == ref.shape == (4, 3, 16, 16)
    assert float((out - ref).abs().max()) < 0.04  # bilinear error only; a 1 px offset gives ~0.2
    shifted = augment_crop(x, spec, generator=torch.Generator().manual_seed(0), max_shift_px=2.0)
    assert float((shifted - ref).abs().max()) > 0.05  # and the shift does move it


def test_dihedral_views_are_distinct_symmetries():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = {tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(views) == 8


def test_fit_scaling_uses_given_rows_only():
    rng = np.random.default_rng(0)
    stack = rng.normal(100, 7, (20, 3, 8, 8)).astype(np.float32)
    spec = fit_scaling(stack, default_spec(8, 8, 1.0))
    assert spec["mean"] == pytest.approx([100] * 3, abs=2)
    assert spec["std"] == pytest.approx([7] * 3, abs=1)


# -- weights ---------------------------------------------------------------------------------------------------------
def test_save_load_roundtrip_safetensors(tmp_path):
    m = _tiny()
    spec = _spec()
    card = save_model(tmp_path / "m.safetensors", m, {"class_names": ["a", "b"], "preprocessing": spec})
    assert (tmp_path / "m.json").exists()
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk["sha256"] == card["sha256"] and len(card["sha256"]) == 64
    assert on_disk["architecture"]["width"] == 4
    lm = load_model(tmp_path / "m.safetensors")
    assert lm.hash == card["sha256"] and lm.id == "m" and not lm.model.training
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(lm.model(x), m(x))
    # the card inside the safetensors metadata is enough when the JSON is lost
    (tmp_path / "m.json").unlink()
    lm2 = load_model(str(tmp_path / "m.safetensors"))
    assert lm2.class_names == ["a", "b"] and lm2.preprocessing["input_size"] == 16


def test_pt_state_dict_loads_and_pickled_module_is_refused(tmp_path):
    m = _tiny()
    card = {"class_names": ["a", "b"], "preprocessing": _spec(), "architecture": m.config}
    torch.save({"state_dict": m.state_dict(), "card": card}, tmp_path / "ok.pt")
    lm = load_model(tmp_path / "ok.pt")
    assert lm.class_names == ["a", "b"]
    torch.save(m, tmp_path / "module.pt")  # a whole pickled module needs code execution to load
    with pytest.raises(ValueError, match="weights_only"):
        load_model(tmp_path / "module.pt")


def test_load_unknown_name_is_clear():
    with pytest.raises(FileNotFoundError, match="bundled"):
        load_model("no-such-model")


# -- inference -----------------------------------------------------------------------------------------------------
def test_classify_stack_outputs():
    m = _tiny()
    stack = np.random.default_rng(1).normal(10, 5, (37, 3, 32, 32)).astype(np.float32)
    ctx = RecordingContext()
    p = classify_stack(stack, _loaded(m, _spec()), ctx=ctx, batch_size=10, device="cpu")
    assert p.probabilities.shape == (37, 2)
    assert np.allclose(p.probabilities.sum(1), 1, atol=1e-5)
    assert p.predicted.shape == (37,) and set(p.predicted) <= {0, 1}
    assert np.all((p.entropy >= 0) & (p.entropy <= 1 + 1e-6)) and np.all((p.margin >= 0) & (p.margin <= 1))
    assert (p.model_id, p.model_hash, p.device) == ("tiny", "abc", "cpu")
    assert [round(f, 3) for f, _ in ctx.reports] == [0.27, 0.541, 0.811, 1.0]
    # batching does not change the result
    p2 = classify_stack(stack, _loaded(m, _spec()), batch_size=64, device="cpu")
    assert np.allclose(p.probabilities, p2.probabilities, atol=1e-5)
    pt = classify_stack(stack, _loaded(m, _spec()), batch_size=64, device="cpu", tta=True)
    assert pt.tta == 8 and np.allclose(pt.probabilities.sum(1), 1, atol=1e-5)


def test_threshold_decides_binary_class():
    probs = np.array([[0.35, 0.65], [0.25, 0.75], [0.9, 0.1]], np.float32)
    p = make_predictions(probs, ["e", "s"], threshold=0.7)
    assert p.predicted.tolist() == [0, 1, 0]
    assert make_predictions(probs, ["e", "s"]).predicted.tolist() == [1, 1, 0]


class _CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_cancel_stops_within_one_batch():
    m = _CountingModel(_tiny())
    m.config = m.inner.config
    stack = np.zeros((100, 3, 32, 32), np.float32)
    ctx = RecordingContext(cancel_after=3)  # cancels as the 3rd progress report arrives
    with pytest.raises(Cancelled):
        classify_stack(stack, _loaded(m, _spec()), ctx=ctx, batch_size=10, device="cpu")
    assert m.calls == 3  # no batch ran after the cancel
    assert len(ctx.reports) == 3


class _OOMModel(torch.nn.Module):
    """Raises an out-of-memory error for batches larger than ``limit``."""

    def __init__(self, inner, limit, exc):
        super().__init__()
        self.inner, self.limit, self.exc = inner, limit, exc
        self.sizes = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise self.exc
        return self.inner(x)


@pytest.mark.parametrize("exc", [RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"),
                                 torch.cuda.OutOfMemoryError("CUDA out of memory")])
def test_oom_halves_batch_and_completes(exc):
    inner = _tiny()
    m = _OOMModel(inner, limit=6, exc=exc)
    stack = np.random.default_rng(2).normal(10, 5, (50, 3, 32, 32)).astype(np.float32)
    ctx = RecordingContext()
    p = classify_stack(stack, _loaded(m, _spec()), ctx=ctx, batch_size=32, device="cpu")
    ref = classify_stack(stack, _loaded(inner, _spec()), batch_size=64, device="cpu")
    assert np.allclose(p.probabilities, ref.probabilities, atol=1e-5)
    assert m.sizes[:4] == [32, 16, 8, 4]  # halved until it fits, then carried on
    assert p.info["final_batch_size"] == 4 and p.info["oom_events"] == 3
    assert any("halved" in line for line in ctx.logs)


def test_oom_at_batch_one_falls_back_to_cpu(monkeypatch):
    """On a (simulated) GPU, OOM even at batch 1 moves the model to the CPU and finishes there."""
    import galdesk.ml.infer as infer

    inner = _tiny()
    state = {"device": "cuda"}

    class GpuOnlyOOM(torch.nn.Module):
        def forward(self, x):
            if state["device"] != "cpu":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return inner(x)

    def fake_to_device(module, device):
        state["device"] = device
        return module

    m = GpuOnlyOOM()
    monkeypatch.setattr(infer, "_to_device", fake_to_device)
    monkeypatch.setattr(infer, "choose_device", lambda *a, **k: "cuda")
    monkeypatch.setattr(infer, "preprocess", lambda s, spec, device="cpu": preprocess(s, spec, "cpu"))
    stack = np.zeros((9, 3, 32, 32), np.float32)
    ctx = RecordingContext()
    p = classify_stack(stack, _loaded(m, _spec()), ctx=ctx, batch_size=4)
    assert p.device == "cpu" and p.info["fell_back_to_cpu"]
    assert p.probabilities.shape == (9, 2)
    assert any("CPU" in line for line in ctx.logs)


def test_other_errors_are_not_swallowed():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        classify_stack(np.zeros((3, 3, 32, 32), np.float32), _loaded(Broken(), _spec()), device="cpu")


# -- metrics and suspects ------------------------------------------------------------------------------------------
def _preds(probs, names=("e", "s")):
    return make_predictions(np.asarray(probs, np.float32), list(names))


def test_evaluate_binary_and_unlabelled_rows():
    p = _preds([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    ev = evaluate(p, ["e", "s", "s", "unknown", None])
    assert ev["n_labelled"] == 3
    assert ev["accuracy"] == pytest.approx(2 / 3)
    assert ev["confusion_matrix"] == [[1, 0], [1, 1]]
    assert ev["roc_auc"] == pytest.approx(1.0)  # P(s) ranks both spirals above the elliptical


def test_evaluate_multiclass_auc():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    probs = rng.dirichlet([1, 1, 1], 60)
    probs[np.arange(60), y] += 1.0
    probs /= probs.sum(1, keepdims=True)
    ev = evaluate(_preds(probs, ("a", "b", "c")), np.array(["a", "b", "c"])[y])
    assert ev["roc_auc"] > 0.9 and np.array(ev["confusion_matrix"]).sum() == 60


def test_suspect_labels():
    p = _preds([[0.97, 0.03], [0.2, 0.8], [0.05, 0.95], [0.5, 0.5]])
    s = suspect_labels(p, ["s", "s", "e", "e"], threshold=0.9)
    assert [t[0] for t in s] == [0, 2]  # most confident first; 0.8 is below the threshold
    assert s[0][1:3] == ("s", "e") and s[0][3] == pytest.approx(0.97)
    assert isinstance(p, Predictions)


# -- training on synthetic single-band FITS-like stamps (multi-class, asinh scaling) ------------------------------
def _blobs(n, rng):
    """Three classes of 1-band stamps in physical units: round blob, elongated blob, two blobs; sky noise."""
    yy, xx = np.mgrid[0:32, 0:32] - 15.5
    out = np.empty((n, 1, 32, 32), np.float32)
    labels = []
    for i in range(n):
        k = i % 3
        a = rng.uniform(0, np.pi)
        u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
        if k == 0:
            img = np.exp(-(u ** 2 + v ** 2) / 8)
        elif k == 1:
            img = np.exp(-(u ** 2 / 30 + v ** 2 / 2))
        else:
            img = np.exp(-((u - 4) ** 2 + v ** 2) / 4) + np.exp(-((u + 4) ** 2 + v ** 2) / 4)
        out[i, 0] = 1e-3 * (rng.uniform(5, 20) * img + rng.normal(0, 0.3, img.shape)) + 2e-3  # sky level
        labels.append(["round", "elongated", "double"][k])
    return out, np.array(labels)


def test_train_multiclass_single_band_asinh(tmp_path):
    from galdesk.ml.train import TrainConfig, train_image_classifier

    rng = np.random.default_rng(0)
    stack, labels = _blobs(240, rng)
    labels = labels.astype(object)
    labels[::17] = "unlabelled"  # not a class: ignored
    cfg = TrainConfig(input_size=16, crop_fraction=0.75, width=8, depth=2, epochs=10, batch_size=32, lr=5e-3,
                      seed=0, num_threads=2, val_fraction=0.2, test_fraction=0.2)
    res = train_image_classifier(stack, labels, ["round", "elongated", "double"], cfg,
                                 out_path=tmp_path / "blobs.safetensors")
    assert res.card["preprocessing"]["scaling"] == "asinh"  # "auto" on physical units
    assert "decision_threshold" not in res.card  # only for binary models
    n_used = sum(len(res.split[p]) for p in ("train", "val", "test"))
    assert n_used == int((labels != "unlabelled").sum())
    test = res.metrics["test"]
    assert test["accuracy"] > 0.8 and test["roc_auc"] > 0.9  # macro one-vs-rest
    assert np.array(test["confusion_matrix"]).shape == (3, 3)
    new, new_labels = _blobs(60, np.random.default_rng(5))
    p = classify_stack(new, load_model(tmp_path / "blobs.safetensors"), device="cpu")
    assert np.mean(p.predicted_names == new_labels) > 0.8
