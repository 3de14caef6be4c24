"""Data tab: thumbnail grid of cut-outs and list of spectra on the left; the current object, shown DS9-style
(or as a spectrum plot), with its catalogue fields on the right. Above the lists: find an object by id or by RA Dec
[radius], keep only the objects a filter expression passes (``z < 0.1 and gz1_label == 0``) and sort by any
column (:mod:`galdesk.project.query` does the work)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.widgets.image_view import ImageView
from galdesk.gui.widgets.spectrum_plot import SpectrumPlot
from galdesk.gui.widgets.thumbnails import ThumbnailGrid
from galdesk.project.objects import BASE_COLUMNS, cell_str

__all__ = ["DataTab"]

SPEC_COLUMNS = ("id", "z", "spec_class", "subclass", "source")


def _display_value(name: str, value) -> str:
    """A field as a person reads it: RA/Dec to 1e-6 deg (4 mas), redshifts to 5 decimals, other floats to 6
    significant digits; integers and text as they are (an 18-digit SDSS id stays whole)."""
    text = cell_str(value)
    if not text or not isinstance(value, (float, np.floating)):
        return text
    key = name.lower()
    if key in ("ra", "dec", "ra_deg", "dec_deg"):
        return f"{float(value):.6f}"
    if key in ("z", "redshift", "z_err", "zerr"):
        return f"{float(value):.5f}"
    return f"{float(value):.6g}"


class DataTab(QWidget):
    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.grid = ThumbnailGrid()
        self.spec_model = QStandardItemModel(0, len(SPEC_COLUMNS))
        self.spec_model.setHorizontalHeaderLabels(["id", "z", "class", "subclass", "file"])
        self.spec_table = QTableView()
        self.spec_table.setModel(self.spec_model)
        self.spec_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.spec_table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.spec_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.spec_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.spec_table.setSortingEnabled(True)
        self.lists = QTabWidget()
        self.lists.addTab(self.grid, "Images")
        self.lists.addTab(self.spec_table, "Spectra")
        left = self._build_search()

        self.image_view = ImageView()
        self.spectrum_plot = SpectrumPlot()
        self.empty = QLabel("Open cut-outs, spectra, a catalogue or a project (File menu, or drop files here).")
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setWordWrap(True)
        self.detail = QStackedWidget()
        for w in (self.empty, self.image_view, self.spectrum_plot):
            self.detail.addWidget(w)
        self.fields = QTableWidget(0, 2)
        self.fields.setHorizontalHeaderLabels(["field", "value"])
        self.fields.horizontalHeader().setStretchLastSection(True)
        self.fields.verticalHeader().hide()
        self.fields.setEditTriggers(QAbstractItemView.NoEditTriggers)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.detail)
        right.addWidget(self.fields)
        right.setStretchFactor(0, 4)
        right.setStretchFactor(1, 1)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([520, 780])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)

        state.projectChanged.connect(self._on_project_changed)
        state.objectsChanged.connect(self._on_objects_changed)
        state.currentChanged.connect(self._on_current_changed)
        state.displayChanged.connect(self._on_display_changed)
        self.grid.objectActivated.connect(state.set_current)
        self.spec_table.selectionModel().currentRowChanged.connect(self._on_spec_row)
        self.image_view.displayChanged.connect(self._on_view_display)

    def _build_search(self) -> QWidget:
        """Find (id or position), filter (expression) and sort (column) above the lists; returns the left panel."""
        self.find = QLineEdit()
        self.find.setPlaceholderText("find: id, or RA Dec [radius\"]")
        self.find.setToolTip("An id (or part of one), or a position in degrees or sexagesimal, e.g. 150.1 2.2 or "
                             "10:00:24 +02:12:00, with an optional radius in arcsec (default 5); Enter finds")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter: z < 0.1 and gz1_label == 0")
        self.filter.setToolTip("Conditions on columns (< <= > >= == !=) joined by 'and'; empty shows everything; "
                               "Enter applies")
        self.sort = QComboBox()
        self.sort.setToolTip("Sort the objects by a column (missing values last)")
        self.descending = QCheckBox("desc")
        self.search_note = QLabel("")
        self.search_note.setWordWrap(True)
        bar = QGridLayout()
        bar.addWidget(self.find, 0, 0, 1, 3)
        bar.addWidget(self.filter, 1, 0)
        bar.addWidget(self.sort, 1, 1)
        bar.addWidget(self.descending, 1, 2)
        bar.setColumnStretch(0, 3)
        bar.setColumnStretch(1, 2)
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(self.search_note)
        lay.addWidget(self.lists, 1)
        self.find.returnPressed.connect(self.find_object)
        self.filter.returnPressed.connect(self.apply_view)
        self.sort.currentIndexChanged.connect(self.apply_view)
        self.descending.toggled.connect(self.apply_view)
        return left

    def find_object(self) -> None:
        """Select the first object matching the find field (id or position) and say what was found."""
        from galdesk.project.query import find_objects

        project = self.state.project
        if project is None:
            return
        rows, message = find_objects(project.objects, self.find.text())
        self.search_note.setText(message)
        if rows.size:
            kind = str(project.objects["kind"][int(rows[0])])
            self.lists.setCurrentIndex(0 if kind == "image" else 1)
            self.state.set_current(int(rows[0]))

    def apply_view(self) -> None:
        """Show the objects the filter passes, in the chosen order (images in the grid, spectra in their list)."""
        from galdesk.project.query import filter_rows, sort_rows

        project = self.state.project
        if project is None:
            return
        table = project.objects
        try:
            rows = filter_rows(table, self.filter.text()) if self.filter.text().strip() else np.arange(len(table))
        except ValueError as exc:
            self.search_note.setText(f"filter not applied: {exc}")
            return
        column = self.sort.currentData()
        if column:
            rows = sort_rows(table, rows, column, self.descending.isChecked())
        kind = np.asarray(table["kind"]).astype(str)
        images, spectra = rows[kind[rows] == "image"], rows[kind[rows] == "spectrum"]
        self.grid.thumbs.set_rows(images)
        self._fill_spectra(spectra)
        shown = f"{images.size} of {project.n_images} images, {spectra.size} of {project.n_spectra} spectra"
        self.search_note.setText(shown if self.filter.text().strip() or column else "")
        filtered = bool(self.filter.text().strip())
        self.lists.setTabText(0, f"Images ({images.size} of {project.n_images})" if filtered else
                              f"Images ({project.n_images})")
        self.lists.setTabText(1, f"Spectra ({spectra.size} of {project.n_spectra})" if filtered else
                              f"Spectra ({project.n_spectra})")

    # -- state -> view -------------------------------------------------------------------------------------------------
    def _on_project_changed(self, project) -> None:
        self._on_objects_changed()
        if project is not None and len(project.objects):
            rows = project.image_rows()
            self.state.set_current(int(rows[0]) if rows.size else 0)

    def _on_objects_changed(self) -> None:
        project = self.state.project
        self.grid.thumbs.set_project(project)
        self.grid.thumbs.set_display(self.state.display)
        self.spec_model.setRowCount(0)
        if project is None:
            self.empty.setText("Open cut-outs, spectra, a catalogue or a project (File menu, or drop files here).")
            self.detail.setCurrentWidget(self.empty)
            return
        if len(project.objects):
            self.empty.setText("Select a galaxy or a spectrum on the left.")
        self._fill_sort_columns(project)
        self._fill_spectra(project.spectrum_rows())
        self.lists.setTabText(0, f"Images ({project.n_images})")
        self.lists.setTabText(1, f"Spectra ({project.n_spectra})")
        if project.n_images == 0 and project.n_spectra:
            self.lists.setCurrentIndex(1)
        if self.filter.text().strip() or self.sort.currentData():
            self.apply_view()

    def _fill_sort_columns(self, project) -> None:
        current = self.sort.currentData()
        self.sort.blockSignals(True)
        self.sort.clear()
        self.sort.addItem("file order", None)
        for name in project.objects.colnames:
            if name not in ("group", "row", "hdu"):
                self.sort.addItem(name, name)
        k = self.sort.findData(current) if current else 0
        self.sort.setCurrentIndex(max(k, 0))
        self.sort.blockSignals(False)

    def _fill_spectra(self, rows) -> None:
        self.spec_model.setRowCount(0)
        objs = self.state.project.objects
        for row in rows:
            items = []
            for col in SPEC_COLUMNS:
                value = objs[col][row]
                text = cell_str(value)
                if col == "z":
                    text = "" if not np.isfinite(value) else f"{float(value):.5f}"
                it = QStandardItem(text)
                it.setData(int(row), Qt.UserRole + 1)
                items.append(it)
            self.spec_model.appendRow(items)

    def _on_display_changed(self, settings) -> None:
        self.grid.thumbs.set_display(settings)
        self.image_view.set_settings(settings)

    def _on_current_changed(self, row: int) -> None:
        project = self.state.project
        if project is None or row < 0:
            self.detail.setCurrentWidget(self.empty)
            self.fields.setRowCount(0)
            return
        obj = project.objects[row]
        if obj["kind"] == "image":
            self.image_view.set_settings(self.state.display)
            self.image_view.set_image(project.load_full_image(row))
            self.detail.setCurrentWidget(self.image_view)
            self.grid.select_object(row)
        else:
            self.spectrum_plot.set_spectrum(project.spectrum(row))
            self.detail.setCurrentWidget(self.spectrum_plot)
        self._show_fields(obj)

    def _show_fields(self, obj) -> None:
        names = [c for c in obj.colnames if c not in ("group", "row")]
        self.fields.setRowCount(len(names))
        for i, name in enumerate(names):
            value = obj[name]
            text = _display_value(name, value)
            unit = getattr(obj.table[name] if hasattr(obj, "table") else None, "unit", None)
            if unit is not None and text:
                text += f" {unit}"
            key = QTableWidgetItem(name)
            if name not in BASE_COLUMNS:
                key.setToolTip("catalogue column")
            self.fields.setItem(i, 0, key)
            self.fields.setItem(i, 1, QTableWidgetItem(text))

    # -- view -> state -------------------------------------------------------------------------------------------------
    def _on_spec_row(self, current, _previous) -> None:
        if current.isValid():
            row = self.spec_model.item(current.row(), 0).data(Qt.UserRole + 1)
            self.state.set_current(int(row))

    def _on_view_display(self, settings) -> None:
        self.state.set_display(settings)


if __name__ == "__main__":  # pragma: no cover - preview on a project given on the command line, or the demo
    from galdesk.gui.preview import preview_tab

    preview_tab(DataTab, "DataTab preview (python -m galdesk.gui.tabs.data_tab [PROJECT])")
