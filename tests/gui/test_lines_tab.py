"""The Lines tab: a real SDSS spectrum is fitted live; dragging a fit-window edge reruns the fit (debounced, on the
worker) and the parameter table updates; a whole-spectrum fit is journaled and placed on the BPT diagrams."""

import numpy as np
import pytest

from galdesk.gui.app import make_app  # noqa: E402

QSO = "spectra/sdss/spec-0332-52367-0639.fits"


def _open_lines_tab(qtbot, project):
    """The main window on ``project`` with the Lines tab showing; closed (and its worker stopped) afterwards."""
    from galdesk.gui.main_window import MainWindow

    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(project)
    tab = w.extra_tabs["Lines"]
    w.tabs.setCurrentWidget(tab)
    yield w, tab
    tab.shutdown()
    w.close()


@pytest.fixture
def lines_window(qtbot, shared_data, tmp_path):
    from galdesk.services.ingest import ingest

    ingest([shared_data / QSO, shared_data / "spectra/sdss/spec-0295-51585-0596.fits"], tmp_path / "p", workers=1)
    yield from _open_lines_tab(qtbot, tmp_path / "p.galdesk")


def _show(qtbot, tab, i):
    """Select spectrum ``i`` and wait for its fit."""
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(tab.fitDone, timeout=60000):
        tab.load_row(int(tab.spectra.item(i).data(Qt.UserRole)))


def test_drag_window_edge_refits_and_updates_table(qtbot, lines_window):
    w, tab = lines_window
    assert tab.spectra.count() == 2
    _show(qtbot, tab, 0)
    assert tab.spec.id == "spec-0332-52367-0639"
    first = tab.fit
    assert first.complex_name == "halpha" and first.has_broad  # a quasar: broad Hα kept by the broad test
    assert tab.params.rowCount() == len(first.params)
    lo, hi = tab.region.getRegion()
    # drag the red edge inwards by 40 Å, as a user would: the fit reruns after the debounce
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.region.setRegion((lo, hi - 40.0))
        tab.region.sigRegionChangeFinished.emit(tab.region)
    second = blocker.args[0]
    assert second is tab.fit and second is not first
    assert second.window[1] == pytest.approx(hi - 40.0)
    assert second.ndata < first.ndata  # fewer pixels in the narrower window
    # the table shows the new values
    row = [tab.params.item(r, 0).text() for r in range(tab.params.rowCount())].index("halpha_flux")
    assert float(tab.params.item(row, 1).text()) == pytest.approx(second.params["halpha_flux"].value, rel=1e-4)
    assert "χ²ν" in tab.stats.text()


def test_fix_a_parameter_then_refit(qtbot, lines_window):
    w, tab = lines_window
    _show(qtbot, tab, 0)
    names = [tab.params.item(r, 0).text() for r in range(tab.params.rowCount())]
    r = names.index("narrow_sigma")
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.params.item(r, 1).setText("300")
        tab.params.item(r, 3).setCheckState(Qt.Unchecked)   # fix it
    cf = blocker.args[0]
    assert cf.params["narrow_sigma"].value == pytest.approx(300.0)
    assert not cf.params["narrow_sigma"].vary
    # a legend (one entry per kind of curve, not per line) and the flux unit on the axis
    names = [label.text for _, label in tab.fitplot.legend.items]
    assert {"data", "model", "continuum", "narrow"} <= set(names) and len(names) == len(set(names))
    assert "erg" in tab.plot.getAxis("left").labelText


