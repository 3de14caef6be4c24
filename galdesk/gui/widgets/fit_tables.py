"""The Lines tab's tables: the fit parameters (value, error, free/fixed, bounds; editable, to steer a refit) and
the measured lines (read-only results)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

__all__ = ["ParamTable", "LinesTable", "PARAM_LABELS"]

#: Parameter names shown differently in the parameter table (the fit and the journal keep the real names)
PARAM_LABELS = {"stellar_scale": "continuum_scale"}

_VALUE, _ERROR, _FREE, _MIN, _MAX = 1, 2, 3, 4, 5


class ParamTable(QTableWidget):
    """lmfit parameters, one row each: name (real name in ``Qt.UserRole``), value, ± error, free, min, max.

    Value, free and the bounds are editable; :meth:`edited` applies them to a copy of the fitted parameters for a
    warm-started refit.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(0, 6, parent)
        self.setHorizontalHeaderLabels(["parameter", "value", "± error", "free", "min", "max"])
        self.verticalHeader().hide()

    def show_params(self, params) -> None:
        """Fill the table with ``params`` (lmfit Parameters), without emitting ``itemChanged``."""
        self.blockSignals(True)
        self.setRowCount(len(params))
        for r, (name, p) in enumerate(params.items()):
            err = p.stderr
            cells = [PARAM_LABELS.get(name, name), f"{p.value:.6g}",
                     "" if err is None or not math.isfinite(err) else f"{err:.3g}", "",
                     f"{p.min:.6g}", f"{p.max:.6g}"]
            for c, text in enumerate(cells):
                self.setItem(r, c, self._cell(c, text, name, p))
        self.resizeColumnsToContents()
        self.blockSignals(False)

    @staticmethod
    def _cell(c: int, text: str, name: str, p) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        if c in (0, _ERROR):
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
        if c == 0:
            item.setData(Qt.UserRole, name)
            if name in PARAM_LABELS:
                item.setToolTip(f"{name}: the whole-spectrum continuum model (stellar populations, or AGN host + "
                                "power law + Fe II) times this; held at 1 unless freed")
        if c == _FREE:
            item.setFlags((item.flags() | Qt.ItemIsUserCheckable) & ~Qt.ItemIsEditable)
            item.setCheckState(Qt.Checked if p.vary or p.expr else Qt.Unchecked)
            if p.expr:
                item.setToolTip(f"tied: {p.expr}")
        return item

    def set_values(self, params) -> None:
        """Show new starting values (after a drag) without emitting ``itemChanged``."""
        self.blockSignals(True)
        for r in range(self.rowCount()):
            name = self.item(r, 0).data(Qt.UserRole)
            if name in params:
                self.item(r, _VALUE).setText(f"{params[name].value:.6g}")
        self.blockSignals(False)

    def edited(self, params):
        """A copy of ``params`` with the table's values, free/fixed flags and bounds (unparsable cells ignored)."""
        params = params.copy()
        for r in range(self.rowCount()):
            name = self.item(r, 0).data(Qt.UserRole)
            if name not in params:
                continue
            p = params[name]
            try:
                p.value = float(self.item(r, _VALUE).text())
            except ValueError:
                pass
            p.vary = self.item(r, _FREE).checkState() == Qt.Checked
            for col, attr in ((_MIN, "min"), (_MAX, "max")):
                try:
                    setattr(p, attr, float(self.item(r, col).text()))
                except ValueError:
                    pass
        return params


class LinesTable(QTableWidget):
    """Measured lines of a complex fit: line, component, flux ± error, FWHM, EW, S/N (read-only)."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, 7, parent)
        self.setHorizontalHeaderLabels(["line", "component", "flux", "± error", "FWHM km/s", "EW Å", "S/N"])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)

    def show_measurements(self, measurements) -> None:
        """One row per measured emission component (absorption troughs left out)."""
        ms = [m for m in measurements if m.component != "absorption"]
        self.setRowCount(len(ms))

        def f(v, fmt):
            return "" if v is None or not np.isfinite(v) else format(v, fmt)

        for r, m in enumerate(ms):
            vals = [m.name, m.component, f(m.flux, ".4g"), f(m.flux_err, ".2g"), f(m.fwhm_kms, ".0f"),
                    f(m.ew, ".3g"), f(m.snr, ".1f")]
            for c, v in enumerate(vals):
                self.setItem(r, c, QTableWidgetItem(v))
        self.resizeColumnsToContents()
