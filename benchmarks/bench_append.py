"""Append benchmark: add K cut-outs to an N-object project (segments, galdesk.project.segments), against the same K
into a new project (what an append should cost) and against rewriting every stored cut-out (what every append cost
before segments: one arrays.h5 rewritten whole; emulated by merging all segments, which copies the same bytes).

Each measurement runs in its own process, so that its peak memory (ru_maxrss) is its own. Synthetic 3-band cut-outs
of SIZE px (the pixels do not matter to the cost). Reported: seconds and peak MB, split into arrays and object table,
and the ratios; then the whole ``galdesk ingest`` command of K real JPEG cut-outs into the big project against into a
new one.

Run:  .venv/bin/python benchmarks/bench_append.py [N] [K] [SIZE]   (defaults 20000 1000 64; ~1 GB of temporary disk)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from galdesk.io.model import ImageData
from galdesk.project import Project

path, start, k, mode, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rng = np.random.default_rng(start)
imgs = [ImageData(rng.random((3, size, size), dtype=np.float32), ["g", "r", "i"], f"/synthetic/{start + i}.fits",
                  f"g{start + i:07d}") for i in range(k)]
stacks = {id(im): im.pixels for im in imgs}
proj = Project.open(path) if mode != "new" else Project.create(path, working_size=size)
t0 = time.perf_counter()
len(proj.objects)                      # opening: the object table is read once (any command on the project does)
t_read = time.perf_counter() - t0
t0 = time.perf_counter()
if mode == "rewrite":
    segs = proj.arrays.segments()
    proj.arrays.merge(segs, len(segs))
else:
    proj.add(imgs, stacks=stacks)
t = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": t, "read_s": t_read, "peak_mb": rss,
                  "segments": [s.file for s in proj.arrays.segments()]}))
"""


def run(path: Path, start: int, k: int, mode: str, size: int = 64) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(start), str(k), mode, str(size)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def ingest_ratio(big: Path, k: int, size: int, tmp: Path, repeats: int = 3) -> None:
    """What a user sees: ``galdesk ingest`` of K real JPEG cut-outs into the big project against into a new one,
    whole commands (start-up, reading the files and, for the append, the big project's object table)."""
    import statistics
    import time

    jpegs = sorted((Path(__file__).resolve().parents[2] / "shared/data/images/gz1/jpeg").glob("*.jpeg"))[:k]
    if len(jpegs) < k:
        print("  (no Galaxy Zoo cut-outs in ../shared/data: the ingest comparison is skipped)")
        return
    times: dict[str, list[float]] = {"append": [], "new": []}
    for r in range(repeats):
        for name, out in (("new", tmp / f"new{r}"), ("append", big)):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "galdesk", "ingest", *map(str, jpegs), "-o", str(out), "--size",
                            str(size)], check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    a, n = statistics.median(times["append"]), statistics.median(times["new"])
    print(f"galdesk ingest of {k} SDSS JPEGs at {size} px (whole command, median of {repeats}): into the big project "
          f"{a:.2f} s, into a new project {n:.2f} s: {a / n:.2f}x")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    tmp = Path(tempfile.mkdtemp(prefix="bench_append_"))
    try:
        big = tmp / "big.galdesk"
        for a in range(0, n, 5000):                    # build the N-object project in parts
            run(big, a, min(5000, n - a), "new" if a == 0 else "add", size)
        base = run(tmp / "base.galdesk", 0, 1, "new", size)  # the start-up cost of a process that writes a project
        append = run(big, n, k, "add", size)
        fresh = run(tmp / "fresh.galdesk", 0, k, "new", size)
        rewrite = run(big, 0, 0, "rewrite", size)
        print(f"N = {n} objects, K = {k} added (3 x {size} x {size} float32 each)")
        print(f"  append K to N          {append['seconds']:7.2f} s (+ {append['read_s']:.2f} s to read the table)  "
              f"peak {append['peak_mb']:6.0f} MB  segments {append['segments']}")
        print(f"  K into a new project   {fresh['seconds']:7.2f} s                               "
              f"peak {fresh['peak_mb']:6.0f} MB")
        print(f"  rewrite all N + K      {rewrite['seconds']:7.2f} s  peak {rewrite['peak_mb']:6.0f} MB "
              "(every append before segments)")
        print(f"  process baseline peak  {base['peak_mb']:6.0f} MB")
        print(f"ratios: append / new project {append['seconds'] / fresh['seconds']:.2f}x time, "
              f"rewrite / append {rewrite['seconds'] / append['seconds']:.1f}x")
        ingest_ratio(big, k, size, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
