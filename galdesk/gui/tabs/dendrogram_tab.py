"""Dendrogram tab: Ward clustering of CNN features drawn as an interactive dendrogram with a separate cut on each
branch, cluster sizes and rotation-consistency scores, each cluster's galaxies, and cuts suggested by rotation
consistency.

Work off the GUI thread: features, linkage, layout, suggestions and every save run on workers
(:class:`galdesk.gui.worker.TaskRunner`). On the GUI thread only the cheap parts run: cutting the tree and scoring
a cut are a few vectorised passes over the nodes (a few ms at 20,000 leaves), so a drag previews live. Saves are
serialised: a commit made while the previous one is still being written waits for it and then writes the latest
cut set (never two writers racing on the result file).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.widgets.dendrogram_plot import DendrogramPlot, cluster_colors
from galdesk.gui.widgets.thumbnails import ThumbnailGrid
from galdesk.gui.worker import TaskRunner
from galdesk.tasks import eta_text

__all__ = ["DendrogramTab", "ClusterTableModel"]

DEFAULT_CLUSTERS = 8   # first cut when there are no rotated copies to suggest one


# -- jobs (run on workers; plain functions of a path, no Qt) -----------------------------------------------------------
VQVAE_TRAIN = "vqvae:train"   # model-combo entry: train a VQ-VAE on the project first


def _compute_job(path, model, rotations, average, threshold, ctx=None):
    from galdesk.cluster.pipeline import apply_cuts, cluster_project
    from galdesk.project import Project
    from galdesk.tasks import ScaledContext

    project = Project.open(path)
    try:
        lo = 0.0
        if model == VQVAE_TRAIN:
            from galdesk.ml.vqvae import train_project_vqvae

            model = train_project_vqvae(project, ctx=ScaledContext(ctx, 0.0, 0.6))
            lo = 0.6
        cm = cluster_project(project, model=model, rotations=rotations, average=average,
                             ctx=ScaledContext(ctx, lo, 0.97))
        _ = cm.layout                     # computed here, not on the GUI thread
        if cm.has_copies:
            cuts, source = cm.suggest(threshold=threshold, ctx=ctx).cuts, "suggest"
        else:
            cuts, source = cm.cuts_for(n_clusters=min(DEFAULT_CLUSTERS, cm.tree.n_leaves)), "gui"
        out = apply_cuts(project, cm, cuts, source=source, author=_author())
        ctx.progress(1.0, f"Clustered {cm.n_objects} galaxies: {out['n_clusters']} clusters")
        return cm, cuts, out
    finally:
        project.close()


def _load_job(path, ctx=None):
    from galdesk.cluster.store import load_cuts, load_linkage
    from galdesk.project import Project

    project = Project.open(path)
    try:
        cm = load_linkage(project)
        if cm is None:
            return None
        _ = cm.layout
        stored = load_cuts(project)
        if stored is not None and stored[1].get("linkage_id") == cm.linkage_id:
            cuts = stored[0]
        else:
            cuts = cm.cuts_for(n_clusters=min(DEFAULT_CLUSTERS, cm.tree.n_leaves))
        return cm, cuts
    finally:
        project.close()


def _save_job(path, cm, cuts, source, author, ctx=None):
    from galdesk.cluster.pipeline import apply_cuts
    from galdesk.project import Project

    project = Project.open(path)
    try:
        return apply_cuts(project, cm, cuts, source=source, author=author)
    finally:
        project.close()


def _suggest_job(cm, threshold, min_size, ctx=None):
    return cm.suggest(threshold=threshold, min_size=min_size, ctx=ctx)


def _author() -> str:
    from galdesk.vetting import default_vetter

    return default_vetter()


# -- cluster list ------------------------------------------------------------------------------------------------------
class ClusterTableModel(QAbstractTableModel):
    """Clusters with their sizes and rotation-consistency scores (lazy: fine with thousands of rows)."""

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
            from PySide6.QtGui import QColor  # noqa: PLC0415

            rgb = cluster_colors([r])[0]
            return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))
        if role == Qt.TextAlignmentRole and c > 0:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


# -- the tab -----------------------------------------------------------------------------------------------------------
class DendrogramTab(QWidget):
    """Ward tree of the project's galaxies with per-branch cuts.

    Signals
    -------
    clustered(dict)
        Features and tree computed (or loaded) and the first cut committed: summary.
    cutsCommitted(dict)
        A cut set was saved (result ``"clusters"`` + journal record): :func:`galdesk.cluster.apply_cuts` summary.
    """

    clustered = Signal(dict)
    cutsCommitted = Signal(dict)

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)       # compute / load / suggest: one long job at a time
        self.saver = TaskRunner(self)        # saves, serialised (see module docstring)
        self.cm = None
        self.cuts: dict[int, float] = {}
        self.cut = None
        self.labels = None
        self.cons = None
        self.selected_node = -1
        self.selected_cluster = -1
        self._pending_save: tuple | None = None
        self._row_order = np.zeros(0, np.int64)   # argsort of cm.rows: object row -> object index lookups

        # -- controls
        self.model = QComboBox()
        self.model_btn = QPushButton("Your model…")
        self.rotations = QComboBox()
        self.rotations.addItem("4 rotations", 4)
        self.rotations.addItem("8 rotations and flips", 8)
        self.rotations.addItem("none (no consistency)", 0)
        self.average = QCheckBox("cluster the rotation-averaged features")
        self.compute_btn = QPushButton("Compute features && cluster")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        form = QFormLayout()
        mrow = QHBoxLayout()
        mrow.addWidget(self.model, 1)
        mrow.addWidget(self.model_btn)
        form.addRow("Features from", mrow)
        form.addRow("Copies", self.rotations)
        form.addRow("", self.average)
        brow = QHBoxLayout()
        brow.addWidget(self.compute_btn)
        brow.addWidget(self.cancel_btn)
        form.addRow(brow)
        form.addRow(self.progress)
        form.addRow(self.progress_label)
        form.addRow(self.info_label)
        compute_box = QGroupBox("Features and tree")
        compute_box.setLayout(form)

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.5, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.8)
        self.min_size = QSpinBox()
        self.min_size.setRange(0, 100000)
        self.min_size.setSpecialValueText("auto")
        self.suggest_btn = QPushButton("Suggest cuts (rotation consistency)")
        self.remove_btn = QPushButton("Remove branch cut")
        self.reset_btn = QPushButton("Global cut only")
        self.summary = QLabel("No clusters yet.")
        self.summary.setWordWrap(True)
        cform = QFormLayout()
        cform.addRow("Consistency threshold", self.threshold)
        cform.addRow("Smallest cluster", self.min_size)
        cform.addRow(self.suggest_btn)
        crow = QHBoxLayout()
        crow.addWidget(self.remove_btn)
        crow.addWidget(self.reset_btn)
        cform.addRow(crow)
        cform.addRow(self.summary)
        cuts_box = QGroupBox("Cuts")
        cuts_box.setLayout(cform)

        self.table_model = ClusterTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(Qt.UserRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(compute_box)
        ll.addWidget(cuts_box)
        ll.addWidget(self.table, 1)

        self.plot = DendrogramPlot()
        self.grid_label = QLabel("Select a cluster or click a branch to see its galaxies.")
        self.grid = ThumbnailGrid(icon_size=72)
        gw = QWidget()
        gl = QVBoxLayout(gw)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addWidget(self.grid_label)
        gl.addWidget(self.grid, 1)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.plot)
        right.addWidget(gw)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn.clicked.connect(self.cancel)
        self.model_btn.clicked.connect(self._choose_model_file)
        self.suggest_btn.clicked.connect(self.suggest)
        self.remove_btn.clicked.connect(self.remove_branch_cut)
        self.reset_btn.clicked.connect(self.global_only)
        self.plot.cutPreview.connect(self._on_cut_preview)
        self.plot.cutCommitted.connect(self._on_cut_committed)
        self.plot.nodeClicked.connect(self.select_node)
        self.saver.done.connect(self._on_save_done)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        self.grid.objectActivated.connect(state.set_current)
        state.projectChanged.connect(self._on_project_changed)
        state.objectsChanged.connect(self._on_objects_changed)
        state.currentChanged.connect(self._on_current_changed)
        state.displayChanged.connect(self.grid.thumbs.set_display)
        self._fill_models()
        self._set_enabled()

    # -- set-up --------------------------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        from galdesk.ml.weights import list_bundled

        self.model.clear()
        for m in list_bundled():
            if m.get("task", "image") == "image":
                self.model.addItem(m["name"], m["name"])
        self.model.addItem("VQ-VAE: train on this project (unsupervised)", VQVAE_TRAIN)
        self._project_vqvae_index = -1

    def add_model(self, label: str, path: str) -> None:
        """Offer a model file and select it."""
        self.model.addItem(label, path)
        self.model.setCurrentIndex(self.model.count() - 1)

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.safetensors *.pt *.pth)")
        if path:
            self.add_model(path, path)

    def _set_enabled(self) -> None:
        busy = self.runner.running
        has_project = self.state.project is not None
        self.compute_btn.setEnabled(has_project and not busy)
        self.cancel_btn.setEnabled(busy)
        has_tree = self.cm is not None
        self.suggest_btn.setEnabled(has_tree and not busy and self.cm.has_copies)
        self.reset_btn.setEnabled(has_tree)
        self.remove_btn.setEnabled(has_tree and self.selected_node in self.cuts and self.selected_node != self._root)

    @property
    def _root(self) -> int:
        return -1 if self.cm is None else self.cm.root

    def _offer_project_vqvae(self, project) -> None:
        """List the VQ-VAE a project already trained (PROJECT/models/vqvae.safetensors) as a feature model."""
        if self._project_vqvae_index >= 0:
            self.model.removeItem(self._project_vqvae_index)
            self._project_vqvae_index = -1
        path = None if project is None else project.path / "models" / "vqvae.safetensors"
        if path is not None and path.is_file():
            self.model.addItem("VQ-VAE trained on this project", str(path))
            self._project_vqvae_index = self.model.count() - 1

    def _on_project_changed(self, project) -> None:
        self._offer_project_vqvae(project)
        self.runner.cancel()
        self._set_model(None, {})
        self.grid.thumbs.set_project(project, rows=[])
        self.grid.thumbs.set_display(self.state.display)
        self.info_label.setText("")
        self.progress_label.setText("")
        if project is not None:
            self.progress_label.setText("Reading the stored tree…")
            self.runner.start(_load_job, str(project.path), on_result=self._on_loaded, on_error=self._on_error,
                              on_cancelled=self._on_cancelled)
        self._set_enabled()

    def _on_objects_changed(self) -> None:
        project = self.state.project
        self.grid.thumbs.set_project(project, rows=[])
        if self.cm is not None and project is not None and project.n_images != self.cm.n_objects:
            self.info_label.setText(self.info_label.text() + "\nObjects were added since: compute again to "
                                    "include them.")

    # -- long jobs -----------------------------------------------------------------------------------------------------
    def compute(self) -> None:
        """Compute features and the tree on a worker; the first cut is the suggestion (or 8 clusters)."""
        project = self.state.project
        if project is None or project.n_images < 2:
            QMessageBox.information(self, "Dendrogram", "Open a project with cut-outs first.")
            return
        model = self.model.currentData()
        if model is None:
            QMessageBox.information(self, "Dendrogram", "Choose a model file: its penultimate layer gives the "
                                                        "features.")
            return
        self.progress.setValue(0)
        self.runner.start(_compute_job, str(project.path), model, int(self.rotations.currentData()),
                          self.average.isChecked(), float(self.threshold.value()),
                          on_result=self._on_computed, on_error=self._on_error, on_progress=self._on_progress,
                          on_cancelled=self._on_cancelled)
        self._set_enabled()

    def suggest(self) -> None:
        """Cuts suggested by rotation consistency (computed on a worker, then committed)."""
        if self.cm is None or not self.cm.has_copies:
            return
        ms = self.min_size.value() or None
        self.runner.start(_suggest_job, self.cm, float(self.threshold.value()), ms,
                          on_result=self._on_suggested, on_error=self._on_error, on_cancelled=self._on_cancelled)
        self._set_enabled()

    def cancel(self) -> None:
        self.runner.cancel()
        self.progress_label.setText("cancelled; earlier results kept")
        self._set_enabled()

    def shutdown(self) -> None:
        self.runner.cancel()
        self.runner.wait(10000)
        self.saver.wait(10000)

    def _on_progress(self, fraction, message, eta) -> None:
        self.progress.setValue(int(fraction * 1000))
        e = eta_text(eta if eta >= 0 else None)
        self.progress_label.setText(message + (f"   ETA {e}" if e else ""))

    def _on_error(self, exc, tb) -> None:
        from galdesk.gui.errors import log_exception

        log_exception(exc, tb)
        self.progress_label.setText(f"failed: {exc}")
        self._set_enabled()
        QMessageBox.warning(self, "Dendrogram", str(exc))

    def _on_cancelled(self) -> None:
        self.progress_label.setText("cancelled; earlier results kept")
        self._set_enabled()

    def _on_loaded(self, out) -> None:
        self.progress_label.setText("")
        if out is None:
            self.summary.setText("No tree yet: compute features and cluster.")
        else:
            self._set_model(*out)
            self.clustered.emit({"loaded": True, **self._summary_dict()})
        self._set_enabled()

    def _on_computed(self, out) -> None:
        cm, cuts, saved = out
        if self.model.currentData() == VQVAE_TRAIN:
            self._offer_project_vqvae(self.state.project)
            if self._project_vqvae_index >= 0:        # next time, reuse what was just trained
                self.model.setCurrentIndex(self._project_vqvae_index)
        self.progress.setValue(1000)
        self._set_model(cm, cuts)
        self._after_save(saved)
        self.progress_label.setText(f"{cm.n_objects} galaxies clustered in {cm.info.get('seconds', 0):.1f} s")
        self.clustered.emit({"loaded": False, **self._summary_dict()})
        self._set_enabled()

    def _on_suggested(self, sug) -> None:
        self.cuts = dict(sug.cuts)
        self._recut()
        self._save("suggest")
        self.progress_label.setText(f"Suggested {len(sug.clusters)} clusters (threshold {sug.threshold:.2f}, "
                                    f"smallest {sug.min_size})")
        self._set_enabled()

    # -- the model -----------------------------------------------------------------------------------------------------
    def _set_model(self, cm, cuts) -> None:
        self.cm = cm
        self.cuts = {int(k): float(v) for k, v in (cuts or {}).items()}
        self.selected_node = self.selected_cluster = -1
        if cm is None:
            self.cut = self.labels = self.cons = None
            self.plot.set_tree(None)
            self.table_model.set_clusters([])
            self.summary.setText("No clusters yet.")
            self._row_order = np.zeros(0, np.int64)
            return
        self._row_order = np.argsort(cm.rows, kind="stable")     # not a dict: 10^6 objects on the micro path
        self.plot.set_tree(cm.layout)
        info = cm.info
        how = "exact Ward (fastcluster)" if cm.tree.method == "direct" else \
            f"Ward on {cm.tree.n_leaves} micro-clusters (MiniBatchKMeans)"
        self.info_label.setText(
            f"{cm.n_objects} galaxies · {how} · features: {info.get('model_id')} {info.get('layer', '')}"
            f" → PCA {info.get('n_components')}"
            + (f" · {info.get('rotations')} views for consistency" if cm.has_copies else " · no rotated copies"))
        self._recut()
        self._on_current_changed(self.state.current)

    def _summary_dict(self) -> dict:
        if self.cm is None or self.cut is None:
            return {}
        return {"n_objects": self.cm.n_objects, "n_clusters": self.cut.n_clusters, "method": self.cm.tree.method,
                "consistency": None if self.cons is None else self.cons.score}

    def _recut(self) -> None:
        """Labels, colours, scores and the table for the committed cut set."""
        cm = self.cm
        self.cut = cm.cut(self.cuts)
        self.labels = cm.labels(self.cut)
        self.cons = cm.consistency(self.cut)
        self.plot.set_global_cut(self.cuts.get(self._root))
        self._color(self.cut)
        sizes = np.bincount(self.labels, minlength=self.cut.n_clusters)
        self.table_model.set_clusters(sizes, None if self.cons is None else self.cons.per_cluster)
        self._show_summary(self.cut, preview=False)
        # keep the selection on the same branch
        if self.selected_node >= 0:
            self.select_node(self.selected_node)
        self._set_enabled()

    def _color(self, cut) -> None:
        order = self.cm.layout.leaf_order
        self.plot.set_leaf_colors(cluster_colors(cut.labels[order]))

    def _show_summary(self, cut, preview: bool) -> None:
        n_branch = len([k for k in self.cuts if k != self._root])
        text = f"{cut.n_clusters} clusters" + (" (preview)" if preview else "")
        if not preview and self.cons is not None:
            text += f" · rotation consistency {self.cons.score:.2f} (all copies home: {self.cons.strict:.2f})"
        text += f" · {n_branch} branch cut{'s' if n_branch != 1 else ''}"
        self.summary.setText(text)

    # -- cuts ----------------------------------------------------------------------------------------------------------
    def _on_cut_preview(self, node: int, value: float) -> None:
        if self.cm is None:
            return
        cut = self.cm.cut({**self.cuts, int(node): float(value)})
        self._color(cut)
        self._show_summary(cut, preview=True)

    def _on_cut_committed(self, node: int, value: float) -> None:
        if self.cm is None:
            return
        self.cuts[int(node)] = float(value)
        self._recut()
        self._save("gui")

    def set_cut(self, node: int, value: float) -> None:
        """Commit a cut on ``node`` (the root: the global cut), as a finished drag does."""
        self._on_cut_committed(node, value)

    def remove_branch_cut(self) -> None:
        if self.cm is None or self.selected_node not in self.cuts or self.selected_node == self._root:
            return
        del self.cuts[self.selected_node]
        self._recut()
        self._save("gui")

    def global_only(self) -> None:
        """Drop every branch cut, keep the global one."""
        if self.cm is None:
            return
        root = self._root
        self.cuts = {root: self.cuts[root]} if root in self.cuts else {}
        self._recut()
        self._save("gui")

    def _save(self, source: str) -> None:
        project = self.state.project
        if project is None or self.cm is None:
            return
        job = (str(project.path), self.cm, dict(self.cuts), source, _author())
        if self.saver.running:
            self._pending_save = job          # written when the running save ends (latest wins)
            return
        self._start_save(job)

    def _start_save(self, job) -> None:
        self._pending_save = None
        self.saver.start(_save_job, *job, on_result=self._after_save, on_error=self._on_error)

    def _on_save_done(self) -> None:
        if self._pending_save is not None and not self.saver.running:
            self._start_save(self._pending_save)

    def _after_save(self, out: dict) -> None:
        project = self.state.project
        if project is not None:
            _refresh_manifest(project)
        self.state.resultsChanged.emit("clusters")
        self.state.status.emit(f"Clusters saved: {out['n_clusters']} clusters (cut version {out['cut_version']})")
        self.cutsCommitted.emit(out)

    # -- selection -----------------------------------------------------------------------------------------------------
    def select_node(self, node: int) -> None:
        """Select a branch (a node id; -1 clears): highlight it, show its cut line and its galaxies."""
        if self.cm is None or node is None or node < 0:
            self.selected_node = self.selected_cluster = -1
            self.plot.clear_branch()
            self._select_table_row(-1)
            self._set_enabled()
            return
        node = int(node)
        self.selected_node = node
        lay = self.cm.layout
        c = int(self.cut.node_cluster[node])
        if c >= 0 and int(self.cut.cluster_nodes[c]) == node:
            # the top of a cluster: highlight just that cluster's links (a deeper branch cut may carve some out)
            mask = self.cut.node_cluster == c
            self.plot.set_branch(node, self._effective_cut(node), highlight_mask=mask)
            self._show_cluster(c)
        else:
            self.plot.set_branch(node, self._effective_cut(node))
            pos = lay.leaf_pos[self.cm.tree.leaf_of]
            inside = (pos >= lay.span_lo[node]) & (pos < lay.span_hi[node])
            self._show_rows(self.cm.rows[inside], f"Branch {node}: {int(inside.sum())} galaxies"
                            + (f" (inside cluster {c})" if c >= 0 else
                               f" in {len(np.unique(self.labels[inside]))} clusters"))
            self._select_table_row(c)
        self._set_enabled()

    def select_cluster(self, c: int) -> None:
        """Select a cluster (its top node becomes the selected branch)."""
        if self.cut is None or not 0 <= c < self.cut.n_clusters:
            return
        self.select_node(int(self.cut.cluster_nodes[c]))

    def _effective_cut(self, node: int) -> float:
        from galdesk.cluster.cuts import effective_cut

        return effective_cut(self.cm.Z, self.cuts, node)

    def _show_cluster(self, c: int) -> None:
        self.selected_cluster = c
        rows = self.cm.rows[self.labels == c]
        score = "" if self.cons is None or not np.isfinite(self.cons.per_cluster[c]) else \
            f", rotation consistency {self.cons.per_cluster[c]:.2f}"
        self._show_rows(rows, f"Cluster {c}: {rows.size} galaxies{score}")
        self._select_table_row(c)

    def _show_rows(self, rows, text: str) -> None:
        self.grid.thumbs.set_rows(np.asarray(rows, np.int64))
        self.grid_label.setText(text)

    def _select_table_row(self, c: int) -> None:
        sm = self.table.selectionModel()
        sm.blockSignals(True)
        try:
            if c < 0:
                sm.clearSelection()
            else:
                idx = self.proxy.mapFromSource(self.table_model.index(c, 0))
                self.table.selectRow(idx.row())
                self.table.scrollTo(idx)
        finally:
            sm.blockSignals(False)

    def _on_table_row(self, current, _previous) -> None:
        if not current.isValid():
            return
        c = self.proxy.mapToSource(current).row()
        self.select_cluster(c)

    def _object_index(self, row) -> int:
        """Index into cm.rows of an object-table row, or -1."""
        if self.cm is None or row is None or row < 0 or not self._row_order.size:
            return -1
        rows = self.cm.rows
        k = int(np.searchsorted(rows, row, sorter=self._row_order))
        if k < rows.size and rows[self._row_order[k]] == row:
            return int(self._row_order[k])
        return -1

    def _on_current_changed(self, row: int) -> None:
        if self.cm is None:
            return
        i = self._object_index(row)
        if i < 0:
            self.plot.set_current_leaf(None)
            return
        self.plot.set_current_leaf(float(self.cm.layout.leaf_pos[self.cm.tree.leaf_of[i]]))


def _refresh_manifest(project) -> None:
    """Re-read the manifest a worker's Project instance rewrote (history), without re-reading the objects."""
    try:
        project.reload_manifest()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover - preview on a project given on the command line, or the demo
    import sys

    from galdesk.gui.app import make_app
    from galdesk.gui.state import AppState
    from galdesk.project import Project
    from galdesk.services.demo import make_demo_project

    app = make_app()
    state = AppState()
    tab = DendrogramTab(state)
    path = sys.argv[1] if len(sys.argv) > 1 else make_demo_project()
    if len(sys.argv) > 2:
        tab.add_model(sys.argv[2], sys.argv[2])
    tab.resize(1300, 800)
    tab.setWindowTitle("Dendrogram tab preview (python -m galdesk.gui.tabs.dendrogram_tab [PROJECT [MODEL]])")
    tab.show()
    state.set_project(Project.open(path))
    app.exec()
    tab.shutdown()
