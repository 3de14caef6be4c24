"""The cluster list of the Dendrogram tab: one row per cluster with its size and rotation-consistency score,
sortable by any column, each cluster with its colour (lazy model: fine with thousands of clusters)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from galdesk.gui.widgets.dendrogram_plot import cluster_colors

__all__ = ["ClusterTableModel", "ClusterTable"]


class ClusterTableModel(QAbstractTableModel):
    """Clusters with their sizes and rotation-consistency scores; ``Qt.UserRole`` gives numeric sort keys."""

    HEADERS = ("Cluster", "Galaxies", "Rotation consistency")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.sizes = np.zeros(0, np.int64)
        self.scores = np.zeros(0)

    def set_clusters(self, sizes, scores=None) -> None:
        self.beginResetModel()
        self.sizes = np.asarray(sizes, np.int64)
        self.scores = np.full(self.sizes.size, np.nan) if scores is None else np.asarray(scores, float)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else int(self.sizes.size)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else 3

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802 - Qt API
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.DisplayRole:
            if c == 0:
                return str(r)
            if c == 1:
                return str(int(self.sizes[r]))
            s = self.scores[r]
            return "" if not np.isfinite(s) else f"{s:.2f}"
        if role == Qt.UserRole:          # numeric sort key
            return float(r) if c == 0 else float(self.sizes[r]) if c == 1 else (
                float(self.scores[r]) if np.isfinite(self.scores[r]) else -1.0)
        if role == Qt.DecorationRole and c == 0:
            rgb = cluster_colors([r])[0]
            return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))
        if role == Qt.TextAlignmentRole and c > 0:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


class ClusterTable(QTableView):
    """Sortable table of clusters; ``clusterSelected(c)`` when the user picks a row (c = cluster number).

    Attributes
    ----------
    clusters : ClusterTableModel
        The source model (cluster ``c`` is its row ``c``).
    proxy : QSortFilterProxyModel
        The sorted view of it that the table shows.
    """

    clusterSelected = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.clusters = ClusterTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.clusters)
        self.proxy.setSortRole(Qt.UserRole)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        self.selectionModel().currentRowChanged.connect(self._on_current_row)

    def set_clusters(self, sizes, scores=None) -> None:
        """Sizes (and scores, NaN: none) of clusters 0 … k-1."""
        self.clusters.set_clusters(sizes, scores)

    def show_cluster(self, c: int) -> None:
        """Select and scroll to cluster ``c`` (-1: clear) without emitting ``clusterSelected``."""
        sm = self.selectionModel()
        sm.blockSignals(True)
        try:
            if c < 0:
                sm.clearSelection()
            else:
                idx = self.proxy.mapFromSource(self.clusters.index(c, 0))
                self.selectRow(idx.row())
                self.scrollTo(idx)
        finally:
            sm.blockSignals(False)

    def _on_current_row(self, current, _previous) -> None:
        if current.isValid():
            self.clusterSelected.emit(self.proxy.mapToSource(current).row())


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.widgets.cluster_table
    from galdesk.gui.qtapp import make_app

    app = make_app()
    rng = np.random.default_rng(0)
    table = ClusterTable()
    table.set_clusters(rng.integers(1, 500, 40), np.where(rng.random(40) < 0.1, np.nan, rng.random(40)))
    table.clusterSelected.connect(lambda c: print("cluster", c))
    table.resize(420, 600)
    table.setWindowTitle("ClusterTable preview")
    table.show()
    app.exec()