def test_fit_spectrum_is_journaled_and_on_the_bpt(qtbot, lines_window):
    w, tab = lines_window
    _show(qtbot, tab, 1)   # the Seyfert 2 of the GELATO paper
    with qtbot.waitSignal(tab.spectrumFitted, timeout=120000) as blocker:
        tab.fit_spectrum()
    d = blocker.args[0]
    rec = w.state.project.journal.latest("line_fit")["spec-0295-51585-0596"]
    assert rec.payload["bpt_class"] == d["bpt_class"]
    x, y = tab.bpt.current[0].getData()
    assert x[0] == pytest.approx(d["bpt"]["log_n2ha"]) and y[0] == pytest.approx(d["bpt"]["log_o3hb"])
    # the demarcations are named, the regions labelled, and a larger window follows the same fits
    names = [label.text for _, label in tab.bpt.plots[0].legend.items]
    assert names == ["Kauffmann+03", "Kewley+01", "Schawinski+07"]
    texts = [it.toPlainText() for it in tab.bpt.plots[0].items if hasattr(it, "toPlainText")]
    assert {"star-forming", "composite", "Seyfert", "LINER"} <= set(texts)
    big = tab.bpt.open_window()
    assert big.current[0].getData()[0][0] == pytest.approx(x[0])
    tab.bpt.set_current(None)
    assert len(big.current[0].getData()[0]) == 0
    tab.bpt.set_current(d["bpt"])
    big.close()
    assert np.isfinite(x[0])
    # its broad Hα (GELATO finds it too) gives a virial mass, journaled and shown under the fit
    assert d["broad_needed"] and rec.payload["bh_mass"]["log_mbh_halpha"] == d["bh_mass"]["log_mbh_halpha"]
    assert f"Hα {d['bh_mass']['log_mbh_halpha']:.2f}" in tab.stats.text()


def test_galaxy_on_its_stellar_continuum_and_back_to_local(qtbot, lines_window):
    """A galaxy's fit uses the stellar-population continuum (drawn, summarised); choosing "local" refits without it."""
    w, tab = lines_window
    _show(qtbot, tab, 1)   # spec-0295-51585-0596, class GALAXY
    cf = tab.fit
    from PySide6.QtCore import Qt

    # the continuum model's scale (parameter stellar_scale) is shown as continuum_scale
    shown = {tab.params.item(r, 0).text(): tab.params.item(r, 0).data(Qt.UserRole)
             for r in range(tab.params.rowCount())}
    assert cf.layout.tidx >= 0 and shown["continuum_scale"] == "stellar_scale"
    x, y = tab.fitplot.comp_curves["stellar"].getData()
    assert x.size > 100 and np.all(np.isfinite(y)) and np.median(y) > 5   # the stellar model, in flux units
    assert "stellar continuum: σ*" in tab.stats.text()
    tab.continuum.setCurrentText("local")
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.fit_btn.click()
    local = blocker.args[0]
    assert local.layout.tidx < 0 and "stellar_scale" not in local.layout.names
    x, y = tab.fitplot.comp_curves["stellar"].getData()
    assert x is None or len(x) == 0   # the stale stellar curve is cleared


def test_power_law_continuum_choice(qtbot, lines_window):
    """"stellar + power law" refits the Seyfert 2 with an AGN power law among the templates and says how much light
    it carries."""
    w, tab = lines_window
    _show(qtbot, tab, 1)
    tab.continuum.setCurrentText("stellar + power law")
    cfg = tab.config()
    assert cfg.continuum == "stellar" and cfg.stellar_powerlaw
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.fit_btn.click()
    assert blocker.args[0].layout.tidx >= 0
    st = tab.spec.meta["stellar_fit"]
    assert st.powerlaw_fraction > 0.02
    assert "power law" in tab.stats.text()


def test_quasar_on_the_agn_continuum_shows_feii(qtbot, lines_window):
    """The quasar's Hβ is fitted on host + power law + Fe II ("auto"): the summary gives the Fe II width and R_Fe,
    and the dashed curve (continuum without Fe II) lies below the continuum where the Fe II 5018 blend is."""
    w, tab = lines_window
    tab.complex.setCurrentIndex(tab.complex.findData("hbeta"))
    _show(qtbot, tab, 0)   # spec-0332-52367-0639, class QSO
    if tab.fit.complex_name != "hbeta":
        with qtbot.waitSignal(tab.fitDone, timeout=60000):
            tab.fit_btn.click()
    assert tab.fit.complex_name == "hbeta" and tab.fit.layout.tidx >= 0
    assert tab.spec.meta["continuum_kind"] == "agn"
    text = tab.stats.text()
    assert "AGN continuum: Fe II FWHM" in text and "R_Fe" in text
    assert "[OIII] 5007 profile (core + wing): v10 " in text and " km/s" in text.split("W80 ")[1]
    x, y = tab.fitplot.comp_curves["feii"].getData()
    cont = tab.fit.model_curves(x)["continuum"]
    z = tab.spec.redshift
    near = np.abs(x / (1 + z) - 5020.0) < 15.0
    assert near.any() and np.all(y[near] < cont[near]) and np.all(np.isfinite(y))
    tab.continuum.setCurrentText("local")
    with qtbot.waitSignal(tab.fitDone, timeout=60000):
        tab.fit_btn.click()
    x, y = tab.fitplot.comp_curves["feii"].getData()
    assert x is None or len(x) == 0
    assert tab.config().continuum == "local"
    tab.continuum.setCurrentText("AGN: host + power law + Fe II")
    assert tab.config().continuum == "agn"
    n_all = tab.spec.meta["stellar_fit"].ndata
    # the quasar-catalogue windows: the pseudo-continuum is refitted on their pixels only
    tab.continuum.setCurrentText("AGN, quasar-catalogue windows")
    assert tab.config().agn_windows == "qso"
    with qtbot.waitSignal(tab.fitDone, timeout=60000):
        tab.fit_btn.click()
    assert tab.spec.meta["stellar_fit"].ndata < 0.7 * n_all


