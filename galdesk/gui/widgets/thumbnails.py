"""A thumbnail grid that stays smooth with 10,000+ objects: one QListView over a model whose thumbnails are
rendered lazily (only when Qt asks for a visible item) and kept in a bounded cache."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView

from galdesk.display import DisplaySettings, thumbnail_rgb8

__all__ = ["ThumbnailModel", "ThumbnailGrid", "rgb8_to_qimage"]

ObjectRowRole = Qt.UserRole + 1


def rgb8_to_qimage(rgb: np.ndarray) -> QImage:
    """(ny, nx, 3) uint8 (row 0 = top) -> QImage (a deep copy: the array may go away)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


class ThumbnailModel(QAbstractListModel):
    """Items are object-table rows of image objects; DecorationRole renders the thumbnail on demand."""

    CACHE = 4000

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._project = None
        self._rows = np.zeros(0, int)
        self._labels: dict[int, str] = {}
        self._colours: dict = {}
        self._settings = DisplaySettings()
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._bands: np.ndarray = np.zeros(0, str)

    def set_project(self, project, rows=None) -> None:
        self.beginResetModel()
        self._project = project
        self._rows = np.asarray(rows if rows is not None else (project.image_rows() if project else []), int)
        self._cache.clear()
        # band names of every object (not only the rows shown now: set_rows may show others later)
        self._bands = np.asarray(project.objects["bands"]).astype(str) if project is not None and \
            len(project.objects) else np.zeros(0, str)
        self.endResetModel()

    def set_rows(self, rows) -> None:
        """Show only these object rows, in this order (sorting / filtering)."""
        self.beginResetModel()
        self._rows = np.asarray(rows, int)
        self.endResetModel()

    def set_labels(self, labels: dict[int, str], colours: dict | None = None) -> None:
        """Caption per object row (e.g. predicted class and probability), and optionally its colour (a QColor per
        row, e.g. by agreement with the catalogue)."""
        self._labels = dict(labels)
        self._colours = dict(colours or {})
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1), [Qt.DisplayRole])

    def set_display(self, settings: DisplaySettings) -> None:
        self._settings = settings
        self._cache.clear()
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1), [Qt.DecorationRole])

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else int(self._rows.size)

    def object_row(self, index: QModelIndex) -> int:
        return int(self._rows[index.row()])

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid() or self._project is None:
            return None
        row = int(self._rows[index.row()])
        if role == Qt.DisplayRole:
            return self._labels.get(row) or str(self._project.objects["id"][row])
        if role == Qt.DecorationRole:
            return self._pixmap(row)
        if role == Qt.ForegroundRole:
            return self._colours.get(row)
        if role == Qt.ToolTipRole:
            obj = self._project.objects[row]
            return f"{obj['id']}\n{obj['source']}"
        if role == ObjectRowRole:
            return row
        return None

    def pixmap(self, row: int) -> QPixmap:
        """The thumbnail of object row ``row`` (rendered with the current display settings, cached)."""
        return self._pixmap(row)

    def _pixmap(self, row: int) -> QPixmap:
        pm = self._cache.get(row)
        if pm is not None:
            self._cache.move_to_end(row)
            return pm
        planes = self._project.thumbnail_planes(row)
        bands = str(self._bands[row]) if row < len(self._bands) else ""
        # 8-bit colour survey cut-outs (JPEG/PNG) carry bands "r,g,b" and are shown as they are
        rgb = thumbnail_rgb8(planes, self._settings, rgb8=bands == "r,g,b", bands=bands.split(",") if bands else None)
        pm = QPixmap.fromImage(rgb8_to_qimage(rgb))
        self._cache[row] = pm
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        return pm


class ThumbnailGrid(QListView):
    """Icon-mode list view; emits ``objectActivated(row)`` with the object-table row of the current item."""

    objectActivated = Signal(int)

    def __init__(self, parent=None, icon_size: int = 96) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.IconMode)
        self.setResizeMode(QListView.Adjust)
        self.setMovement(QListView.Static)
        self.setUniformItemSizes(True)       # lets Qt lay out 10^4 items without asking each one
        self.setLayoutMode(QListView.Batched)
        self.setBatchSize(500)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setIconSize(QSize(icon_size, icon_size))
        self.setGridSize(QSize(icon_size + 44, icon_size + 30))   # room for "elliptical 0.93"
        self.setWordWrap(False)
        self.setTextElideMode(Qt.ElideMiddle)   # an 18-digit SDSS id keeps both ends: 58772…93543
        self.setSpacing(2)
        self._icon = icon_size
        self.thumbs = ThumbnailModel(self)
        self.setModel(self.thumbs)
        self.selectionModel().currentChanged.connect(self._on_current_changed)
        # a click on the item that is already current (after looking at a spectrum elsewhere) shows it again
        self.clicked.connect(lambda index: self._on_current_changed(index, index))

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.objectActivated.emit(self.thumbs.object_row(current))

    def fit_captions(self, texts) -> None:
        """Widen the cells so that captions like ``texts`` ("elliptical 0.52") are not cut (at most 2.5 icons)."""
        texts = [str(t) for t in texts][:2000]
        if not texts:
            return
        fm = self.fontMetrics()
        need = max(fm.horizontalAdvance(t) for t in texts) + 12
        width = int(min(max(self._icon + 44, need), 2.5 * self._icon))
        self.setGridSize(QSize(width, self._icon + 30))

    def select_object(self, row: int) -> None:
        hits = np.flatnonzero(self.thumbs._rows == row)
        if hits.size:
            idx = self.thumbs.index(int(hits[0]))
            self.setCurrentIndex(idx)
            self.scrollTo(idx)


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.widgets.thumbnails [PROJECT]
    from galdesk.gui.preview import preview_project_path
    from galdesk.gui.qtapp import make_app
    from galdesk.project import Project

    app = make_app()
    grid = ThumbnailGrid()
    grid.thumbs.set_project(Project.open(preview_project_path()))
    grid.objectActivated.connect(lambda row: print("object row", row))
    grid.resize(900, 600)
    grid.setWindowTitle("ThumbnailGrid preview")
    grid.show()
    app.exec()
