"""The project store: round trips, atomic writes, catalogue joins, schema versions."""

import json
import os

import numpy as np
import pytest
from astropy.table import Table

from galdesk.fsutil import atomic_write
from galdesk.io.model import ImageData, SpectrumData
from galdesk.project import SCHEMA_VERSION, Project, ProjectError
from galdesk.services.info import project_info


def _img(oid, bands=3, shape=(100, 120), seed=0):
    rng = np.random.default_rng(seed)
    return ImageData(rng.random((bands, *shape), dtype=np.float32), ["g", "r", "i"][:bands] if bands <= 3 else
                     [f"b{i}" for i in range(bands)], f"/data/{oid}.fits", oid, meta={"ra": 150.1, "dec": 2.2})


def _spec(oid, n=500, z=0.05):
    w = np.linspace(3800, 9200, n)
    rng = np.random.default_rng(1)
    mask = np.zeros(n, bool)
    mask[10:20] = True
    return SpectrumData(w, rng.normal(5, 1, n), np.full(n, 4.0), mask, f"/data/{oid}.fits", oid, redshift=z,
                        spec_class="GALAXY", subclass="AGN", flux_unit="1e-17 erg / (s cm2 Angstrom)",
                        resolution_kms=np.full(n, 69.0))


def test_create_add_reopen_round_trip(tmp_path):
    proj = Project.create(tmp_path / "p", working_size=32)
    assert proj.path.name == "p.galdesk"
    imgs = [_img("a"), _img("b", bands=1, shape=(46, 70)), _img("c")]
    specs = [_spec("s1"), _spec("s2", n=300, z=0.1)]
    assert proj.add(imgs, specs) == (3, 2)
    again = Project.open(tmp_path / "p.galdesk")
    assert again.n_images == 3 and again.n_spectra == 2
    assert again.stack("c3").shape == (2, 3, 32, 32)
    assert again.stack("c1").shape == (1, 1, 32, 32)
    # the area-averaged stack keeps the mean level of the cut-out
    assert again.thumbnail_planes(0).mean() == pytest.approx(imgs[0].pixels.mean(), rel=0.02)
    s = again.spectrum(again.find("s2", "spectrum"))
    assert len(s) == 300 and s.redshift == pytest.approx(0.1)
    assert np.allclose(s.wavelength, specs[1].wavelength)
    assert np.array_equal(s.mask, specs[1].mask)
    assert s.spec_class == "GALAXY" and s.subclass == "AGN"
    assert s.flux_unit.startswith("1e-17")
    assert np.allclose(s.resolution_kms, 69.0)
    assert again.objects["ra"][0] == pytest.approx(150.1)


def test_extending_keeps_old_objects_and_makes_ids_unique(tmp_path):
    proj = Project.create(tmp_path / "p")
    proj.add([_img("a")], [_spec("s")])
    proj.add([_img("a", seed=5)], [_spec("t")])
    ids = list(Project.open(proj.path).objects["id"])
    assert ids == ["a", "s", "a#2", "t"]
    assert proj.stack("c3").shape[0] == 2
    assert proj.spectrum(3).id == "t"


def test_catalog_join_keeps_units_and_masks_missing(tmp_path):
    proj = Project.create(tmp_path / "p")
    proj.add([_img("a"), _img("b")], [])
    cat = Table({"id": ["b", "zzz"], "petroMag_r": [17.5, 18.0], "label": ["spiral", "elliptical"]})
    cat["petroMag_r"].unit = "mag"
    assert proj.join_catalog(cat) == 1
    objs = Project.open(proj.path).objects
    assert str(objs["petroMag_r"].unit) == "mag"
    assert objs["label"][1] == "spiral"
    assert np.ma.is_masked(objs["label"][0])


def test_results_round_trip(tmp_path):
    proj = Project.create(tmp_path / "p")
    proj.save_result("predictions", {"prob": np.eye(2), "names": np.array(["e", "s"])}, {"model_hash": "abc"})
    arrays, attrs = proj.load_result("predictions")
    assert np.array_equal(arrays["prob"], np.eye(2)) and list(arrays["names"]) == ["e", "s"]
    assert attrs == {"model_hash": "abc"}
    assert proj.load_result("nothing") is None
    assert proj.results() == ["predictions"]


def test_display_settings_persist(tmp_path):
    proj = Project.create(tmp_path / "p")
    proj.set_display(stretch="log", cmap="viridis")
    assert Project.open(proj.path).display["stretch"] == "log"


def test_refuses_newer_schema_and_non_projects(tmp_path):
    proj = Project.create(tmp_path / "p")
    mf = json.loads((proj.path / "manifest.json").read_text())
    mf["schema_version"] = SCHEMA_VERSION + 1
    (proj.path / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(ProjectError, match="newer"):
        Project.open(proj.path)
    with pytest.raises(ProjectError, match="not a galdesk project"):
        Project.open(tmp_path)
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "p")


def test_migrates_version_0_manifest(tmp_path):
    d = tmp_path / "old.galdesk"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"name": "old"}))
    proj = Project.open(d)
    assert proj.manifest["schema_version"] == SCHEMA_VERSION and proj.working_size == 64
    assert proj.n_images == 0


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def bad(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, bad)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_journal_survives_reopen(tmp_path):
    proj = Project.create(tmp_path / "p")
    rec = proj.journal.append("decision", "a", {"label": "spiral"}, author="vera")
    proj.close()
    again = Project.open(proj.path)
    latest = again.journal.latest("decision")
    assert latest["a"].payload == {"label": "spiral"} and latest["a"].seq == rec.seq
    assert project_info(again)["decisions"] == 1


def test_catalog_positions_fill_missing_but_never_override_file_values(tmp_path):
    proj = Project.create(tmp_path / "p")
    img = _img("a")
    img.meta = {}
    proj.add([img], [_spec("s", z=0.05)])
    cat = Table({"id": ["a", "s"], "RA": [10.5, 20.0], "redshift": [0.3, 0.9]})
    proj.join_catalog(cat)
    objs = Project.open(proj.path).objects
    assert objs["ra"][0] == pytest.approx(10.5) and objs["z"][0] == pytest.approx(0.3)
    assert objs["z"][1] == pytest.approx(0.05)  # the spectrum's own redshift wins
    assert "RA" not in objs.colnames and "cat_ra" not in objs.colnames
