"""The unsupervised feature path: a small VQ-VAE trained on 60 real Galaxy Zoo cut-outs, saved, loaded and used
for the dendrogram like a CNN, from Python and from ``galdesk cluster --train-vqvae``. Skips without the data."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch  # noqa: E402

from galdesk.cli.cluster import add_parsers  # noqa: E402
from galdesk.cluster import cluster_project  # noqa: E402
from galdesk.cluster.features import extract_features  # noqa: E402
from galdesk.ml.vqvae import is_vqvae_file, load_vqvae, save_vqvae, train_vqvae  # noqa: E402
from galdesk.tasks import Cancelled, RecordingContext  # noqa: E402

N = 60
SMALL = dict(hidden=8, latent_dim=8, n_codes=32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def project(shared_data, tmp_path_factory):
    from conftest import gz1_catalog

    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    tmp = tmp_path_factory.mktemp("vqvae")
    ingest([], tmp / "p", catalog=gz1_catalog(shared_data, tmp, N, seed=3), workers=1)
    p = Project.open(tmp / "p.galdesk")
    yield p
    p.close()


def test_vqvae_learns_and_feeds_the_dendrogram(project, tmp_path):
    stack = project.stack("c3")
    rows = []
    model, spec, history = train_vqvae(stack, epochs=4, batch_size=16, seed=0, on_epoch=rows.append, **SMALL)
    assert len(history) == 4 and rows == history
    assert history[-1]["recon"] < history[0]["recon"]               # it learns to reconstruct
    assert history[-1]["codes_used"] > 1                            # the codebook is in use
    path = tmp_path / "vq.safetensors"
    card = save_vqvae(path, model, spec, history)
    assert is_vqvae_file(path) and card["architecture"]["kind"] == "VQVAE"
    loaded = load_vqvae(path)
    rows_, feats = extract_features(project, model=str(path), save=False)
    assert feats.shape == (N, 2 * SMALL["latent_dim"]) and np.all(np.isfinite(feats))
    assert feats.std(axis=0).max() > 0                              # galaxies differ
    from galdesk.ml.preprocess import preprocess

    with torch.inference_mode():
        direct = loaded.model.embed(preprocess(stack[:5], spec)).numpy()
    assert np.allclose(direct, feats[:5], atol=1e-5)
    cm = cluster_project(project, model=str(path), rotations=4, save=False)
    assert cm.tree.method == "direct" and cm.n_objects == N and cm.info["layer"] == "vq-latent"
    cut = cm.cut(cm.cuts_for(n_clusters=3))
    assert np.bincount(cm.labels(cut)).sum() == N and 0 < cm.consistency(cut).score <= 1
    with pytest.raises(Cancelled):
        train_vqvae(stack, epochs=2, batch_size=16, ctx=RecordingContext(cancel_after=2), **SMALL)


def test_cluster_command_trains_a_vqvae(project, capsys):
    parser = argparse.ArgumentParser(prog="galdesk")
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cluster", str(project.path), "--train-vqvae", "--epochs", "1", "--n-clusters", "3",
                              "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_clusters"] == 3 and out["info"]["layer"] == "vq-latent"
    assert (project.path / "models" / "vqvae.safetensors").is_file()
