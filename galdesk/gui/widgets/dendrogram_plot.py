"""An interactive dendrogram: the whole tree as ONE PlotCurveItem, a draggable global cut line, a draggable cut line
for the selected branch, a strip of cluster colours under the leaves and a marker for the current galaxy.

Speed rules (docs/architecture.md): one curve of NaN-separated segments with a 1-px pen and no antialiasing (a Ward
tree of 10k leaves repaints in ~3 ms; one item per link collapses); the cluster colours are an image of one row
(recolouring is one ``setImage``); a drag previews on ``sigPositionChanged`` and commits on
``sigPositionChangeFinished``. Geometry and picking come from :mod:`galdesk.cluster.layout` (NumPy).

Level of detail: above :attr:`DendrogramPlot.LOD_LEAVES` leaves only the links at least a pixel wide in the current
x range are drawn, and each subtree narrower than that hangs below its parent's link as one vertical stub (from
its merge height to 0), in its cluster's colour; panning or zooming redraws after a short pause. At 10^6 galaxies
the whole tree's first paint took 0.7 s on the GUI thread; a view holds a few thousand links whatever the size.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal

from galdesk.cluster.layout import POINTS_PER_NODE, DendrogramLayout, pick_node

__all__ = ["DendrogramPlot", "cluster_colors", "PALETTE"]

# 12 colours that stay apart on a dark background (Tableau-like); clusters cycle through them
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232),
                    (255, 187, 120), (152, 223, 138)], np.uint8)


def cluster_colors(labels: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 colour of each label (cycling through :data:`PALETTE`)."""
    return PALETTE[np.asarray(labels, np.int64) % len(PALETTE)]


