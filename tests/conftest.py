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


def gz1_catalog(shared_data: Path, dest: Path, n: int, seed: int | None = None) -> Path:
    """Write ``dest/cat.csv``: ``n`` Galaxy Zoo 1 rows (a seeded random sample, or the first ``n`` without a seed)
    with absolute file paths, ready for ``galdesk.services.ingest.ingest([], ..., catalog=...)``."""
    import numpy as np
    from astropy.table import Table

    root = shared_data / "images" / "gz1"
    if not (root / "labels.csv").exists():
        pytest.skip("GZ1 cut-outs not found")
    labels = Table.read(root / "labels.csv", format="ascii.csv")
    if seed is None:
        labels = labels[:n]
    else:
        labels = labels[np.sort(np.random.default_rng(seed).choice(len(labels), n, replace=False))]
    labels["file"] = [str(root / f) for f in labels["file"]]
    dest.mkdir(parents=True, exist_ok=True)
    labels.write(dest / "cat.csv", format="ascii.csv", overwrite=True)
    return dest / "cat.csv"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Two torch threads on a busy 2-core machine spin against each other (measured 20x slower); one is plenty
    for the small models of the tests."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
