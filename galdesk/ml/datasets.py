"""Galaxy Zoo 1 cut-outs as a working-size stack (for the bundled model, tests and benchmarks).

The stack is made exactly as the project store makes it: each JPEG is read with PIL as RGB, flipped vertically
so that row 0 is the bottom (galdesk's JPEG reader convention), transposed to ``(3, H, W)`` float32 (0..255) and
passed through :func:`galdesk.io.resample.resample_planes`. Training and inference therefore see identical inputs.

Labels (``labels.csv``, Lintott et al. 2008): 0 elliptical, 1 clockwise spiral, 2 anticlockwise spiral,
3 edge-on disk, 4 star/unknown, 5 merger. The binary task is 0 vs {1, 2, 3}; 4 and 5 are dropped.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["read_jpeg_planes", "read_gz1_labels", "gz1_stack", "gz1_binary", "GZ1_BINARY_CLASSES",
           "GZ1_CLASSES"]

GZ1_CLASSES = ["elliptical", "clockwise spiral", "anticlockwise spiral", "edge-on disk", "star/unknown", "merger"]
GZ1_BINARY_CLASSES = ["elliptical", "spiral"]


def read_jpeg_planes(path: str | Path) -> np.ndarray:
    """``(3, H, W)`` float32 0..255, row 0 = bottom of the image (as galdesk's JPEG reader returns it)."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(arr[::-1].transpose(2, 0, 1), dtype=np.float32)


def read_gz1_labels(root: str | Path) -> list[dict]:
    """Rows of ``labels.csv``: ``{"objid": str, "gz1_class": int, "gz1_label": str, "file": str}``."""
    root = Path(root)
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["gz1_class"] = int(r["gz1_class"])
    return rows


def _cache_dir() -> Path:
    d = Path(os.environ.get("GALDESK_CACHE", Path(tempfile.gettempdir()) / "galdesk_cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def gz1_stack(root: str | Path, size: int = 64, rows: list[dict] | None = None, cache: bool = True,
              ctx=None) -> tuple[np.ndarray, list[dict]]:
    """The working-size stack ``(N, 3, size, size)`` float32 for ``rows`` (default: all of labels.csv).

    Cached as ``.npy`` in ``$GALDESK_CACHE`` (default ``/tmp/galdesk_cache``), keyed by the list of files and the
    size; never inside the repository.
    """
    from galdesk.io.resample import resample_planes  # noqa: PLC0415

    root = Path(root)
    rows = read_gz1_labels(root) if rows is None else rows
    key = hashlib.sha1(("\n".join(r["file"] for r in rows) + f"|{size}|v1").encode()).hexdigest()[:16]
    path = _cache_dir() / f"gz1_{size}_{len(rows)}_{key}.npy"
    if cache and path.exists():
        stack = np.load(path, mmap_mode=None)
        if stack.shape == (len(rows), 3, size, size):
            return stack, rows
    stack = np.empty((len(rows), 3, size, size), dtype=np.float32)
    for i, r in enumerate(rows):
        if ctx is not None and i % 100 == 0:
            ctx.check_cancelled()
            ctx.progress(i / len(rows), f"reading GZ1 cut-outs {i}/{len(rows)}")
        stack[i] = resample_planes(read_jpeg_planes(root / r["file"]), size)
    if cache:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
        np.save(tmp, stack)
        tmp.replace(path)
    return stack, rows


def gz1_binary(root: str | Path, size: int = 64, limit: int | None = None, seed: int = 0,
               cache: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Binary elliptical vs spiral set: ``(stack, labels as strings, objids)``; classes 4 and 5 dropped.

    ``limit`` takes a random (seeded) subset of that many objects, for fast tests.
    """
    rows = [r for r in read_gz1_labels(root) if r["gz1_class"] in (0, 1, 2, 3)]
    if limit is not None and limit < len(rows):
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(rows), size=limit, replace=False))
        rows = [rows[i] for i in pick]
    stack, rows = gz1_stack(root, size=size, rows=rows, cache=cache)
    labels = np.array([GZ1_BINARY_CLASSES[0] if r["gz1_class"] == 0 else GZ1_BINARY_CLASSES[1] for r in rows])
    return stack, labels, [r["objid"] for r in rows]
