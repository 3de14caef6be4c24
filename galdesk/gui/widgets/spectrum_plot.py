"""Spectrum plot: flux with a ±1σ error band, observed / rest-frame toggle, emission-line markers, and display
smoothing (boxcar or Gaussian, the error band smoothed with it: :func:`galdesk.display.smooth_spectrum`).

Items are created once and updated with ``setData`` (pyqtgraph speed rule); the curves use a 1-pixel pen without
antialiasing.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from galdesk.display import SMOOTHINGS, smooth_spectrum
from galdesk.lines.linelist import LINES, vac_to_air

__all__ = ["SpectrumPlot"]

MAIN_LABELS = {"oii3726": "[OII]", "hgamma": "Hγ", "hbeta": "Hβ", "oiii5007": "[OIII]", "oi6300": "[OI]",
               "halpha": "Hα", "nii6584": "[NII]", "sii6717": "[SII]"}


class SpectrumPlot(QWidget):
    """Plot of one :class:`~galdesk.io.model.SpectrumData`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.spectrum = None
        self.rest = QCheckBox("Rest frame")
        self.show_lines = QCheckBox("Line markers")
        self.show_lines.setChecked(True)
        self.smoothing = QComboBox()
        self.smoothing.addItems(list(SMOOTHINGS))
        self.smoothing.setToolTip("Smooth the plotted spectrum (display only: fits and exports use the data as "
                                  "they are); the ±1σ band is smoothed with it")
        self.info = QLabel(" ")
        bar = QHBoxLayout()
        bar.addWidget(self.rest)
        bar.addWidget(self.show_lines)
        bar.addWidget(QLabel("Smooth"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.info, 1)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "Observed wavelength", units="Å")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.lo = pg.PlotDataItem(pen=None)
        self.hi = pg.PlotDataItem(pen=None)
        self.band = pg.FillBetweenItem(self.lo, self.hi, brush=pg.mkBrush(120, 120, 220, 70))
        self.curve = pg.PlotDataItem(pen=pg.mkPen("k" if False else (30, 30, 30), width=1), connect="finite")
        self.plot.addItem(self.band)
        self.plot.addItem(self.curve)
        self.plot.setBackground("w")
        self.markers: list[tuple[str, pg.InfiniteLine]] = []
        self._model: list = []
        self._model_items: list = []
        for k, name in enumerate(LINES):
            # every line is marked; only the main ones are named (close doublets' names would overlap)
            label = MAIN_LABELS.get(name)
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((200, 60, 60), width=1, style=Qt.DashLine),
                                   label=label, labelOpts={"position": 0.96 if k % 2 else 0.88,
                                                           "color": (160, 40, 40)} if label else None)
            line.setVisible(False)
            self.plot.addItem(line, ignoreBounds=True)
            self.markers.append((name, line))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(self.plot, 1)
        self.rest.toggled.connect(self._redraw)
        self.rest.toggled.connect(lambda _on: self.reset_range() if self.spectrum is not None else None)
        self.show_lines.toggled.connect(self._redraw)
        self.smoothing.currentTextChanged.connect(self._redraw)

    def set_model(self, curves: list[tuple[np.ndarray, np.ndarray]] | None) -> None:
        """Overlay model curves (observed wavelength, flux), e.g. a line fit's total model per complex."""
        for item in self._model_items:
            self.plot.removeItem(item)
        self._model_items = []
        self._model = curves or []
        self._draw_model()

    def _draw_model(self) -> None:
        for item in self._model_items:
            self.plot.removeItem(item)
        self._model_items = []
        z = (self.spectrum.redshift or 0.0) if self.spectrum is not None else 0.0
        rest = self.rest.isChecked() and self.spectrum is not None and self.spectrum.redshift is not None
        for x, y in self._model:
            item = pg.PlotDataItem(x / (1.0 + z) if rest else x, y, pen=pg.mkPen((220, 30, 30), width=1))
            self.plot.addItem(item)
            self._model_items.append(item)

    def set_spectrum(self, spec) -> None:
        self._model = []
        self.spectrum = spec
        if spec is None:
            for it in (self.curve, self.lo, self.hi):
                it.setData([], [])
            self.info.setText(" ")
            return
        z = spec.redshift
        parts = [spec.id]
        if z is not None:
            parts.append(f"z = {z:.5f}")
        if spec.spec_class:
            parts.append(f"{spec.spec_class} {spec.subclass or ''}".strip())
        parts.append("vacuum" if spec.vacuum else "air")
        self.info.setText("   ".join(parts))
        self.rest.setEnabled(z is not None)
        self._redraw()
        self.reset_range()

    def reset_range(self) -> None:
        """The whole spectrum in x; in y the 0.5-99.5 percentiles of the good flux plus a margin (robust to
        cosmic rays and sky residuals, unlike min/max)."""
        spec = self.spectrum
        x = self.x_values()
        good = spec.good if hasattr(spec, "good") else np.isfinite(spec.flux)
        if not np.any(good):
            self.plot.enableAutoRange()
            return
        lo, hi = np.percentile(spec.flux[good], [0.5, 99.5])
        pad = 0.08 * (hi - lo if hi > lo else 1.0)
        self.plot.setXRange(float(np.nanmin(x)), float(np.nanmax(x)), padding=0.01)
        self.plot.setYRange(float(lo - pad), float(hi + 2 * pad), padding=0)

    def x_values(self) -> np.ndarray:
        """Wavelengths as plotted (rest frame when toggled and z is known)."""
        spec = self.spectrum
        if self.rest.isChecked() and spec.redshift is not None:
            return spec.wavelength / (1.0 + spec.redshift)
        return spec.wavelength

    def _redraw(self, *_):
        spec = self.spectrum
        if spec is None:
            return
        x = self.x_values()
        flux, err = smooth_spectrum(spec.flux, spec.error, spec.mask, self.smoothing.currentText())
        flux = np.where(spec.mask, np.nan, flux)
        ok = np.isfinite(err) & ~spec.mask
        lo = np.where(ok, flux - err, np.nan)
        hi = np.where(ok, flux + err, np.nan)
        self.curve.setData(x, flux)
        # FillBetweenItem needs finite curves: fill gaps with the flux itself (zero-width band)
        self.lo.setData(x, np.where(np.isfinite(lo), lo, np.nan_to_num(flux)))
        self.hi.setData(x, np.where(np.isfinite(hi), hi, np.nan_to_num(flux)))
        rest = self.rest.isChecked() and spec.redshift is not None
        self.plot.setLabel("bottom", "Rest-frame wavelength" if rest else "Observed wavelength", units="Å")
        unit = spec.flux_unit or "flux"
        self.plot.setLabel("left", f"Flux [{unit}]")
        z = spec.redshift or 0.0
        xmin, xmax = (float(np.nanmin(x)), float(np.nanmax(x))) if x.size else (0, 0)
        for name, line in self.markers:
            w = LINES[name] if spec.vacuum else float(vac_to_air(LINES[name]))
            pos = w if rest else w * (1.0 + z)
            show = self.show_lines.isChecked() and spec.redshift is not None and xmin <= pos <= xmax
            line.setPos(pos)
            line.setVisible(bool(show))
        self._draw_model()


if __name__ == "__main__":  # preview: python -m galdesk.gui.widgets.spectrum_plot
    import sys

    from PySide6.QtWidgets import QApplication

    from galdesk.io.model import SpectrumData
    from galdesk.services.demo import synthetic_spectrum

    app = QApplication(sys.argv)
    loglam, flux, ivar, _ = synthetic_spectrum("seyfert1", 0.05, np.random.default_rng(2))
    w = SpectrumPlot()
    w.set_spectrum(SpectrumData(10**loglam, flux, ivar, np.zeros(flux.size, bool), "demo", "demo", redshift=0.05))
    w.resize(900, 500)
    w.show()
    sys.exit(app.exec())
