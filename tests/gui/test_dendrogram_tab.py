"""The Dendrogram tab on 60 real Galaxy Zoo cut-outs: features and tree on a worker while the event loop runs, the
tree as one curve, mouse drags of the global and a branch cut line (preview while dragging, labels + saved result +
journal record on release), suggestions, the cluster list, thumbnails and the current galaxy, and a reload."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from galdesk.gui.app import make_app  # noqa: E402

N = 60


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def gz1_files(shared_data, tmp_path_factory):
    from conftest import gz1_catalog

    from galdesk.ml.models import ImageCNN
    from galdesk.ml.weights import save_model

    tmp = tmp_path_factory.mktemp("dendro_gui")
    gz1_catalog(shared_data, tmp, N, seed=2)
    torch.manual_seed(0)
    save_model(tmp / "tiny.safetensors", ImageCNN(2, in_channels=3, input_size=32, width=8, depth=3),
               {"class_names": ["elliptical", "spiral"],
                "preprocessing": {"stack_size": 64, "input_size": 32, "crop_fraction": 0.5, "scaling": "asinh"}})
    return tmp


@pytest.fixture
def tab(qtbot, gz1_files, tmp_path):
    from galdesk.gui.state import AppState
    from galdesk.gui.tabs.dendrogram_tab import DendrogramTab
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([], tmp_path / "p", catalog=gz1_files / "cat.csv", workers=1)
    make_app()
    state = AppState()
    t = DendrogramTab(state)
    qtbot.addWidget(t)
    t.resize(1300, 850)
    t.show()
    qtbot.waitExposed(t)
    t.add_model("tiny", str(gz1_files / "tiny.safetensors"))
    state.set_project(Project.open(tmp_path / "p.galdesk"))
    qtbot.waitUntil(lambda: not t.runner.running, timeout=10000)
    yield t
    t.shutdown()
    state.set_project(None)


def drag(plot, x0, y0, x1, y1, steps=6):
    """A left-button mouse drag in data coordinates, through real mouse events on the plot's viewport."""
    vp = plot.viewport()
    p0, p1 = plot.data_to_widget(x0, y0), plot.data_to_widget(x1, y1)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, p0)
    for k in range(1, steps + 1):
        p = QPointF(p0) + (QPointF(p1) - QPointF(p0)) * (k / steps)
        ev = QMouseEvent(QEvent.MouseMove, p, QPointF(vp.mapToGlobal(p.toPoint())), Qt.NoButton, Qt.LeftButton,
                         Qt.NoModifier)
        QApplication.sendEvent(vp, ev)
        QTest.qWait(5)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, p1)


