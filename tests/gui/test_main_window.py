"""The main window, offscreen: load real cut-outs and a spectrum on the worker and check what is shown."""

import numpy as np
import pytest
from astropy.io import fits
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from galdesk.gui.app import make_app  # noqa: E402


@pytest.fixture
def window(qtbot):
    make_app()
    from galdesk.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    w.runner.wait(10000)
    w.close()


def _load(qtbot, window, paths):
    with qtbot.waitSignal(window.state.objectsChanged, timeout=60000):
        window.open_paths([str(p) for p in paths])


def test_all_tabs_exist(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Data", "Classify", "Dendrogram", "Lines", "Vet"]


def test_the_device_appears_in_the_status_bar(qtbot, window):
    """Found by a start-up probe on a thread of its own (torch's import): the status bar names it; closing the
    window never waits for that probe."""
    qtbot.waitUntil(lambda: window.device_label.text() != "device: …", timeout=120000)
    from galdesk.ml.device import describe_device

    assert window.device_label.text() == f"device: {describe_device()}"


def test_load_real_cutouts_and_spectrum_and_show_them(qtbot, window, shared_data, tmp_path):
    jpegs = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:6]
    spec = shared_data / "spectra/sdss/spec-0266-51602-0013.fits"
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\x00" * 50)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    _load(qtbot, window, [*jpegs, spec, bad])
    timer.stop()
    assert ticks, "the event loop must keep running while files load"
    project = window.state.project
    assert project.n_images == 6 and project.n_spectra == 1
    assert window.data_tab.grid.model().rowCount() == 6
    assert "6 images, 1 spectra" in window.count_label.text()
    # the bad file is listed in the Problems panel, naming it
    items = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert len(items) == 1 and "bad.fits" in items[0]

    # first image: the view shows the full-resolution JPEG (423x423), as is
    window.state.set_current(0)
    shown = window.data_tab.image_view.rendered()
    assert shown.shape == (423, 423, 3)
    from PIL import Image

    raw = np.asarray(Image.open(jpegs[0]).convert("RGB"))
    assert np.array_equal(shown, raw[::-1])  # row 0 at the bottom, as DS9 shows FITS

    # thumbnails render lazily through the model
    icon = window.data_tab.grid.model().data(window.data_tab.grid.model().index(2), Qt.DecorationRole)
    assert not icon.isNull() and icon.width() == 64

    # the spectrum: plotted wavelengths are SDSS's 10**loglam, rest frame divides by 1+z
    row = project.find("spec-0266-51602-0013", "spectrum")
    window.state.set_current(row)
    plot = window.data_tab.spectrum_plot
    assert window.data_tab.detail.currentWidget() is plot
    with fits.open(spec) as h:
        wave = 10 ** h[1].data["loglam"].astype(float)
        z = float(h[2].data["Z"][0])
    x, _ = plot.curve.getData()
    assert np.allclose(x, wave, rtol=1e-6)
    plot.rest.setChecked(True)
    x, _ = plot.curve.getData()
    assert np.allclose(x, wave / (1 + z), rtol=1e-6)
    visible = [name for name, line in plot.markers if line.isVisible()]
    assert "halpha" in visible and "oiii5007" in visible
    # display smoothing (as Specviz): a 5-pixel boxcar halves the pixel-to-pixel scatter of the flux and narrows
    # the error band by about sqrt 5; "none" gives the data back
    _, raw = plot.curve.getData()
    band = np.nanmedian(plot.hi.getData()[1] - plot.lo.getData()[1])
    plot.smoothing.setCurrentText("boxcar 5 px")
    _, smooth = plot.curve.getData()
    assert np.nanstd(np.diff(smooth)) < 0.5 * np.nanstd(np.diff(raw))
    assert np.nanmedian(plot.hi.getData()[1] - plot.lo.getData()[1]) < 0.6 * band
    plot.smoothing.setCurrentText("none")
    assert np.array_equal(plot.curve.getData()[1], raw, equal_nan=True)
    # back to the images: a click on the thumbnail that is still current in the grid shows it again
    grid = window.data_tab.grid
    idx = grid.currentIndex()
    assert idx.isValid()
    QTest.mouseClick(grid.viewport(), Qt.LeftButton, Qt.NoModifier, grid.visualRect(idx).center())
    assert window.data_tab.detail.currentWidget() is not plot
    window.state.set_current(row)
    # its fields as a person reads them: z to 5 decimals, RA/Dec to 1e-6 deg, not 17 digits
    tab = window.data_tab
    fields = {tab.fields.item(r, 0).text(): tab.fields.item(r, 1).text() for r in range(tab.fields.rowCount())}
    assert fields["z"] == f"{z:.5f}"
    for key in ("ra", "dec"):
        assert len(fields[key].split(".")[1]) == 6, fields


