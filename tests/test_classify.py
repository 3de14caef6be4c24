"""Classification of a project (the glue behind `galdesk classify` / `galdesk train`), with small real data."""

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from galdesk.ml.service import classify_project, parse_label_map, train_project
from galdesk.project import Project
from galdesk.services.ingest import ingest
from galdesk.tasks import Cancelled, RecordingContext

GZ_MAP = "spiral_clockwise=spiral,spiral_anticlockwise=spiral,edge_on_disk=spiral"


@pytest.fixture(scope="module")
def gz_project(tmp_path_factory, shared_data):
    """A project of 120 Galaxy Zoo cut-outs (60 E, 60 S) with the GZ1 labels as a catalogue."""
    tmp = tmp_path_factory.mktemp("gz")
    labels = Table.read(shared_data / "images/gz1/labels.csv", format="ascii.csv")
    ell = labels[labels["gz1_class"] == 0][:60]
    spi = labels[np.isin(labels["gz1_class"], [1, 2, 3])][:60]
    from astropy.table import vstack

    cat = vstack([ell, spi])
    cat["file"] = [str(shared_data / "images/gz1" / f) for f in cat["file"]]
    cat.write(tmp / "cat.csv", format="ascii.csv")
    ingest([], tmp / "gz", catalog=tmp / "cat.csv", workers=1)
    return Project.open(tmp / "gz.galdesk")


def test_parse_label_map():
    assert parse_label_map("a=b, c = d") == {"a": "b", "c": "d"}
    assert parse_label_map(None) == {}


def test_train_small_model_then_classify_and_store(gz_project, tmp_path):
    from galdesk.ml.train import TrainConfig

    cfg = TrainConfig(epochs=2, width=8, depth=3, input_size=32, batch_size=32, num_threads=2, patience=5)
    out = train_project(gz_project, "gz1_label", output=tmp_path / "m.safetensors",
                        label_map=parse_label_map(GZ_MAP), config=cfg)
    assert out["class_names"] == ["elliptical", "spiral"] and out["n_labelled"] == 120
    assert len(out["history"]) == 2
    res = classify_project(gz_project, model=str(tmp_path / "m.safetensors"), label_column="gz1_label",
                           label_map=parse_label_map(GZ_MAP))
    assert res["classified"] == 120 and res["device"] == "cpu"
    assert res["metrics"]["n_labelled"] == 120
    arrays, attrs = gz_project.load_result("predictions")
    assert arrays["prob"].shape == (120, 2)
    assert np.allclose(arrays["prob"].sum(1), 1, atol=1e-5)
    assert attrs["model_hash"] == res["model_hash"] and len(res["model_hash"]) == 64


def test_bundled_model_on_real_galaxies(gz_project, monkeypatch):
    from galdesk.project import Project

    def whole_stack(*a, **k):
        raise AssertionError("classification must read the store a batch at a time, never the whole stack")

    monkeypatch.setattr(Project, "stack", whole_stack)
    res = classify_project(gz_project, label_column="gz1_label", label_map=parse_label_map(GZ_MAP))
    m = res["metrics"]
    assert m["n_labelled"] == 120
    # these 120 include training images of the bundled model; a sanity floor, not the held-out figure
    assert m["accuracy"] > 0.8 and m["roc_auc"] > 0.85


def test_cancel_stops_classification(gz_project, tmp_path):
    from galdesk.ml.models import ImageCNN
    from galdesk.ml.weights import save_model

    model = ImageCNN(2, in_channels=3, input_size=32, width=4, depth=2)
    save_model(tmp_path / "tiny.safetensors", model, {"class_names": ["elliptical", "spiral"],
                                                       "preprocessing": {"stack_size": 64, "input_size": 32,
                                                                         "crop_fraction": 0.5,
                                                                         "scaling": "asinh"}})
    ctx = RecordingContext(cancel_after=2)
    with pytest.raises(Cancelled):
        classify_project(gz_project, model=str(tmp_path / "tiny.safetensors"), batch_size=8, ctx=ctx)
    batches = [r for r in ctx.reports if r[0] > 0]
    assert len(batches) <= 2  # stopped within one batch of the request


def test_cli_classify_json(gz_project, tmp_path):
    out = subprocess.run([sys.executable, "-m", "galdesk", "classify", str(gz_project.path), "--label-column",
                          "gz1_label", "--label-map", GZ_MAP, "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["classified"] == 120 and doc["device"] == "cpu" and doc["model"] == "gz1-binary"
    assert set(doc["metrics"]) >= {"accuracy", "roc_auc", "confusion_matrix", "n_labelled"}