def test_sii_fit_shows_the_electron_density(qtbot, lines_window):
    w, tab = lines_window
    _show(qtbot, tab, 1)
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.complex.setCurrentIndex(tab.complex.findData("sii"))
        if tab.fit is None or tab.fit.complex_name != "sii":
            tab.fit_btn.click()
    assert blocker.args[0].complex_name == "sii"
    assert "[SII] 6717/6731 =" in tab.stats.text() and "cm⁻³" in tab.stats.text()


@pytest.fixture
def window_with_a_spectrum_without_z(qtbot, shared_data, tmp_path):
    """A project with a real SDSS galaxy (z from its file) and a text spectrum without a redshift: the emission
    lines of tests/desi_pair.py at z = 0.05, vacuum wavelengths."""
    import desi_pair as D

    from galdesk.services.ingest import ingest

    wave = np.arange(3800.0, 9000.0, 1.0)
    flux = D.galaxy_flux(wave, 0.05) + np.random.default_rng(5).normal(0, 0.3, wave.size)
    rows = "\n".join(f"{w:.1f} {f:.4f} 0.3" for w, f in zip(wave, flux))
    (tmp_path / "noz.txt").write_text(f"# wavelength flux error (vacuum)\n{rows}\n")
    ingest([shared_data / "spectra/sdss/spec-0295-51585-0596.fits", tmp_path / "noz.txt"], tmp_path / "p", workers=1)
    yield from _open_lines_tab(qtbot, tmp_path / "p.galdesk")


def test_z_field_and_switching_spectrum_clears_the_old_fit(qtbot, window_with_a_spectrum_without_z):
    from PySide6.QtCore import Qt

    w, tab = window_with_a_spectrum_without_z
    rows = {tab.spectra.item(i).text().split()[0]: int(tab.spectra.item(i).data(Qt.UserRole))
            for i in range(tab.spectra.count())}
    with qtbot.waitSignal(tab.fitDone, timeout=60000):
        tab.load_row(rows["spec-0295-51585-0596"])
    assert len(tab.fitplot.model_curve.getData()[0]) > 0 and tab.params.rowCount() > 0 and not tab.z_edit.isEnabled()
    tab.load_row(rows["noz"])   # no redshift: the previous fit must not stay on screen
    x, _ = tab.fitplot.model_curve.getData()
    assert (x is None or len(x) == 0) and tab.fit is None and tab.params.rowCount() == 0
    assert all(c.getData()[0] is None or len(c.getData()[0]) == 0 for c in tab.fitplot.comp_curves.values())
    assert tab.fitplot.targets == [] and tab.stats.text() == ""
    assert tab.z_edit.isEnabled() and "no redshift" in tab.tasks.status.text()
    tab.fit_spectrum()   # nothing to fit at: says so instead of fitting
    assert "skipped: no redshift" in tab.tasks.status.text()
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.z_edit.setText("0.05")
        tab.z_edit.editingFinished.emit()
    cf = blocker.args[0]
    assert cf.z == 0.05 and cf.complex_name == "halpha"
    assert cf.measurement("halpha").flux == pytest.approx(300.0, rel=0.1)
    with qtbot.waitSignal(tab.spectrumFitted, timeout=120000) as blocker:
        tab.fit_spectrum()
    d = blocker.args[0]
    assert d["z"] == 0.05 and d["z_source"] == "Lines tab" and d["status"] == "fitted"
    project = w.state.project
    assert project.journal.latest("line_fit")["noz"].payload["z_source"] == "Lines tab"
    row = list(project.objects["id"]).index("noz")
    assert not np.isfinite(project.objects["z"][row])   # the typed z is not written into the object table
    with qtbot.waitSignal(tab.fitDone, timeout=60000):
        tab.load_row(rows["spec-0295-51585-0596"])
    assert not tab.z_edit.isEnabled() and tab.z_edit.text() == ""