def test_display_change_reaches_thumbnails_and_project(qtbot, window, shared_data):
    _load(qtbot, window, sorted((shared_data / "images/fits/galsim_hst").glob("*.img.fits")))
    window.state.set_current(0)
    view = window.data_tab.image_view
    before = view.rendered().copy()
    view.controls.stretch.setCurrentText("log")
    assert window.state.display.stretch == "log"
    assert window.state.project.display["stretch"] == "log"
    assert not np.array_equal(before, view.rendered())
    view.controls.cmap.setCurrentText("viridis")
    img = view.rendered()
    assert not np.array_equal(img[..., 0], img[..., 1])


def test_drop_files_onto_window(qtbot, window, shared_data):
    jpeg = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[0]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(jpeg))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.state.objectsChanged, timeout=60000):
        window.dropEvent(event)
    assert window.state.project.n_images == 1


def test_reopen_project_restores_objects_and_display(qtbot, window, shared_data):
    _load(qtbot, window, sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:3])
    path = window.state.project.path
    window.state.set_display(window.state.display.__class__(stretch="sqrt", limits="zscale"))
    window.state.set_project(None)
    assert window.open_project(path)
    assert window.state.project.n_images == 3
    assert window.state.display.stretch == "sqrt" and window.state.display.limits == "zscale"
    assert str(path) in window.settings.get("recent_projects")


def test_every_real_spectrum_and_fits_cutout_loads_in_the_window(qtbot, window, shared_data):
    """The whole spectra folder and the HST stamp folder, opened as folders from the window, as the CLI does."""
    from galdesk.io.reading import read_paths

    folders = [shared_data / "spectra", shared_data / "images/fits"]
    expected = read_paths(folders)
    with qtbot.waitSignal(window.state.objectsChanged, timeout=180000):
        window.open_paths([str(f) for f in folders])
    project = window.state.project
    assert project.n_spectra == len(expected.spectra) > 100
    assert project.n_images == len(expected.images) > 5
    # only the catalogue tables and the one dead SDSS fibre are reported, each naming its file
    problems = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert len(problems) == len(expected.problems)
    dead = [p for p in problems if "positive inverse variance" in p]
    assert len(dead) == 1 and "spec-0269-51581-0003" in dead[0]
    assert all("catalog" in p.lower() for p in problems if p not in dead)
    # redshifts reached the object table (SDSS, 6dFGS, LAMOST all carry one)
    z = np.asarray(project.objects["z"])[project.spectrum_rows()]
    assert np.isfinite(z).mean() > 0.95


def test_the_window_fits_a_laptop_screen(qtbot, window, tmp_path):
    """1280 x 800 and 1366 x 768 screens: the window's minimum size fits with a project open, in every tab, and a
    long status line (a batch summary) does not widen it."""
    from galdesk.services.demo import make_demo_project

    assert window.open_project(make_demo_project(tmp_path / "demo", n_galaxies=12))
    lines = window.extra_tabs["Lines"]
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(50)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1260 and hint.height() <= 740, (window.tabs.tabText(i), hint)
    window.tabs.setCurrentWidget(lines)
    lines.tasks.set_status("312 spectra fitted, 14 skipped (no redshift), 3 failed: " + "x" * 300)
    qtbot.wait(50)
    assert window.minimumSizeHint().width() <= 1260
    assert lines.tasks.status.toolTip().startswith("312 spectra fitted")


