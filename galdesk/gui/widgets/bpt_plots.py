"""The three BPT diagnostic diagrams (Baldwin, Phillips & Terlevich 1981; Veilleux & Osterbrock 1987) with the
demarcation curves of :mod:`galdesk.lines.bpt` (a legend names them), the regions they separate, every fitted
object of the project and the current one with its error bars. "Open in a window" shows a larger copy that follows
the same data."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

__all__ = ["BPTPlots"]


class BPTPlots(QWidget):
    """The three diagnostic diagrams with the demarcation curves, all fitted objects and the current one."""

    DIAGRAMS = (("log_n2ha", "log [NII]6584/Hα"), ("log_s2ha", "log [SII]/Hα"), ("log_o1ha", "log [OI]6300/Hα"))
    #: region names and where they are written, per diagram (x, y in the diagram's log ratios)
    REGIONS = {"log_n2ha": (("star-forming", -1.6, -0.8), ("composite", -0.25, -0.95), ("Seyfert", -1.3, 1.2),
                            ("LINER", 0.25, -0.6)),
               "log_s2ha": (("star-forming", -1.3, -0.8), ("Seyfert", -1.0, 1.2), ("LINER", 0.1, -0.6)),
               "log_o1ha": (("star-forming", -2.3, -0.8), ("Seyfert", -1.7, 1.2), ("LINER", -0.4, -0.6))}
    NAMES = {"Ka03": "Kauffmann+03", "Ke01": "Kewley+01", "S07": "Schawinski+07", "Ke06": "Kewley+06"}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        from galdesk.lines import bpt

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        self.window_btn = QPushButton("Open in a window")
        self.window_btn.setToolTip("A larger copy of the diagrams that follows the same fits")
        self.window_btn.clicked.connect(self.open_window)
        top = QHBoxLayout()
        top.addStretch(1)
        top.addWidget(self.window_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.glw)
        self._data: tuple[list, dict | None] = ([], None)
        self.copies: list[BPTPlots] = []
        self.plots, self.all_pts, self.current, self.errbars = [], [], [], []
        curves = {
            "log_n2ha": [(bpt.kauffmann03, (-2.0, 0.04), "Ka03", Qt.DashLine), (bpt.kewley01_nii, (-2.0, 0.46),
                                                                                 "Ke01", Qt.SolidLine),
                         (bpt.schawinski07, (-0.18, 1.0), "S07", Qt.DotLine)],
            "log_s2ha": [(bpt.kewley01_sii, (-2.0, 0.31), "Ke01", Qt.SolidLine),
                         (bpt.kewley06_sii, (-0.31, 1.0), "Ke06", Qt.DotLine)],
            "log_o1ha": [(bpt.kewley01_oi, (-3.0, -0.6), "Ke01", Qt.SolidLine),
                         (bpt.kewley06_oi, (-1.13, 0.5), "Ke06", Qt.DotLine)],
        }
        for i, (key, label) in enumerate(self.DIAGRAMS):
            p = self.glw.addPlot(row=0, col=i)
            p.setLabel("bottom", label)
            if i == 0:
                p.setLabel("left", "log [OIII]5007/Hβ")
            p.setXRange(-2.0 if key != "log_o1ha" else -2.5, 0.8)
            p.setYRange(-1.2, 1.5)
            legend = p.addLegend(offset=(-5, 5), labelTextSize="7pt", brush=pg.mkBrush(255, 255, 255, 210))
            for fn, (x0, x1), name, style in curves[key]:
                x = np.linspace(x0, x1, 200)
                p.plot(x, fn(x), pen=pg.mkPen((60, 60, 60), width=1, style=style), name=self.NAMES[name])
            legend.setVisible(False)    # shown in the larger window (open_window); here it hid the curves
            styles = {Qt.DashLine: "dashed", Qt.DotLine: "dotted"}
            p.setToolTip("curves: " + ", ".join(f"{self.NAMES[n]} ({styles.get(st, 'solid')})"
                                                for _fn, _r, n, st in curves[key]))
            for text, x, y in self.REGIONS[key]:
                t = pg.TextItem(text, color=(90, 90, 150), anchor=(0.5, 0.5))
                t.setPos(x, y)
                p.addItem(t)
            pts = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(120, 120, 120, 120))
            cur = pg.ScatterPlotItem(size=10, pen=pg.mkPen("k"), brush=pg.mkBrush(220, 40, 40))
            err = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), pen=pg.mkPen((220, 40, 40)))
            p.addItem(pts)
            p.addItem(err)
            p.addItem(cur)
            self.plots.append(p)
            self.all_pts.append(pts)
            self.current.append(cur)
            self.errbars.append(err)

    def open_window(self) -> "BPTPlots":
        """A larger, separate copy of the diagrams, kept up to date with this one."""
        copy = BPTPlots()
        copy.window_btn.hide()
        for p in copy.plots:
            p.legend.setVisible(True)
        copy.setWindowTitle("BPT diagrams")
        copy.resize(1300, 500)
        copy.set_all(self._data[0])
        copy.set_current(self._data[1])
        self.copies = [c for c in self.copies if c.isVisible()] + [copy]
        copy.show()
        return copy

    def set_all(self, bpts: list[dict]) -> None:
        self._data = (list(bpts), self._data[1])
        for c in self.copies:
            c.set_all(bpts)
        for (key, _), pts in zip(self.DIAGRAMS, self.all_pts):
            xy = [(b[key], b["log_o3hb"]) for b in bpts if b.get(key) is not None and b.get("log_o3hb") is not None]
            pts.setData([p[0] for p in xy], [p[1] for p in xy])

    def set_current(self, b: dict | None) -> None:
        self._data = (self._data[0], b)
        for c in self.copies:
            c.set_current(b)
        for (key, _), cur, err in zip(self.DIAGRAMS, self.current, self.errbars):
            if b and b.get(key) is not None and b.get("log_o3hb") is not None:
                x, y = np.array([b[key]]), np.array([b["log_o3hb"]])
                cur.setData(x, y)
                err.setData(x=x, y=y, width=2 * np.array([b.get(key + "_err") or 0.0]),
                            height=2 * np.array([b.get("log_o3hb_err") or 0.0]))
            else:
                cur.setData([], [])
                err.setData(x=np.zeros(0), y=np.zeros(0))


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.widgets.bpt_plots
    from galdesk.gui.qtapp import make_app

    app = make_app()
    w = BPTPlots()
    rng = np.random.default_rng(0)
    w.set_all([{"log_n2ha": x, "log_s2ha": x - 0.2, "log_o1ha": x - 1.0, "log_o3hb": y}
               for x, y in zip(rng.normal(-0.4, 0.3, 200), rng.normal(0.0, 0.4, 200))])
    w.set_current({"log_n2ha": -0.1, "log_n2ha_err": 0.05, "log_s2ha": -0.3, "log_o1ha": -1.2, "log_o3hb": 0.8,
                   "log_o3hb_err": 0.1})
    w.resize(1000, 360)
    w.show()
    app.exec()
