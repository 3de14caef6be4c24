"""Cluster profiles (galdesk.cluster.profiles): typical members first, medoid, median measures against all, class
make-up, and which catalogue columns count as classes."""

from __future__ import annotations

import numpy as np
from astropy.table import MaskedColumn, Table

from galdesk.cluster.profiles import categorical_columns, cluster_profile


def test_typical_members_first_measures_and_makeup():
    rng = np.random.default_rng(0)
    n = 60
    labels = np.repeat([0, 1, 2], 20)
    rows = np.arange(100, 100 + n)
    names = ["concentration", "log_r50_px", "axis_ratio", "asymmetry", "other"]
    feats = rng.normal(size=(n, 5))
    feats[labels == 1, 0] += 3.0                    # cluster 1: more concentrated
    centre = feats[labels == 1].mean(axis=0)
    feats[25] = centre                              # one member sits at its cluster's centre
    cls = np.where(labels == 1, "elliptical", "spiral")
    cls[21] = "spiral"
    prof = cluster_profile(labels, rows, 1, features=feats[::-1], feature_rows=rows[::-1], names=names,
                           columns={"gz1_label": cls})
    assert prof.size == 20 and prof.medoid == 125 and prof.order[0] == 125
    assert sorted(prof.order.tolist()) == rows[labels == 1].tolist()
    conc, conc_all = prof.measures["concentration"]
    assert conc > conc_all + 1.5
    r50, _ = prof.measures["r50 [px]"]
    assert r50 == 10 ** np.median(feats[labels == 1, 1])
    assert prof.makeup["gz1_label"] == [("elliptical", 19), ("spiral", 1)]
    text = prof.summary()
    assert "concentration" in text and "elliptical 95%" in text


def test_without_features_or_names():
    labels = np.array([0, 0, 1])
    prof = cluster_profile(labels, np.array([5, 6, 7]), 0)
    assert prof.medoid is None and prof.order.tolist() == [5, 6] and not prof.measures
    # features of only some galaxies: those without come last
    prof = cluster_profile(labels, np.array([5, 6, 7]), 0, features=np.ones((1, 3)), feature_rows=np.array([6]))
    assert prof.order.tolist() == [6, 5] and prof.medoid == 6 and not prof.measures


def test_categorical_columns():
    t = Table({"id": [f"g{i}" for i in range(6)], "gz1_label": ["E", "S", "E", "S", "E", "S"],
               "gz1_class": [0, 1, 0, 1, 0, 3], "z": np.linspace(0, 1, 6), "one": ["a"] * 6,
               "masked": MaskedColumn(["x", "y", "x", "", "y", "x"], mask=[0, 0, 0, 1, 0, 0])})
    cols = categorical_columns(t, np.arange(6), exclude=("kind",))
    assert set(cols) == {"gz1_label", "gz1_class", "masked"}      # not ids (unique), z (floats), one (one value)
    assert cols["masked"][3] == ""


def test_morphology_medians_replace_the_descriptor_measures():
    labels = np.repeat([0, 1], 4)
    rows = np.arange(8)
    gini = np.array([0.40, 0.41, np.nan, 0.42, 0.55, 0.56, 0.57, np.nan])     # NaN: statmorph could not measure
    names = ["concentration", "log_r50_px", "axis_ratio", "asymmetry"]
    prof = cluster_profile(labels, rows, 1, features=np.ones((8, 4)), feature_rows=rows, names=names,
                           morphology={"morph_gini": gini, "morph_q": np.linspace(0.3, 1.0, 8)})
    assert set(prof.measures) == {"Gini", "q"}                      # the descriptors' measures are not shown too
    assert prof.measures["Gini"] == (0.56, float(np.nanmedian(gini)))
    assert "Gini 0.56 (all 0.48)" in prof.summary()
    none = cluster_profile(labels, rows, 1, morphology={"morph_gini": np.full(8, np.nan)})
    assert none.measures == {}