def test_alt_number_switches_tabs(qtbot, window):
    """Alt+1...: the tabs (Ctrl+1... stay the Vet tab's flag keys: no ambiguous shortcut)."""
    from PySide6.QtGui import QKeySequence

    acts = {a.shortcut().toString(): a for a in window.findChildren(type(window.menuBar().actions()[0]))}
    for i in range(window.tabs.count()):
        key = QKeySequence(f"Alt+{i + 1}").toString()
        assert key in acts, key
        acts[key].trigger()
        assert window.tabs.currentIndex() == i
    assert QKeySequence("Ctrl+1").toString() not in acts


def test_an_empty_problems_dock_is_not_restored(qtbot, window):
    from galdesk.gui.main_window import MainWindow

    window.problems_dock.show()
    window._save_window()
    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert w2.problems_dock.isHidden()        # it was open last time, but there is nothing in it now
    w2.close()


def test_help_has_a_quick_start(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: shown.append((title, text)))
    help_menu = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"][0]
    quick = [a for a in help_menu.actions() if a.text() == "&Quick Start"][0]
    quick.trigger()
    assert shown and shown[0][0] == "Quick start"
    for word in ("Open", "Classify", "Dendrogram", "Lines", "Vet", "Export", "Alt+1"):
        assert word in shown[0][1]


def test_find_filter_and_sort_in_the_data_tab(qtbot, window, shared_data, tmp_path):
    """A Galaxy Zoo project with its catalogue: find by id, keep the spirals, sort by class number descending."""
    from conftest import gz1_catalog

    from galdesk.services.ingest import ingest

    ingest([], tmp_path / "gz", catalog=gz1_catalog(shared_data, tmp_path, 30), workers=1)
    assert window.open_project(tmp_path / "gz.galdesk")
    tab, project = window.data_tab, window.state.project
    ids = [str(i) for i in project.objects["id"]]
    tab.find.setText(ids[7][-9:])
    tab.find_object()
    assert window.state.current == 7 and "contain" in tab.search_note.text()
    tab.filter.setText("gz1_label spiral")            # not an expression: said, not applied
    tab.apply_view()
    assert "filter not applied" in tab.search_note.text() and tab.grid.thumbs.rowCount() == 30
    tab.filter.setText("gz1_class >= 1 and gz1_class <= 3")
    tab.sort.setCurrentIndex(tab.sort.findData("gz1_class"))
    tab.descending.setChecked(True)
    shown = tab.grid.thumbs._rows
    classes = np.asarray(project.objects["gz1_class"])[shown]
    assert 0 < shown.size < 30 and np.all((classes >= 1) & (classes <= 3)) and np.all(np.diff(classes) <= 0)
    assert f"{shown.size} of 30 images" in tab.search_note.text()
    tab.filter.setText("")
    tab.sort.setCurrentIndex(0)
    assert tab.grid.thumbs.rowCount() == 30


def test_controls_that_do_nothing_are_disabled_and_say_why(qtbot, window, shared_data):
    """A JPEG cut-out shown as it is: stretch, limits and colours are off (they used to stay on and do nothing),
    until one band is chosen; a single FITS band has them all."""
    _load(qtbot, window, sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:1])
    window.state.set_current(0)
    c = window.data_tab.image_view.controls
    assert c.band.currentData() is None
    assert not c.stretch.isEnabled() and not c.limits.isEnabled() and not c.cmap.isEnabled()
    assert "shown as it is" in c.stretch.toolTip()
    view = window.data_tab.image_view
    assert not view.cbar.isVisible()                 # several colours at once: no one colour bar
    c.band.setCurrentIndex(c.band.findData(1))
    assert c.stretch.isEnabled() and c.limits.isEnabled() and c.cmap.isEnabled()
    assert view.cbar.isVisible()                     # one band, one colour map: a colour bar with data values
    ticks = view.cbar.getAxis("bottom")._tickLevels[0]
    assert len(ticks) == 5 and ticks[0][0] == 0.0 and ticks[-1][0] == 1.0
    before = window.data_tab.image_view.rendered().copy()
    c.stretch.setCurrentText("log" if c.stretch.currentText() != "log" else "linear")
    assert not np.array_equal(before, window.data_tab.image_view.rendered())


