"""DS9-style cut-out view: stretch, limits, colour map and band choice, with pixel value and sky coordinates
under the cursor and the FITS header beside it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from galdesk.display import CMAPS, LIMITS, STRETCHES, DisplaySettings, limits_for, render

__all__ = ["ImageView", "DisplayControls"]

#: the band combo's entry for a colour composite with each band through its own limits
PER_BAND = -1

LIMIT_LABELS = {"minmax": "min/max", "zscale": "zscale", "99": "99%", "99.5": "99.5%", "99.9": "99.9%",
                "manual": "manual"}


class DisplayControls(QWidget):
    """Stretch / limits / colour map / band combo boxes; emits ``changed(DisplaySettings)``."""

    changed = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.stretch = QComboBox()
        self.stretch.addItems(list(STRETCHES))
        self.limits = QComboBox()
        for key in LIMITS:
            self.limits.addItem(LIMIT_LABELS[key], key)
        self.cmap = QComboBox()
        self.cmap.addItems(list(CMAPS))
        self.band = QComboBox()
        self.vmin = QDoubleSpinBox()
        self.vmax = QDoubleSpinBox()
        for box in (self.vmin, self.vmax):
            box.setRange(-1e30, 1e30)
            box.setDecimals(4)
            box.setEnabled(False)
            box.setKeyboardTracking(False)
        for label, w in (("Stretch", self.stretch), ("Limits", self.limits), ("min", self.vmin), ("max", self.vmax),
                         ("Colours", self.cmap), ("Band", self.band)):
            lay.addWidget(QLabel(label))
            lay.addWidget(w)
        lay.addStretch(1)
        self._settings = DisplaySettings()
        self._block = False
        self._rgb8 = False
        self._n_bands = 1
        for w in (self.stretch, self.limits, self.cmap, self.band):
            w.currentIndexChanged.connect(self._on_changed)
        self.vmin.valueChanged.connect(self._on_changed)
        self.vmax.valueChanged.connect(self._on_changed)

    def set_bands(self, bands: list[str], rgb8: bool = False) -> None:
        self._rgb8, self._n_bands = bool(rgb8), len(bands)
        self._block = True
        current = self.band.currentData()
        self.band.clear()
        if len(bands) >= 3:
            self.band.addItem("colour (as is)" if rgb8 else "colour (Lupton)", None)
            if not rgb8:   # each band through its own limits (by the Limits rule) and the stretch, as DS9's RGB frame
                self.band.addItem("colour (per-band limits)", PER_BAND)
        for i, b in enumerate(bands):
            self.band.addItem(b or f"band {i}", i)
        idx = self.band.findData(current)
        self.band.setCurrentIndex(max(idx, 0))
        self._block = False
        self._take_band()
        self._update_enabled()

    def _take_band(self) -> None:
        """The band combo's choice into the settings: a band, the Lupton composite or the per-band composite."""
        data = self.band.currentData()
        self._settings.band = None if data in (None, PER_BAND) else data
        if data == PER_BAND:
            self._settings.composite = "stretch"
        elif data is None:
            self._settings.composite = "lupton"

    def _update_enabled(self) -> None:
        """Controls that do nothing for what is shown are disabled, and say why: an 8-bit colour cut-out (JPEG,
        PNG) is shown as it is; a Lupton composite has its own asinh stretch and colours, its limits apply to the
        band average."""
        composite = self._settings.band is None and self._n_bands >= 3
        per_band = composite and not self._rgb8 and self._settings.composite == "stretch"
        manual = self._settings.limits == "manual"
        as_is = composite and self._rgb8
        why = ("an 8-bit colour cut-out is shown as it is: choose a band to stretch it" if as_is else
               "the Lupton composite has its own asinh stretch and colours: choose a band for these" if composite
               else "")
        self.stretch.setEnabled(not composite or per_band)
        self.stretch.setToolTip("applied to each band" if per_band else why)
        self.cmap.setEnabled(not composite)
        self.cmap.setToolTip("a colour composite has its own colours: choose a band for a colour map"
                             if per_band else why)
        self.limits.setEnabled(not as_is)
        self.limits.setToolTip(why if as_is else
                               ("each band's own limits by this rule (manual: the same limits for every band)"
                                if per_band else "limits of the band average (the composite's common scale)"
                                if composite else ""))
        for w in (self.vmin, self.vmax):
            w.setEnabled(manual and not as_is)

    def set_settings(self, s: DisplaySettings) -> None:
        self._block = True
        self._settings = DisplaySettings.from_dict(s.to_dict())
        self.stretch.setCurrentText(s.stretch)
        self.limits.setCurrentIndex(max(self.limits.findData(s.limits), 0))
        self.cmap.setCurrentText(s.cmap)
        if s.band is None and self.band.findData(PER_BAND) >= 0:
            self.band.setCurrentIndex(self.band.findData(PER_BAND if s.composite == "stretch" else None))
        self._block = False
        self._update_enabled()

    def show_limits(self, lo: float, hi: float) -> None:
        """Show the limits in use (so that switching to manual starts from them)."""
        self._block = True
        self.vmin.setValue(lo)
        self.vmax.setValue(hi)
        self._block = False

    def settings(self) -> DisplaySettings:
        return self._settings

    def _on_changed(self, *_):
        if self._block:
            return
        s = self._settings
        s.stretch = self.stretch.currentText()
        s.limits = self.limits.currentData()
        s.cmap = self.cmap.currentText()
        self._take_band()
        manual = s.limits == "manual"
        self._update_enabled()
        s.vmin, s.vmax = (self.vmin.value(), self.vmax.value()) if manual else (None, None)
        self.changed.emit(DisplaySettings.from_dict(s.to_dict()))