class DendrogramPlot(pg.PlotWidget):
    """Dendrogram with cut lines.

    Signals
    -------
    nodeClicked(int)
        A node was clicked (its id), or the background (-1).
    cutPreview(int, float)
        A cut line is being dragged: (node, distance); the node is the root for the global line.
    cutCommitted(int, float)
        A drag ended: (node, distance).
    """

    nodeClicked = Signal(int)
    cutPreview = Signal(int, float)
    cutCommitted = Signal(int, float)

    TREE_PEN = (200, 200, 200)
    #: above this many leaves, links narrower than a pixel are drawn as stubs (module docstring)
    LOD_LEAVES = 20_000
    HIGHLIGHT_PEN = (255, 200, 40)
    GLOBAL_PEN = (255, 90, 90)
    BRANCH_PEN = (80, 200, 255)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree_layout: DendrogramLayout | None = None
        self._node_labels: np.ndarray | None = None
        self._highlight_mask: np.ndarray | None = None
        self._parts_cache = None
        self._lod_timer = QTimer(self)
        self._lod_timer.setSingleShot(True)
        self._lod_timer.setInterval(40)
        self._lod_timer.timeout.connect(self._draw_links)
        self.root = -1
        self.branch_node = -1
        self._quiet = False
        self._top = 1.0
        pi = self.getPlotItem()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setLabel("left", "Ward distance")
        pi.setLabel("bottom", "galaxies (dendrogram order)")
        pi.getAxis("bottom").setStyle(showValues=False)
        for side in ("left", "bottom"):
            pi.getAxis(side).enableAutoSIPrefix(False)
        self.vb = pi.getViewBox()
        self.vb.setMouseEnabled(x=True, y=False)
        # the tree: ONE curve, 1-px pen, no antialiasing
        self.curve = pg.PlotCurveItem(pen=pg.mkPen(self.TREE_PEN, width=1), antialias=False, connect="finite")
        self.highlight = pg.PlotCurveItem(pen=pg.mkPen(self.HIGHLIGHT_PEN, width=1), antialias=False,
                                          connect="finite")
        self.strip = pg.ImageItem(axisOrder="row-major")
        self.marker = pg.ScatterPlotItem(size=12, symbol="t1", pen=pg.mkPen("k"), brush=pg.mkBrush(255, 255, 255))
        # a wide hover pen also widens the grab area of a 1-px line (its bounding rect follows the widest pen)
        self.global_line = pg.InfiniteLine(
            angle=0, movable=True, pen=pg.mkPen(self.GLOBAL_PEN, width=1), hoverPen=pg.mkPen(self.GLOBAL_PEN, width=7),
            label="global cut {value:.3g}", labelOpts={"position": 0.03, "color": self.GLOBAL_PEN,
                                                       "anchors": [(0, 1), (0, 1)]})
        self.branch_line = pg.InfiniteLine(
            angle=0, movable=True, pen=pg.mkPen(self.BRANCH_PEN, width=1), hoverPen=pg.mkPen(self.BRANCH_PEN, width=7),
            label="branch cut {value:.3g}", labelOpts={"position": 0.5, "color": self.BRANCH_PEN,
                                                       "anchors": [(0.5, 1), (0.5, 1)]})
        # links inside a cluster in its colour: one curve per palette colour (recolouring is 13 setData calls)
        self.link_curves = [pg.PlotCurveItem(pen=pg.mkPen(tuple(int(c) for c in rgb), width=1), antialias=False,
                                             connect="finite") for rgb in PALETTE]
        for item in (self.strip, self.curve, *self.link_curves, self.highlight, self.marker, self.global_line,
                     self.branch_line):
            self.addItem(item)
        self.marker.setZValue(5)
        self.global_line.setZValue(10)
        self.branch_line.setZValue(11)
        self.branch_line.hide()
        self.global_line.hide()
        self.global_line.sigPositionChanged.connect(self._on_global_moved)
        self.global_line.sigPositionChangeFinished.connect(self._on_global_finished)
        self.branch_line.sigPositionChanged.connect(self._on_branch_moved)
        self.branch_line.sigPositionChangeFinished.connect(self._on_branch_finished)
        self.vb.sigXRangeChanged.connect(self._update_branch_span)
        self.vb.sigXRangeChanged.connect(self._view_changed)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        # what to do, said where the user looks: an empty-state message, and a one-line hint above a tree
        self.empty_text = pg.TextItem(self.EMPTY_TEXT, color=(170, 170, 170), anchor=(0.5, 0.5))
        self.addItem(self.empty_text)
        self.global_line.setToolTip("Global cut: drag up or down to cut the whole tree at one Ward distance")
        self.branch_line.setToolTip("Branch cut: drag to cut only the selected branch at its own distance "
                                    "(finer or coarser than the rest of the tree)")
        self._show_empty(True)

    EMPTY_TEXT = ("No tree yet.\nChoose where the features come from (left) and press\n"
                  "\u201cCompute features & cluster\u201d.")
    HINT = "Drag the red line to cut the whole tree \u00b7 click a branch, drag its blue line to cut it alone"

    def _show_empty(self, empty: bool) -> None:
        pi = self.getPlotItem()
        self.empty_text.setVisible(empty)
        for side in ("left", "bottom"):
            pi.showAxis(side, not empty)
        if empty:
            pi.setTitle(None)
            self.vb.setLimits(xMin=None, xMax=None)
            self.vb.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            self.empty_text.setPos(0, 0)
        else:
            pi.setTitle(self.HINT, size="8pt", color=(170, 170, 170))

    # -- data -----------------------------------------------------------------------------------------------------
    def set_tree(self, layout: DendrogramLayout | None) -> None:
        """Show a tree (None: empty)."""
        self.tree_layout = layout
        self._node_labels = self._highlight_mask = self._parts_cache = None
        self.branch_node = -1
        self.branch_line.hide()
        self.highlight.setData([], [])
        self.marker.setData([], [])
        for c in self.link_curves:
            c.setData([], [])
        if layout is None or layout.n_leaves < 2:
            self.curve.setData([], [])
            self.strip.clear()
            self.global_line.hide()
            self.root = -1
            self._show_empty(True)
            return
        self._show_empty(False)
        n = layout.n_leaves
        self.root = 2 * n - 2
        self._top = float(layout.node_y[self.root]) or 1.0
        bounds = (0.0, self._top * 1.05)
        self.global_line.setBounds(bounds)
        self.branch_line.setBounds(bounds)
        self.global_line.show()
        self.vb.setLimits(xMin=-0.05 * n - 1, xMax=1.05 * n + 1)
        self.vb.setRange(xRange=(-0.5, n - 0.5), yRange=(-0.06 * self._top, self._top * 1.08), padding=0)
        self._draw_links()

    def set_leaf_colors(self, rgb: np.ndarray) -> None:
        """Colour of each leaf in dendrogram order, (n, 3) uint8: one image row under the leaves."""
        if self.tree_layout is None or self.tree_layout.n_leaves < 2:
            return
        n = self.tree_layout.n_leaves
        self.strip.setImage(np.ascontiguousarray(rgb[None, :, :]), autoLevels=False, levels=(0, 255))
        h = 0.04 * self._top
        self.strip.setRect(QRectF(-0.5, -h, n, h))

    def set_link_labels(self, node_labels: np.ndarray | None) -> None:
        """Colour the links of each cluster like its strip (``node_labels`` (2n-1,): a node's cluster, -1 for links
        above the cuts, drawn grey; None: all grey)."""
        self._node_labels = None if node_labels is None else np.asarray(node_labels, np.int64)
        self._draw_links()

    # -- drawing (level of detail) -------------------------------------------------------------------------------
    def lod(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(drawn, stubs)`` for the current x range: the internal nodes whose links are drawn (mask over nodes)
        and the nodes drawn as a stub; ``(None, None)`` when every link is drawn (up to :attr:`LOD_LEAVES`)."""
        lay = self.tree_layout
        n = lay.n_leaves
        if n <= self.LOD_LEAVES:
            return None, None
        (x0, x1), _ = self.vb.viewRange()
        per_px = max((x1 - x0) / max(float(self.vb.width()), 200.0), 1e-9)
        seen = (lay.span_hi - 0.5 >= x0) & (lay.span_lo - 0.5 <= x1)
        drawn = seen & (lay.span_hi - lay.span_lo >= per_px)
        drawn[:n] = False
        inner = np.flatnonzero(drawn[n:])
        kids = np.concatenate([lay.left[inner], lay.right[inner]])
        stubs = kids[(kids >= n) & ~drawn[kids] & seen[kids]]
        return drawn, stubs

    def _parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """At the current level of detail: ``(nodes, x, y)`` of the drawn links (x, y: (k, 5) polyline pieces) and
        ``(stubs, sx, sy)`` of the stubs ((s, 3) pieces); None when every link is drawn."""
        lay = self.tree_layout
        if lay is None or lay.n_leaves <= self.LOD_LEAVES:
            return None
        key = (id(lay), tuple(self.vb.viewRange()[0]), float(self.vb.width()))
        if self._parts_cache is not None and self._parts_cache[0] == key:
            return self._parts_cache[1]          # recolouring or a new highlight in the same view
        drawn, stubs = self.lod()
        n = lay.n_leaves
        inner = np.flatnonzero(drawn[n:])
        x = lay.x.reshape(-1, POINTS_PER_NODE)[inner]
        y = lay.y.reshape(-1, POINTS_PER_NODE)[inner]
        sx = np.repeat(lay.node_x[stubs], 3).reshape(-1, 3)
        sy = np.zeros_like(sx)
        sy[:, 1] = lay.node_y[stubs]
        sx[:, 2] = sy[:, 2] = np.nan
        parts = (inner + n, x, y, stubs, sx, sy)
        self._parts_cache = (key, parts)
        return parts

    def _segments(self, mask: np.ndarray | None, parts) -> tuple[np.ndarray, np.ndarray]:
        """The polyline of the links of ``mask`` (over nodes; None: all) at the level of detail ``parts``."""
        lay = self.tree_layout
        if parts is None:
            return (lay.x, lay.y) if mask is None else lay.segments_of(mask)
        nodes, _, _, stubs, _, _ = parts
        return self._pieces(parts, None if mask is None else mask[nodes], None if mask is None else mask[stubs])

    @staticmethod
    def _pieces(parts, keep, keep_stubs) -> tuple[np.ndarray, np.ndarray]:
        """The drawn links ``keep`` and stubs ``keep_stubs`` (masks over ``parts``' own; None: all) as a polyline."""
        _, x, y, _, sx, sy = parts
        if keep is not None:
            x, y, sx, sy = x[keep], y[keep], sx[keep_stubs], sy[keep_stubs]
        return np.concatenate([x.ravel(), sx.ravel()]), np.concatenate([y.ravel(), sy.ravel()])

    def _draw_links(self) -> None:
        lay = self.tree_layout
        if lay is None or lay.n_leaves < 2:
            return
        parts = self._parts()
        lab = self._node_labels
        if lab is None:
            for c in self.link_curves:
                c.setData([], [])
            self.curve.setData(*self._segments(None, parts), connect="finite")
        elif parts is None:
            self.curve.setData(*lay.segments_of(lab < 0), connect="finite")
            colour = np.where(lab >= 0, lab % len(PALETTE), -1)
            for k, c in enumerate(self.link_curves):
                c.setData(*lay.segments_of(colour == k), connect="finite")
        else:                                    # colours of the drawn links and stubs only (10^6 nodes: ms)
            cl, cs = (np.where(v >= 0, v % len(PALETTE), -1) for v in (lab[parts[0]], lab[parts[3]]))
            self.curve.setData(*self._pieces(parts, cl < 0, cs < 0), connect="finite")
            for k, c in enumerate(self.link_curves):
                c.setData(*self._pieces(parts, cl == k, cs == k), connect="finite")
        if self._highlight_mask is not None:
            self.highlight.setData(*self._segments(self._highlight_mask, parts), connect="finite")

    def _view_changed(self, *_) -> None:
        if self.tree_layout is not None and self.tree_layout.n_leaves > self.LOD_LEAVES:
            self._lod_timer.start()      # after a short pause: a drag or a wheel zoom redraws once

    def set_global_cut(self, value: float | None) -> None:
        """Move the global line without emitting preview/commit signals."""
        if value is None or not np.isfinite(value):
            value = self._top * 1.02
        self._quiet = True
        try:
            self.global_line.setValue(float(value))
        finally:
            self._quiet = False

    def set_branch(self, node: int, value: float | None, highlight_mask: np.ndarray | None = None) -> None:
        """Select a branch: highlight its links (or ``highlight_mask``, (2n-1,) over nodes) and show its cut line
        (hidden for the root, whose cut is the global line)."""
        if self.tree_layout is None or node < 0:
            self.clear_branch()
            return
        self.branch_node = int(node)
        lay = self.tree_layout
        mask = highlight_mask if highlight_mask is not None else (
            (lay.span_lo >= lay.span_lo[node]) & (lay.span_hi <= lay.span_hi[node]))
        self._highlight_mask = np.asarray(mask, bool)
        self.highlight.setData(*self._segments(self._highlight_mask, self._parts()), connect="finite")
        if node == self.root or node < lay.n_leaves:
            self.branch_line.hide()
            return
        if value is None or not np.isfinite(value):
            value = float(lay.node_y[node])
        self.branch_line.show()          # before moving it: a hidden line's label is not updated
        self._quiet = True
        try:
            self.branch_line.setValue(float(value))
        finally:
            self._quiet = False
        self._update_branch_span()

    def clear_branch(self) -> None:
        self.branch_node = -1
        self._highlight_mask = None
        self.branch_line.hide()
        self.highlight.setData([], [])

    def set_current_leaf(self, pos: float | None) -> None:
        """Mark the current galaxy's leaf position (None: no mark)."""
        if pos is None or self.tree_layout is None:
            self.marker.setData([], [])
        else:
            self.marker.setData([float(pos)], [-0.02 * self._top])   # on the colour strip

    # -- geometry helpers (also used by tests) --------------------------------------------------------------------
    def branch_x_range(self) -> tuple[float, float] | None:
        if self.tree_layout is None or self.branch_node < 0:
            return None
        lay = self.tree_layout
        return float(lay.span_lo[self.branch_node]) - 0.5, float(lay.span_hi[self.branch_node]) - 0.5

    def _update_branch_span(self, *_):
        rng = self.branch_x_range()
        if rng is None:
            return
        (x0, x1), _ = self.vb.viewRange()
        width = (x1 - x0) or 1.0
        lo = min(max((rng[0] - x0) / width, 0.0), 1.0)
        hi = min(max((rng[1] - x0) / width, 0.0), 1.0)
        self.branch_line.setSpan(lo, max(hi, lo + 1e-3))
        # setSpan only repaints; the line draws (and is grabbed) within its cached bounding rect: drop it
        self.branch_line.viewTransformChanged()

    # -- interaction ---------------------------------------------------------------------------------------------
    def _on_global_moved(self, line) -> None:
        if not self._quiet and self.root >= 0:
            self.cutPreview.emit(self.root, float(line.value()))

    def _on_global_finished(self, line) -> None:
        if not self._quiet and self.root >= 0:
            self.cutCommitted.emit(self.root, float(line.value()))

    def _on_branch_moved(self, line) -> None:
        if not self._quiet and self.branch_node >= 0:
            self.cutPreview.emit(self.branch_node, float(line.value()))

    def _on_branch_finished(self, line) -> None:
        if not self._quiet and self.branch_node >= 0:
            self.cutCommitted.emit(self.branch_node, float(line.value()))

    def _on_scene_clicked(self, ev) -> None:
        if ev.button() != Qt.LeftButton or self.tree_layout is None or ev.isAccepted():
            return
        pos = ev.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos):
            return
        p = self.vb.mapSceneToView(pos)
        px, py = self.vb.viewPixelSize()
        node = pick_node(self.tree_layout, p.x(), p.y(), px or 1.0, py or 1.0, tolerance=6.0)
        self.nodeClicked.emit(-1 if node is None else int(node))

    def data_to_widget(self, x: float, y: float):
        """Widget (viewport) coordinates of a data point: for tests that drive the mouse."""
        from PySide6.QtCore import QPointF  # noqa: PLC0415

        scene = self.vb.mapViewToScene(QPointF(float(x), float(y)))
        return self.mapFromScene(scene)


if __name__ == "__main__":  # pragma: no cover - preview: a random Ward tree of 5,000 points
    import fastcluster

    from galdesk.cluster import cut_tree, dendrogram_layout

    app = pg.mkQApp("DendrogramPlot preview")
    rng = np.random.default_rng(0)
    pts = np.vstack([rng.normal(c, 1.0, size=(1250, 8)) for c in (0, 4, 8, 12)])
    Z = fastcluster.linkage_vector(pts, method="ward")
    lay = dendrogram_layout(Z)
    w = DendrogramPlot()
    w.set_tree(lay)
    cuts = {w.root: float(Z[-4, 2])}

    def recolor(node, value):
        res = cut_tree(Z, {**cuts, node: value}, lay.leaf_order)
        w.set_leaf_colors(cluster_colors(res.labels[lay.leaf_order]))

    def commit(node, value):
        cuts[node] = value
        recolor(node, value)

    w.set_global_cut(cuts[w.root])
    recolor(w.root, cuts[w.root])
    w.cutPreview.connect(recolor)
    w.cutCommitted.connect(commit)
    w.nodeClicked.connect(lambda n: w.set_branch(n, cuts.get(n)) if n >= 0 else w.clear_branch())
    w.resize(1000, 600)
    w.setWindowTitle("Dendrogram: drag the red line; click a branch and drag its blue line")
    w.show()
    app.exec()