def test_cursor_readout_names_the_band_and_the_position(qtbot, window, shared_data):
    """Under the cursor: the FITS pixel (1-based), each band's value with its name (and BUNIT when the file gives
    one), and RA/Dec from the WCS."""
    from astropy.io import fits
    from PySide6.QtCore import QPointF

    path = sorted((shared_data / "images/fits/galsim_hst").glob("*.img.fits"))[0]
    _load(qtbot, window, [path])
    window.state.set_current(0)
    view = window.data_tab.image_view
    qtbot.waitUntil(lambda: view.view.sceneBoundingRect().width() > 10, timeout=5000)
    view._on_mouse_moved((view.view.mapViewToScene(QPointF(10.5, 12.5)),))
    text = view.readout.text()
    value = float(fits.getdata(path)[12, 10])
    assert text.startswith("x=11 y=13") and f"{view.image.bands[0]}={value:.5g}" in text, text
    assert "RA=" in text and "Dec=" in text


def test_the_image_view_draws_an_ra_dec_grid_from_the_wcs(qtbot):
    """The Grid button draws lines of constant RA and Dec with their labels; it is off for a file without a WCS
    and while the image is rotated (the grid is drawn on the image as the file has it)."""
    from astropy.wcs import WCS

    from galdesk.gui.widgets.image_view import ImageView
    from galdesk.io.model import ImageData

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval, w.wcs.crpix = [150.1, 2.2], [32.5, 32.5]
    w.wcs.cd = np.array([[-0.262, 0], [0, 0.262]]) / 3600
    view = ImageView()
    qtbot.addWidget(view)
    rng = np.random.default_rng(0)
    view.set_image(ImageData(rng.normal(size=(1, 64, 64)).astype(np.float32), ["r"], "a.fits", "a", wcs=w))
    assert view.grid_btn.isEnabled() and view.grid is None
    view.grid_btn.setChecked(True)
    assert view.grid is not None and len(view.grid.lines) >= 4
    x, _y = view.grid_curves["ra"].getData()
    assert x is not None and np.isfinite(x).sum() > 20
    assert {t.toPlainText() for t in view.grid_labels} >= {"+02°12′00″"}
    view.rotate()
    assert not view.grid_btn.isEnabled() and view.grid is None and not view.grid_labels
    view.set_image(ImageData(rng.normal(size=(1, 64, 64)).astype(np.float32), ["r"], "b.png", "b"))
    assert not view.grid_btn.isEnabled() and "no celestial WCS" in view.grid_btn.toolTip()


def test_a_colour_composite_with_per_band_limits(qtbot):
    """Bands of very different brightness: the Lupton composite keeps their ratio (the faint band is dark), the
    per-band composite puts each band through its own limits (each channel reaches full scale), and its stretch
    applies while the colour map does not; the choice round-trips through the display settings."""
    from galdesk.display import DisplaySettings
    from galdesk.gui.widgets.image_view import PER_BAND, ImageView
    from galdesk.io.model import ImageData

    yy, xx = np.mgrid[:64, :64] - 31.5
    blob = np.exp(-(xx**2 + yy**2) / 50.0)
    rng = np.random.default_rng(2)
    px = np.stack([s * blob + 0.001 * s * rng.normal(size=blob.shape) for s in (1.0, 10.0, 100.0)]).astype(np.float32)
    view = ImageView()
    qtbot.addWidget(view)
    view.set_image(ImageData(px, ["g", "r", "i"], "a.fits", "a"))
    lupton = view.rendered().astype(float)
    blue_lupton = lupton[..., 2].max()                    # g (the faintest) is blue
    assert not view.controls.stretch.isEnabled()
    view.controls.band.setCurrentIndex(view.controls.band.findData(PER_BAND))
    s = view.settings
    assert s.band is None and s.composite == "stretch"
    assert view.controls.stretch.isEnabled() and not view.controls.cmap.isEnabled()
    per_band = view.rendered().astype(float)
    assert per_band[..., 2].max() >= 250 and blue_lupton < 0.5 * per_band[..., 2].max()
    assert DisplaySettings.from_dict(s.to_dict()).composite == "stretch"
    again = ImageView()
    qtbot.addWidget(again)
    again.set_image(ImageData(px, ["g", "r", "i"], "a.fits", "a"))
    again.set_settings(s)
    assert again.controls.band.currentData() == PER_BAND
    assert np.array_equal(again.rendered(), view.rendered())
