"""Vetting: label schema, decisions in the journal, undo/redo replay, queue orders, resume, agreement, CLI.

Projects are built from real data: Galaxy Zoo 1 JPEG cut-outs (labels from ``images/gz1/labels.csv``) and SDSS
spectra whose line fits come from the pipeline's own SPZLINE measurements. The classifier output is a stand-in
written in the exact layout the ML code stores (result ``"predictions"``).

``make_project`` here is also used by ``test_export.py`` and ``test_crash_safety.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from galdesk.cli.vetting import add_parsers as add_vet_parsers
from galdesk.cli.vetting import cmd_vet, cmd_vet_log
from galdesk.project import Project
from galdesk.vetting import REJECTED, LabelSchema, Replay, VetSession, agreement, build_queue, decisions

CLASSES = ["elliptical", "spiral", "other"]
SPECTRA = ["1237652899686318136", "1237658802572296399", "1237662637447184537", "1237680240907518081"]
MODEL_HASH = "sha256:" + "ab12" * 16


# ------------------------------------------------------------------------------------------------------------------
# building a small real project
# ------------------------------------------------------------------------------------------------------------------
def _read(path: Path):
    from galdesk.io.reading import read

    return read(path)[0]


def gz_rows(shared: Path, n_each: int = 10) -> list[dict]:
    """``n_each`` ellipticals and ``n_each`` spirals (GZ1 classes 1-3) from labels.csv, in file order."""
    with open(shared / "images/gz1/labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ell = [r for r in rows if r["gz1_class"] == "0"][:n_each]
    spi = [r for r in rows if r["gz1_class"] in ("1", "2", "3")][:n_each]
    out = []
    for a, b in zip(ell, spi):
        out += [a, b]
    return out


def spz_line_fit(spec) -> dict:
    """A line-fit payload (the layout the line fitter journals) from the SDSS pipeline's SPZLINE fits."""
    spz = spec.meta["spzline"]
    lines = []
    for r in spz:
        if not (float(r["LINEAREA_ERR"]) > 0):
            continue  # not fitted by the pipeline
        area, err = float(r["LINEAREA"]), float(r["LINEAREA_ERR"])
        lines.append({"name": str(r["LINENAME"]).strip(), "wave_vac": float(r["LINEWAVE"]), "component": "narrow",
                      "flux": area, "flux_err": err, "fwhm_kms": 2.3548 * float(r["LINESIGMA"]),
                      "fwhm_err": 2.3548 * float(r["LINESIGMA_ERR"]), "ew": float(r["LINEEW"]),
                      "snr": area / err})
    broad = "BROADLINE" in (spec.subclass or "")
    if broad:  # a broad Halpha component, as the narrow+broad model would add
        ha = next(ln for ln in lines if ln["name"] == "H_alpha")
        lines.append(dict(ha, component="broad", flux=3.0 * ha["flux"], fwhm_kms=3500.0, fwhm_err=120.0))
    bpt = {"AGN": "Seyfert", "STARFORMING": "star-forming"}.get((spec.subclass or "").split()[0], "")
    return {"source": spec.source, "z": spec.redshift, "lines": lines, "broad_needed": broad,
            "delta_bic": 250.0 if broad else -3.0, "bpt_class": bpt}


def make_project(dest: Path, shared: Path, n_each: int = 10, predictions: bool = True, clusters: bool = True,
                 line_fits: bool = True) -> Project:
    """20 GZ1 cut-outs + 4 SDSS spectra, GZ labels as a catalogue column, stand-in predictions and clusters."""
    from astropy.table import Table

    rows = gz_rows(shared, n_each)
    images = [_read(shared / "images/gz1" / r["file"]) for r in rows]
    spectra = [_read(shared / "spectra/sdss" / f"{s}.fits") for s in SPECTRA]
    cat = Table({"id": [r["objid"] for r in rows],
                 "gz_class": ["elliptical" if r["gz1_class"] == "0" else "spiral" for r in rows]})
    proj = Project.create(dest)
    proj.add(images=images, spectra=spectra, catalog=cat)
    img_rows = proj.image_rows()
    if predictions:
        rng = np.random.default_rng(42)
        truth = np.array([0 if r["gz1_class"] == "0" else 1 for r in rows])
        logits = rng.normal(0.0, 1.0, (len(img_rows), 3))
        logits[np.arange(len(truth)), truth] += 2.5
        logits[[3, 8], truth[[3, 8]]] -= 6.0  # two confident mistakes: "suspect" catalogue labels
        prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        top = np.sort(prob, 1)
        proj.save_result("predictions", {
            "row": img_rows, "prob": prob, "pred": prob.argmax(1),
            "entropy": -(prob * np.log(prob)).sum(1), "margin": top[:, -1] - top[:, -2],
        }, {"class_names": CLASSES, "model_id": "gz-cnn-test", "model_hash": MODEL_HASH, "device": "cpu"})
    if clusters:
        proj.save_result("clusters", {"row": img_rows, "label": (np.arange(len(img_rows)) % 2).astype(int)},
                         {"cut_version": 3})
    if line_fits:
        proj.journal.append_many([("line_fit", s.id, spz_line_fit(s)) for s in spectra], author="fitter")
    return proj