def test_compute_drag_cuts_suggest_and_browse(qtbot, tab):
    from galdesk.cluster import cut_for_n_clusters
    from galdesk.project.results import load_clusters

    project = tab.state.project
    # before any tree: the plot says what to do first, not a bare -0.5..0.5 frame
    assert tab.plot.empty_text.isVisible() and "Compute features" in tab.plot.empty_text.toPlainText()
    # -- compute on the worker while the GUI thread keeps ticking
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    with qtbot.waitSignal(tab.clustered, timeout=120000):
        tab.compute_btn.click()
        assert not tab.compute_btn.isEnabled()
    timer.stop()
    assert len(ticks) > 3, "the GUI thread must stay free while features and the tree are computed"
    cm = tab.cm
    assert cm.n_objects == N and cm.tree.method == "direct" and cm.has_copies
    assert not tab.plot.empty_text.isVisible()
    assert "blue line" in tab.plot.getPlotItem().titleLabel.text      # how to cut one branch, on the plot
    qtbot.waitUntil(lambda: load_clusters(project) is not None, timeout=10000)
    # the tree is a fixed number of curves whatever the number of links: grey links above the cuts, one curve per
    # palette colour for the links inside clusters, one highlight; together they hold every link exactly once
    import pyqtgraph as pg

    from galdesk.gui.widgets.dendrogram_plot import PALETTE

    curves = [it for it in tab.plot.getPlotItem().items if isinstance(it, pg.PlotCurveItem)]
    assert len(curves) == 2 + len(PALETTE)
    sizes = [c.xData.size if c.xData is not None else 0 for c in (tab.plot.curve, *tab.plot.link_curves)]
    assert sum(sizes) == 5 * (N - 1) and sum(sizes[1:]) > 0
    # a link is coloured exactly when all the galaxies under it are in one cluster, in that cluster's colour
    from galdesk.cluster.layout import pure_node_labels

    lay = cm.layout
    pure = pure_node_labels(lay, tab.cut.labels[lay.leaf_order])
    assert tab.plot.curve.xData.size == 5 * int(np.count_nonzero(pure[N:] < 0))
    root = cm.root
    v0 = load_clusters(project)[2]

    # -- drag the global cut line to the height of 4 clusters
    target = cut_for_n_clusters(cm.Z, 4)
    previews = []
    tab.plot.cutPreview.connect(lambda node, value: previews.append((node, value)))
    start = tab.cuts.get(root, tab.plot.global_line.value())
    x_far = 0.5                            # near the left edge, away from any branch line
    with qtbot.waitSignal(tab.cutsCommitted, timeout=10000) as saved:
        drag(tab.plot, x_far, start, x_far, target)
    assert previews and all(node == root for node, _ in previews)
    committed = tab.cuts[root]
    px, py = tab.plot.vb.viewPixelSize()
    assert abs(committed - target) < 3 * py
    expected = cm.labels(cm.cut({**tab.cuts}))
    assert np.array_equal(tab.labels, expected)
    rows, labels, version = load_clusters(project)
    assert version == v0 + 1 == saved.args[0]["cut_version"]
    assert np.array_equal(labels, tab.labels) and np.array_equal(rows, cm.rows)

    # -- click the bar of the biggest cluster's top node: its branch is selected and its galaxies shown
    sizes = np.bincount(tab.labels)
    c = int(np.argmax(sizes))
    node = int(tab.cut.cluster_nodes[c])
    assert node >= cm.tree.n_leaves, "the biggest of 4 clusters of 60 is not a single galaxy"
    lay = cm.layout
    QTest.mouseClick(tab.plot.viewport(), Qt.LeftButton, Qt.NoModifier,
                     tab.plot.data_to_widget(lay.node_x[node], lay.node_y[node]))
    qtbot.waitUntil(lambda: tab.selected_node == node, timeout=3000)
    assert tab.plot.branch_line.isVisible() and tab.grid.thumbs.rowCount() == sizes[c]
    # its profile: members most typical first, and its make-up in the catalogue's class column
    assert "most typical first" in tab.grid_label.text()
    assert "gz1_label: " in tab.profile_label.text() and "%" in tab.profile_label.text()
    # it starts at the branch's own top, the same cut as the inherited one above it, not on the global line
    assert lay.node_y[node] < committed
    assert abs(tab.plot.branch_line.value() - lay.node_y[node]) < 1e-9

    # -- drag the branch's own cut line down to 40% of its height: only that branch splits
    before = tab.labels.copy()
    n_journal = project.journal.count("cuts")
    previews.clear()
    x_mid = 0.5 * (lay.span_lo[node] + lay.span_hi[node]) - 0.5
    with qtbot.waitSignal(tab.cutsCommitted, timeout=10000):
        drag(tab.plot, x_mid, lay.node_y[node], x_mid, 0.4 * lay.node_y[node])
    assert previews and all(n == node for n, _ in previews)
    assert node in tab.cuts and abs(tab.cuts[node] - 0.4 * lay.node_y[node]) < 3 * py
    inside = before == c
    assert len(np.unique(tab.labels[inside])) >= 2
    for other in set(before[~inside].tolist()):
        assert len(np.unique(tab.labels[before == other])) == 1
    assert not np.intersect1d(tab.labels[inside], tab.labels[~inside]).size
    rows, labels, version = load_clusters(project)
    assert np.array_equal(labels, tab.labels) and project.journal.count("cuts") == n_journal + 1
    rec = project.journal.records("cuts")[-1]
    assert rec.payload["cuts"][str(node)] == pytest.approx(tab.cuts[node]) and rec.payload["source"] == "gui"

    # -- suggestions (on the worker), committed as a new version
    tab.threshold.setValue(0.6)
    with qtbot.waitSignal(tab.cutsCommitted, timeout=30000) as saved:
        tab.suggest_btn.click()
    assert project.journal.records("cuts")[-1].payload["source"] == "suggest"
    assert tab.table.clusters.rowCount() == tab.cut.n_clusters == saved.args[0]["n_clusters"]
    assert tab.cons is not None and np.all(np.isfinite(tab.cons.per_cluster))

    # -- the cluster list drives the thumbnails; a thumbnail click sets the current galaxy
    assert tab.cut.n_clusters >= 2
    tab.select_node(-1)
    assert not tab.plot.branch_line.isVisible() and not tab.table.selectionModel().hasSelection()
    k = tab.cut.n_clusters - 1
    tab.table.selectRow(tab.table.proxy.mapFromSource(tab.table.clusters.index(k, 0)).row())
    assert tab.grid.thumbs.rowCount() == int(np.sum(tab.labels == k))
    first_row = tab.grid.thumbs.object_row(tab.grid.thumbs.index(0))
    with qtbot.waitSignal(tab.state.currentChanged, timeout=3000) as cur:
        tab.grid.setCurrentIndex(tab.grid.thumbs.index(0))
    assert cur.args == [first_row] and tab.labels[list(cm.rows).index(first_row)] == k
    assert len(tab.plot.marker.data) == 1


