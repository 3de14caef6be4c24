"""Shared fixtures: where the real data lies (../shared/data), skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GALDESK_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


def need(path: Path) -> Path:
    """Skip unless ``path`` exists."""
    if not path.exists():
        pytest.skip(f"missing real data file {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Settings, logs and untitled projects of tests never touch the real user's folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("GALDESK_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("GALDESK_DATA_DIR", str(base / "data"))
