"""The label-free invariance of the shape descriptors (galdesk.cluster.invariance): it keeps the directions that
augmentations leave alone, round-trips through its files and refuses tampered ones, the bundled one says what it
saw, and on the 731 held-out Galaxy Zoo galaxies (never seen by it or by gz1-binary) ``galdesk cluster
--unsupervised --suggest`` reaches the issue's bar."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from galdesk.cluster.descriptors import DESCRIPTOR_VERSION, descriptor_names
from galdesk.cluster.invariance import (
    MIN_GALAXIES,
    augment_batch,
    bundled_invariance,
    fit_invariance,
    learn_invariance,
    load_invariance,
    save_invariance,
)


def _views(n=400, v=6, seed=0):
    """Descriptors of ``n`` galaxies, 3 columns: column 0 separates the galaxies and barely moves between copies,
    column 1 separates them as much but is mostly copy-to-copy noise, column 2 is pure noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n)
    nuisance = rng.normal(0, 1, n)
    views = np.stack([np.stack([signal + rng.normal(0, 0.1, n), 0.3 * nuisance + rng.normal(0, 1.0, n),
                                rng.normal(0, 1, n)], axis=1) for _ in range(v)], axis=1)
    return views[:, 0], views


def test_the_first_direction_is_the_one_augmentations_leave_alone():
    base, views = _views()
    proj = fit_invariance(base, views, n_components=2, reg=0.01)
    first = proj.vectors[:, 0] * proj.scale ** -1          # back in the input's units
    assert abs(first[0]) / np.linalg.norm(first) > 0.99, proj.vectors
    assert proj.eigenvalues[0] > 10 * proj.eigenvalues[1]
    # PCA on the same numbers would not prefer column 0 (all three have about the same variance)
    assert np.ptp(base.std(axis=0)) < 0.5
    z = proj.transform(base)
    assert z.shape == (base.shape[0], 2) and z.dtype == np.float32


def test_fit_needs_copies_and_galaxies():
    base, views = _views(n=10)
    with pytest.raises(ValueError, match="views"):
        fit_invariance(base, views[:, :1])
    views[3:, 0, 0] = np.nan                         # rows with NaN are left out: 3 galaxies remain
    proj = fit_invariance(base, views)
    assert proj.card["n_galaxies"] == 3
    views[:, 0, 0] = np.nan
    with pytest.raises(ValueError, match="at least 3"):
        fit_invariance(base, views)


def test_augmented_copies_keep_the_galaxy_and_the_flux():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] - 31.5
    gal = np.exp(-np.hypot(xx / 8.0, yy / 3.0))[None].repeat(3, axis=0) * 100 + 10
    gal = gal + rng.normal(0, 1, gal.shape)
    stack = np.stack([gal, gal]).astype(np.float32)
    a = augment_batch(stack, np.random.default_rng(1))
    b = augment_batch(stack, np.random.default_rng(1))
    assert a.shape == stack.shape and np.array_equal(a, b)            # the generator decides everything
    assert not np.allclose(a[0], a[1])                                 # each cut-out its own augmentation
    assert abs(a.sum() / stack.sum() - 1) < 0.1                        # zoom 0.85-1.15 of a galaxy on a sky


def test_files_round_trip_and_tampering_is_refused(tmp_path):
    base, views = _views()
    proj = fit_invariance(base, views, n_components=2)
    proj.card.update(descriptor_version=DESCRIPTOR_VERSION, names=["a", "b", "c"])
    card = save_invariance(tmp_path / "inv", proj, {"id": "mine"})
    assert (tmp_path / "inv.safetensors").is_file() and card["sha256"] and card["id"] == "mine"
    back = load_invariance(tmp_path / "inv.safetensors")
    assert np.allclose(back.transform(base), proj.transform(base)) and back.fingerprint == proj.fingerprint
    assert not back.fits(3)                                            # names are not the 3-band descriptors
    raw = bytearray((tmp_path / "inv.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (tmp_path / "inv.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="inv.safetensors.*sha256"):
        load_invariance(tmp_path / "inv.safetensors")
    (tmp_path / "inv.json").unlink()
    with pytest.raises(ValueError, match="inv.safetensors"):
        load_invariance(tmp_path / "inv.safetensors")


def test_the_bundled_invariance_says_what_it_saw():
    proj = bundled_invariance()
    assert proj is not None, "resources/label_free/gz1-shape-invariance.safetensors is missing"
    assert proj.fits(3) and not proj.fits(1) and proj.names == descriptor_names(3)
    card = proj.card
    assert card["labels_read"] is False and card["data"]["labels_read"] is False
    assert "split.ids.test" in card["data"]["excluded"] and card["n_galaxies"] > 4000
    assert card["n_components"] == proj.n_components == 16 and card["reproduce"].startswith("python scripts/")


def test_learning_on_a_stack_reports_progress_and_cancels():
    from galdesk.tasks import Cancelled, TaskContext

    class Ctx(TaskContext):
        def __init__(self):
            super().__init__()
            self.seen = []

        def report(self, fraction, message, eta):
            self.seen.append(fraction)

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] - 15.5
    stack = np.stack([np.exp(-np.hypot(xx / rng.uniform(2, 6), yy / rng.uniform(2, 6)))[None].repeat(3, 0) * 100
                      + rng.normal(0, 1, (3, 32, 32)) for _ in range(40)]).astype(np.float32)
    ctx = Ctx()
    proj = learn_invariance(stack, n_views=3, sample=30, batch=16, ctx=ctx)
    assert proj.card["n_galaxies"] == 30 and proj.card["labels_read"] is False and ctx.seen[-1] == 1.0
    ctx.cancel()
    with pytest.raises(Cancelled):
        learn_invariance(stack, n_views=3, ctx=ctx)


