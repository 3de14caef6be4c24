"""Where clustering features come from: label-free shape descriptors or statmorph morphology, a bundled image CNN,
a model file of yours, a VQ-VAE trained on the open project, or "train a VQ-VAE on this project first" (a combo box
and a "Your model…" button)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

__all__ = ["FeatureModelChooser"]


class FeatureModelChooser(QWidget):
    """Combo of feature models; :meth:`current` is a bundled name, a file path or ``train_entry``.

    Parameters
    ----------
    train_entry : str
        Data of the last entry, "VQ-VAE: train on this project (unsupervised)".
    """

    def __init__(self, train_entry: str, parent=None) -> None:
        super().__init__(parent)
        self.train_entry = train_entry
        self.combo = QComboBox()
        self.file_btn = QPushButton("Your model…")
        self.file_btn.clicked.connect(self._choose_file)
        self._project_vqvae_index = -1
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.file_btn)
        self.fill()

    def fill(self) -> None:
        """The bundled image models, the shape descriptors, then the train-a-VQ-VAE entry."""
        from galdesk.cluster.features import DESCRIPTORS
        from galdesk.cluster.morphology import MORPHOLOGY
        from galdesk.ml.weights import list_bundled

        self.combo.clear()
        for m in list_bundled():
            if m.get("task", "image") == "image":
                self.combo.addItem(m["name"], m["name"])
        self.combo.addItem("Shape descriptors (label-free, rotation-invariant)", DESCRIPTORS)
        self.combo.setItemData(self.combo.count() - 1,
                               "Light profile, concentration, axis ratio, asymmetry, colours and spiral-arm structure "
                               "measured in rings around each galaxy: no labels, no training; rotated copies are "
                               "turned off the pixel grid", Qt.ToolTipRole)
        self.combo.addItem("Non-parametric morphology (statmorph, label-free)", MORPHOLOGY)
        self.combo.setItemData(self.combo.count() - 1,
                               "Gini, M20, concentration, asymmetry, smoothness, Sérsic index, size, axis ratio and "
                               "colour from statmorph (galdesk morphology); measured first where the project has none, "
                               "~0.15 s a cut-out on each core", Qt.ToolTipRole)
        self.combo.addItem("VQ-VAE: train on this project (unsupervised)", self.train_entry)
        self._project_vqvae_index = -1

    def current(self):
        """The chosen model (None when nothing is chosen)."""
        return self.combo.currentData()

    def add_model(self, label: str, path: str) -> None:
        """Offer a model file and select it."""
        self.combo.addItem(label, path)
        self.combo.setCurrentIndex(self.combo.count() - 1)

    def offer_project_vqvae(self, project) -> None:
        """List the VQ-VAE a project already trained (PROJECT/models/vqvae.safetensors), if any, instead of the one
        of the previous project."""
        if self._project_vqvae_index >= 0:
            self.combo.removeItem(self._project_vqvae_index)
            self._project_vqvae_index = -1
        path = None if project is None else project.path / "models" / "vqvae.safetensors"
        if path is not None and path.is_file():
            self.combo.addItem("VQ-VAE trained on this project", str(path))
            self._project_vqvae_index = self.combo.count() - 1

    def select(self, model) -> bool:
        """Choose the entry whose model is ``model`` (a bundled name, a file or ``"descriptors"``), if offered."""
        i = self.combo.findData(model) if model else -1
        if i >= 0:
            self.combo.setCurrentIndex(i)
        return i >= 0

    def select_project_vqvae(self) -> None:
        """Choose the project's trained VQ-VAE if it is offered (after training: next time, reuse it)."""
        if self._project_vqvae_index >= 0:
            self.combo.setCurrentIndex(self._project_vqvae_index)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.safetensors *.pt *.pth)")
        if path:
            from pathlib import Path

            self.add_model(Path(path).stem, path)
            self.combo.setItemData(self.combo.count() - 1, path, Qt.ToolTipRole)


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.widgets.feature_model_chooser
    from galdesk.gui.qtapp import make_app

    app = make_app()
    w = FeatureModelChooser("vqvae:train")
    w.combo.currentIndexChanged.connect(lambda _: print("model:", w.current()))
    w.resize(480, 40)
    w.setWindowTitle("FeatureModelChooser preview")
    w.show()
    app.exec()
