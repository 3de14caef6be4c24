"""The science core imports neither Qt nor (until a model is used) torch; start-up stays light."""

import subprocess
import sys

import pytest

CORE = ["galdesk", "galdesk.cli", "galdesk.tasks", "galdesk.config", "galdesk.io", "galdesk.io.registry",
        "galdesk.project", "galdesk.project.journal", "galdesk.display", "galdesk.services.ingest",
        "galdesk.services.demo", "galdesk.ml", "galdesk.ml.device", "galdesk.lines", "galdesk.cluster",
        "galdesk.ml.service", "galdesk.lines.service", "galdesk.services.batch", "galdesk.vetting",
        "galdesk.catalog.export", "galdesk.io.catalog", "galdesk.jsonutil", "galdesk.lines.engine",
        "galdesk.lines.batch"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_qt_and_no_torch(module):
    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            "bad = [m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_no_qt_import_outside_gui_package():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "galdesk"
    offenders = []
    for py in root.rglob("*.py"):
        if "gui" in py.relative_to(root).parts:
            continue
        for line in py.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if s.startswith(("import PySide6", "from PySide6", "import pyqtgraph", "from pyqtgraph")):
                offenders.append(str(py))
    assert offenders == []
