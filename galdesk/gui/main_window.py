"""The main window: tabs Data, Classify, Dendrogram, Lines, Vet; File menu; status bar with device, object count,
progress and Cancel; a Problems panel; drag and drop of files, folders and projects."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QTabWidget,
)

from galdesk import __version__
from galdesk.config import data_dir, load_settings, log_path
from galdesk.gui.errors import log_exception
from galdesk.gui.state import AppState
from galdesk.gui.tabs.data_tab import DataTab
from galdesk.gui.widgets.activity import Activity
from galdesk.gui.worker import TaskRunner

__all__ = ["MainWindow"]

def _tab_classes() -> list[tuple[str, type]]:
    """The analysis tabs after Data, in order (imported here, not at start-up: the window shows first)."""
    from galdesk.gui.tabs.classify_tab import ClassifyTab
    from galdesk.gui.tabs.dendrogram_tab import DendrogramTab
    from galdesk.gui.tabs.lines_tab import LinesTab
    from galdesk.gui.tabs.vet_tab import VetTab

    return [("Classify", ClassifyTab), ("Dendrogram", DendrogramTab), ("Lines", LinesTab), ("Vet", VetTab)]


FILE_FILTER = ("Data (*.fits *.fit *.fts *.fits.gz *.jpg *.jpeg *.png *.h5 *.hdf5 *.txt *.dat *.csv);;"
               "All files (*)")
CATALOG_FILTER = "Catalogues (*.csv *.fits *.fit *.ecsv *.xml *.vot);;All files (*)"


def _open_checked(path):
    """Open a project and check its files first (:mod:`galdesk.project.verify`): a damaged one is refused with one
    message naming each damaged file, instead of an error per thumbnail or per tab."""
    from galdesk.project import Project
    from galdesk.project.verify import check_project

    project = Project.open(path)
    try:
        check_project(project)
    except BaseException:
        project.close()
        raise
    return project


class MainWindow(QMainWindow):
    deviceFound = Signal(str)    # the compute device, from the start-up probe's thread

    def __init__(self, settings=None) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.state = AppState(self.settings)
        self.runner = TaskRunner(self)
        self.setWindowTitle(f"galdesk {__version__}")
        self.setAcceptDrops(True)

        self.tabs = QTabWidget()
        self.data_tab = DataTab(self.state)
        self.tabs.addTab(self.data_tab, "Data")
        self.extra_tabs = {}
        for title, cls in _tab_classes():
            tab = cls(self.state)
            self.extra_tabs[title] = tab
            self.tabs.addTab(tab, title)
        self.setCentralWidget(self.tabs)

        self.problems = QListWidget()
        self.problems_dock = QDockWidget("Problems", self)
        self.problems_dock.setObjectName("problems")
        self.problems_dock.setWidget(self.problems)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()

        self._build_status_bar()
        self._build_menus()
        self.state.problemsAdded.connect(self._on_problems)
        self.state.projectChanged.connect(self._on_project_changed)
        self.state.objectsChanged.connect(self._update_counts)
        self.state.status.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self._restore_window()
        self.resize(1280, 820) if not self.settings.get("window", {}).get("geometry") else None
        # The compute device needs torch (~2 s to import): ask on a worker once the window is up.
        QTimer.singleShot(300, self._probe_device)

    # -- building ----------------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.device_label = QLabel("device: …")
        self.count_label = QLabel("no project")
        # one progress + Cancel for every long job: this window's own (ingest) and the tabs' (classify, cluster,
        # line fits), whichever tab is shown
        self.activity = Activity()
        self._job = None
        sb.addPermanentWidget(self.activity)
        for title, tab in self.extra_tabs.items():
            for panel in (getattr(tab, "panel", None), getattr(tab, "tasks", None)):
                if panel is not None and hasattr(panel, "attach"):
                    panel.attach(self.activity)
        sb.addPermanentWidget(self.count_label)
        sb.addPermanentWidget(self.device_label)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&New Project…", self.new_project_dialog, QKeySequence.New)
        self._action(m, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = m.addMenu("Recent Projects")
        m.addSeparator()
        self._action(m, "&Open Files…", self.open_files_dialog, QKeySequence.Open)
        self._action(m, "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+F")
        self._action(m, "Open &Catalogue…", self.open_catalog_dialog, "Ctrl+Shift+C")
        m.addSeparator()
        self._action(m, "&Save", self.save, QKeySequence.Save)
        self._action(m, "Save Project &As…", self.save_as_dialog, QKeySequence.SaveAs)
        self._action(m, "&Export Catalogue…", self.export_dialog, "Ctrl+E")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.Quit)
        e = self.menuBar().addMenu("&Edit")
        # the Vet tab owns Ctrl+Z / Ctrl+Y (and U) while it has the focus: the menu names them without taking them
        self._action(e, "&Undo Vetting Decision\tCtrl+Z", lambda: self._vet_history("undo"))
        self._action(e, "&Redo Vetting Decision\tCtrl+Y", lambda: self._vet_history("redo"))
        v = self.menuBar().addMenu("&View")
        # Alt+1...: the tabs (as in terminals and browsers on Linux); Ctrl+1... are the Vet tab's flag keys
        for i in range(min(self.tabs.count(), 9)):
            self._action(v, f"{self.tabs.tabText(i)} tab", lambda _=False, k=i: self.tabs.setCurrentIndex(k),
                         f"Alt+{i + 1}")
        v.addSeparator()
        v.addAction(self.problems_dock.toggleViewAction())
        h = self.menuBar().addMenu("&Help")
        self._action(h, "&Quick Start", self.quick_start)   # no F1: the Vet tab's F1 lists its keys
        self._action(h, "&About galdesk", self.about)
        self._action(h, "Show &Log File Location", self.show_log)
        self._refresh_recent()

    def _vet_history(self, which: str) -> None:
        """Edit > Undo/Redo: the Vet tab's last decision (the tab comes to the front to show what changed)."""
        vet = self.extra_tabs.get("Vet")
        if vet is None or getattr(vet, "session", None) is None:
            self.state.status.emit("No vetting session: start one in the Vet tab")
            return
        self.tabs.setCurrentWidget(vet)
        getattr(vet, which)()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.settings.get("recent_projects", []) if Path(p).exists()]
        for p in recent:
            act = QAction(p, self)
            act.triggered.connect(lambda _=False, path=p: self.open_project(path))
            self.recent_menu.addAction(act)
        self.recent_menu.setEnabled(bool(recent))

    # -- projects ----------------------------------------------------------------------------------------------------
    def open_project(self, path) -> bool:
        return self._activate(_open_checked, path, title="Cannot open project")

    def new_project(self, path) -> bool:
        from galdesk.project import Project

        size = int(self.settings.get("working_size") or 64)
        return self._activate(lambda p: Project.create(p, working_size=size), path, title="Cannot create project")

    def _activate(self, make, path, title: str) -> bool:
        """Make the project current and remember it among the recent ones; a failure is shown, not raised."""
        from galdesk.project import ProjectError

        try:
            project = make(path)
        except ProjectError as exc:
            QMessageBox.warning(self, title, str(exc))
            return False
        self.state.set_project(project)
        self.settings.add_recent(str(project.path))
        self.settings.save()
        self._refresh_recent()
        return True

    def ensure_project(self):
        """The open project; a new one in the data folder if none is open (File > Save Project As… moves it)."""
        if self.state.project is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = data_dir() / "projects" / f"untitled-{stamp}.galdesk"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.new_project(path)
            self.state.status.emit(f"New project {path}")
        return self.state.project

    def open_paths(self, paths, catalog=None) -> None:
        """Open projects, or ingest files / folders (and a catalogue) into the current project on a worker."""
        from galdesk.project import is_project

        paths = [str(p) for p in paths]
        projects = [p for p in paths if is_project(p) or p.rstrip("/").endswith(".galdesk")]
        for p in projects:
            self.open_project(p)
        data = [p for p in paths if p not in projects]
        if not data and catalog is None:
            return
        project = self.ensure_project()
        if project is None:
            return
        from galdesk.services.ingest import ingest

        self._start("Loading", ingest, data, str(project.path), catalog=catalog,
                    on_result=self._on_ingest_result)

    def _on_ingest_result(self, result) -> None:
        project = self.state.project
        if project is not None:
            project.reload()
        self.state.add_problems(result.problems)
        self.state.objectsChanged.emit()
        msg = f"Loaded {result.images} images and {result.spectra} spectra"
        if result.known_files:
            msg += f"; {result.known_files} file(s) already in the project left out"
        if result.problems:
            msg += f"; {len(result.problems)} file(s) could not be read (see Problems)"
        self.state.status.emit(msg)
        if project is not None and self.state.current < 0 and len(project.objects):
            self.state.set_current(0)

    def save(self) -> None:
        """Everything is saved as it happens; this writes the display settings and window state too."""
        if self.state.project is not None:
            self.state.project.set_display(**self.state.display.to_dict())
        self._save_window()
        self.state.status.emit("Saved")

    def save_as(self, dest) -> bool:
        from galdesk.project import SUFFIX

        project = self.state.project
        if project is None:
            return False
        dest = Path(dest)
        if dest.suffix != SUFFIX:
            dest = dest.with_name(dest.name + SUFFIX)
        if dest.exists():
            QMessageBox.warning(self, "Save Project As", f"{dest} already exists")
            return False
        project.close()  # checkpoint the journal before copying
        shutil.copytree(project.path, dest)
        return self.open_project(dest)

    # -- dialogs -------------------------------------------------------------------------------------------------------
    def new_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", str(Path.home() / "untitled.galdesk"))
        if path:
            self.new_project(path)

    def open_project_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project (a .galdesk folder)")
        if path:
            self.open_project(path)

    def open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open cut-outs or spectra", "", FILE_FILTER)
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of cut-outs or spectra")
        if path:
            self.open_paths([path])

    def open_catalog_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open catalogue", "", CATALOG_FILTER)
        if path:
            self.open_paths([], catalog=path)

    def save_as_dialog(self) -> None:
        if self.state.project is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(Path.home() / "project.galdesk"))
        if path:
            self.save_as(path)

    def export_dialog(self) -> None:
        from galdesk.gui.dialogs.export_dialog import ExportDialog

        if self.state.project is not None:
            ExportDialog(self.state.project, self).exec()

    def about(self) -> None:
        QMessageBox.about(self, "About galdesk", f"<b>galdesk {__version__}</b><p>Cut-outs, spectra, CNN "
                          "classification, clustering, line fitting and vetting for galaxy astronomers.</p>")

    QUICK_START = (
        "<h3>Quick start</h3><ol>"
        "<li><b>Open</b> cut-outs, spectra or a folder (File &gt; Open Files / Open Folder, or drop them on the "
        "window); a catalogue (File &gt; Open Catalogue) names objects and brings labels and redshifts. Everything "
        "goes into a project folder (<i>NAME.galdesk</i>), saved as you work. Try <code>galdesk demo --open</code> "
        "for a sample.</li>"
        "<li><b>Data</b> (Alt+1): DS9-style stretches and limits; click a thumbnail or a spectrum.</li>"
        "<li><b>Classify</b> (Alt+2): run the bundled elliptical/spiral CNN, or train one on a catalogue column; "
        "compare with the catalogue's labels.</li>"
        "<li><b>Dendrogram</b> (Alt+3): features (shape descriptors need no labels) and a Ward tree; drag the red "
        "line, click a branch and drag its blue line to cut it alone, or <i>Suggest cuts</i>.</li>"
        "<li><b>Lines</b> (Alt+4): fit Hα+[NII], Hβ+[OIII], [SII], [OI] of a spectrum, or all of them; the BPT "
        "diagram.</li>"
        "<li><b>Vet</b> (Alt+5): type your name, choose an order, press Start; number keys label, A accepts, X "
        "rejects, Ctrl+Z undoes, F1 lists every key. Each decision is saved at once.</li>"
        "<li><b>Export</b> (Ctrl+E): CSV, FITS, ECSV or VOTable with units and provenance.</li></ol>"
        "<p>The same pipeline runs in a terminal: <code>galdesk --help</code>.</p>")

    def quick_start(self) -> None:
        QMessageBox.information(self, "Quick start", self.QUICK_START)

    def show_log(self) -> None:
        QMessageBox.information(self, "Log file", f"Errors and their tracebacks are written to\n{log_path()}")

    # -- long work --------------------------------------------------------------------------------------------------
    def _start(self, title, fn, *args, on_result=None, **kwargs) -> None:
        self._on_task_done()
        self._job = self.activity.begin(title, self.cancel_task)
        self.runner.start(fn, *args, on_result=on_result, on_error=self._on_task_error,
                          on_progress=self._on_progress, on_cancelled=self._on_task_cancelled, **kwargs)
        self.runner.done.connect(self._on_task_done, Qt.UniqueConnection)

    def cancel_task(self) -> None:
        self.runner.cancel()
        self._on_task_done()
        self.state.status.emit("Cancelled")

    @Slot(float, str, float)
    def _on_progress(self, fraction, message, eta) -> None:
        if self._job is not None:
            self._job.progress(fraction, message, eta)

    def _on_task_error(self, exc, tb) -> None:
        log_exception(exc, tb)
        QMessageBox.critical(self, "Error", f"{exc}\n\nDetails were written to {log_path()}")

    def _on_task_cancelled(self) -> None:
        self.state.status.emit("Cancelled; nothing was changed")

    def _on_task_done(self) -> None:
        if self._job is not None:
            self._job.end()
            self._job = None

    def _probe_device(self) -> None:
        def probe(ctx=None):
            # first the modules that opening a project needs (the object table's ECSV reader, HDF5), so that the
            # first open does not import them on the GUI thread (1-1.5 s); then torch for the device
            import astropy.io.misc.yaml  # noqa: F401
            import astropy.table  # noqa: F401
            import h5py  # noqa: F401

            from galdesk.ml.device import choose_device, describe_device

            text = describe_device(choose_device(None, self.settings.get("device")))
            # scikit-learn (ROC, clustering scores; ~860 modules): importing it on a worker still holds the GIL
            # for stretches of 0.1-0.4 s, which is better paid here than in the middle of the first classify
            import sklearn.metrics  # noqa: F401

            return text

        def run():
            try:
                text = probe()
            except Exception:  # noqa: BLE001 - no torch, no device: the CPU
                text = "cpu"
            try:
                self.deviceFound.emit(text)
            except RuntimeError:  # the window is gone already
                pass

        # a plain thread, not a QThread: closing the window never waits for these imports (5-10 s on a loaded
        # machine); not a daemon either: the interpreter lets the import end before it exits (a daemon thread
        # stopped inside torch's import crashed the exit now and then)
        self.deviceFound.connect(lambda text: self.device_label.setText(f"device: {text}"))
        threading.Thread(target=run, name="galdesk-device-probe", daemon=False).start()

    # -- state -> window -----------------------------------------------------------------------------------------------
    def _on_project_changed(self, project) -> None:
        title = f"galdesk {__version__}"
        if project is not None:
            title = f"{project.name}{' (read-only)' if project.read_only else ''} — {title}"
        self.setWindowTitle(title)
        self._update_counts()

    def _update_counts(self) -> None:
        p = self.state.project
        self.count_label.setText("no project" if p is None else f"{p.n_images} images, {p.n_spectra} spectra")

    def _on_problems(self, problems) -> None:
        for pr in problems:
            self.problems.addItem(f"{pr.path}: {pr.error}")
        self.problems_dock.show()

    # -- drag and drop ------------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # -- window state -------------------------------------------------------------------------------------------------
    def _restore_window(self) -> None:
        w = self.settings.get("window", {}) or {}
        if w.get("geometry"):
            self.restoreGeometry(QByteArray.fromBase64(w["geometry"].encode()))
        if w.get("state"):
            self.restoreState(QByteArray.fromBase64(w["state"].encode()))
        if self.problems.count() == 0:      # last session's problems are gone: no empty dock at start-up
            self.problems_dock.hide()

    def _save_window(self) -> None:
        self.settings.set("window", {"geometry": bytes(self.saveGeometry().toBase64()).decode(),
                                     "state": bytes(self.saveState().toBase64()).decode()})
        self.settings.save()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._save_window()
        self.runner.cancel()
        self.runner.wait(10000)
        for tab in self.extra_tabs.values():
            if hasattr(tab, "shutdown"):
                tab.shutdown()
        if self.state.project is not None:
            self.state.project.close()
        super().closeEvent(event)