@pytest.fixture
def window_with_vetoed_broad_hbeta(qtbot, tmp_path):
    """A project with one synthetic spectrum whose Hβ alone would want a broad line that Hα has not (the
    spectrum-level checks veto it; tests/test_lines_verdicts.py)."""
    from test_lines_verdicts import narrow, spectrum

    from galdesk.lines import linelist as LL
    from galdesk.project import Project

    project = Project.create(tmp_path / "v.galdesk")
    project.add(spectra=[spectrum(narrow() + [(LL.LINES["hbeta"], 300.0, 0.0, 1500.0)])])
    project.close()
    yield from _open_lines_tab(qtbot, tmp_path / "v.galdesk")


def test_refits_after_the_spectrum_fit_keep_its_verdict(qtbot, window_with_vetoed_broad_hbeta):
    """After "Fit spectrum & save", viewing another complex shows the saved fit, and a refit by hand (Fit complex,
    a drag) keeps the model the spectrum-level checks chose and says so in the record: it used to redo one
    complex's own model selection and save a broad Hβ that the spectrum fit had rejected."""
    w, tab = window_with_vetoed_broad_hbeta
    tab.continuum.setCurrentText("local")
    tab.absorption.setChecked(False)
    _show(qtbot, tab, 0)
    with qtbot.waitSignal(tab.spectrumFitted, timeout=180000) as blocker:
        tab.fit_spectrum()
    assert not blocker.args[0]["broad_needed"]
    saved = tab.spectrum_fit.complexes["hbeta"]
    assert not saved.has_broad
    fits = []
    tab.fitDone.connect(fits.append)
    tab.complex.setCurrentIndex(tab.complex.findData("hbeta"))
    assert tab.fit is saved and not fits            # shown as saved, not refitted
    with qtbot.waitSignal(tab.fitDone, timeout=60000) as blocker:
        tab.fit_btn.click()                          # a fresh "Fit complex" of Hβ alone would keep a broad line
    cf = blocker.args[0]
    assert not cf.has_broad and cf.tests == saved.tests
    rec = w.state.project.journal.latest("line_fit")[tab.spec.id].payload
    assert not rec["broad_needed"]
    assert not any(m["component"] == "broad" for m in rec["lines"] if m["name"] == "hbeta")
    assert any(n.startswith("hbeta: refitted by hand in the Lines tab") for n in rec["notes"])


def test_closing_the_window_during_fit_all_spectra_stops_it(qtbot, lines_window):
    """Fit all spectra, then the window is closed before it ends: the job is cancelled and joined within seconds,
    no worker process outlives it, and nothing half-fitted is journaled."""
    import time

    import psutil
    from PySide6.QtCore import QEventLoop, QTimer

    w, tab = lines_window
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}   # e.g. multiprocessing's resource tracker
    tab.fit_all()
    assert tab.tasks.runner.running
    loop = QEventLoop()
    QTimer.singleShot(1500, loop.quit)      # let the fits start (each takes seconds)
    loop.exec()
    t0 = time.monotonic()
    w.close()
    took = time.monotonic() - t0
    assert took < 8, took
    assert tab.tasks.runner.wait(0)          # every thread of the job has ended
    gone, alive = psutil.wait_procs([p for p in me.children(recursive=True) if p.pid not in before], timeout=5)
    assert not alive, alive
    fits = w.state.project.journal.latest("line_fit") if w.state.project is not None else {}
    assert all(rec.payload.get("fit_status", "fitted") == "fitted" for rec in fits.values())
