"""File > Export Catalogue…: choose rows (all / vetted / accepted), columns, format; written atomically on a
worker, with a confirmation before an existing file is replaced."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from galdesk.gui.worker import TaskRunner

__all__ = ["ExportDialog"]

FILTERS = "FITS table (*.fits);;CSV (*.csv);;ECSV (*.ecsv);;VOTable (*.xml *.vot)"


class ExportDialog(QDialog):
    exported = Signal(object)   # ExportResult

    def __init__(self, project, parent=None) -> None:
        super().__init__(parent)
        from galdesk.catalog.assemble import ONLY_CHOICES, build_catalog

        self.setWindowTitle("Export catalogue")
        self.project = project
        self.runner = TaskRunner(self)
        self.result = None
        self.path = QLineEdit(str(Path.home() / f"{project.name}_catalogue.fits"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        prow = QHBoxLayout()
        prow.addWidget(self.path, 1)
        prow.addWidget(browse)
        self.only = QComboBox()
        for o in ONLY_CHOICES:
            self.only.addItem(o, o)
        self.columns = QListWidget()
        for name in build_catalog(project, only="all").colnames:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked)
            self.columns.addItem(item)
        self.status = QLabel("")
        form = QFormLayout()
        form.addRow("File", prow)
        form.addRow("Rows", self.only)
        form.addRow("Columns", self.columns)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.export)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.Ok)
        self.ok.setText("Export")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.status)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export catalogue", self.path.text(), FILTERS,
                                              options=QFileDialog.DontConfirmOverwrite)
        if path:
            self.path.setText(path)

    def chosen_columns(self) -> list[str]:
        return [self.columns.item(i).text() for i in range(self.columns.count())
                if self.columns.item(i).checkState() == Qt.Checked]

    def export(self, confirm: bool = True) -> None:
        from galdesk.catalog.export import export_catalog

        path = Path(self.path.text()).expanduser()
        overwrite = False
        if path.exists():
            if confirm and QMessageBox.question(self, "Replace file?", f"{path} exists. Replace it?") \
                    != QMessageBox.Yes:
                return
            overwrite = True
        self.ok.setEnabled(False)
        self.status.setText("exporting…")
        self.runner.start(export_catalog, str(self.project.path), str(path), only=self.only.currentData(),
                          columns=self.chosen_columns(), overwrite=overwrite,
                          on_result=self._on_done, on_error=self._on_error)

    def _on_done(self, result) -> None:
        self.result = result
        self.status.setText(f"wrote {result.n_rows} rows to {result.path}")
        self.exported.emit(result)
        self.accept()

    def _on_error(self, exc, tb) -> None:
        self.ok.setEnabled(True)
        self.status.setText(f"failed: {exc}")
        QMessageBox.warning(self, "Export", str(exc))


if __name__ == "__main__":  # pragma: no cover - preview: python -m galdesk.gui.dialogs.export_dialog [PROJECT]
    from galdesk.gui.preview import preview_project_path
    from galdesk.gui.qtapp import make_app
    from galdesk.project import Project

    app = make_app()
    dialog = ExportDialog(Project.open(preview_project_path()))
    dialog.exported.connect(lambda result: print("exported", result))
    dialog.exec()