def test_too_few_galaxies_fall_back_or_refuse(tmp_path):
    """A project too small to learn from: 'descriptors' on 1-band cut-outs (no bundled invariance for them) falls
    back to PCA and says so; 'descriptors:project' refuses with the reason."""
    from astropy.io import fits

    from galdesk.cluster.pipeline import cluster_project
    from galdesk.services.ingest import ingest

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] - 23.5
    for i in range(12):
        img = np.exp(-np.hypot(xx / rng.uniform(2, 6), yy / rng.uniform(2, 6))) * 100 + rng.normal(0, 1, (48, 48))
        fits.writeto(tmp_path / f"g{i}.fits", img.astype(np.float32))
    ingest([tmp_path], tmp_path / "p", workers=1)
    cm = cluster_project(tmp_path / "p.galdesk", model="descriptors", save=False)
    assert cm.info["projection"].startswith("standardisation + PCA") and str(MIN_GALAXIES) in cm.info["projection"]
    assert cm.info["projection_kind"] == "pca"
    assert "no bundled invariance for 1-band" in cm.info["projection"]
    with pytest.raises(ValueError, match=f"at least {MIN_GALAXIES} galaxies") as err:
        cluster_project(tmp_path / "p.galdesk", model="descriptors:project", save=False)
    assert "'descriptors:pca'" in str(err.value) and "bundled" not in str(err.value)   # none for 1 band