def test_stored_tree_and_cuts_come_back(qtbot, tab):
    from galdesk.gui.state import AppState
    from galdesk.gui.tabs.dendrogram_tab import DendrogramTab
    from galdesk.project import Project

    with qtbot.waitSignal(tab.clustered, timeout=120000):
        tab.compute()
    qtbot.waitUntil(lambda: not tab.saver.running, timeout=10000)
    node = int(tab.cut.cluster_nodes[int(np.argmax(np.bincount(tab.labels)))])
    with qtbot.waitSignal(tab.cutsCommitted, timeout=10000):
        tab.set_cut(node, 0.0)
    labels = tab.labels.copy()
    state2 = AppState()
    tab2 = DendrogramTab(state2)
    qtbot.addWidget(tab2)
    with qtbot.waitSignal(tab2.clustered, timeout=10000) as blocker:
        state2.set_project(Project.open(tab.state.project.path))
    assert blocker.args[0]["loaded"] is True
    assert tab2.cuts == tab.cuts and np.array_equal(tab2.labels, labels)
    tab2.shutdown()
    state2.set_project(None)


def test_main_window_has_the_dendrogram_tab(qtbot):
    from galdesk.gui.main_window import MainWindow
    from galdesk.gui.tabs.dendrogram_tab import DendrogramTab

    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    tab = w.extra_tabs["Dendrogram"]
    assert isinstance(tab, DendrogramTab)
    offered = [tab.models.combo.itemData(i) for i in range(tab.models.combo.count())]
    assert {"descriptors", "morphology"} <= set(offered)          # the two label-free feature sets
    w.close()


