"""Self-supervised SimCLR features (galdesk.ml.contrastive) trained on 64 real Galaxy Zoo cut-outs without labels:
the loss falls, the file round-trips and feeds the dendrogram, rotation invariance is learned, cancel is prompt,
and ``galdesk cluster --train-contrastive`` works. Skips without the data."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from galdesk.cli.cluster import add_parsers
from galdesk.cluster import cluster_project
from galdesk.cluster.features import extract_features, load_feature_model
from galdesk.ml.contrastive import (
    augment_views,
    is_contrastive_file,
    load_contrastive,
    nt_xent,
    save_contrastive,
    train_contrastive,
)
from galdesk.ml.preprocess import dihedral, preprocess
from galdesk.tasks import Cancelled, RecordingContext

N = 64
SMALL = dict(input_size=32, width=8, depth=3, proj_dim=32)
FIT = dict(batch_size=32, lr=3e-3, seed=0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def project(shared_data, tmp_path_factory):
    from conftest import gz1_catalog

    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    tmp = tmp_path_factory.mktemp("simclr")
    ingest([], tmp / "p", catalog=gz1_catalog(shared_data, tmp, N, seed=5), workers=1)
    p = Project.open(tmp / "p.galdesk")
    yield p
    p.close()


@pytest.fixture(scope="module")
def trained(project):
    stack = np.asarray(project.stack("c3"), np.float32)
    rows = []
    model, spec, history = train_contrastive(stack, epochs=10, on_epoch=rows.append, **FIT, **SMALL)
    assert rows == history
    return stack, model, spec, history


def test_nt_xent_prefers_matching_pairs():
    z = torch.randn(8, 16)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 16)) < nt_xent(z, torch.randn(8, 16))


def test_augmented_views_have_the_input_size_and_differ():
    x = torch.randn(4, 3, 64, 64)
    spec = {"stack_size": 64, "crop_fraction": 0.75, "input_size": 32, "scaling": "asinh"}
    a, b = augment_views(x, spec), augment_views(x, spec)
    assert a.shape == (4, 3, 32, 32) and torch.isfinite(a).all() and not torch.allclose(a, b)


def test_loss_falls(trained):
    _, _, _, history = trained
    assert len(history) == 10 and all(np.isfinite(r["loss"]) for r in history)
    assert np.mean([r["loss"] for r in history[-3:]]) < history[0]["loss"] - 0.3


def _turn_ratio(model, stack, spec):
    """Mean distance between a galaxy's features and its 90-degree turn's, over the mean distance between
    different galaxies (scale-free)."""
    x = preprocess(stack, spec)
    with torch.inference_mode():
        f0, f1 = model.embed(x), model.embed(dihedral(x, 1))
    own = (f0 - f1).norm(dim=1).mean()
    others = torch.cdist(f0, f0).sum() / (len(f0) * (len(f0) - 1))
    return float(own / others)


def test_rotation_invariance_is_learned(trained):
    stack, model, spec, _ = trained
    untrained, _, _ = train_contrastive(stack, epochs=0, **FIT, **SMALL)      # same seed: the starting weights
    before, after = _turn_ratio(untrained, stack, spec), _turn_ratio(model, stack, spec)
    assert after < 0.8 * before, (before, after)


def test_file_round_trips_and_feeds_the_dendrogram(trained, project, tmp_path):
    stack, model, spec, history = trained
    path = tmp_path / "simclr.safetensors"
    card = save_contrastive(path, model, spec, history)
    assert is_contrastive_file(path) and card["architecture"]["kind"] == "SimCLR"
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk["labels_used"] is False and len(on_disk["sha256"]) == 64 and len(on_disk["history"]) == 10
    loaded = load_contrastive(path)
    assert load_feature_model(str(path)).hash == loaded.hash
    _, feats = extract_features(project, model=str(path), save=False)
    assert feats.shape == (N, 8 * 4) and np.all(np.isfinite(feats)) and feats.std(axis=0).max() > 0
    with torch.inference_mode():
        direct = loaded.model.embed(preprocess(stack[:5], spec)).numpy()
    assert np.allclose(direct, feats[:5], atol=1e-5)
    cm = cluster_project(project, model=str(path), rotations=4, save=False)
    assert cm.n_objects == N and cm.info["layer"] == "simclr-encoder"
    cut = cm.cut(cm.cuts_for(n_clusters=3))
    assert np.bincount(cm.labels(cut)).sum() == N and 0 < cm.consistency(cut).score <= 1


def test_cancel_is_prompt(trained):
    stack = trained[0]
    ctx = RecordingContext(cancel_after=2)
    with pytest.raises(Cancelled):
        train_contrastive(stack, epochs=5, ctx=ctx, **FIT, **SMALL)
    assert len(ctx.reports) == 2          # stopped before the third batch


def test_cluster_command_trains_contrastive_features(project, capsys):
    parser = argparse.ArgumentParser(prog="galdesk")
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cluster", str(project.path), "--train-contrastive", "--epochs", "1",
                              "--n-clusters", "3", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_clusters"] == 3 and out["info"]["layer"] == "simclr-encoder"
    path = project.path / "models" / "contrastive.safetensors"
    assert is_contrastive_file(path)
    assert json.loads(path.with_suffix(".json").read_text())["labels_used"] is False


def test_cluster_and_cut_trains_contrastive_features(project):
    from galdesk.cluster.pipeline import cluster_and_cut

    cm, cuts, out = cluster_and_cut(project, train_contrastive=True, rotations=0, threshold=0.8)
    assert cm.info["layer"] == "simclr-encoder" and cm.n_objects == N and out["n_clusters"] >= 1
