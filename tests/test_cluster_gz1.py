"""Clustering on real Galaxy Zoo 1 cut-outs (150 of them) with a tiny CNN's penultimate features: stored
features, the Ward tree against SciPy, per-branch cuts, rotation consistency, saved clusters read by the vetting
code, the journal, the micro-cluster path and ``galdesk cluster``. Skips when ../shared/data is absent."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch  # noqa: E402
from scipy.cluster.hierarchy import leaves_list  # noqa: E402

from galdesk.cli.cluster import add_parsers  # noqa: E402
from galdesk.cluster import apply_cuts, cluster_project, load_cuts, load_linkage, nearest_leaves, rotation_consistency  # noqa: E402
from galdesk.cluster.features import extract_features, fit_pca, load_features, rotated_features  # noqa: E402
from galdesk.tasks import Cancelled, RecordingContext  # noqa: E402

N = 150


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def gz1_project(shared_data, tmp_path_factory):
    from conftest import gz1_catalog

    from galdesk.ml.models import ImageCNN
    from galdesk.ml.weights import save_model
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    tmp = tmp_path_factory.mktemp("gz1clu")
    res = ingest([], tmp / "p", catalog=gz1_catalog(shared_data, tmp, N, seed=0), workers=1)
    assert res.images == N
    torch.manual_seed(0)
    model = ImageCNN(2, in_channels=3, input_size=32, width=8, depth=3)
    save_model(tmp / "tiny.safetensors", model, {"class_names": ["elliptical", "spiral"],
                                                 "preprocessing": {"stack_size": 64, "input_size": 32,
                                                                   "crop_fraction": 0.5, "scaling": "asinh"}})
    project = Project.open(tmp / "p.galdesk")
    yield project, str(tmp / "tiny.safetensors")
    project.close()


@pytest.fixture(scope="module")
def clustered(gz1_project):
    project, model = gz1_project
    ctx = RecordingContext()
    cm = cluster_project(project, model=model, rotations=8, ctx=ctx)
    return project, model, cm, ctx


def test_penultimate_features_are_what_the_classifier_sees(gz1_project):
    from galdesk.ml.infer import classify_stack
    from galdesk.ml.weights import load_model

    project, model = gz1_project
    rows, feats = extract_features(project, model=model)
    assert rows.tolist() == project.image_rows().tolist() and feats.shape == (N, 32) and feats.dtype == np.float32
    stored_rows, stored, attrs = load_features(project)
    assert np.array_equal(stored_rows, rows) and np.array_equal(stored, feats)
    assert attrs["model_id"] == "tiny" and attrs["rotations"] == 1 and attrs["layer"] == "penultimate"
    # the classifier's last layer applied to these features gives its probabilities
    lm = load_model(model)
    logits = lm.model.head[-1](torch.as_tensor(feats)).detach()
    probs = torch.softmax(logits, 1).numpy()
    stack = project.stack("c3")[np.asarray(project.objects["row"])[rows]]
    assert np.allclose(probs, classify_stack(stack, lm).probabilities, atol=1e-5)
    # rotated copies: view 0 is the cut-out itself; averaging over 4 is the mean of the first 4 views
    r_rows, rot = rotated_features(project, model=model, rotations=8)
    assert rot.shape == (N, 8, 32) and np.array_equal(r_rows, rows)
    assert np.allclose(rot[:, 0], feats, atol=1e-5)
    _, avg4 = extract_features(project, model=model, rotations=4, save=False)
    assert np.allclose(avg4, rot[:, :4].mean(axis=1), atol=1e-5)
    assert not np.allclose(rot[:, 1], rot[:, 0], atol=1e-3)   # the CNN is not rotation invariant


def test_tree_cuts_and_consistency_on_real_features(clustered):
    project, model, cm, ctx = clustered
    assert cm.tree.method == "direct" and cm.tree.n_leaves == N and cm.n_objects == N
    assert ctx.reports[-1][0] == 1.0 and cm.info["rotations"] == 8 and cm.copy_leaf.shape == (N, 7)
    assert cm.layout.leaf_order.tolist() == leaves_list(cm.Z).tolist()
    # a global cut into 5 clusters
    cuts = cm.cuts_for(n_clusters=5)
    cut = cm.cut(cuts)
    labels = cm.labels(cut)
    assert cut.n_clusters == 5 and np.bincount(labels).sum() == N and np.bincount(labels).min() >= 1
    # a branch cut inside the biggest cluster splits it and leaves the others alone
    big = int(np.argmax(cut.sizes))
    node = int(cut.cluster_nodes[big])
    finer = cm.cut({**cuts, node: float(cm.layout.node_y[node]) * 0.6})
    lab2 = cm.labels(finer)
    assert finer.n_clusters > 5
    outside = labels != big
    for c in np.unique(labels[outside]):
        assert len(np.unique(lab2[labels == c])) == 1            # untouched clusters stay whole
    assert len(np.unique(lab2[labels == big])) == finer.n_clusters - 4
    # rotation consistency: real copies land home less often than identical copies, more often than random ones
    real = cm.consistency(cut)
    feats = load_features(project)[1]
    X = fit_pca(feats, 32).transform(feats)
    same = nearest_leaves(X, np.repeat(X[:, None], 7, axis=1))
    ident = rotation_consistency(cut.labels, cut.labels[same])
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(N, 7, X.shape[1])) * X.std(axis=0)
    rand = rotation_consistency(cut.labels, cut.labels[nearest_leaves(X, noise)])
    assert ident.score == 1.0 and ident.strict == 1.0
    assert rand.score < real.score < 1.0
    assert real.per_cluster.shape == (5,) and np.all((real.per_cluster >= 0) & (real.per_cluster <= 1))


def test_suggested_cuts_are_rotation_consistent(clustered):
    project, model, cm, ctx = clustered
    sug = cm.suggest(threshold=0.7, min_size=5)
    cut = cm.cut(sug.cuts)
    assert cut.n_clusters == len(sug.clusters) >= 2
    assert set(cut.cluster_nodes.tolist()) == set(sug.clusters)
    sizes = np.bincount(cm.labels(cut))
    cons = cm.consistency(cut)
    big = sizes >= 5
    assert big.sum() >= 2 and np.all(cons.per_cluster[big] >= 0.7 - 1e-9)
    # clusters under min_size are outlier groups split off a consistent sibling, never split further
    small_nodes = set(cut.cluster_nodes[~big].tolist())
    for d in sug.decisions:
        if set(d["children"]) & small_nodes:
            assert d["split"] and d["reason"] == "outliers split off"
    assert all(d["node"] not in small_nodes for d in sug.decisions)
    strict = cm.suggest(threshold=0.99, min_size=5)
    assert len(strict.clusters) <= len(sug.clusters)


def test_saved_clusters_are_read_by_vetting_and_journalled(clustered):
    from galdesk.project.results import load_clusters

    project, model, cm, ctx = clustered
    n0 = project.journal.count("cuts")
    cuts = cm.cuts_for(n_clusters=4)
    out = apply_cuts(project, cm, cuts, author="tester", source="test")
    rows, labels, version = load_clusters(project)
    assert np.array_equal(rows, cm.rows) and np.bincount(labels).tolist() == out["sizes"]
    assert version == out["cut_version"] == n0 + 1 and out["n_clusters"] == 4
    stored_cuts, attrs = load_cuts(project)
    assert stored_cuts == {cm.root: cuts[cm.root]} and attrs["linkage_id"] == cm.linkage_id
    rec = project.journal.records("cuts")[-1]
    assert rec.author == "tester" and rec.payload["cut_version"] == version and rec.key == cm.linkage_id
    assert rec.payload["sizes"] == out["sizes"]
    # a branch cut is a new version; the old record stays
    node = int(cm.cut(cuts).cluster_nodes[0])
    out2 = apply_cuts(project, cm, {**cuts, node: 0.0})
    assert out2["cut_version"] == version + 1 and project.journal.count("cuts") == n0 + 2
    assert load_clusters(project)[2] == version + 1
    # the stored tree comes back whole and cuts the same
    again = load_linkage(project)
    assert again.linkage_id == cm.linkage_id and np.array_equal(again.copy_leaf, cm.copy_leaf)
    assert np.array_equal(again.labels(again.cut(cuts)), cm.labels(cm.cut(cuts)))


def test_micro_cluster_path_and_cancel(gz1_project):
    project, model = gz1_project
    cm = cluster_project(project, model=model, rotations=4, max_direct=50, n_micro=30, save=False)
    assert cm.tree.method == "micro" and cm.tree.n_leaves == N and cm.tree.micro_of.max() < 30
    cut = cm.cut(cm.cuts_for(n_clusters=3))
    assert np.bincount(cm.labels(cut)).sum() == N and cm.consistency(cut).per_object.shape == (N,)
    with pytest.raises(Cancelled):
        cluster_project(project, model=model, rotations=4, ctx=RecordingContext(cancel_after=2), save=False)


def test_cluster_command(clustered, capsys):
    project, model, cm, ctx = clustered
    parser = argparse.ArgumentParser(prog="galdesk")
    sub = parser.add_subparsers(dest="command")
    add_parsers(sub)
    args = parser.parse_args(["cluster", str(project.path), "--model", model, "--n-clusters", "6", "--reuse",
                              "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_clusters"] == 6 and sum(out["sizes"]) == N and out["method"] == "direct"
    args = parser.parse_args(["cluster", str(project.path), "--model", model, "--reuse", "--suggest",
                              "--threshold", "0.7", "--min-size", "5"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "rotation consistency" in text and "clusters" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["cluster", "p", "--n-clusters", "3", "--distance", "1.0"])
    # the micro path from the command line (last: it replaces the stored tree): galaxies stay the leaves
    args = parser.parse_args(["cluster", str(project.path), "--model", model, "--max-direct", "50", "--micro",
                              "30", "--n-clusters", "4"])
    assert args.func(args) == 0
    assert "micro-clusters, exact inside each; galaxies as leaves" in capsys.readouterr().out
    stored = load_linkage(project)
    assert stored.tree.method == "micro" and stored.tree.n_leaves == N and stored.tree.micro_of.max() < 30
    assert stored.tree.info["path"] == "max_direct=50"
