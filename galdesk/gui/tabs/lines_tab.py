"""Lines tab: emission-line fits with lmfit in a live plot.

The spectrum, the model, each component and the residuals are drawn; the fit-window edges (a region) and each
component's peak (a target: centre = velocity, height = flux) are draggable, and the fit reruns on a worker
shortly after a drag ends (debounced), warm-started from the current parameters. A parameter table shows value ±
uncertainty with fix/free and bounds, χ²ν and BIC; the broad-component test gives ΔBIC, the F-test and a verdict;
the BPT diagrams show every fitted object and the current one with its error bars. Every completed spectrum fit
is appended to the project journal (kind ``line_fit``).

A spectrum without a redshift is not fitted; the z field then takes one for this session's fits (the record of a
fit made at it says ``z_source`` "Lines tab"; neither the file nor the object table is changed). Switching spectrum
clears the previous one's fit, model curves and tables first.

After "Fit spectrum & save" the spectrum-level decisions stand: choosing another complex shows its saved fit, and a
refit by hand (a drag, an edit, Fit complex) starts from the model those checks chose (broad and outflow components
as decided), keeps their tests, and the saved record notes which complex was refitted by hand and in what window.
To let the model change, change the options and fit the spectrum again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.tabs.lines_options import CONTINUUM_CHOICES, CONTINUUM_TIP
from galdesk.gui.tabs.lines_summary import summary_html
from galdesk.gui.widgets.bpt_plots import BPTPlots
from galdesk.gui.widgets.fit_tables import LinesTable, ParamTable
from galdesk.gui.widgets.line_plot import LineFitPlot
from galdesk.gui.widgets.task_panel import TaskPanel
from galdesk.gui.worker import TaskRunner

__all__ = ["LinesTab"]

#: ``z_source`` of a fit made at a redshift typed into the z field
Z_FROM_TAB = "Lines tab"


class LinesTab(QWidget):
    fitDone = Signal(object)        # ComplexFit of an interactive (re)fit
    spectrumFitted = Signal(dict)   # SpectrumFit.to_dict() of a whole-spectrum fit, after it is journaled

    DEBOUNCE_MS = 150

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.spec = None
        self.row = -1
        self.fit = None            # current ComplexFit
        self.spectrum_fit = None   # current SpectrumFit (whole spectrum), if any
        self.runner = TaskRunner(self)   # interactive refits (debounced; a newer one replaces an older one)
        self._pending: dict = {}
        self._gen = 0
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(self.DEBOUNCE_MS)
        self._debounce.timeout.connect(self._refit_now)
        self.spectra = QListWidget()
        bar = self._build_controls()
        self._build_plot()
        self._build_tables()
        self._build_layout(bar)
        self._connect()

    def _build_controls(self) -> QVBoxLayout:
        """The toolbar: complex, broad component, continuum, Balmer trough, Fit complex, and the task panel with
        "Fit spectrum & save" / "Fit all spectra", Cancel, progress and status."""
        from galdesk.lines.linelist import COMPLEXES

        self.complex = QComboBox()
        for key, cx in COMPLEXES.items():
            self.complex.addItem(cx.label or key, key)
        self.broad = QComboBox()
        self.broad.addItems(["auto", "yes", "no"])
        self.continuum = QComboBox()
        self.continuum.addItems(list(CONTINUUM_CHOICES))
        self.continuum.setToolTip(CONTINUUM_TIP)
        self.absorption = QCheckBox("Balmer trough")
        self.absorption.setToolTip("With a local continuum: a Gaussian stellar absorption trough under Hα/Hβ/Hγ")
        self.absorption.setChecked(True)
        self.fit_btn = QPushButton("Fit complex")
        self.z_edit = QLineEdit()
        self.z_edit.setPlaceholderText("z")
        self.z_edit.setMinimumWidth(70)
        self.z_edit.setMaximumWidth(90)
        self.z_edit.setEnabled(False)
        self.z_edit.setToolTip("Redshift of a spectrum that has none: used for its fits in this session (the fit "
                               "records it), never written into the file or the object table")
        self.tasks = TaskPanel("Fit spectrum && save", "Fit all spectra", title="Lines", row=True)
        self.fit_all_btn, self.batch_btn = self.tasks.buttons
        options = QHBoxLayout()       # two rows, so that the tab fits a 1280-px laptop screen
        for w in (QLabel("Complex"), self.complex, QLabel("Broad"), self.broad, QLabel("Continuum"), self.continuum,
                  self.absorption, QLabel("z"), self.z_edit, self.fit_btn):
            options.addWidget(w)
        options.addStretch(1)
        bar = QVBoxLayout()
        bar.addLayout(options)
        bar.addWidget(self.tasks)
        return bar

    def _build_plot(self) -> None:
        """The spectrum with model, continuum and components over the normalised residuals; the draggable window."""
        self.fitplot = LineFitPlot()
        self.plot, self.region = self.fitplot.plot, self.fitplot.region

    def _build_tables(self) -> None:
        """Parameters (editable: value, free, bounds), the lines table (read-only), the summary text and the BPT."""
        self.params = ParamTable()
        self.lines = LinesTable()
        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.stats.setTextFormat(Qt.RichText)
        self.bpt = BPTPlots()
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.params, "Parameters")
        self.side_tabs.addTab(self.lines, "Lines")
        self.side_tabs.addTab(self.bpt, "BPT")

    def _build_layout(self, bar: QVBoxLayout) -> None:
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.fitplot)
        lower = QWidget()
        lw = QVBoxLayout(lower)
        lw.setContentsMargins(0, 0, 0, 0)
        lw.addWidget(self.stats)
        lw.addWidget(self.side_tabs, 1)
        right.addWidget(lower)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setSizes([560, 340])
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.spectra)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 5)
        split.setSizes([230, 1100])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

    def _connect(self) -> None:
        self.region.sigRegionChangeFinished.connect(self._on_region_changed)
        self.fitplot.peakDragged.connect(self._on_target_moved)
        self.params.itemChanged.connect(self._on_param_edited)
        self.fit_btn.clicked.connect(lambda: self.refit(fresh=True))
        self.z_edit.editingFinished.connect(self._on_z_entered)
        self.fit_all_btn.clicked.connect(self.fit_spectrum)
        self.batch_btn.clicked.connect(self.fit_all)
        self.complex.currentIndexChanged.connect(self._on_complex_changed)
        self.spectra.currentItemChanged.connect(self._on_spectrum_item)
        self.state.projectChanged.connect(self._on_project_changed)
        self.state.objectsChanged.connect(self._fill_spectra)
        self.state.currentChanged.connect(self._on_current_changed)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Start on the first spectrum when the tab is first shown (no fitting while the tab is hidden)."""
        super().showEvent(event)
        if self.spec is None and self.spectra.count() and self.spectra.currentRow() < 0:
            self.spectra.setCurrentRow(0)

    # -- config ------------------------------------------------------------------------------------------------------
    def config(self):
        from galdesk.lines.config import FitConfig

        cont, powerlaw, windows = CONTINUUM_CHOICES[self.continuum.currentText()]
        return FitConfig(broad=self.broad.currentText(), continuum=cont, stellar_powerlaw=powerlaw,
                         agn_windows=windows, absorption="auto" if self.absorption.isChecked() else False)

    @property
    def complex_name(self) -> str:
        return self.complex.currentData()

    # -- project / selection -------------------------------------------------------------------------------------------
    def _on_project_changed(self, project) -> None:
        self.spec, self.row, self.fit, self.spectrum_fit = None, -1, None, None
        self._fill_spectra()
        self._refresh_bpt_all()

    def _fill_spectra(self) -> None:
        project = self.state.project
        self.spectra.blockSignals(True)
        self.spectra.clear()
        if project is not None:
            fits = project.journal.latest("line_fit")
            for row in project.spectrum_rows():
                oid = str(project.objects["id"][row])
                rec = fits.get(oid)
                text = oid + (f"  [{rec.payload.get('bpt_class') or '—'}]" if rec else "")
                item = QListWidgetItem(text)
                item.setData(Qt.UserRole, int(row))
                self.spectra.addItem(item)
        self.spectra.blockSignals(False)

    def _on_current_changed(self, row: int) -> None:
        project = self.state.project
        if project is None or row < 0 or row == self.row or project.objects["kind"][row] != "spectrum":
            return
        for i in range(self.spectra.count()):
            if self.spectra.item(i).data(Qt.UserRole) == row:
                self.spectra.setCurrentRow(i)
                break

    def _on_spectrum_item(self, item, _prev=None) -> None:
        if item is not None:
            self.load_row(int(item.data(Qt.UserRole)))

    def load_row(self, row: int) -> None:
        """Show a spectrum of the project; its saved fit (if any) is shown, else a fresh fit starts. The previous
        spectrum's fit, curves and tables are cleared first (a late result of its fit is dropped)."""
        project = self.state.project
        self._gen += 1
        self._clear_fit()
        self.row = row
        self.spec = project.spectrum(row)
        rec = project.journal.latest("line_fit").get(self.spec.id)
        self.bpt.set_current(rec.payload.get("bpt") if rec else None)
        self._show_saved_summary(rec.payload if rec else None)
        self.z_edit.blockSignals(True)
        self.z_edit.setText("")
        self.z_edit.setEnabled(self.spec.redshift is None)
        self.z_edit.blockSignals(False)
        self._set_default_window()
        self._draw_data()
        if self.spec.redshift is not None:
            self.refit(fresh=True)
        else:
            self.tasks.set_status("no redshift: lines cannot be placed — type z in the z field (or add z to the "
                                  "catalogue)")

    def _clear_fit(self) -> None:
        """Forget the shown fit: model, continuum, component and residual curves, peak targets, tables, summary."""
        self.fit = None
        self.spectrum_fit = None
        self.fitplot.clear_fit()
        self.params.setRowCount(0)
        self.lines.setRowCount(0)
        self.stats.setText("")

    def _on_z_entered(self) -> None:
        """A redshift typed for a spectrum without one: checked, then used for this spectrum's fits."""
        from galdesk.io.redshifts import check_z

        text = self.z_edit.text().strip()
        if self.spec is None or not text or not self.z_edit.isEnabled():
            return
        try:
            z = check_z(text)
        except ValueError as exc:
            self.tasks.set_status(f"z not used: {exc}")
            return
        if self.spec.redshift == z:
            return
        self._gen += 1
        self._clear_fit()
        self.spec.redshift = z
        self.spec.meta["z_source"] = Z_FROM_TAB
        self.spec.meta["z_given"] = True
        self._set_default_window()
        self._draw_data()
        self.refit(fresh=True)

    def _on_complex_changed(self) -> None:
        if self.spec is None:
            return
        self.fit = None
        decided = self.spectrum_fit.complexes.get(self.complex_name) if self.spectrum_fit is not None else None
        if decided is not None:  # the spectrum fit's own result: shown as saved, not refitted (nor re-saved)
            self._show_complex(decided)
            return
        self._set_default_window()
        self._draw_data()
        self.refit(fresh=True)

    def _set_default_window(self) -> None:
        from galdesk.lines.linelist import COMPLEXES, vac_to_air
        from galdesk.lines.window import fit_window

        if self.spec is None:
            return
        if self.spec.redshift is None:  # nothing to place a window at: show the whole spectrum, to read z from
            w = self.spec.wavelength
            self.fitplot.set_window(float(w[0]), float(w[-1]))
            return
        cfg = self.config()
        lo, hi = fit_window(COMPLEXES[self.complex_name], self.spec.redshift, cfg, cfg.broad != "no")
        if not self.spec.vacuum:
            lo, hi = float(vac_to_air(lo)), float(vac_to_air(hi))
        w = self.spec.wavelength
        lo, hi = max(lo, float(w[0])), min(hi, float(w[-1]))
        self.fitplot.set_window(lo, hi)

    def _draw_data(self) -> None:
        self.fitplot.show_data(self.spec)

    # -- fitting ------------------------------------------------------------------------------------------------------
    def refit(self, fresh: bool = False, delay: bool = False) -> None:
        """(Re)fit the current complex on the worker: warm-started from the current parameters unless ``fresh``."""
        if self.spec is None or self.spec.redshift is None:
            return  # nothing to place the lines at (load_row says so; the z field takes one)
        self._pending = {"fresh": fresh}
        if delay:
            self._debounce.start()
        else:
            self._refit_now()

    def _refit_now(self) -> None:
        from galdesk.lines.engine import fit_complex

        fresh = self._pending.get("fresh", True)
        override = None if fresh or self.fit is None else self.params.edited(self.fit.params)
        decided = self.spectrum_fit.complexes.get(self.complex_name) if self.spectrum_fit is not None else None
        if decided is not None and override is None:
            # after "Fit spectrum & save" a refit keeps the model the spectrum-level checks chose (Hα decides, the
            # second library, the outflow wing): it starts from that fit, never a new model selection of one complex
            override = decided.params
        window = tuple(float(v) for v in self.region.getRegion())
        self.tasks.set_status("fitting…")
        self._gen += 1
        gen = self._gen
        # a result that arrives after a newer request (another spectrum, complex or drag) is dropped
        self.runner.start(fit_complex, self.spec, self.complex_name, self.config(), params_override=override,
                          window=window, on_result=lambda cf: self._on_fit(cf) if gen == self._gen else None,
                          on_error=self._on_fit_error)

    def _on_fit(self, cf) -> None:
        self.fit = cf
        self._draw_fit()
        self.params.show_params(self.fit.params)
        self.lines.show_measurements(self.fit.measurements)
        if self.spectrum_fit is not None:
            from galdesk.lines.summary import summarize

            self._mark_hand_refit(cf)
            self.spectrum_fit.complexes[cf.complex_name] = cf
            summarize(self.spectrum_fit, self.config())
            self.bpt.set_current(self.spectrum_fit.bpt)
            self._save_spectrum_fit()
        self._show_stats()
        self.fitDone.emit(cf)

    def _on_fit_error(self, exc, tb) -> None:
        self.tasks.set_status(f"fit failed: {exc}")

    def fit_spectrum(self) -> None:
        """Fit every complex of the current spectrum (model selection included) and journal the result."""
        from galdesk.lines.spectrum import fit_spectrum

        if self.spec is None:
            return
        if self.spec.redshift is None:
            self.tasks.set_status("skipped: no redshift (type z in the z field)")
            return
        self._gen += 1
        self.tasks.start(fit_spectrum, self.spec, self.config(), on_result=self._on_spectrum_fit)

    def _on_spectrum_fit(self, sf) -> None:
        from galdesk.lines.batch import target_info

        info = target_info(self.spec)  # where z came from (the z field, the file, ...) and its flags
        sf.z_source, sf.zwarn, sf.notes = info["z_source"], info["zwarn"], info["notes"] + list(sf.notes)
        self.spectrum_fit = sf
        self._save_spectrum_fit()
        cf = sf.complexes.get(self.complex_name)
        if cf is not None:
            self._show_complex(cf)
        self.bpt.set_current(sf.bpt)

    def _show_complex(self, cf) -> None:
        """Show a fitted complex as it is: window, curves, tables and summary."""
        self.fit = cf
        self.fitplot.set_window(*cf.window)
        self._draw_data()
        self._draw_fit()
        self.params.show_params(self.fit.params)
        self.lines.show_measurements(self.fit.measurements)
        self._show_stats()

    def _mark_hand_refit(self, cf) -> None:
        """A complex refitted by hand after the spectrum fit: it keeps that fit's model-selection tests (the model
        is the one they chose, :meth:`_refit_now`), and the saved record says it was refitted and where."""
        old = self.spectrum_fit.complexes.get(cf.complex_name)
        if old is not None and not cf.tests:
            cf.tests = list(old.tests)
        lo, hi = cf.window
        prefix = f"{cf.complex_name}: refitted by hand in the Lines tab"
        note = (f"{prefix} (window {lo:.0f}-{hi:.0f} A, starting values or fixed parameters as edited); the "
                "model and its tests are those of the spectrum fit")
        self.spectrum_fit.notes = [n for n in self.spectrum_fit.notes if not n.startswith(prefix)] + [note]

    def _save_spectrum_fit(self) -> None:
        from galdesk.lines.service import save_fits

        d = save_fits(self.state.project, [(self.spec, self.spectrum_fit)], author=self._author())[0]
        self._show_saved_summary(d)
        self._refresh_bpt_all()
        self._label_item(self.spec.id, d.get("bpt_class"))
        self.state.resultsChanged.emit("line_fit")
        self.spectrumFitted.emit(d)

    def _author(self) -> str:
        s = self.state.settings
        return (s.get("vetter") if s is not None else "") or "galdesk"

    def fit_all(self) -> None:
        from galdesk.lines.service import fit_project

        project = self.state.project
        if project is None or project.n_spectra == 0:
            QMessageBox.information(self, "Lines", "The project has no spectra.")
            return
        self.tasks.start(fit_project, str(project.path), self.config(), on_result=self._on_batch,
                         job_title="Fit all spectra")

    def _on_batch(self, results) -> None:
        from galdesk.lines.batch import batch_summary

        self.tasks.set_status(batch_summary(results) + "; fits saved in the project")
        self._fill_spectra()
        self._refresh_bpt_all()
        self.state.resultsChanged.emit("line_fit")

    def cancel(self) -> None:
        self.runner.cancel()
        self.tasks.cancel()

    def shutdown(self) -> None:
        self.runner.cancel()
        self.tasks.shutdown()
        self.runner.wait(10000)

    # -- drawing ------------------------------------------------------------------------------------------------------
    def _draw_fit(self) -> None:
        from galdesk.lines.interactive import continuum_without_feii

        self.fitplot.draw_fit(self.fit, lambda x, cont: continuum_without_feii(self.fit, self.spec, x, cont))

    def _on_target_moved(self, g: int, item, x0: float, y0: float, c0: float) -> None:
        """Dragging a peak sets the starting velocity (from the centre) and flux (from the height) and refits."""
        from galdesk.lines.interactive import drag_start_values

        pos = item.pos()
        params = drag_start_values(self.params.edited(self.fit.params), self.fit.layout, g, pos.x() / x0,
                                   (pos.y() - c0) / y0 if y0 != 0 else None)
        self.params.set_values(params)
        self.refit(delay=True)

    def _on_region_changed(self) -> None:
        if self.spec is not None:
            self._draw_data()
            self.refit(delay=True)   # debounced: several quick drags make one fit

    # -- tables -------------------------------------------------------------------------------------------------------
    def _on_param_edited(self, item) -> None:
        if item.column() in (1, 3, 4, 5) and self.fit is not None:
            self.refit(delay=True)

    def _show_stats(self) -> None:
        self.stats.setText(summary_html(self.fit, self.spec, self.spectrum_fit))
        self.tasks.set_status("fitted")

    def _show_saved_summary(self, d: dict | None) -> None:
        if not d:
            self.side_tabs.setTabText(2, "BPT")
            return
        self.side_tabs.setTabText(2, f"BPT: {d.get('bpt_class') or 'unclassified'}")

    def _refresh_bpt_all(self) -> None:
        project = self.state.project
        if project is None:
            self.bpt.set_all([])
            return
        self.bpt.set_all([r.payload.get("bpt") or {} for r in project.journal.latest("line_fit").values()])

    def _label_item(self, oid: str, bpt_class) -> None:
        for i in range(self.spectra.count()):
            it = self.spectra.item(i)
            if it.text().split()[0] == oid:
                it.setText(f"{oid}  [{bpt_class or '—'}]")
