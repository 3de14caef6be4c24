"""The house rules of docs/architecture.md, checked on the code: module and function sizes, public names only
across modules, and the import-linter contracts (layers, core without Qt, no cycles, imports inside functions
included)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "galdesk"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
REASON = "# long:"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_600_lines():
    big = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text(encoding="utf-8").splitlines()))
           > MAX_MODULE_LINES}
    assert big == {}, f"split these modules along their concerns: {big}"


def _long_functions_without_reason(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        n = node.end_lineno - node.lineno + 1
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        above = lines[first - 2].strip() if first >= 2 else ""
        if n > MAX_FUNCTION_LINES and not above.startswith(REASON):
            out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_80_lines_without_a_reason():
    offenders = [x for p in _modules() for x in _long_functions_without_reason(p)]
    assert offenders == [], ("split these functions, or write why not in a '# long: ...' comment line directly "
                             f"above the def: {offenders}")


def test_only_public_names_cross_modules():
    offenders = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("galdesk"):
                offenders += [f"{p.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not installed: pip install -e '.[test]'")
    out = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
