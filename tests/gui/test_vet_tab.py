"""Vet real galaxies by key presses, undo one, and check the journal (and the export)."""

import numpy as np
import pytest
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from galdesk.gui.app import make_app  # noqa: E402


@pytest.fixture
def vet_window(qtbot, shared_data, tmp_path):
    make_app()
    from galdesk.gui.main_window import MainWindow
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    jpegs = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:6]
    ingest(jpegs, tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    # a stored classification, as the Classify tab writes it: object 0 most ambiguous
    prob = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01], [0.3, 0.7]])
    proj.save_result("predictions", {"row": np.arange(6), "prob": prob, "pred": prob.argmax(1)},
                     {"class_names": ["elliptical", "spiral"], "model_id": "test", "model_hash": "abc123"})
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(tmp_path / "p.galdesk")
    tab = w.extra_tabs["Vet"]
    w.tabs.setCurrentWidget(tab)
    tab.vetter.setText("vera")
    tab.order.setCurrentIndex(tab.order.findData("ambiguous"))
    tab.start()
    yield w, tab, proj, jpegs
    w.close()


def test_keyboard_vetting_with_undo(qtbot, vet_window):
    w, tab, proj, jpegs = vet_window
    ids = [str(i) for i in proj.objects["id"]]
    assert tab.queue[0] == ids[0]  # p = 0.5/0.5 is the most ambiguous
    first = tab.current_id
    QTest.keyClick(tab, Qt.Key_2)                 # spiral
    second = tab.current_id
    assert second != first
    QTest.keyClick(tab, Qt.Key_A)                 # accept prediction
    third = tab.current_id
    QTest.keyClick(tab, Qt.Key_X)                 # reject
    QTest.keyClick(tab, Qt.Key_Z, Qt.ControlModifier)   # undo the reject
    assert tab.current_id == third                # back on the object whose decision was undone
    QTest.keyClick(tab, Qt.Key_1)                 # elliptical instead
    from galdesk.vetting import VetSession

    cur = VetSession(proj, vetter="vera").current()
    assert cur[first]["label"] == "spiral"
    assert cur[third]["label"] == "elliptical"
    pred_second = ["elliptical", "spiral"][int(np.argmax(
        [[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01], [0.3, 0.7]][ids.index(second)]))]
    assert cur[second]["label"] == pred_second
    kinds = [r.kind for r in proj.journal.records()]
    assert kinds.count("decision") == 4 and kinds.count("undo") == 1  # history kept, nothing deleted
    rec = proj.journal.records("decision")[0]
    assert rec.author == "vera" and rec.payload["context"]["model_hash"] == "abc123"
    assert rec.payload["context"]["stretch"] == tab.image_view.settings.stretch
    # the export sees exactly the effective decisions
    from galdesk.catalog.assemble import build_catalog

    table = build_catalog(proj, only="vetted")
    assert sorted(str(i) for i in table["id"]) == sorted([first, second, third])


def test_skip_moves_object_to_the_end_and_help_opens(qtbot, vet_window):
    w, tab, proj, _ = vet_window
    first = tab.current_id
    n = len(tab.queue)
    QTest.keyClick(tab, Qt.Key_Space)
    assert tab.current_id != first and tab.queue[-1] == first and len(tab.queue) == n + 1
    QTest.keyClick(tab, Qt.Key_F1)
    assert tab._help.isVisible() and "undo" in tab._help.text()
    tab._help.close()


def test_filters_restrict_the_queue(qtbot, vet_window):
    w, tab, proj, _ = vet_window
    tab.class_filter.setCurrentIndex(tab.class_filter.findData("spiral"))
    tab.start()
    # predicted spiral: rows 2 (0.8) and 5 (0.7); object 0 (0.5/0.5) predicts class 0
    ids = [str(i) for i in proj.objects["id"]]
    assert sorted(tab.queue) == sorted([ids[2], ids[5]])
    tab.class_filter.setCurrentIndex(0)
    tab.max_conf.setValue(0.65)
    tab.start()
    assert sorted(tab.queue) == sorted([ids[0], ids[3]])


def test_spectrum_card_shows_its_line_fit(qtbot, shared_data, tmp_path):
    from galdesk.gui.main_window import MainWindow
    from galdesk.lines.config import FitConfig
    from galdesk.lines.service import fit_project
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([shared_data / "spectra/sdss/spec-0332-52367-0639.fits"], tmp_path / "s", workers=1)
    proj = Project.open(tmp_path / "s.galdesk")
    fit_project(proj, FitConfig(complexes=("halpha",)), n_jobs=1)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.open_project(proj.path)
    tab = w.extra_tabs["Vet"]
    tab.vetter.setText("vera")
    tab.order.setCurrentIndex(tab.order.findData("random"))
    with qtbot.waitSignal(tab._fit_runner.done, timeout=60000):
        tab.start()
    assert tab.card.currentWidget() is tab.spectrum_plot
    assert len(tab.spectrum_plot._model_items) == 1   # the Hα+[NII] model over the spectrum
    fields = [tab.fields.item(r, 0).text() for r in range(tab.fields.rowCount())]
    assert "BPT class" in fields and "halpha broad" in fields
    tab.shutdown()
    w.close()


def test_edit_menu_undo_and_redo_from_another_tab(qtbot, vet_window):
    w, tab, proj, _ = vet_window
    first = tab.current_id
    QTest.keyClick(tab, Qt.Key_2)                 # spiral
    w.tabs.setCurrentIndex(0)                     # the Data tab: the menu still reaches the vetting session
    edit = [a.menu() for a in w.menuBar().actions() if a.text() == "&Edit"][0]
    undo, redo = edit.actions()[:2]
    assert undo.text().endswith("\tCtrl+Z") and undo.shortcut().isEmpty()    # the Vet tab keeps Ctrl+Z
    undo.trigger()
    assert w.tabs.currentWidget() is tab and tab.current_id == first
    from galdesk.vetting import VetSession

    assert first not in VetSession(proj, vetter="vera").current()
    redo.trigger()
    assert VetSession(proj, vetter="vera").current()[first]["label"] == "spiral"


def test_a_mixed_project_vets_each_kind_in_its_own_classes(qtbot, shared_data, tmp_path):
    """Cut-outs and a spectrum in one project: the number keys are the morphology classes on a galaxy and the
    spectral classes on a spectrum (they were elliptical/spiral for everything)."""
    make_app()
    from galdesk.gui.main_window import MainWindow
    from galdesk.services.ingest import ingest
    from galdesk.vetting.session import VetSession

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:2]
    ingest([*files, shared_data / "spectra/sdss/spec-0266-51602-0013.fits"], tmp_path / "m", workers=1)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(tmp_path / "m.galdesk")
    tab = w.extra_tabs["Vet"]
    tab.vetter.setText("vera")
    tab.start()
    seen = {}
    for _ in range(3):
        kind = tab._current_kind()
        first = tab.buttons_box.itemAt(0).widget().text()
        seen[kind] = first
        oid = tab.current_id
        tab.label_key(3)
        label = VetSession(w.state.project, vetter="vera").state(oid)["label"]
        assert label == ("Seyfert" if kind == "spectrum" else "other"), (kind, label)
    assert seen == {"image": "1  elliptical", "spectrum": "1  star-forming"}
    tab.shutdown()
    w.close()