def test_the_label_free_entries_reach_the_core(qtbot, monkeypatch, tmp_path):
    """The chooser offers the descriptors with the bundled invariance and with one learned on the project, and the
    train-SimCLR entry; the compute job hands each to ``cluster_and_cut`` as the command line does."""
    import galdesk.cluster.pipeline as pipeline
    from galdesk.gui.tabs.dendrogram_jobs import CONTRASTIVE_TRAIN, VQVAE_TRAIN, compute_job
    from galdesk.gui.widgets.feature_model_chooser import FeatureModelChooser
    from galdesk.project import Project

    make_app()
    chooser = FeatureModelChooser(VQVAE_TRAIN, contrastive_entry=CONTRASTIVE_TRAIN)
    qtbot.addWidget(chooser)
    offered = [chooser.combo.itemData(i) for i in range(chooser.combo.count())]
    assert {"descriptors", "descriptors:project", VQVAE_TRAIN, CONTRASTIVE_TRAIN} <= set(offered)
    assert chooser.select("descriptors:project") and chooser.current() == "descriptors:project"
    tip = chooser.combo.itemData(offered.index("descriptors"), Qt.ToolTipRole)
    assert "invariance" in tip and "without labels" in tip

    calls = []
    monkeypatch.setattr(pipeline, "cluster_and_cut", lambda project, **kw: calls.append(kw) or "done")
    Project.create(tmp_path / "p.galdesk").close()
    for model in ("descriptors:project", CONTRASTIVE_TRAIN, VQVAE_TRAIN):
        assert compute_job(tmp_path / "p.galdesk", model, 4, False, 0.8, "me") == "done"
    assert calls[0]["model"] == "descriptors:project" and not calls[0]["train_contrastive"]
    assert calls[1]["model"] is None and calls[1]["train_contrastive"] and not calls[1]["train_vqvae"]
    assert calls[2]["model"] is None and calls[2]["train_vqvae"] and not calls[2]["train_contrastive"]


def test_a_big_tree_draws_what_a_pixel_can_show(qtbot):
    """Above LOD_LEAVES leaves the plot draws only links at least a pixel wide in the view, with one stub per
    narrower subtree; zooming in redraws with the detail of the new range; colours and the highlight follow."""
    import fastcluster

    from galdesk.cluster import dendrogram_layout
    from galdesk.gui.widgets.dendrogram_plot import PALETTE, DendrogramPlot

    make_app()
    n = 30_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)) + rng.normal(scale=3, size=(12, 4))[rng.integers(0, 12, n)]
    lay = dendrogram_layout(fastcluster.linkage_vector(x, method="ward"))
    w = DendrogramPlot()
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.show()
    qtbot.waitExposed(w)
    w.set_tree(lay)

    def links(curves):
        return sum(int(np.isnan(c.xData).sum()) for c in curves if c.xData is not None)   # one NaN per link/stub

    drawn, stubs = w.lod()
    assert drawn is not None and 0 < drawn.sum() < (n - 1) / 10          # a small part of the 29,999 links
    assert links([w.curve]) == drawn.sum() + stubs.size
    # every stub hangs under a drawn link, from its merge height to 0
    parent_of = np.full(2 * n - 1, -1)
    parent_of[lay.left] = parent_of[lay.right] = np.arange(n, 2 * n - 1)
    assert drawn[parent_of[stubs]].all() and not drawn[stubs].any()
    # zoom into 300 leaves: all links in view are drawn, down to single galaxies
    w.vb.setXRange(1000, 1300, padding=0)
    qtbot.waitUntil(lambda: w.lod()[0] is not None and not w._lod_timer.isActive(), timeout=2000)
    qtbot.waitUntil(lambda: links([w.curve]) == int(w.lod()[0].sum() + w.lod()[1].size), timeout=2000)
    drawn2, _ = w.lod()
    inside = (lay.span_lo[n:] >= 1000) & (lay.span_hi[n:] <= 1300)
    assert drawn2[n:][inside].all()
    # cluster colours: each drawn link (and stub) in exactly one curve
    labels = np.where(lay.node_y > lay.node_y[-1] * 0.3, -1, np.arange(2 * n - 1) % 5)
    w.set_link_labels(labels)
    assert links([w.curve, *w.link_curves]) == int(drawn2.sum() + w.lod()[1].size)
    assert len(w.link_curves) == len(PALETTE)
    w.set_branch(2 * n - 2, None)
    assert links([w.highlight]) == int(drawn2.sum() + w.lod()[1].size)     # the root's branch: everything drawn
