"""Classify tab: run the bundled (or your own) CNN on every cut-out on a worker thread, train on your labels with
live curves, and inspect the result: thumbnails sorted/filtered by class and confidence, confusion matrix, ROC
curve and the suspect catalogue labels that feed the Vet tab."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.widgets.task_panel import TaskPanel
from galdesk.gui.widgets.thumbnails import ThumbnailGrid

__all__ = ["ClassifyTab"]

#: caption colours: the model agrees / disagrees with the catalogue column
AGREE, DISAGREE = QColor(0, 120, 0), QColor(190, 0, 0)


def _fmt(value) -> str:
    """A metric with 3 decimals; "n/a" when there is none (no test labels, one class only)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{value:.3f}" if value == value else "n/a"


#: The gallery's sort choices: (text, order of :func:`galdesk.ml.service.prediction_rows`)
SORT_CHOICES = (("most ambiguous first", "ambiguous"), ("most confident first", "confident"),
                ("catalogue order", "catalogue"))


class _EpochBridge(QObject):
    """Carries history rows from the training thread to the GUI thread (queued signal)."""

    epoch = Signal(dict)


class ClassifyTab(QWidget):
    finished = Signal(dict)   # summary of the last classification (for tests and the status bar)

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.summary: dict | None = None
        self.preds = None
        self._bridge = _EpochBridge()
        self._bridge.epoch.connect(self._on_epoch)
        self.history: list[dict] = []

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(self._build_run_box())
        ll.addWidget(self._build_train_box(), 1)
        self.result_tabs = QTabWidget()
        self.result_tabs.addTab(self._build_gallery(), "Galaxies")
        self.result_tabs.addTab(self._build_metrics(), "Metrics")
        self.result_tabs.addTab(self._build_suspects(), "Suspect labels")
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.result_tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.panel.disable_while_busy(self.train_btn)
        self._connect(state)
        self._fill_models()

    # -- building ---------------------------------------------------------------------------------------------------
    def _build_run_box(self) -> QGroupBox:
        self.model = QComboBox()
        self.model_btn = QPushButton("Your model…")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.label_column = QComboBox()
        self.label_map = QLineEdit()
        self.label_map.setPlaceholderText("catalogue value=class, … (e.g. spiral_clockwise=spiral)")
        self.label_column.setToolTip("Catalogue column to compare with: metrics, suspects, and the captions under "
                                     "the thumbnails (green: the model agrees, red: it does not)")
        self.tta = QCheckBox("average 8 rotations/flips")
        self.panel = TaskPanel("Classify", title="Classify")
        self.runner = self.panel.runner
        self.run_btn = self.panel.buttons[0]
        form = QFormLayout()
        mrow = QHBoxLayout()
        mrow.addWidget(self.model, 1)
        mrow.addWidget(self.model_btn)
        form.addRow("Model", mrow)
        form.addRow("Device", self.device)
        form.addRow("Catalogue labels", self.label_column)
        form.addRow("Label map", self.label_map)
        form.addRow("", self.tta)
        form.addRow(self.panel)
        box = QGroupBox("Classify")
        box.setLayout(form)
        return box

    def _build_train_box(self) -> QGroupBox:
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(30)
        self.classes = QLineEdit()
        self.classes.setPlaceholderText("default: the column's values")
        self.train_btn = QPushButton("Train on catalogue labels")
        tform = QFormLayout()
        tform.addRow("Epochs", self.epochs)
        tform.addRow("Classes", self.classes)
        tform.addRow(self.train_btn)
        self.curves = pg.PlotWidget()
        self.curves.setLabel("bottom", "epoch")
        self.curves.addLegend(offset=(-10, 10))
        self.curves.setMinimumHeight(150)
        self.train_loss = self.curves.plot([], [], pen=pg.mkPen((40, 90, 200), width=1), name="train loss")
        self.val_loss = self.curves.plot([], [], pen=pg.mkPen((220, 80, 40), width=1), name="val loss")
        self.val_acc = self.curves.plot([], [], pen=pg.mkPen((40, 160, 60), width=1), name="val accuracy")
        tform.addRow(self.curves)
        box = QGroupBox("Train")
        box.setLayout(tform)
        return box

    def _build_gallery(self) -> QWidget:
        self.filter = QComboBox()
        self.filter.addItem("all", None)
        self.sort = QComboBox()
        for text, order in SORT_CHOICES:
            self.sort.addItem(text, order)
        self.grid = ThumbnailGrid(icon_size=80)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.filter)
        top.addWidget(QLabel("Sort"))
        top.addWidget(self.sort)
        top.addStretch(1)
        w = QWidget()
        gl = QVBoxLayout(w)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addLayout(top)
        gl.addWidget(self.grid, 1)
        return w

    def _build_metrics(self) -> QWidget:
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QAbstractItemView.NoEditTriggers)     # a result, not an input
        self.roc = pg.PlotWidget()
        self.roc.setLabel("bottom", "false positive rate")
        self.roc.setLabel("left", "true positive rate")
        self.roc.setXRange(0, 1)
        self.roc.setYRange(0, 1)
        self.roc.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=Qt.DashLine))
        self.roc_curve = self.roc.plot([], [], pen=pg.mkPen((40, 90, 200), width=1))
        w = QWidget()
        ml = QVBoxLayout(w)
        ml.addWidget(self.metrics_label)
        ml.addWidget(QLabel("Confusion matrix (rows: catalogue, columns: predicted)"))
        ml.addWidget(self.confusion)
        ml.addWidget(self.roc, 1)
        return w

    def _build_suspects(self) -> QWidget:
        self.suspects = QListWidget()
        self.suspects.setIconSize(QSize(64, 64))     # each suspect with its thumbnail: judge it at a glance
        self.vet_suspects_btn = QPushButton("Vet these (suspect order)")
        w = QWidget()
        sl = QVBoxLayout(w)
        sl.addWidget(QLabel("Catalogue labels the model confidently contradicts (p ≥ 0.9)"))
        sl.addWidget(self.suspects, 1)
        sl.addWidget(self.vet_suspects_btn)
        return w

    def _connect(self, state) -> None:
        self.run_btn.clicked.connect(self.classify)
        self.train_btn.clicked.connect(self.train)
        self.model_btn.clicked.connect(self._choose_model_file)
        self.filter.currentIndexChanged.connect(self._apply_view)
        self.sort.currentIndexChanged.connect(self._apply_view)
        self.label_column.currentIndexChanged.connect(self._caption)   # captions coloured against that column
        self.label_map.editingFinished.connect(self._caption)
        self.suspects.itemActivated.connect(self._on_suspect_activated)
        self.vet_suspects_btn.clicked.connect(self._vet_suspects)
        self.grid.objectActivated.connect(state.set_current)
        state.projectChanged.connect(self._on_project_changed)
        state.objectsChanged.connect(self._on_objects_changed)
        state.displayChanged.connect(self.grid.thumbs.set_display)

    # -- set-up --------------------------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        from galdesk.ml.weights import list_bundled

        self.model.clear()
        for m in list_bundled():
            metrics = m.get("metrics") or {}
            acc = metrics.get("accuracy")
            text = m["name"] + (f"  (test accuracy {acc:.3f})" if isinstance(acc, float) else "")
            self.model.addItem(text, m["name"])
        if self.model.count() == 0:
            self.model.addItem("(no bundled model)", None)

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.safetensors *.pt *.pth)")
        if path:
            self._add_model_file(path)

    def _add_model_file(self, path: str, suffix: str = "") -> None:
        """Offer a model file by its name (the full path in the tooltip, not across the panel) and choose it."""
        from pathlib import Path

        self.model.addItem(Path(path).stem + suffix, path)
        self.model.setItemData(self.model.count() - 1, path, Qt.ToolTipRole)
        self.model.setCurrentIndex(self.model.count() - 1)

    def _on_project_changed(self, project) -> None:
        self._on_objects_changed()
        self.summary = None
        self.preds = None
        self.metrics_label.setText("")                # nothing of the previous project stays on screen
        self.confusion.setRowCount(0)
        self.confusion.setColumnCount(0)
        self.roc_curve.setData([], [])
        self.roc.setTitle("")
        self.suspects.clear()
        self.result_tabs.setTabText(2, "Suspect labels (0)")
        if project is not None:
            self._show_stored()

    def _on_objects_changed(self) -> None:
        from galdesk.ml.service import label_columns

        project = self.state.project
        self.label_column.clear()
        self.label_column.addItem("(none)", None)
        if project is None:
            self.grid.thumbs.set_project(None)
            return
        for c in label_columns(project):
            self.label_column.addItem(c, c)
        self.grid.thumbs.set_project(project)
        self.grid.thumbs.set_display(self.state.display)

    # -- running ------------------------------------------------------------------------------------------------------
    def _options(self) -> dict:
        from galdesk.ml.service import parse_label_map

        dev = self.device.currentText()
        return {"device": None if dev == "auto" else dev, "label_column": self.label_column.currentData(),
                "label_map": parse_label_map(self.label_map.text())}

    def classify(self) -> None:
        from galdesk.ml.service import classify_project

        project = self.state.project
        if project is None or project.n_images == 0:
            QMessageBox.information(self, "Classify", "Open some cut-outs first.")
            return
        model = self.model.currentData()
        if model is None:
            QMessageBox.information(self, "Classify", "Choose a model file.")
            return
        opts = self._options()
        self.panel.start(classify_project, str(project.path), model=model, tta=self.tta.isChecked(), **opts,
                         on_result=self._on_classified, job_title="Classify")

    def train(self) -> None:
        from galdesk.ml.service import train_project
        from galdesk.ml.train import TrainConfig

        project = self.state.project
        column = self.label_column.currentData()
        if project is None or column is None:
            QMessageBox.information(self, "Train", "Choose the catalogue column that holds the labels.")
            return
        opts = self._options()
        classes = [c.strip() for c in self.classes.text().split(",") if c.strip()] or None
        self.history = []
        for curve in (self.train_loss, self.val_loss, self.val_acc):
            curve.setData([], [])
        cfg = TrainConfig(epochs=self.epochs.value(), device=opts["device"])
        self.panel.start(train_project, str(project.path), column, class_names=classes,
                         label_map=opts["label_map"], config=cfg, on_epoch=self._bridge.epoch.emit,
                         on_result=self._on_trained, job_title="Train")

    def cancel(self) -> None:
        self.panel.cancel()

    def shutdown(self) -> None:
        self.panel.shutdown()

    def _on_epoch(self, row: dict) -> None:
        self.history.append(row)
        ep = [r["epoch"] for r in self.history]
        self.train_loss.setData(ep, [r["train_loss"] for r in self.history])
        self.val_loss.setData(ep, [r["val_loss"] for r in self.history])
        self.val_acc.setData(ep, [r["val_accuracy"] for r in self.history])

    def _on_trained(self, out: dict) -> None:
        test = (out.get("metrics") or {}).get("test") or {}
        self._add_model_file(out["model"], " (trained)")
        self.panel.set_status(f"trained: test accuracy {_fmt(test.get('accuracy'))}, "
                              f"ROC AUC {_fmt(test.get('roc_auc'))}")

    def _on_classified(self, out: dict) -> None:
        self.summary = out
        self.state.project.reload()
        self.state.resultsChanged.emit("predictions")
        self._show_stored(out)
        self.state.status.emit(f"Classified {out['classified']} objects on {out['device']}")
        self.finished.emit(out)

    # -- showing results ----------------------------------------------------------------------------------------------
    def _show_stored(self, out: dict | None = None) -> None:
        from galdesk.project.results import load_predictions

        project = self.state.project
        self.preds = load_predictions(project)
        if self.preds is None:
            return
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.addItem("all", None)
        for c in self.preds.class_names:
            self.filter.addItem(f"predicted {c}", c)
        self.filter.blockSignals(False)
        self._caption()
        self.grid.fit_captions(f"{c} 0.00" for c in self.preds.class_names)
        self._apply_view()
        if out is None:                                   # a reopened project: the summary stored with them
            out = self._stored_summary()
        self._show_metrics(out)

    def _caption(self) -> None:
        """Captions "class p" under the thumbnails, green where the model agrees with the chosen catalogue column,
        red where it does not (the tooltip of the legend label says so)."""
        from galdesk.ml.service import parse_label_map, prediction_agreement

        if self.preds is None:
            return
        conf = self.preds.confidence
        captions = {int(r): f"{self.preds.label(i)} {conf[i]:.2f}" for i, r in enumerate(self.preds.rows)}
        agree = prediction_agreement(self.state.project, self.preds, self.label_column.currentData(),
                                     parse_label_map(self.label_map.text()))
        colours = {r: AGREE if ok else DISAGREE for r, ok in agree.items()}
        self.grid.thumbs.set_labels(captions, colours)

    def _stored_summary(self) -> dict:
        """The classification summary kept in the predictions result (metrics, suspects, label column), with the
        label column chosen again so that the ROC curve is drawn against it."""
        summary = self.preds.summary
        column = summary.get("label_column")
        if column and self.label_column.findData(column) >= 0:
            self.label_column.setCurrentIndex(self.label_column.findData(column))
        return {"classified": len(self.preds.rows), "model": self.preds.model_id, "device": self.preds.device,
                "class_names": list(self.preds.class_names), "metrics": summary.get("metrics") or {},
                "suspects": summary.get("suspects") or [], "n_suspects": summary.get("n_suspects")}

    def _apply_view(self) -> None:
        from galdesk.ml.service import prediction_rows

        if self.preds is None:
            return
        self.grid.thumbs.set_rows(prediction_rows(self.preds, self.filter.currentData(), self.sort.currentData()))

    def _show_metrics(self, out: dict) -> None:
        m = out.get("metrics") or {}
        names = out.get("class_names") or []
        if not m or not m.get("n_labelled"):
            self.metrics_label.setText(f"{out['classified']} objects classified with {out['model']} on "
                                       f"{out['device']}. Choose a catalogue column to compare with its labels.")
            self.confusion.setRowCount(0)
            self.roc_curve.setData([], [])
            self.roc.setTitle("")
            self.suspects.clear()
            self.result_tabs.setTabText(2, "Suspect labels (0)")
            return
        auc, bal = m.get("roc_auc"), m.get("balanced_accuracy")
        self.metrics_label.setText(
            f"{out['classified']} classified with {out['model']} on {out['device']} · against "
            f"{self.label_column.currentText()}: accuracy {m['accuracy']:.3f}"
            + (f", balanced accuracy {bal:.3f}" if bal is not None else "")
            + (f", ROC AUC {auc:.3f}" if auc is not None else "") + f" on {m['n_labelled']} labelled objects")
        cm = m["confusion_matrix"]
        self.confusion.setRowCount(len(names))
        self.confusion.setColumnCount(len(names))
        self.confusion.setVerticalHeaderLabels([f"catalogue {n}" for n in names])
        self.confusion.setHorizontalHeaderLabels([f"model {n}" for n in names])
        for i in range(len(names)):
            total = max(sum(cm[i]), 1)
            for j in range(len(names)):
                share = cm[i][j] / total
                item = QTableWidgetItem(f"{cm[i][j]}  ({share:.0%})")
                item.setTextAlignment(Qt.AlignCenter)
                # a heat map of each row's shares (the diagonal: recall of that class), as scikit-learn draws it
                item.setBackground(QColor.fromRgbF(1 - 0.75 * share, 1 - 0.55 * share, 1 - 0.2 * share))
                item.setForeground(QColor("white") if share > 0.6 else QColor("black"))
                item.setToolTip(f"{cm[i][j]} of the {sum(cm[i])} objects the catalogue calls {names[i]} "
                                f"were classified {names[j]} ({share:.1%})")
                self.confusion.setItem(i, j, item)
        self.confusion.resizeColumnsToContents()
        self._draw_roc(out)
        self.suspects.clear()
        for s in out.get("suspects", []):
            item = QListWidgetItem(f"{s['id']}: catalogue {s['catalogue']}, model {s['predicted']} "
                                   f"(p = {s['confidence']:.2f})")
            item.setData(Qt.UserRole, s["id"])
            try:
                item.setIcon(QIcon(self.grid.thumbs.pixmap(self.state.project.find(str(s["id"]), "image"))))
            except KeyError:
                pass   # an object that is gone: the line without its picture
            self.suspects.addItem(item)
        self.result_tabs.setTabText(2, f"Suspect labels ({out.get('n_suspects') or self.suspects.count()})")

    def _draw_roc(self, out: dict) -> None:
        from galdesk.ml.service import binary_roc

        roc = binary_roc(self.state.project, self.preds, self.label_column.currentData(), self._options()["label_map"])
        self.roc_curve.setData(*(roc if roc is not None else ([], [])))
        auc = (out.get("metrics") or {}).get("roc_auc")
        names = list(self.preds.class_names) if self.preds is not None else []
        title = "" if roc is None or len(names) != 2 else (
            f"positive class: {names[1]}" + (f" · AUC {auc:.3f}" if auc is not None else ""))
        self.roc.setTitle(title, size="9pt")

    def _on_suspect_activated(self, item) -> None:
        oid = item.data(Qt.UserRole)
        try:
            row = self.state.project.find(oid, "image")
        except KeyError:
            return
        self.state.set_current(row)
        self.result_tabs.setCurrentIndex(0)
        self.grid.select_object(row)

    def _vet_suspects(self) -> None:
        win = self.window()
        vet = getattr(win, "extra_tabs", {}).get("Vet")
        if vet is None or not hasattr(vet, "order"):
            return
        vet.order.setCurrentIndex(vet.order.findData("suspect"))
        win.tabs.setCurrentWidget(vet)
        vet.start()


if __name__ == "__main__":  # pragma: no cover - preview on a project given on the command line, or the demo
    from galdesk.gui.preview import preview_tab

    preview_tab(ClassifyTab, "ClassifyTab preview (python -m galdesk.gui.tabs.classify_tab [PROJECT])")