class ImageView(QWidget):
    """One cut-out with display controls, cursor read-out (pixel, value, RA/Dec) and its header."""

    displayChanged = Signal(object)

    def __init__(self, parent=None, show_header: bool = True) -> None:
        super().__init__(parent)
        self.image = None
        self.settings = DisplaySettings()
        self.rotation = 0       # quarter turns, counter-clockwise
        self.flipped = False
        self.controls = DisplayControls()
        self.glw = pg.GraphicsLayoutWidget()
        self.view = self.glw.addViewBox(lockAspect=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self._build_colour_bar()
        self._build_grid()
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.header = QPlainTextEdit()
        self.header.setReadOnly(True)
        self.header.setLineWrapMode(QPlainTextEdit.NoWrap)
        font = self.header.font()
        font.setFamily("monospace")
        self.header.setFont(font)
        self.rot_btn = QPushButton("Rotate 90°")
        self.flip_btn = QPushButton("Flip")
        self.grid_btn = QPushButton("Grid")
        self.grid_btn.setCheckable(True)
        self.grid_btn.setToolTip("RA/Dec coordinate grid from the file's WCS (as DS9's Analysis > Coordinate Grid)")
        bar = QHBoxLayout()
        bar.addWidget(self.rot_btn)
        bar.addWidget(self.flip_btn)
        bar.addWidget(self.grid_btn)
        bar.addWidget(self.readout, 1)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.controls)
        ll.addWidget(self.glw, 1)
        ll.addLayout(bar)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        if show_header:
            split = QSplitter(Qt.Horizontal)
            split.addWidget(left)
            split.addWidget(self.header)
            split.setStretchFactor(0, 3)
            split.setStretchFactor(1, 1)
            split.setSizes([700, 260])
            lay.addWidget(split)
        else:
            self.header.hide()
            lay.addWidget(left)
        self.controls.changed.connect(self._on_controls_changed)
        self.rot_btn.clicked.connect(self.rotate)
        self.flip_btn.clicked.connect(self.flip)
        self.grid_btn.toggled.connect(lambda _on: self._draw_grid())
        self._proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved)

    def _build_colour_bar(self) -> None:
        """A DS9-style colour bar under the image: the colour map, labelled with the data values the stretch maps
        to evenly spaced points along it (:func:`galdesk.display.colourbar_ticks`); shown for one band."""
        self.cbar = self.glw.addPlot(row=1, col=0)
        self.cbar.setMaximumHeight(48)
        self.cbar.setMouseEnabled(False, False)
        self.cbar.hideButtons()
        self.cbar.hideAxis("left")
        self.cbar.getAxis("bottom").setStyle(tickLength=4)
        self.cbar_img = pg.ImageItem(axisOrder="row-major")
        self.cbar.addItem(self.cbar_img)
        self.cbar.setXRange(0, 1, padding=0)
        self.cbar.setYRange(0, 1, padding=0)

    def _show_colour_bar(self, plane, limits) -> None:
        from galdesk.display import colormap_lut, colourbar_ticks

        s = self.settings
        self.cbar_img.setImage(colormap_lut(s.cmap)[None, :, :], levels=(0, 255))
        self.cbar_img.setRect(0, 0, 1, 1)
        ticks = colourbar_ticks(s, limits, plane)
        self.cbar.getAxis("bottom").setTicks([[(p, f"{v:.4g}") for p, v in ticks]])
        self.cbar.setVisible(True)

    def _build_grid(self) -> None:
        pen = pg.mkPen((80, 255, 120, 200), width=1)
        self.grid_curves = {k: pg.PlotCurveItem(pen=pen, connect="finite") for k in ("ra", "dec")}
        for curve in self.grid_curves.values():
            curve.setZValue(10)
            self.view.addItem(curve)
        self.grid_labels: list[pg.TextItem] = []
        self.grid = None

    def _draw_grid(self) -> None:
        """The RA/Dec grid (:func:`galdesk.skygrid.sky_grid`) over the image, when asked for and possible."""
        from galdesk.skygrid import sky_grid

        for label in self.grid_labels:
            self.view.removeItem(label)
        self.grid_labels = []
        for curve in self.grid_curves.values():
            curve.setData([], [])
        wcs = getattr(self.image, "wcs", None)
        has_wcs = self.image is not None and wcs is not None
        self.grid_btn.setEnabled(has_wcs and not (self.rotation or self.flipped))
        self.grid_btn.setToolTip("RA/Dec coordinate grid from the file's WCS (as DS9's Analysis > Coordinate Grid)"
                                 if has_wcs and not (self.rotation or self.flipped) else
                                 "the grid is drawn on the image as the file has it: undo the rotation or flip"
                                 if has_wcs else "no celestial WCS in this file's header")
        if not (self.grid_btn.isChecked() and self.grid_btn.isEnabled()):
            self.grid = None
            return
        ny, nx = self.image.shape
        self.grid = sky_grid(wcs, ny, nx)
        for kind, curve in self.grid_curves.items():
            x, y = self.grid.polyline(kind)
            curve.setData(x + 0.5, y + 0.5)     # pixel centres: the image item's pixel i spans [i, i + 1]
        for line in self.grid.lines:
            if line.label_at is None:
                continue
            x, y = line.label_at
            # inside the image, against the edge the line leaves by (y runs up: anchor y 1 puts text above)
            edge = min((abs(x + 0.5), (0.0, 0.5)), (abs(x - nx + 0.5), (1.0, 0.5)), (abs(y + 0.5), (0.5, 1.0)),
                       (abs(y - ny + 0.5), (0.5, 0.0)))
            text = pg.TextItem(line.label, color=(80, 255, 120), anchor=edge[1], fill=pg.mkBrush(0, 0, 0, 150))
            text.setZValue(11)
            text.setPos(x + 0.5, y + 0.5)
            self.view.addItem(text)
            self.grid_labels.append(text)

    # -- public --------------------------------------------------------------------------------------------------------
    def set_image(self, image) -> None:
        """Show an :class:`~galdesk.io.model.ImageData` (or None to clear)."""
        self.image = image
        self.rotation, self.flipped = 0, False
        if image is None:
            self.item.clear()
            self.header.setPlainText("")
            self.readout.setText(" ")
            self._draw_grid()
            return
        self.controls.set_bands(list(image.bands), rgb8=image.rgb)
        self.settings.band = self.controls.settings().band
        self.settings.composite = self.controls.settings().composite
        hdr = image.header
        if hasattr(hdr, "tostring"):
            text = hdr.tostring(sep="\n")
        elif hdr:
            text = str(hdr)
        else:
            text = f"(no FITS header: {image.meta.get('image_format') or 'image'} file)\n{image.source}"
        self.header.setPlainText(text)
        self._redraw()
        self._draw_grid()
        self.view.autoRange(padding=0.02, items=[self.item])

    def set_settings(self, settings: DisplaySettings) -> None:
        band = self.settings.band
        self.settings = DisplaySettings.from_dict(settings.to_dict())
        self.settings.band = band
        self.controls.set_settings(self.settings)
        self._redraw()

    def rotate(self) -> None:
        self.rotation = (self.rotation + 1) % 4
        self._redraw()
        self._draw_grid()
        self.view.autoRange(padding=0.02, items=[self.item])

    def flip(self) -> None:
        self.flipped = not self.flipped
        self._redraw()
        self._draw_grid()

    def rendered(self) -> np.ndarray | None:
        """The (ny, nx, 3) uint8 array on screen (row 0 at the bottom), for tests."""
        return self.item.image

    # -- internals -----------------------------------------------------------------------------------------------------
    def _on_controls_changed(self, s: DisplaySettings) -> None:
        self.settings = s
        self._redraw()
        self.displayChanged.emit(s)

    def _redraw(self) -> None:
        if self.image is None:
            return
        px = self.image.pixels
        s = self.settings
        rgb = render(px, s, rgb8=self.image.rgb, bands=self.image.bands)
        composite = s.band is None and px.shape[0] >= 3
        self.cbar.setVisible(False)              # a colour bar only where one colour map is used
        if composite and not self.image.rgb:    # the limits the Lupton composite uses: the band average's
            self.controls.show_limits(*limits_for(np.nan_to_num(np.asarray(px, float)).mean(axis=0), s))
        elif not composite:
            band = 0 if s.band is None else int(s.band)
            plane = px[min(band, px.shape[0] - 1)]
            lo, hi = limits_for(plane, s)
            self.controls.show_limits(lo, hi)
            self._show_colour_bar(plane, (lo, hi))
        if self.flipped:
            rgb = rgb[:, ::-1]
        if self.rotation:
            rgb = np.rot90(rgb, self.rotation)
        self.item.setImage(np.ascontiguousarray(rgb), levels=(0, 255))

    def _on_mouse_moved(self, evt) -> None:
        if self.image is None or self.rotation or self.flipped:
            return
        pos = evt[0]
        if not self.view.sceneBoundingRect().contains(pos):
            return
        p = self.view.mapSceneToView(pos)
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        ny, nx = self.image.shape
        if not (0 <= x < nx and 0 <= y < ny):
            self.readout.setText(" ")
            return
        vals = self.image.pixels[:, y, x]
        bands = list(self.image.bands) if len(self.image.bands) == len(vals) else [""] * len(vals)
        header = self.image.header
        unit = str(header.get("BUNIT", "")).strip() if header is not None and hasattr(header, "get") else ""
        # FITS 1-based pixels; each band's value with its name, and the file's unit (BUNIT) when it gives one
        text = f"x={x + 1} y={y + 1}  " + ", ".join(f"{b + '=' if b else ''}{v:.5g}" for b, v in zip(bands, vals))
        text += f" {unit}" if unit else ""
        wcs = self.image.wcs
        if wcs is not None:
            try:
                sky = wcs.pixel_to_world(x, y)
                text += f"  RA={sky.ra.to_string(unit='hourangle', sep=':', precision=2)}" \
                        f" Dec={sky.dec.to_string(sep=':', precision=1, alwayssign=True)}" \
                        f" ({sky.ra.deg:.6f}°, {sky.dec.deg:+.6f}°)"
            except Exception:  # noqa: BLE001 - a WCS that cannot convert shows no position
                pass
        self.readout.setText(text)


if __name__ == "__main__":  # preview: python -m galdesk.gui.widgets.image_view
    import sys

    from PySide6.QtWidgets import QApplication

    from galdesk.io.model import ImageData
    from galdesk.services.demo import synthetic_galaxy

    app = QApplication(sys.argv)
    w = ImageView()
    w.set_image(ImageData(synthetic_galaxy("spiral", np.random.default_rng(1), 128), ["g", "r", "i"], "demo", "demo"))
    w.resize(900, 600)
    w.show()
    sys.exit(app.exec())
