"""The plot of the Lines tab: the spectrum with the fitted model, continuum and components over the normalised
residuals, the draggable fit window (a region) and one draggable target per free-flux Gaussian at its peak.

The widget draws what a :class:`galdesk.lines.results.ComplexFit` says and reports drags (``peakDragged``); what a
drag means for the parameters is :func:`galdesk.lines.interactive.drag_start_values`.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

__all__ = ["LineFitPlot", "COMP_PENS", "LEGEND_NAMES"]

COMP_PENS = {"narrow": (30, 150, 60), "broad": (40, 90, 220), "outflow": (230, 130, 20), "absorption": (150, 80, 160),
             "stellar": (150, 80, 160), "feii": (200, 40, 160)}
#: legend names of the component curves (one legend entry per kind, not per line)
LEGEND_NAMES = {"narrow": "narrow", "broad": "broad", "outflow": "outflow", "absorption": "Balmer trough",
                "stellar": "stars", "feii": "continuum without Fe II"}


class LineFitPlot(pg.GraphicsLayoutWidget):
    #: (Gaussian index, target item, x, height and continuum of the peak before the drag)
    peakDragged = Signal(int, object, float, float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plot = self.addPlot(row=0, col=0)
        self.plot.setLabel("left", "flux")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.resid = self.addPlot(row=1, col=0)
        self.resid.setXLink(self.plot)
        self.resid.setLabel("left", "(data−model)/σ")
        self.resid.setLabel("bottom", "observed wavelength (Å)")
        self.resid.setMaximumHeight(120)
        self.ci.layout.setRowStretchFactor(0, 4)   # the spectrum gets most of the height
        self.ci.layout.setRowStretchFactor(1, 1)
        for p in (self.plot, self.resid):
            for side in ("left", "bottom"):
                p.getAxis(side).enableAutoSIPrefix(False)
        self.resid.addLine(y=0, pen=pg.mkPen((150, 150, 150)))
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="8pt", labelTextColor=(40, 40, 40),
                                          brush=pg.mkBrush(255, 255, 255, 200))
        self._legend_kinds: set[str] = set()
        self.data_curve = self.plot.plot([], [], pen=pg.mkPen((20, 20, 20), width=1), stepMode=None, name="data")
        self.model_curve = self.plot.plot([], [], pen=pg.mkPen((220, 30, 30), width=1), name="model")
        self.cont_curve = self.plot.plot([], [], pen=pg.mkPen((120, 120, 120), width=1, style=Qt.DashLine),
                                         name="continuum")
        self.resid_curve = self.resid.plot([], [], pen=None, symbol="o", symbolSize=3,
                                           symbolBrush=pg.mkBrush(30, 30, 30), symbolPen=None)
        self.comp_curves: dict[str, pg.PlotDataItem] = {}
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 230, 150, 50))
        self.region.setZValue(-10)
        self.plot.addItem(self.region)
        self.targets: list[tuple[pg.TargetItem, int]] = []

    def set_window(self, lo: float, hi: float) -> None:
        """Move the fit window without reporting it as a drag."""
        self.region.blockSignals(True)
        self.region.setRegion((lo, hi))
        self.region.blockSignals(False)

    def show_data(self, spec) -> None:
        """The spectrum around the fit window (masked pixels as gaps), ranges and the flux-unit axis label."""
        lo, hi = self.region.getRegion()
        w = spec.wavelength
        pad = 0.3 * (hi - lo)
        sel = (w >= lo - pad) & (w <= hi + pad)
        flux = np.where(spec.mask, np.nan, spec.flux)
        self.data_curve.setData(w[sel], flux[sel], connect="finite")
        self.plot.setXRange(lo - pad, hi + pad, padding=0)
        f = flux[sel][np.isfinite(flux[sel])]
        if f.size:
            lo_y, hi_y = np.percentile(f, [0.5, 99.8])
            self.plot.setYRange(lo_y - 0.1 * (hi_y - lo_y), hi_y + 0.15 * (hi_y - lo_y), padding=0)
        unit = spec.flux_unit or "unit unknown"
        self.plot.setLabel("left", f"F<sub>λ</sub> [{html.escape(unit)}]")
        self.plot.getAxis("left").setToolTip(spec.flux_unit or "flux unit unknown")

    def clear_fit(self) -> None:
        """No model: the model, continuum, component and residual curves and the peak targets are emptied."""
        for curve in (self.model_curve, self.cont_curve, self.resid_curve, *self.comp_curves.values()):
            curve.setData([], [])
        self._remove_targets()

    def _legend_name(self, kind: str) -> str | None:
        """The legend name of the first curve of a component kind (None for the rest: one entry per kind)."""
        if kind in self._legend_kinds:
            return None
        self._legend_kinds.add(kind)
        return LEGEND_NAMES.get(kind, kind)

    def _curve(self, key: str, kind: str, style=Qt.SolidLine) -> pg.PlotDataItem:
        item = self.comp_curves.get(key)
        if item is None:
            item = self.plot.plot([], [], pen=pg.mkPen(COMP_PENS.get(kind, (100, 100, 100)), width=1, style=style),
                                  name=self._legend_name(kind))
            self.comp_curves[key] = item
        return item

    def draw_fit(self, cf, feii_free=None) -> None:
        """Draw the fit ``cf``: model, continuum, each component on the continuum, the stellar model (dotted), the
        continuum without Fe II (dashed; ``feii_free(x, continuum)`` gives it or None), residuals and targets."""
        lo, hi = cf.window
        x = np.linspace(lo, hi, 1500)
        curves = cf.model_curves(x)
        self.model_curve.setData(x, curves["total"])
        self.cont_curve.setData(x, curves["continuum"])
        for key, item in self.comp_curves.items():
            if key not in curves:
                item.setData([], [])
        cont = curves["continuum"]
        for key, y in curves.items():
            if key in ("total", "continuum"):
                continue
            if key == "stellar":  # the stellar-population model (already inside the continuum)
                self._curve(key, "stellar", Qt.DotLine).setData(x, y)
                continue
            comp = key.rsplit("_", 1)[-1]
            self._curve(key, comp).setData(x, cont + y if comp != "absorption" else cont)
        y = feii_free(x, cont) if feii_free is not None else None
        if y is not None:
            self._curve("feii", "feii", Qt.DashLine).setData(x, y)
        elif "feii" in self.comp_curves:
            self.comp_curves["feii"].setData([], [])
        self.resid_curve.setData(cf.wave, cf.residuals())
        self._place_targets(cf.layout, x, curves)

    def _remove_targets(self) -> None:
        for t, _ in self.targets:
            self.plot.removeItem(t)
        self.targets = []

    def _place_targets(self, lay, x, curves) -> None:
        """One draggable target per free-flux Gaussian at its peak (centre = velocity, height = flux)."""
        self._remove_targets()
        cont = curves["continuum"]
        for g in range(lay.n_gauss):
            if lay.fmult[g] != 1.0 or lay.ridx[g] >= 0 or lay.g_comp[g] == "absorption":
                continue
            y = curves.get(f"{lay.g_line[g]}_{lay.g_comp[g]}")
            if y is None:
                continue
            k = int(np.argmax(np.abs(y)))
            t = pg.TargetItem(pos=(x[k], cont[k] + y[k]), size=9, movable=True,
                              pen=pg.mkPen(COMP_PENS.get(lay.g_comp[g], (0, 0, 0))),
                              label=f"{lay.g_line[g]} {lay.g_comp[g]}", labelOpts={"offset": (6, -12)})
            t.sigPositionChangeFinished.connect(
                lambda item, g=g, x0=float(x[k]), y0=float(y[k]), c0=float(cont[k]):
                self.peakDragged.emit(g, item, x0, y0, c0))
            self.plot.addItem(t)
            self.targets.append((t, g))
