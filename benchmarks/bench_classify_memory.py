"""Peak memory of classifying a project: ``classify_project`` (reads the stack a batch at a time from the segment
files) against the plain loop a user would write (the whole stack read with h5py, then classified in batches with
the same ``classify_stack``). Each runs in its own process; peak = ru_maxrss. Synthetic 3-band 64 px cut-outs.

Run:  .venv/bin/python benchmarks/bench_classify_memory.py [N]       (default 20000; ~1 GB of temporary disk)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "galdesk":
    from galdesk.ml.service import classify_project
    out = classify_project(path, model="gz1-binary", device="cpu")
    n = out["classified"]
else:
    import h5py
    from galdesk.ml.infer import classify_stack
    from galdesk.project import Project
    proj = Project.open(path)
    stack = np.concatenate([h5py.File(p, "r")["stacks/c3"][...] for p in proj.arrays.paths()])
    n = len(classify_stack(stack, "gz1-binary", device="cpu"))
print(json.dumps({"n": n, "seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    import numpy as np

    from galdesk.io.model import ImageData
    from galdesk.project import Project

    tmp = Path(tempfile.mkdtemp(prefix="bench_classify_mem_"))
    try:
        proj = Project.create(tmp / "p", working_size=64)
        rng = np.random.default_rng(0)
        for a in range(0, n, 5000):
            imgs = [ImageData(rng.random((3, 64, 64), dtype=np.float32), ["g", "r", "i"], f"/s/{i}.fits",
                              f"g{i:07d}") for i in range(a, min(n, a + 5000))]
            proj.add(imgs, stacks={id(im): im.pixels for im in imgs})
        t = time.perf_counter()
        res = {}
        for mode in ("galdesk", "plain"):
            r = subprocess.run([sys.executable, "-c", CHILD, str(proj.path), mode], capture_output=True, text=True,
                               check=True)
            res[mode] = json.loads(r.stdout.strip().splitlines()[-1])
        stack_mb = n * 3 * 64 * 64 * 4 / 2**20
        print(f"N = {n} cut-outs (stack {stack_mb:.0f} MB)")
        for mode, r in res.items():
            print(f"  {mode:8s} peak {r['peak_mb']:7.0f} MB   {r['seconds']:6.1f} s   ({r['n']} classified)")
        print(f"ratio galdesk / plain peak: {res['galdesk']['peak_mb'] / res['plain']['peak_mb']:.2f}  "
              f"({time.perf_counter() - t:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
