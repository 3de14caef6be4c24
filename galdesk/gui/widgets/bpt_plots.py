"""The three BPT diagnostic diagrams (Baldwin, Phillips & Terlevich 1981; Veilleux & Osterbrock 1987) with the
demarcation curves of :mod:`galdesk.lines.bpt`, every fitted object of the project and the current one with its
error bars."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

__all__ = ["BPTPlots"]


class BPTPlots(QWidget):
    """The three diagnostic diagrams with the demarcation curves, all fitted objects and the current one."""

    DIAGRAMS = (("log_n2ha", "log [NII]6584/Hα"), ("log_s2ha", "log [SII]/Hα"), ("log_o1ha", "log [OI]6300/Hα"))

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        from galdesk.lines import bpt

        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw)
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
            for fn, (x0, x1), _name, style in curves[key]:
                x = np.linspace(x0, x1, 200)
                p.plot(x, fn(x), pen=pg.mkPen((60, 60, 60), width=1, style=style))
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

    def set_all(self, bpts: list[dict]) -> None:
        for (key, _), pts in zip(self.DIAGRAMS, self.all_pts):
            xy = [(b[key], b["log_o3hb"]) for b in bpts if b.get(key) is not None and b.get("log_o3hb") is not None]
            pts.setData([p[0] for p in xy], [p[1] for p in xy])

    def set_current(self, b: dict | None) -> None:
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