def test_held_out_galaxy_zoo_reaches_the_bar(shared_data, tmp_path, capsys):
    """The issue's measure: gz1-binary's 731 test-split galaxies (neither the classifier nor the invariance saw
    them), ``galdesk cluster --unsupervised --suggest``: 10-60 clusters, rotation consistency >= 0.8 and, each
    cluster mapped to its majority label, two-group accuracy >= 0.82 (measured 0.829 at 50 clusters); the same
    descriptors with standardisation + PCA give 0.803, and the invariance must beat them."""
    from galdesk.cli import main
    from galdesk.ml.weights import bundled_dir
    from galdesk.project import Project
    from galdesk.project.results import load_clusters
    from galdesk.services.ingest import ingest

    gz1 = shared_data / "images" / "gz1"
    test_ids = set(map(str, json.loads((bundled_dir() / "gz1-binary.json").read_text())["split"]["ids"]["test"]))
    with open(gz1 / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["objid"] in test_ids]
    assert len(rows) == 731
    cat = tmp_path / "test.csv"
    with open(cat, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["objid", "file"])                                      # no labels reach the project
        w.writerows([r["objid"], str(gz1 / r["file"])] for r in rows)
    ingest([], tmp_path / "held", catalog=cat, workers=1)
    elliptical = {r["objid"]: r["gz1_class"] == "0" for r in rows}

    def run(*extra):
        assert main(["cluster", str(tmp_path / "held.galdesk"), "--suggest", "--json", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        project = Project.open(tmp_path / "held.galdesk")
        try:
            rows_, labels, _ = load_clusters(project)
            ids = np.asarray(project.objects["objid"]).astype(str)[rows_]
        finally:
            project.close()
        y = np.array([elliptical[i] for i in ids])
        right = sum(max(y[labels == c].sum(), (~y[labels == c]).sum()) for c in np.unique(labels))
        return out, right / y.size

    out, acc = run("--unsupervised")
    assert out["info"]["projection"] == "gz1-shape-invariance (bundled, learned without labels on 4257 galaxies)"
    assert out["info"]["projection_kind"] == "gz1-shape-invariance"
    assert out["suggestion"]["stopped_at_max_clusters"] is (out["n_clusters"] == 50)
    assert 10 <= out["n_clusters"] <= 60 and out["consistency"] >= 0.8
    assert acc >= 0.82, acc
    _, acc_pca = run("--model", "descriptors:pca")
    assert acc >= acc_pca + 0.01, (acc, acc_pca)
    # the stored tree is the PCA one now: --reuse re-cuts it, and says so when another feature set was asked for
    assert main(["cluster", str(tmp_path / "held.galdesk"), "--unsupervised", "--reuse", "--max-clusters", "20"]) == 0
    text = capsys.readouterr()
    assert "made with 'descriptors:pca', not 'descriptors'" in text.err
    assert "20 clusters" in text.out
    # the cap, not the tree, set the number of clusters: the text output says so
    assert main(["cluster", str(tmp_path / "held.galdesk"), "--unsupervised", "--max-clusters", "12"]) == 0
    assert "stopped at --max-clusters 12" in capsys.readouterr().out
    assert main(["cluster", str(tmp_path / "held.galdesk"), "--unsupervised", "--train-vqvae"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_one_band_cut_outs_learn_their_own(tmp_path):
    """No bundled invariance takes 1-band descriptors: with enough galaxies 'descriptors' learns one on the project
    (and says so), and the copies of a galaxy then land next to it."""
    from astropy.io import fits

    from galdesk.cluster.pipeline import cluster_project
    from galdesk.services.ingest import ingest

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:48, 0:48] - 23.5
    n = MIN_GALAXIES + 20
    (tmp_path / "fits").mkdir()
    for i in range(n):
        q, r0, ang = rng.uniform(0.3, 1.0), rng.uniform(2.0, 6.0), rng.uniform(0, np.pi)
        x, y = np.cos(ang) * xx + np.sin(ang) * yy, -np.sin(ang) * xx + np.cos(ang) * yy
        img = 100 * np.exp(-np.hypot(x, y / q) / r0) + rng.normal(0, 1, (48, 48))
        fits.writeto(tmp_path / "fits" / f"g{i:03d}.fits", img.astype(np.float32))
    ingest([tmp_path / "fits"], tmp_path / "p", workers=1)
    cm = cluster_project(tmp_path / "p.galdesk", model="descriptors", save=False)
    how = cm.info["projection"]
    assert how.startswith("no bundled invariance for 1-band cut-outs; ") and f"this project's {n} galaxies" in how
    assert cm.info["n_components"] == 16 and cm.has_copies and cm.info["projection_kind"] == "project"
    cons = cm.consistency(cm.cut(cm.cuts_for(n_clusters=5)))
    assert cons.score >= 0.8
    # what the tab's "Compute features & cluster" runs: the first cuts are suggested, capped at one cluster per
    # 10 galaxies here, and the summary says whether the cap (not consistency) set their number
    from galdesk.cluster.pipeline import cluster_and_cut

    _, _, out = cluster_and_cut(tmp_path / "p.galdesk", model="descriptors")
    assert 2 <= out["n_clusters"] <= n // 10
    assert out["stopped_at_max_clusters"] is (out["n_clusters"] == n // 10)


def test_the_bundled_one_says_when_the_working_size_differs(tmp_path):
    """The bundled invariance was learned at 64 px; a 48-px project still uses it (the descriptors are in units of
    the galaxy's own size) and the tree's info says so."""
    from PIL import Image

    from galdesk.cluster.pipeline import cluster_project
    from galdesk.services.ingest import ingest

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:96, 0:96] - 47.5
    for i in range(12):
        img = 200 * np.exp(-np.hypot(xx / rng.uniform(4, 12), yy / rng.uniform(4, 12))) + rng.normal(8, 2, (96, 96))
        rgb = np.clip(np.stack([img, 0.8 * img, 0.6 * img], axis=-1), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(tmp_path / f"g{i}.png")
    ingest([tmp_path], tmp_path / "p", size=48, workers=1)
    cm = cluster_project(tmp_path / "p.galdesk", model="descriptors", save=False)
    assert cm.info["projection"].startswith("gz1-shape-invariance (bundled")
    assert "at 64 px; this project's cut-outs are 48 px" in cm.info["projection"]
