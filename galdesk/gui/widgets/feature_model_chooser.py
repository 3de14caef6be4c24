"""Where clustering features come from: label-free shape descriptors (with the bundled invariance, or one learned on
the open project) or statmorph morphology, a bundled image CNN, a model file of yours, a VQ-VAE or SimCLR network
trained on the open project, or "train one on this project first" (a combo box and a "Your model…" button)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

__all__ = ["FeatureModelChooser"]


class FeatureModelChooser(QWidget):
    """Combo of feature models; :meth:`current` is a bundled name, a file path, ``train_entry`` or
    ``contrastive_entry``.

    Parameters
    ----------
    train_entry : str
        Data of the entry "VQ-VAE: train on this project (unsupervised)".
    contrastive_entry : str, optional
        Data of the entry "SimCLR: train on this project (self-supervised)" (not offered without it).
    """

    #: files a project keeps its trained networks in, and how they are offered
    PROJECT_MODELS = (("vqvae.safetensors", "VQ-VAE trained on this project"),
                      ("contrastive.safetensors", "SimCLR trained on this project"))

    def __init__(self, train_entry: str, parent=None, contrastive_entry: str | None = None) -> None:
        super().__init__(parent)
        self.train_entry = train_entry
        self.contrastive_entry = contrastive_entry
        self.combo = QComboBox()
        self.file_btn = QPushButton("Your model…")
        self.file_btn.clicked.connect(self._choose_file)
        self._project_items: list[str] = []
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.file_btn)
        self.fill()

    def fill(self) -> None:
        """The bundled image models, the label-free feature sets, then the train-a-network entries."""
        from galdesk.cluster.features import DESCRIPTORS, DESCRIPTORS_PROJECT
        from galdesk.cluster.morphology import MORPHOLOGY
        from galdesk.ml.weights import list_bundled

        self.combo.clear()
        for m in list_bundled():
            if m.get("task", "image") == "image":
                self.combo.addItem(m["name"], m["name"])
        self.combo.addItem("Shape descriptors, bundled invariance (label-free)", DESCRIPTORS)
        self.combo.setItemData(self.combo.count() - 1,
                               "Light profile, concentration, axis ratio, asymmetry, colours and spiral-arm structure "
                               "measured in rings around each galaxy, weighed by the bundled gz1-shape-invariance "
                               "(learned without labels: the directions that turning, shifting, blurring and noise "
                               "leave alone); rotated copies are turned off the pixel grid", Qt.ToolTipRole)
        self.combo.addItem("Shape descriptors, invariance learned on this project (label-free)", DESCRIPTORS_PROJECT)
        self.combo.setItemData(self.combo.count() - 1,
                               "The same descriptors, weighed by an invariance learned on this project's own cut-outs "
                               "(at most 2,000 of them, 8 augmented copies each; about a minute): for bands or "
                               "surveys unlike the Galaxy Zoo JPEGs", Qt.ToolTipRole)
        self.combo.addItem("Non-parametric morphology (statmorph, label-free)", MORPHOLOGY)
        self.combo.setItemData(self.combo.count() - 1,
                               "Gini, M20, concentration, asymmetry, smoothness, Sérsic index, size, axis ratio and "
                               "colour from statmorph (galdesk morphology); measured first where the project has none, "
                               "~0.15 s a cut-out on each core", Qt.ToolTipRole)
        self.combo.addItem("VQ-VAE: train on this project (unsupervised)", self.train_entry)
        if self.contrastive_entry:
            self.combo.addItem("SimCLR: train on this project (self-supervised)", self.contrastive_entry)
            self.combo.setItemData(self.combo.count() - 1,
                                   "A small CNN trained without labels to give the same features to augmented copies "
                                   "of a galaxy (saved in PROJECT/models/contrastive.safetensors); minutes on a GPU, "
                                   "much longer on a CPU", Qt.ToolTipRole)
        self._project_items = []

    def current(self):
        """The chosen model (None when nothing is chosen)."""
        return self.combo.currentData()

    def add_model(self, label: str, path: str) -> None:
        """Offer a model file and select it."""
        self.combo.addItem(label, path)
        self.combo.setCurrentIndex(self.combo.count() - 1)

    def offer_project_models(self, project) -> None:
        """List the networks a project already trained (:attr:`PROJECT_MODELS` in PROJECT/models/), if any, instead
        of those of the previous project."""
        for path in self._project_items:
            i = self.combo.findData(path)
            if i >= 0:
                self.combo.removeItem(i)
        self._project_items = []
        for name, label in self.PROJECT_MODELS:
            path = None if project is None else project.path / "models" / name
            if path is not None and path.is_file():
                self.combo.addItem(label, str(path))
                self._project_items.append(str(path))

    def select(self, model) -> bool:
        """Choose the entry whose model is ``model`` (a bundled name, a file or ``"descriptors"``), if offered."""
        i = self.combo.findData(model) if model else -1
        if i >= 0:
            self.combo.setCurrentIndex(i)
        return i >= 0

    def select_project_model(self, name: str) -> None:
        """Choose the project's trained network ``name`` (e.g. ``"vqvae.safetensors"``) if it is offered (after
        training: next time, reuse it)."""
        for path in self._project_items:
            if path.endswith(name):
                self.combo.setCurrentIndex(self.combo.findData(path))

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