@pytest.fixture(scope="module")
def template(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "vet.galdesk"
    make_project(path, shared_data).close()
    return path


@pytest.fixture
def proj(template, tmp_path) -> Project:
    dest = tmp_path / "p.galdesk"
    shutil.copytree(template, dest)
    p = Project.open(dest)
    yield p
    p.close()


def image_ids(p: Project) -> list[str]:
    return [str(p.objects["id"][r]) for r in p.image_rows()]


# ------------------------------------------------------------------------------------------------------------------
# schema
# ------------------------------------------------------------------------------------------------------------------
def test_schema_defaults_and_storage(proj):
    s = LabelSchema.load(proj)
    assert s.classes == CLASSES and s.seq is None  # from the predictions' class names
    assert s.keys == {"1": "elliptical", "2": "spiral", "3": "other"}
    assert s.label_for_key("2") == "spiral"
    custom = LabelSchema(["E", "S0", "Sa", "Sb", "Sc", "Irr", "merger", "star", "artefact", "unknown"],
                         flags=["tidal", "ring"])
    assert len(custom.keys) == 9 and custom.key_for("unknown") is None
    rec = custom.save(proj, author="ann")
    again = LabelSchema.load(Project.open(proj.path))
    assert again.classes == custom.classes and again.flags == ["tidal", "ring"] and again.seq == rec.seq
    with pytest.raises(ValueError, match="reserved"):
        LabelSchema(["a", REJECTED])
    with pytest.raises(ValueError, match="duplicate"):
        LabelSchema(["a", "a"])
    with pytest.raises(ValueError, match="unknown label"):
        custom.check_label("spiral")


def test_schema_default_without_predictions(shared_data, tmp_path):
    """A project of cut-outs and spectra: galaxies in morphology classes, spectra in spectral classes, each kind on
    its own number keys; the CLI's number keys follow the object's kind; stored and read back."""
    from galdesk.cli import main
    from galdesk.vetting.schema import DEFAULT_SPECTRUM_CLASSES

    p = make_project(tmp_path / "np.galdesk", shared_data, n_each=2, predictions=False, clusters=False,
                     line_fits=False)
    schema = LabelSchema.load(p)
    assert schema.classes == ["elliptical", "spiral", "other"]
    assert schema.spectrum_classes == DEFAULT_SPECTRUM_CLASSES
    assert schema.classes_for("spectrum")[2] == "Seyfert" and schema.classes_for("image")[2] == "other"
    assert schema.check_label("LINER") == "LINER" and schema.check_label("spiral") == "spiral"
    with pytest.raises(ValueError, match="for spectra: star-forming"):
        schema.check_label("Sb")
    schema.save(p)
    assert LabelSchema.load(p).spectrum_classes == DEFAULT_SPECTRUM_CLASSES
    spec_id = str(p.objects["id"][int(p.spectrum_rows()[0])])
    img_id = str(p.objects["id"][int(p.image_rows()[0])])
    p.close()
    for oid, key, label in ((spec_id, "3", "Seyfert"), (img_id, "2", "spiral")):
        assert main(["vet", str(tmp_path / "np.galdesk"), "--id", oid, "--label", key, "--json"]) == 0
    p = Project.open(tmp_path / "np.galdesk")
    s = VetSession(p)
    assert s.state(spec_id)["label"] == "Seyfert" and s.state(img_id)["label"] == "spiral"
    p.close()


def test_a_project_of_spectra_only_is_vetted_in_spectral_classes(shared_data, tmp_path):
    from galdesk.services.ingest import ingest
    from galdesk.vetting.schema import DEFAULT_SPECTRUM_CLASSES

    files = sorted((shared_data / "spectra" / "sdss").glob("spec-*.fits"))[:2]
    ingest([str(f) for f in files], tmp_path / "s", workers=1)
    from galdesk.project import Project

    p = Project.open(tmp_path / "s.galdesk")
    try:
        assert p.n_spectra == 2 and p.n_images == 0
        assert LabelSchema.load(p).classes == DEFAULT_SPECTRUM_CLASSES
        assert "Seyfert" in DEFAULT_SPECTRUM_CLASSES and "elliptical" not in DEFAULT_SPECTRUM_CLASSES
    finally:
        p.close()


# ------------------------------------------------------------------------------------------------------------------
# decisions, context, undo/redo
# ------------------------------------------------------------------------------------------------------------------
def test_decision_records_hold_context(proj):
    ids = image_ids(proj)
    s = VetSession(proj, vetter="ann")
    rec = s.decide(ids[0], "spiral", note="clear arms", flags=["interesting"],
                   context={"stretch": "log", "limits": [0.5, 99.5]})
    assert rec.kind == "decision" and rec.author == "ann" and rec.key == ids[0]
    stored = proj.journal.get(rec.seq)
    ctx = stored.payload["context"]
    assert ctx["model_id"] == "gz-cnn-test" and ctx["model_hash"] == MODEL_HASH
    assert ctx["stretch"] == "log" and ctx["limits"] == [0.5, 99.5] and ctx["cut_version"] == 3
    assert stored.payload["pred_label"] in CLASSES and 0 < stored.payload["pred_prob"] <= 1
    assert stored.time.endswith("+00:00")
    # defaults come from the project display settings when the window does not say
    rec2 = s.skip(ids[1])
    assert proj.journal.get(rec2.seq).payload["context"]["stretch"] == proj.display["stretch"]
    cur = s.current()
    assert cur[ids[0]]["label"] == "spiral" and cur[ids[0]]["note"] == "clear arms"
    assert cur[ids[0]]["flags"] == ["interesting"] and ids[1] not in cur


def test_accept_reject_flag_note(proj):
    ids = image_ids(proj)
    s = VetSession(proj, vetter="ann")
    pred = s.prediction(ids[2])[0]
    s.accept(ids[2])
    s.reject(ids[3], note="satellite trail")
    s.flag(ids[2], "recheck")
    s.toggle_flag(ids[2], "artefact")
    s.toggle_flag(ids[2], "artefact")  # off again
    s.note(ids[2], "bar?")
    cur = s.current()
    assert cur[ids[2]]["label"] == pred and cur[ids[2]]["action"] == "accept"
    assert cur[ids[2]]["flags"] == ["recheck"] and cur[ids[2]]["note"] == "bar?"
    assert cur[ids[3]]["label"] == REJECTED and cur[ids[3]]["action"] == "reject"
    with pytest.raises(ValueError, match="unknown label"):
        s.decide(ids[4], "lenticular")
    with pytest.raises(ValueError, match="unknown flag"):
        s.flag(ids[4], "nope")
    with pytest.raises(KeyError, match="no object"):
        s.decide("no-such-object", "spiral")
    spec = SPECTRA[0]
    with pytest.raises(ValueError, match="no prediction"):
        s.accept(spec)


def test_undo_redo_append_and_replay(proj):
    ids = image_ids(proj)
    s = VetSession(proj, vetter="ann")
    s.decide(ids[0], "elliptical")
    s.decide(ids[0], "spiral")            # relabel
    r3 = s.decide(ids[1], "other")
    n_before = proj.journal.count()
    u1 = s.undo()                          # reverts ids[1]
    assert u1.kind == "undo" and u1.payload["target"] == r3.seq and u1.key == ids[1]
    assert ids[1] not in s.current()
    u2 = s.undo()                          # reverts the relabel: back to elliptical
    assert s.current()[ids[0]]["label"] == "elliptical"
    assert s.redo().payload["target"] == u2.payload["target"]
    assert s.current()[ids[0]]["label"] == "spiral"
    assert s.redo().payload["target"] == r3.seq
    assert s.current()[ids[1]]["label"] == "other"
    assert s.redo() is None and not s.can_redo
    # nothing was deleted: every action and every undo/redo is a record
    assert proj.journal.count() == n_before + 4
    # a new action ends the redo chain
    s.undo()
    s.decide(ids[2], "spiral")
    assert s.redo() is None
    # another vetter's undo does not touch ann's decisions
    bob = VetSession(proj, vetter="bob")
    assert bob.undo() is None
    bob.decide(ids[0], "other")
    bob.undo()
    assert s.current()[ids[0]]["label"] == "spiral"
    # a fresh replay from disk agrees with the live session
    assert Replay.from_journal(Project.open(proj.path).journal).effective("ann") == s.current(True)


def test_undo_of_flag_and_skip(proj):
    ids = image_ids(proj)
    s = VetSession(proj, vetter="ann")
    s.decide(ids[0], "spiral")
    s.flag(ids[0], "interesting")
    s.skip(ids[1])
    s.undo()
    assert not s.current(include_undecided=True).get(ids[1])  # the skip is gone
    s.undo()
    assert s.current()[ids[0]]["flags"] == []
    s.undo()
    assert s.current() == {}
    assert s.undo() is None


def test_resume_after_reopen(proj):
    ids = image_ids(proj)
    s = VetSession(proj, vetter="ann")
    q = s.queue("random", seed=7, kind="image")
    for oid in q[:5]:
        s.decide(oid, "elliptical")
    s.skip(q[5])
    proj.close()
    again = VetSession(Project.open(proj.path), vetter="ann")
    pos = again.resume_position()
    assert pos["order"] == "random" and pos["filters"] == {"seed": 7, "kind": "image"}
    assert pos["queue"] == q[6:] + [q[5]]  # the rest in the same order, the skipped one last
    assert pos["next_id"] == q[6] and pos["last_id"] == q[5] and pos["n_decided"] == 5
    assert len(ids) == 20


# ------------------------------------------------------------------------------------------------------------------
# queue
# ------------------------------------------------------------------------------------------------------------------
def test_queue_ambiguous_order_and_filters(proj):
    from galdesk.project.results import load_predictions

    preds = load_predictions(proj)
    ids = np.asarray(proj.objects["id"]).astype(str)
    q = build_queue(proj, "ambiguous")
    assert len(q) == 20 and set(q) == set(image_ids(proj))
    ent = {ids[r]: preds.entropy[i] for i, r in enumerate(preds.rows)}
    assert all(ent[a] >= ent[b] for a, b in zip(q, q[1:]))
    spirals = build_queue(proj, "ambiguous", classes=["spiral"])
    assert spirals and all(preds.label(list(preds.rows).index(proj.find(o))) == "spiral" for o in spirals)
    conf = build_queue(proj, "ambiguous", min_confidence=0.8)
    assert all(preds.confidence[list(preds.rows).index(proj.find(o))] >= 0.8 for o in conf)
    assert set(build_queue(proj, "ambiguous", clusters=[1])) <= set(ids[preds.rows[1::2]])
    with pytest.raises(ValueError, match="unknown class"):
        build_queue(proj, "ambiguous", classes=["lenticular"])
    with pytest.raises(ValueError, match="unknown queue order"):
        build_queue(proj, "weird")


def test_queue_suspect_finds_confident_disagreement(proj):
    rows = gz_rows(SHARED)
    q = build_queue(proj, "suspect")  # catalogue column guessed: gz_class
    assert set(q[:2]) == {rows[3]["objid"], rows[8]["objid"]}  # the two planted mistakes come first
    assert all(type(o) is str for o in q)
    assert build_queue(proj, "suspect", catalog_column="gz_class") == q


def test_queue_disagreement_broad_random(proj):
    from galdesk.project.results import load_predictions

    preds = load_predictions(proj)
    q = build_queue(proj, "disagreement")
    assert q
    labels = np.arange(len(preds.rows)) % 2
    for oid in q:
        i = list(preds.rows).index(proj.find(oid))
        members = labels == labels[i]
        majority = np.bincount(preds.pred[members]).argmax()
        assert preds.pred[i] != majority
    broad = build_queue(proj, "broad")
    assert broad == ["1237662637447184537", "1237680240907518081"]  # SDSS BROADLINE subclasses
    r1 = build_queue(proj, "random", seed=1)
    assert sorted(r1) == sorted(set(np.asarray(proj.objects["id"]).astype(str)))
    assert r1 == build_queue(proj, "random", seed=1) != build_queue(proj, "random", seed=2)
    assert build_queue(proj, "random", kind="spectrum", seed=0, limit=2) == build_queue(
        proj, "random", kind="spectrum", seed=0)[:2]


def test_queue_excludes_decided(proj):
    s = VetSession(proj, vetter="ann")
    q = build_queue(proj, "ambiguous")
    s.decide(q[0], "spiral")
    s.skip(q[1])
    q2 = build_queue(proj, "ambiguous", vetter="ann")
    assert q2[0] == q[2] and q2[-1] == q[1] and q[0] not in q2
    assert q[0] in build_queue(proj, "ambiguous", vetter="bob")  # bob has not seen it
    assert build_queue(proj, "ambiguous", exclude_decided=False) == q


# ------------------------------------------------------------------------------------------------------------------
# two vetters
# ------------------------------------------------------------------------------------------------------------------
def test_agreement_kappa_and_conflicts(proj):
    from sklearn.metrics import cohen_kappa_score

    ids = image_ids(proj)
    a = ["elliptical", "spiral"] * 5
    b = list(a)
    b[1], b[4], b[7] = "elliptical", "other", "elliptical"
    ann, bob = VetSession(proj, vetter="ann"), VetSession(proj, vetter="bob")
    for oid, la, lb in zip(ids, a, b):
        ann.decide(oid, la)
        bob.decide(oid, lb)
    ann.decide(ids[15], "spiral")  # only ann: not common
    res = agreement(proj, "ann", "bob")
    assert res["n_common"] == 10
    assert res["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    assert {c["id"] for c in res["conflicts"]} == {ids[1], ids[4], ids[7]}
    assert res["p_observed"] == pytest.approx(0.7)
    both = decisions(proj)
    assert both[ids[1]]["conflict"] and both[ids[1]]["n_vetters"] == 2 and not both[ids[0]]["conflict"]
    assert both[ids[1]]["vetter"] == "bob"  # the latest decision is reported
    assert decisions(proj, vetter="ann")[ids[1]]["label"] == "spiral"
    # undefined kappa (one label throughout) is None, not a crash
    same = agreement(proj, "ann", "ann")
    assert same["conflicts"] == [] and same["p_observed"] == 1.0
    none = agreement(proj, "ann", "nobody")
    assert none["n_common"] == 0 and none["kappa"] is None


# ------------------------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------------------------
def _parse(argv):
    p = argparse.ArgumentParser()
    add_vet_parsers(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


def test_cli_vet_and_log(proj, capsys):
    ids = image_ids(proj)
    path = str(proj.path)
    proj.close()
    assert cmd_vet(_parse(["vet", path, "--id", ids[0], "--label", "spiral", "--note", "arms",
                           "--vetter", "ann", "--json"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["record"]["kind"] == "decision" and out["current"]["label"] == "spiral"
    assert cmd_vet(_parse(["vet", path, "--id", ids[1], "--label", "1", "--vetter", "ann"])) == 0  # number key
    assert cmd_vet(_parse(["vet", path, "--id", ids[1], "--label", "accept", "--vetter", "bob"])) == 0
    assert cmd_vet(_parse(["vet", path, "--label", "undo", "--vetter", "ann"])) == 0
    capsys.readouterr()
    assert cmd_vet_log(_parse(["vet-log", path, "--json"])) == 0
    log = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in log["records"]] == ["decision", "decision", "decision", "undo"]
    assert set(log["current"]) == {ids[0], ids[1]} and log["vetters"] == ["ann", "bob"]
    assert log["agreement"][0]["n_common"] == 0
    # the same journal the window uses
    assert decisions(path, vetter="ann")[ids[0]]["label"] == "spiral"
    assert cmd_vet_log(_parse(["vet-log", path])) == 0
    assert "4 record(s)" in capsys.readouterr().out
    # errors: one line on stderr naming the project, exit 2
    assert cmd_vet(_parse(["vet", path, "--id", "nope", "--label", "spiral"])) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and path in err and "nope" in err
    assert cmd_vet(_parse(["vet", path, "--id", ids[2], "--label", "lenticular"])) == 2
    assert "unknown label" in capsys.readouterr().err
    assert cmd_vet(_parse(["vet", str(Path(path).parent / "missing.galdesk"), "--id", "x", "--label", "a"])) == 2
    assert "missing.galdesk" in capsys.readouterr().err
