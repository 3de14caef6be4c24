"""End-to-end survey benchmark: N cut-outs through ingest -> classify -> features -> Ward + suggested cuts -> export,
each stage a ``galdesk`` command, with its time and peak resident memory (the command with its worker processes,
sampled every 50 ms); then the same with the batch stages on a 2-worker Dask LocalCluster.

The cut-outs are the 4,988 Galaxy Zoo SDSS JPEGs of ``../shared/data`` repeated under new names (symbolic links)
up to N: the pixels repeat, the work per object does not change. ``cluster`` computes its own features of 4
rotated copies (for rotation consistency) before Ward, so the ``features`` stage is the stand-alone command.

Run:  .venv/bin/python benchmarks/bench_survey.py [N] [--only local|dask]      (default N = 100000; ~40 min on
      2 cores, ~10 GB of temporary disk at N = 10^5)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JPEGS = ROOT.parent / "shared" / "data" / "images" / "gz1" / "jpeg"


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """``(seconds, peak GB of the command with its children, stdout)`` of one command."""
    import psutil

    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    out_parts = []
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    out_parts.append(out)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{err[-3000:]}")
    return time.perf_counter() - t0, peak / 1e9, "".join(out_parts)


def stages(project: Path, sources: Path, dask: bool) -> list[tuple[str, list[str]]]:
    g = [sys.executable, "-m", "galdesk"]
    batch = ["--scheduler", "local", "--workers", "2"]
    p = str(project)
    return [
        ("ingest", g + (["batch", "ingest"] if dask else ["ingest"]) + [str(sources), "-o", p, "--json"]
         + (batch if dask else [])),
        ("classify", g + (["batch", "classify"] if dask else ["classify"]) + [p, "--device", "cpu", "--json"]
         + (batch if dask else [])),
        ("features", g + (["batch", "features"] if dask else ["features"]) + [p, "--device", "cpu", "--json"]
         + (batch if dask else [])),
        ("cluster --suggest", g + ["cluster", p, "--suggest", "--device", "cpu", "--json"]),
        ("export", g + ["export", p, "-o", str(project.parent / f"{project.stem}.fits"), "--overwrite", "--json"]),
    ]


def run(n: int, which: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_survey_"))
    try:
        src = sorted(JPEGS.glob("*.jpeg"))
        links = tmp / "cutouts"
        links.mkdir()
        for i in range(n):
            os.symlink(src[i % len(src)], links / f"s{i:07d}.jpeg")
        rows = {}
        for mode in which:
            project = tmp / f"{mode}.galdesk"
            for name, cmd in stages(project, links, mode == "dask"):
                seconds, peak, out = measure(cmd)
                rows.setdefault(name, {})[mode] = (seconds, peak)
                extra = ""
                if name == "cluster --suggest":
                    info = json.loads(out)
                    extra = (f"  ({info['n_clusters']} clusters, consistency {info['consistency']:.2f}, "
                             f"{info['info']['method']} Ward, {info['n_leaves']} leaves)")
                print(f"{mode:5s} {name:18s} {seconds:8.1f} s  peak {peak:5.2f} GB{extra}", flush=True)
        print(f"\n{n:,} cut-outs (64 px, 3 bands), 2 cores")
        print("| stage | " + " | ".join(f"{m} time | {m} peak" for m in which) + " |")
        print("|---|" + "---|---|" * len(which))
        for name, per in rows.items():
            cells = []
            for m in which:
                s, pk = per.get(m, (float("nan"), float("nan")))
                cells += [f"{s:,.0f} s", f"{pk:.2f} GB"]
            print(f"| {name} | " + " | ".join(cells) + " |")
        totals = [sum(per[m][0] for per in rows.values() if m in per) for m in which]
        print("| total | " + " | ".join(f"{t:,.0f} s | " for t in totals) + "|")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--only", choices=["local", "dask"])
    args = ap.parse_args()
    if not JPEGS.is_dir():
        print(f"no data at {JPEGS}", file=sys.stderr)
        return 1
    run(args.n, [args.only] if args.only else ["local", "dask"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
