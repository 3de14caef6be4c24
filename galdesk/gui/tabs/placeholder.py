"""A tab whose capability is not built yet: says so honestly, and what it will do."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["NotYetTab"]


class NotYetTab(QWidget):
    def __init__(self, title: str, plan: str, parent=None) -> None:
        super().__init__(parent)
        label = QLabel(f"<h3>{title}: not yet available</h3><p>{plan}</p>")
        label.setAlignment(Qt.AlignCenter)
        label.setWordWrap(True)
        label.setTextFormat(Qt.RichText)
        lay = QVBoxLayout(self)
        lay.addWidget(label)


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.tabs.placeholder
    from galdesk.gui.qtapp import make_app

    app = make_app()
    tab = NotYetTab("Spectra stacking", "Stack spectra of a cluster in the rest frame, weighted by inverse variance.")
    tab.resize(700, 400)
    tab.show()
    app.exec()
