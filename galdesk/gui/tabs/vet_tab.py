"""Vet tab: a keyboard-first queue of objects to decide on.

Every key press is one decision, committed to the project journal (SQLite WAL, synchronous) *before* the card
advances; undo and redo append records. Keys (also shown with F1 or ?):

=================  ==============================================
1 … 9              label with class 1 … 9 of the schema
A / Enter          accept the classifier's prediction
X / Delete         reject (not a galaxy, bad data, no class fits)
Space              skip (the object goes to the end of the queue)
Ctrl+1 … Ctrl+9    toggle flag 1 … 9
N                  write a note
Ctrl+Z / U         undo;   Ctrl+Y / Ctrl+Shift+Z: redo
→ / J, ← / K       next / previous object
B                  blink: next band (or composite)
T                  next stretch
R / M              rotate 90° / mirror
F1 / ?             this help
=================  ==============================================
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from galdesk.display import STRETCHES
from galdesk.gui.widgets.image_view import ImageView
from galdesk.gui.widgets.spectrum_plot import SpectrumPlot
from galdesk.gui.worker import TaskRunner
from galdesk.project.objects import cell_str

__all__ = ["VetTab", "HELP_HTML"]

HELP_HTML = """<h3>Vetting keys</h3><table cellpadding=3>
<tr><td><b>1 … 9</b></td><td>label with class 1 … 9</td></tr>
<tr><td><b>A</b>, Enter</td><td>accept the prediction</td></tr>
<tr><td><b>X</b>, Delete</td><td>reject</td></tr>
<tr><td><b>Space</b></td><td>skip (to the end of the queue)</td></tr>
<tr><td><b>Ctrl+1 … 9</b></td><td>toggle flag 1 … 9</td></tr>
<tr><td><b>N</b></td><td>note</td></tr>
<tr><td><b>Ctrl+Z</b>, U</td><td>undo</td></tr>
<tr><td><b>Ctrl+Y</b>, Ctrl+Shift+Z</td><td>redo</td></tr>
<tr><td><b>→</b> J, <b>←</b> K</td><td>next / previous</td></tr>
<tr><td><b>B</b></td><td>blink between bands</td></tr>
<tr><td><b>T</b></td><td>next stretch</td></tr>
<tr><td><b>R</b> / <b>M</b></td><td>rotate 90° / mirror</td></tr>
<tr><td><b>F1</b>, ?</td><td>this help</td></tr></table>
<p>Each decision is on disk before the next object appears; undo and redo are recorded too, never erased.</p>"""


class VetTab(QWidget):
    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.session = None
        self.queue: list[str] = []
        self.pos = 0
        self._cache: dict[str, object] = {}
        self._fit_runner = TaskRunner(self)   # the saved line fit drawn over a spectrum card (no progress shown)

        split = QSplitter(Qt.Horizontal)
        split.addWidget(self._build_card())
        split.addWidget(self._build_decision_panel())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 330])
        lay = QVBoxLayout(self)
        lay.addLayout(self._build_top_bar())
        lay.addWidget(split, 1)

        self.start_btn.clicked.connect(self.start)
        state.projectChanged.connect(self._on_project_changed)
        state.resultsChanged.connect(self._on_results_changed)
        self._install_keys()

    # -- building -----------------------------------------------------------------------------------------------
    def _build_top_bar(self) -> QHBoxLayout:
        from galdesk.vetting import QUEUE_ORDERS

        self.vetter = QLineEdit()
        self.vetter.setPlaceholderText("your name")
        self.vetter.setMaximumWidth(180)
        self.order = QComboBox()
        for o in QUEUE_ORDERS:
            self.order.addItem(o, o)
        self.class_filter = QComboBox()
        self.class_filter.addItem("any class", None)
        self.kind_filter = QComboBox()
        for text, data in (("images and spectra", None), ("images", "image"), ("spectra", "spectrum")):
            self.kind_filter.addItem(text, data)
        self.max_conf = QDoubleSpinBox()
        self.max_conf.setRange(0.0, 1.0)
        self.max_conf.setSingleStep(0.05)
        self.max_conf.setValue(1.0)
        self.max_conf.setPrefix("p ≤ ")
        self.max_conf.setToolTip("only objects whose top class probability is at most this")
        self.start_btn = QPushButton("Start / rebuild queue")
        self.progress = QLabel("")
        top = QHBoxLayout()
        for w in (QLabel("Vetter"), self.vetter, QLabel("Order"), self.order, self.class_filter, self.kind_filter,
                  self.max_conf, self.start_btn):
            top.addWidget(w)
        top.addWidget(self.progress, 1)
        help_btn = QPushButton("Keys (F1)")
        help_btn.clicked.connect(self.show_help)
        top.addWidget(help_btn)
        return top

    def _build_card(self) -> QWidget:
        """The object on screen (image, spectrum or an empty message), its title and its fields."""
        self.title = QLabel("")
        self.title.setTextFormat(Qt.RichText)
        self.image_view = ImageView(show_header=False)
        self.spectrum_plot = SpectrumPlot()
        self.card = QStackedWidget()
        self.empty = QLabel("Choose an order and press Start. Decisions are saved as you make them.")
        self.empty.setAlignment(Qt.AlignCenter)
        for w in (self.empty, self.image_view, self.spectrum_plot):
            self.card.addWidget(w)
        self.fields = QTableWidget(0, 2)
        self.fields.setHorizontalHeaderLabels(["field", "value"])
        self.fields.horizontalHeader().setStretchLastSection(True)
        self.fields.verticalHeader().hide()
        self.fields.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.fields.setFocusPolicy(Qt.NoFocus)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.title)
        ll.addWidget(self.card, 4)
        ll.addWidget(self.fields, 1)
        return left

    def _build_decision_panel(self) -> QWidget:
        self.buttons_box = QVBoxLayout()
        self.decision = QLabel("")
        self.decision.setWordWrap(True)
        self.history = QListWidget()
        self.history.setFocusPolicy(Qt.NoFocus)
        self.agreement = QLabel("")
        self.agreement.setWordWrap(True)
        panel = QWidget()
        pl = QVBoxLayout(panel)
        pl.addWidget(QLabel("<b>Decide</b>"))
        pl.addLayout(self.buttons_box)
        pl.addWidget(self.decision)
        pl.addWidget(QLabel("<b>Your last actions</b>"))
        pl.addWidget(self.history, 1)
        pl.addWidget(self.agreement)
        return panel

    # -- keys -------------------------------------------------------------------------------------------------------
    def _install_keys(self) -> None:
        def key(seq, fn):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
            return sc

        for k in range(1, 10):
            key(str(k), lambda k=k: self.label_key(k))
            key(f"Ctrl+{k}", lambda k=k: self.flag_key(k))
        for seq in ("A", "Return", "Enter"):
            key(seq, self.accept)
        for seq in ("X", "Delete"):
            key(seq, self.reject)
        key("Space", self.skip)
        key("N", self.write_note)
        for seq in ("Ctrl+Z", "U"):
            key(seq, self.undo)
        for seq in ("Ctrl+Y", "Ctrl+Shift+Z"):
            key(seq, self.redo)
        for seq in ("Right", "J"):
            key(seq, self.next)
        for seq in ("Left", "K"):
            key(seq, self.previous)
        key("B", self.blink)
        key("T", self.next_stretch)
        key("R", self.image_view.rotate)
        key("M", self.image_view.flip)
        for seq in ("F1", "?", "Shift+/"):
            key(seq, self.show_help)

    # -- session ----------------------------------------------------------------------------------------------------
    def _on_project_changed(self, project) -> None:
        self.session = None
        self.queue, self.pos = [], 0
        self._cache.clear()
        name = ""
        if self.state.settings is not None:
            name = self.state.settings.get("vetter") or ""
        if not name:
            from galdesk.vetting import default_vetter

            name = default_vetter()
        if not self.vetter.text():
            self.vetter.setText(name)
        self.card.setCurrentWidget(self.empty)
        self.progress.setText("")
        if project is not None and len(project.objects):
            from galdesk.vetting import VetSession

            try:
                session = VetSession(project, vetter=self.vetter.text().strip() or None)
                self._fill_class_filter(session)
                saved = session.saved_queue_settings()
                if saved:
                    self.order.setCurrentIndex(max(self.order.findData(saved["order"]), 0))
                elif session.predictions is None:
                    self.order.setCurrentIndex(self.order.findData("random"))
            except ValueError:
                pass

    def _fill_class_filter(self, session) -> None:
        self.class_filter.clear()
        self.class_filter.addItem("any class", None)
        if session.predictions is not None:
            for c in session.predictions.class_names:
                self.class_filter.addItem(f"predicted {c}", c)

    def _on_results_changed(self, name: str) -> None:
        if self.session is not None and name in ("predictions", "clusters", "line_fit"):
            self.session.refresh()
        if name == "predictions" and self.state.project is not None and len(self.state.project.objects):
            from galdesk.vetting import VetSession

            try:
                self._fill_class_filter(self.session or VetSession(self.state.project, vetter="-"))
            except ValueError:
                pass

    def start(self) -> None:
        """(Re)build the queue for this vetter and show its first object."""
        from galdesk.vetting import VetSession

        project = self.state.project
        if project is None or not len(project.objects):
            QMessageBox.information(self, "Vet", "Open some data first.")
            return
        name = self.vetter.text().strip()
        if not name:
            QMessageBox.information(self, "Vet", "Type your name: every decision records who took it.")
            return
        if self.state.settings is not None:
            self.state.settings.set("vetter", name)
            self.state.settings.save()
        self.session = VetSession(project, vetter=name)
        self._build_buttons()
        try:
            self.queue = self.session.queue(self.order.currentData(), **self.filters())
        except ValueError as exc:
            QMessageBox.warning(self, "Vet", str(exc))
            return
        self.pos = 0
        self._refresh_history()
        self._refresh_agreement()
        self.show_current()
        self.setFocus()

    def filters(self) -> dict:
        """The queue filters chosen in the bar (only those that restrict anything)."""
        f = {}
        if self.class_filter.currentData() is not None:
            f["classes"] = [self.class_filter.currentData()]
        if self.kind_filter.currentData() is not None:
            f["kind"] = self.kind_filter.currentData()
        if self.max_conf.value() < 1.0:
            f["max_confidence"] = float(self.max_conf.value())
        return f

    def shutdown(self) -> None:
        self._fit_runner.cancel()
        self._fit_runner.wait(10000)

    def _build_buttons(self) -> None:
        while self.buttons_box.count():
            item = self.buttons_box.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        schema = self.session.schema
        self._buttons_kind = self._current_kind()
        for i, cls in enumerate(schema.classes_for(self._buttons_kind)[:9], 1):
            b = QPushButton(f"{i}  {cls}")
            b.setFocusPolicy(Qt.NoFocus)
            b.clicked.connect(lambda _=False, i=i: self.label_key(i))
            self.buttons_box.addWidget(b)
        for text, fn in (("A  accept prediction", self.accept), ("X  reject", self.reject),
                         ("Space  skip", self.skip), ("N  note", self.write_note), ("U  undo", self.undo)):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.NoFocus)
            b.clicked.connect(fn)
            self.buttons_box.addWidget(b)
        if schema.flags:
            self.buttons_box.addWidget(QLabel("Flags: " + ", ".join(f"Ctrl+{i} {f}" for i, f in
                                                                     enumerate(schema.flags[:9], 1))))

    # -- showing ----------------------------------------------------------------------------------------------------
    @property
    def current_id(self) -> str | None:
        return self.queue[self.pos] if 0 <= self.pos < len(self.queue) else None

    def _row_of(self, oid: str) -> int:
        project = self.state.project
        try:
            return project.find(oid, "image")
        except KeyError:
            return project.find(oid)

    def _current_kind(self) -> str | None:
        """"image" or "spectrum" for the object shown (its number keys are that kind's classes), None for none."""
        oid = self.current_id if self.session is not None else None
        if oid is None or self.state.project is None:
            return None
        return str(self.state.project.objects["kind"][self._row_of(oid)])

    def _load(self, oid: str):
        if oid in self._cache:
            return self._cache[oid]
        project = self.state.project
        row = self._row_of(oid)
        obj = project.objects[row]
        data = project.load_full_image(row) if obj["kind"] == "image" else project.spectrum(row)
        self._cache[oid] = data
        if len(self._cache) > 8:
            self._cache.pop(next(iter(self._cache)))
        return data

    def show_current(self) -> None:
        oid = self.current_id
        n_done = len(self.session.current()) if self.session else 0
        self.progress.setText(f"{self.pos + 1 if oid else self.pos} / {len(self.queue)} in queue · "
                              f"{n_done} decided by {self.session.vetter if self.session else '-'}")
        if oid is None:
            self.card.setCurrentWidget(self.empty)
            self.empty.setText("Queue done. Choose another order, or export the catalogue (File > Export).")
            self.title.setText("")
            self.fields.setRowCount(0)
            return
        data = self._load(oid)
        from galdesk.io.model import ImageData

        if isinstance(data, ImageData):
            self.image_view.set_settings(self.state.display)
            self.image_view.set_image(data)
            self.card.setCurrentWidget(self.image_view)
        else:
            self.spectrum_plot.set_spectrum(data)
            self.card.setCurrentWidget(self.spectrum_plot)
            self._overlay_fit(oid, data)
        self._show_fields(oid)
        self._show_decision(oid)
        if self._current_kind() != getattr(self, "_buttons_kind", None):
            self._build_buttons()      # a spectrum after a galaxy (or back): that kind's classes on the keys
        # "the next object is ready at once": read it while the vetter looks at this one
        nxt = self.queue[self.pos + 1] if self.pos + 1 < len(self.queue) else None
        if nxt is not None:
            QTimer.singleShot(0, lambda: self._load(nxt) if self.state.project is not None else None)

    def _overlay_fit(self, oid: str, spec) -> None:
        """Draw the saved line fit over the spectrum (recomputed on a worker; the card is shown at once)."""
        from galdesk.lines.service import model_curves

        rec = self.state.project.journal.latest("line_fit").get(oid)
        if rec is None or spec.redshift is None:
            return
        self._fit_runner.start(model_curves, spec, rec.payload,
                               on_result=lambda curves, oid=oid: self.spectrum_plot.set_model(curves)
                               if self.current_id == oid else None)

    def _show_fields(self, oid: str) -> None:
        project = self.state.project
        row = self._row_of(oid)
        obj = project.objects[row]
        rows: list[tuple[str, str]] = []
        pred = self.session.prediction(oid)
        title = f"<b>{oid}</b>"
        if pred is not None:
            title += f" &nbsp; predicted <b>{pred[0]}</b> (p = {pred[1]:.2f})"
            p = self.session.predictions
            idx = p.row_index().get(row)
            if idx is not None:
                rows += [(f"p({c})", f"{p.prob[idx, k]:.3f}") for k, c in enumerate(p.class_names)]
                rows.append(("entropy", f"{p.entropy[idx]:.3f}"))
        if self.session.clusters is not None:
            crow, clab, _ = self.session.clusters
            hit = np.flatnonzero(crow == row)
            if hit.size:
                rows.append(("cluster", str(int(clab[hit[0]]))))
        fit = project.journal.latest("line_fit").get(oid)
        if fit is not None:
            rows.append(("BPT class", str(fit.payload.get("bpt_class"))))
            d = fit.payload.get("delta_bic")
            rows.append(("broad component", f"{fit.payload.get('broad_needed')}"
                                            + (f" (ΔBIC {d:.1f})" if isinstance(d, (int, float)) else "")))
            for ln in fit.payload.get("lines", []):
                if ln.get("flux") is not None and (ln.get("snr") or 0) >= 3:
                    rows.append((f"{ln['name']} {ln['component']}",
                                 f"flux {ln['flux']:.4g} ± {ln.get('flux_err') or float('nan'):.2g}, "
                                 f"FWHM {ln.get('fwhm_kms') or float('nan'):.0f} km/s"))
        for name in obj.colnames:
            if name in ("group", "row", "hdu"):
                continue
            rows.append((name, cell_str(obj[name])))
        self.title.setText(title)
        self.fields.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            self.fields.setItem(i, 0, QTableWidgetItem(k))
            self.fields.setItem(i, 1, QTableWidgetItem(v))

    def _show_decision(self, oid: str) -> None:
        st = self.session.state(oid)
        if st is None:
            self.decision.setText("not decided yet")
            return
        parts = [f"label: <b>{st.get('label') or '—'}</b>"]
        if st.get("flags"):
            parts.append("flags: " + ", ".join(st["flags"]))
        if st.get("note"):
            parts.append(f"note: {st['note']}")
        self.decision.setText("<br>".join(parts))

    def _refresh_history(self) -> None:
        self.history.clear()
        if self.session is None:
            return
        for rec in self.session.history()[-30:][::-1]:
            p = rec.payload
            what = p.get("label") or p.get("flag") or p.get("note") or (f"→ #{p['target']}" if "target" in p
                                                                         else "")
            self.history.addItem(f"#{rec.seq} {rec.kind} {rec.key} {what}")

    def _refresh_agreement(self) -> None:
        from galdesk.vetting import agreement, vetters

        others = [v for v in vetters(self.state.project) if v != self.session.vetter]
        lines = []
        for other in others[:3]:
            a = agreement(self.state.project, self.session.vetter, other)
            if a["n_common"]:
                k = a["kappa"]
                lines.append(f"vs {other}: κ = {k:.2f} on {a['n_common']} objects, "
                             f"{len(a['conflicts'])} conflict(s)" if k == k else
                             f"vs {other}: {a['n_common']} common objects")
        self.agreement.setText("<br>".join(lines))

    # -- actions ----------------------------------------------------------------------------------------------------
    def context(self) -> dict:
        """What is on screen, recorded with each decision."""
        s = self.image_view.settings
        ctx = {"stretch": s.stretch, "limits": s.limits, "band": s.band, "cmap": s.cmap,
               "rotation": self.image_view.rotation * 90, "flipped": self.image_view.flipped}
        if s.limits == "manual":
            ctx.update(vmin=s.vmin, vmax=s.vmax)
        return ctx

    def _act(self, fn, *args, advance: bool = True) -> None:
        oid = self.current_id
        if self.session is None or oid is None:
            return
        try:
            fn(oid, *args, context=self.context())  # returns once the record is on disk
        except (ValueError, KeyError) as exc:
            self.state.status.emit(str(exc))
            return
        self._refresh_history()
        if advance:
            self.pos += 1
        self.show_current()

    def label_key(self, k: int) -> None:
        if self.session is None:
            return
        classes = self.session.schema.classes_for(self._current_kind())
        if k - 1 < len(classes):
            self._act(self.session.decide, classes[k - 1])

    def flag_key(self, k: int) -> None:
        if self.session is None:
            return
        flags = self.session.schema.flags
        if k - 1 < len(flags):
            self._act(self.session.toggle_flag, flags[k - 1], advance=False)

    def accept(self) -> None:
        if self.session is not None:
            self._act(self.session.accept)

    def reject(self) -> None:
        if self.session is not None:
            self._act(self.session.reject)

    def skip(self) -> None:
        if self.session is None or self.current_id is None:
            return
        oid = self.current_id
        self._act(self.session.skip)
        self.queue.append(oid)  # skipped objects come back at the end
        self.show_current()

    def write_note(self) -> None:
        oid = self.current_id
        if self.session is None or oid is None:
            return
        st = self.session.state(oid) or {}
        text, ok = QInputDialog.getText(self, "Note", f"Note on {oid}:", text=st.get("note", ""))
        if ok:
            self._act(self.session.note, text, advance=False)

    def undo(self) -> None:
        if self.session is None:
            return
        rec = self.session.undo(context=self.context())
        if rec is None:
            self.state.status.emit("Nothing to undo")
            return
        self._goto(rec.key)

    def redo(self) -> None:
        if self.session is None:
            return
        rec = self.session.redo(context=self.context())
        if rec is None:
            self.state.status.emit("Nothing to redo")
            return
        self._refresh_history()
        self.show_current()

    def _goto(self, oid: str) -> None:
        """Show ``oid`` (after an undo): step back to it in the queue, or put it back in front."""
        earlier = [i for i, q in enumerate(self.queue[: self.pos + 1]) if q == oid]
        if earlier:
            self.pos = earlier[-1]
        else:
            self.queue.insert(self.pos, oid)
        self._refresh_history()
        self.show_current()

    def next(self) -> None:
        if self.pos < len(self.queue):
            self.pos += 1
            self.show_current()

    def previous(self) -> None:
        if self.pos > 0:
            self.pos -= 1
            self.show_current()

    def blink(self) -> None:
        combo = self.image_view.controls.band
        if combo.count() > 1:
            combo.setCurrentIndex((combo.currentIndex() + 1) % combo.count())

    def next_stretch(self) -> None:
        combo = self.image_view.controls.stretch
        combo.setCurrentIndex((combo.currentIndex() + 1) % len(STRETCHES))

    def show_help(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Vetting keys")
        box.setTextFormat(Qt.RichText)
        box.setText(HELP_HTML)
        box.open()
        self._help = box


if __name__ == "__main__":  # pragma: no cover - preview on a project given on the command line, or the demo
    from galdesk.gui.preview import preview_tab

    preview_tab(VetTab, "VetTab preview (python -m galdesk.gui.tabs.vet_tab [PROJECT])")
