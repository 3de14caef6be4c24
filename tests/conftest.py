"""Shared fixtures: where the real data lies (../shared/data).

Locally, tests that need the real data skip when it is absent. CI sets ``GALDESK_REQUIRE_DATA=1`` (``.ci/run``):
then missing data fails those tests instead, so that a CI machine without the data cannot pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GALDESK_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: CI: real data is required (missing data fails the test instead of skipping it).
REQUIRE_DATA = os.environ.get("GALDESK_REQUIRE_DATA", "") not in ("", "0")


def missing_data(message: str):
    """Skip (local runs) or fail (``GALDESK_REQUIRE_DATA=1``, as in CI) because real data is missing."""
    hint = (f"{message}. The real data lives in ../shared/data beside the repository (or $GALDESK_SHARED_DATA); "
            "see the README, 'Tests and their data'")
    if REQUIRE_DATA:
        pytest.fail(hint, pytrace=False)
    pytest.skip(hint)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; skips (fails in CI) when it is absent."""
    if not SHARED.is_dir():
        missing_data(f"real data not found at {SHARED}")
    return SHARED


def need(path: Path) -> Path:
    """``path``, or skip (fail in CI) when the real data file is absent."""
    if not path.exists():
        missing_data(f"missing real data file {path}")
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
        missing_data("GZ1 cut-outs not found")
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
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
