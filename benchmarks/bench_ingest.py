"""Ingest benchmark: the Galaxy Zoo 1 cut-outs into a project, galdesk vs a plain sequential loop.

The plain loop is what one would write by hand: for each JPEG, PIL decode -> float32 array -> the same
area-averaged 64 px stack (``resample_planes``) -> one HDF5 dataset at the end. galdesk's ``ingest`` does the same
work through its reader registry with parallel decode in worker processes, and also writes the object table and
manifest. Both produce the same stack (checked).

Run:  .venv/bin/python benchmarks/bench_ingest.py [N] [--workers W]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "images" / "gz1" / "jpeg"


def plain_loop(files: list[Path], out: Path, size: int = 64) -> np.ndarray:
    from galdesk.io.resample import resample_planes

    planes = []
    for f in files:
        with Image.open(f) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32)[::-1].transpose(2, 0, 1)
        planes.append(resample_planes(arr, size))
    stack = np.stack(planes)
    with h5py.File(out, "w") as h:
        h.create_dataset("stack", data=stack)
    return stack


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=0, help="number of files (0 = all)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"no data at {SHARED}", file=sys.stderr)
        return 1
    files = sorted(SHARED.glob("*.jpeg"))
    if args.n:
        files = files[: args.n]
    from galdesk.project import Project
    from galdesk.services.ingest import default_workers, ingest

    workers = args.workers or default_workers()
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        ref = plain_loop(files, tmp / "plain.h5")
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = ingest(files, tmp / "p", workers=workers)
        t_gal = time.perf_counter() - t0
        stack = Project.open(tmp / "p.galdesk").stack("c3")
        same = stack.shape == ref.shape and float(np.max(np.abs(stack - ref)))
        print(f"files: {len(files)}   workers: {workers}   problems: {len(res.problems)}")
        print(f"plain sequential PIL loop : {t_plain:7.2f} s  ({len(files) / t_plain:7.1f} files/s)")
        print(f"galdesk ingest            : {t_gal:7.2f} s  ({len(files) / t_gal:7.1f} files/s)")
        print(f"ratio (plain / galdesk)   : {t_plain / t_gal:7.2f}x   max |stack difference| = {same:.3g}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
