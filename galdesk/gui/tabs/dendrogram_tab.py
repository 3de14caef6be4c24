"""Dendrogram tab: Ward clustering of CNN features drawn as an interactive dendrogram with a separate cut on each
branch, cluster sizes and rotation-consistency scores, each cluster's galaxies, and cuts suggested by rotation
consistency.

Work off the GUI thread: features, linkage, layout, suggestions and every save run on workers (the jobs of
:mod:`galdesk.gui.tabs.dendrogram_jobs`, started by a :class:`galdesk.gui.widgets.task_panel.TaskPanel`, saves by
their own :class:`galdesk.gui.worker.TaskRunner`). On the GUI thread only the cheap parts run: cutting the tree and
scoring a cut are a few vectorised passes over the nodes (a few ms at 20,000 leaves), so a drag previews live. Saves
are serialised: a commit made while the previous one is still being written waits for it and then writes the latest
cut set (never two writers racing on the result file).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from galdesk.gui.tabs.dendrogram_jobs import (
    CONTRASTIVE_TRAIN,
    VQVAE_TRAIN,
    compute_job,
    current_author,
    load_job,
    save_job,
    suggest_job,
)
from galdesk.gui.widgets.cluster_table import ClusterTable
from galdesk.gui.widgets.dendrogram_plot import DendrogramPlot, cluster_colors
from galdesk.gui.widgets.feature_model_chooser import FeatureModelChooser
from galdesk.gui.widgets.task_panel import JOB_CANCELLED_TEXT, TaskPanel
from galdesk.gui.widgets.thumbnails import ThumbnailGrid
from galdesk.gui.worker import TaskRunner

__all__ = ["DendrogramTab"]



def _projection_name(info: dict) -> str:
    """How the features were projected before Ward, in a word or two (``info["projection_kind"]`` of the tree:
    ``"pca"``, ``"project"`` or the bundled invariance's id; a tree stored without it was projected by PCA)."""
    kind = str(info.get("projection_kind") or "pca")
    return {"pca": "PCA", "project": "invariance learned on this project"}.get(kind, kind)


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
        self._profile_in = None                   # what cluster profiles read from the project, once per tree

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(self._build_features_box())
        ll.addWidget(self._build_cuts_box())
        self.table = ClusterTable()
        ll.addWidget(self.table, 1)
        self.plot = DendrogramPlot()
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.plot)
        right.addWidget(self._build_gallery())
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self._connect(state)
        self._set_enabled()

    # -- building ------------------------------------------------------------------------------------------------------
    def _build_features_box(self) -> QGroupBox:
        self.models = FeatureModelChooser(VQVAE_TRAIN, contrastive_entry=CONTRASTIVE_TRAIN)
        self.rotations = QComboBox()
        self.rotations.addItem("3 turned copies", 4)
        self.rotations.addItem("7 turned and flipped copies", 8)
        self.rotations.setToolTip("Copies of each galaxy for rotation consistency: a network sees the turns and flips "
                                  "of the square; the shape descriptors, which those cannot change, see turns by "
                                  "30, 100, 200... degrees")
        self.rotations.addItem("none (no consistency)", 0)
        self.average = QCheckBox("cluster the rotation-averaged features")
        # compute / load / suggest: one long job at a time
        self.panel = TaskPanel("Compute features && cluster", title="Dendrogram", cancel_text=JOB_CANCELLED_TEXT)
        self.panel.status.setWordWrap(True)
        self.runner = self.panel.runner
        self.compute_btn = self.panel.buttons[0]
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Features from", self.models)
        form.addRow("Copies", self.rotations)
        form.addRow("", self.average)
        form.addRow(self.panel)
        form.addRow(self.info_label)
        box = QGroupBox("Features and tree")
        box.setLayout(form)
        return box

    def _build_cuts_box(self) -> QGroupBox:
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.5, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.8)
        self.min_size = QSpinBox()
        self.min_size.setRange(0, 100000)
        self.min_size.setSpecialValueText("auto")
        self.suggest_btn = QPushButton("Suggest cuts (rotation consistency)")
        self.suggest_btn.setToolTip(
            "A galaxy's shape does not depend on how it lies on the sky, so its rotated copies should land in its own "
            "cluster. Starting from the top, each branch is split only while both halves keep at least the "
            "threshold of their copies at home (Cheng et al. 2021): different branches get different cut heights.")
        self.threshold.setToolTip("Smallest share of rotated copies that must land in their own cluster for a "
                                  "split to be suggested")
        self.min_size.setToolTip("Smaller groups are split off as outliers and not split further (auto: 0.5 % of "
                                 "the galaxies, at least 3)")
        self.remove_btn = QPushButton("Remove branch cut")
        self.reset_btn = QPushButton("Global cut only")
        self.summary = QLabel("No clusters yet.")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Consistency threshold", self.threshold)
        form.addRow("Smallest cluster", self.min_size)
        form.addRow(self.suggest_btn)
        row = QHBoxLayout()
        row.addWidget(self.remove_btn)
        row.addWidget(self.reset_btn)
        form.addRow(row)
        form.addRow(self.summary)
        box = QGroupBox("Cuts")
        box.setLayout(form)
        return box

    def _build_gallery(self) -> QWidget:
        self.grid_label = QLabel("Select a cluster or click a branch to see its galaxies.")
        self.profile_label = QLabel("")
        self.profile_label.setWordWrap(True)
        self.profile_label.setToolTip("Median shape measures of the cluster (shape-descriptor features) beside "
                                      "those of all clustered galaxies, and its make-up in the catalogue's "
                                      "class columns and the classifier's predictions")
        self.grid = ThumbnailGrid(icon_size=72)
        w = QWidget()
        gl = QVBoxLayout(w)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addWidget(self.grid_label)
        gl.addWidget(self.profile_label)
        gl.addWidget(self.grid, 1)
        return w

    def _connect(self, state) -> None:
        self.compute_btn.clicked.connect(self.compute)
        self.panel.busyChanged.connect(lambda _busy: self._set_enabled())
        self.suggest_btn.clicked.connect(self.suggest)
        self.remove_btn.clicked.connect(self.remove_branch_cut)
        self.reset_btn.clicked.connect(self.global_only)
        self.plot.cutPreview.connect(self._on_cut_preview)
        self.plot.cutCommitted.connect(self._on_cut_committed)
        self.plot.nodeClicked.connect(self.select_node)
        self.saver.done.connect(self._on_save_done)
        self.table.clusterSelected.connect(self.select_cluster)
        self.grid.objectActivated.connect(state.set_current)
        state.projectChanged.connect(self._on_project_changed)
        state.objectsChanged.connect(self._on_objects_changed)
        state.currentChanged.connect(self._on_current_changed)
        state.displayChanged.connect(self.grid.thumbs.set_display)

    # -- set-up --------------------------------------------------------------------------------------------------------
    def add_model(self, label: str, path: str) -> None:
        """Offer a model file and select it."""
        self.models.add_model(label, path)

    def _set_enabled(self) -> None:
        busy = self.panel.busy
        self.panel.set_runnable(self.state.project is not None)
        has_tree = self.cm is not None
        self.suggest_btn.setEnabled(has_tree and not busy and self.cm.has_copies)
        self.reset_btn.setEnabled(has_tree)
        self.remove_btn.setEnabled(has_tree and self.selected_node in self.cuts and self.selected_node != self._root)

    @property
    def _root(self) -> int:
        return -1 if self.cm is None else self.cm.root

    def _on_project_changed(self, project) -> None:
        self.models.offer_project_models(project)
        self.panel.stop()
        self._set_model(None, {})
        self.grid.thumbs.set_project(project, rows=[])
        self.grid.thumbs.set_display(self.state.display)
        self.info_label.setText("")
        self.panel.set_status("")
        if project is not None:
            self.panel.set_status("Reading the stored tree…")
            self.panel.start(load_job, str(project.path), on_result=self._on_loaded, progress=False)
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
        model = self.models.current()
        if model is None:
            QMessageBox.information(self, "Dendrogram", "Choose a model file: its penultimate layer gives the "
                                                        "features.")
            return
        self.panel.set_progress(0.0)
        self.panel.start(compute_job, str(project.path), model, int(self.rotations.currentData()),
                         self.average.isChecked(), float(self.threshold.value()), current_author(),
                         on_result=self._on_computed, job_title="Features and Ward tree")

    def suggest(self) -> None:
        """Cuts suggested by rotation consistency (computed on a worker, then committed)."""
        if self.cm is None or not self.cm.has_copies:
            return
        ms = self.min_size.value() or None
        self.panel.start(suggest_job, self.cm, float(self.threshold.value()), ms, on_result=self._on_suggested,
                         progress=False)

    def cancel(self) -> None:
        self.panel.cancel()

    def shutdown(self) -> None:
        self.panel.shutdown()
        self.saver.wait(10000)

    def _on_loaded(self, out) -> None:
        self.panel.set_status("")
        if out is None:
            self.summary.setText("No tree yet: compute features and cluster.")
        else:
            self._set_model(*out)
            self.models.select(self.cm.info.get("model_id"))   # what made the stored tree, when it is offered
            self.clustered.emit({"loaded": True, **self._summary_dict()})
        self._set_enabled()

    def _on_computed(self, out) -> None:
        cm, cuts, saved = out
        trained = {VQVAE_TRAIN: "vqvae.safetensors", CONTRASTIVE_TRAIN: "contrastive.safetensors"}
        if self.models.current() in trained:
            name = trained[self.models.current()]
            self.models.offer_project_models(self.state.project)
            self.models.select_project_model(name)        # next time, reuse what was just trained
        self.panel.set_progress(1.0)
        self._set_model(cm, cuts)
        self._after_save(saved)
        self.panel.set_status(f"{cm.n_objects} galaxies clustered in {cm.info.get('seconds', 0):.1f} s"
                              + (f"; the suggestion stopped at the {saved['n_clusters']}-cluster limit with "
                                 "consistent splits left" if saved.get("stopped_at_max_clusters") else ""))
        self.clustered.emit({"loaded": False, **self._summary_dict()})
        self._set_enabled()

    def _on_suggested(self, sug) -> None:
        self.cuts = dict(sug.cuts)
        self._recut()
        self._save("suggest")
        self.panel.set_status(f"Suggested {len(sug.clusters)} clusters (threshold {sug.threshold:.2f}, "
                              f"smallest {sug.min_size})"
                              + (f"; stopped at the {sug.max_clusters}-cluster limit with consistent splits left"
                                 if sug.stopped_at_cap else ""))
        self._set_enabled()

    # -- the model -----------------------------------------------------------------------------------------------------
    def _set_model(self, cm, cuts) -> None:
        self.cm = cm
        self._profile_in = None
        self.cuts = {int(k): float(v) for k, v in (cuts or {}).items()}
        self.selected_node = self.selected_cluster = -1
        if cm is None:
            self.cut = self.labels = self.cons = None
            self.plot.set_tree(None)
            self.table.set_clusters([])
            self.summary.setText("No clusters yet.")
            self._row_order = np.zeros(0, np.int64)
            return
        self._row_order = np.argsort(cm.rows, kind="stable")     # not a dict: 10^6 objects on the micro path
        self.plot.set_tree(cm.layout)
        info = cm.info
        how = cm.tree.describe()
        self.info_label.setText(
            f"{cm.n_objects} galaxies · {how} · features: {info.get('model_id')} {info.get('layer', '')}"
            f" → {_projection_name(info)} {info.get('n_components')}"
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
        self.table.set_clusters(cm.object_sizes(self.cut), None if self.cons is None else self.cons.per_cluster)
        self._show_summary(self.cut, preview=False)
        # keep the selection on the same branch
        if self.selected_node >= 0:
            self.select_node(self.selected_node)
        self._set_enabled()

    def _color(self, cut) -> None:
        """The colour strip and the links of each cluster (a few ms at 20,000 leaves: also during a drag)."""
        from galdesk.cluster.layout import pure_node_labels

        order = self.cm.layout.leaf_order
        self.plot.set_leaf_colors(cluster_colors(cut.labels[order]))
        self.plot.set_link_labels(pure_node_labels(self.cm.layout, cut.labels[order]))

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
        job = (str(project.path), self.cm, dict(self.cuts), source, current_author())
        if self.saver.running:
            self._pending_save = job          # written when the running save ends (latest wins)
            return
        self._start_save(job)

    def _start_save(self, job) -> None:
        self._pending_save = None
        self.saver.start(save_job, *job, on_result=self._after_save, on_error=self.panel.fail)

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
            self.table.show_cluster(-1)
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
            self.table.show_cluster(c)
        self._set_enabled()

    def select_cluster(self, c: int) -> None:
        """Select a cluster (its top node becomes the selected branch)."""
        if self.cut is None or not 0 <= c < self.cut.n_clusters:
            return
        self.select_node(int(self.cut.cluster_nodes[c]))

    def _effective_cut(self, node: int) -> float:
        """Where the selected branch's line is drawn: its own cut, or the cut in force there — but never above the
        branch's own top merge. Drawn there it means the same (a cut at or above a branch's height keeps it whole)
        and it does not sit on the global line, where nobody would see that there is a second line to drag."""
        from galdesk.cluster.cuts import effective_cut

        value = effective_cut(self.cm.Z, self.cuts, node)
        if node in self.cuts or node < self.cm.tree.n_leaves:
            return value
        return min(value, float(self.cm.layout.node_y[node]))

    def _show_cluster(self, c: int) -> None:
        from galdesk.cluster.profiles import cluster_profile, profile_inputs

        self.selected_cluster = c
        if self._profile_in is None and self.state.project is not None:   # once per tree: features, classes
            self._profile_in = profile_inputs(self.state.project, self.cm.rows)
        prof = cluster_profile(self.labels, self.cm.rows, c, **(self._profile_in or {}))
        score = "" if self.cons is None or not np.isfinite(self.cons.per_cluster[c]) else \
            f", rotation consistency {self.cons.per_cluster[c]:.2f}"
        typical = ", most typical first (the first is the medoid)" if prof.medoid is not None else ""
        self._show_rows(prof.order, f"Cluster {c}: {prof.size} galaxies{score}{typical}")
        self.profile_label.setText(prof.summary())
        self.table.show_cluster(c)

    def _show_rows(self, rows, text: str) -> None:
        self.grid.thumbs.set_rows(np.asarray(rows, np.int64))
        self.grid_label.setText(text)
        self.profile_label.setText("")

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

    from galdesk.gui.preview import preview_tab

    preview_tab(DendrogramTab, "Dendrogram tab preview (python -m galdesk.gui.tabs.dendrogram_tab [PROJECT [MODEL]])",
                setup=lambda tab: tab.add_model(sys.argv[2], sys.argv[2]) if len(sys.argv) > 2 else None)
