"""Ingest benchmark: galdesk's ``ingest`` against the loop a user would write by hand, on the same files.

Two corpora, as in the survey-scale issue:

- ``fits``: synthetic 64 x 64 float32 FITS cut-outs, each with a TAN WCS (made once per size and cached in the
  temporary folder; the making is not timed). The plain loop: ``astropy.io.fits.getdata`` -> block average to the
  working size -> one HDF5 array at the end.
- ``jpeg``: the Galaxy Zoo 1 SDSS cut-outs of ``../shared/data`` (424 x 424 RGB). The plain loop: PIL decode ->
  8-bit ``resize((S, S), BOX)`` -> one uint8 HDF5 array at the end.

galdesk does more per file (format detection, the size guard, NaN checks, the centre's RA/Dec from the WCS, the
object table and the manifest) and decodes in worker processes. Runs are interleaved (plain, galdesk, plain,
galdesk, ...) and the medians compared: ratios are steadier than absolute times on a shared machine. Worker start-up
is inside galdesk's time.

The size of what each stores is printed too (galdesk: its arrays segment files; JPEG cut-outs are stored as uint8,
FITS as float32).

``--memory N`` instead ingests N cut-outs (the JPEG corpus repeated through symbolic links, so that N can exceed
it) in a separate ``galdesk ingest`` process and reports its peak resident memory, alone and with its worker
processes, sampled every 20 ms.

Run:  .venv/bin/python benchmarks/bench_ingest.py fits|jpeg [--n N] [--repeats R] [--workers W]
      .venv/bin/python benchmarks/bench_ingest.py --memory 20000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
JPEGS = ROOT.parent / "shared" / "data" / "images" / "gz1" / "jpeg"
SIZE = 64


def fits_corpus(n: int, side: int = 64) -> list[Path]:
    """``n`` synthetic cut-outs with a TAN WCS (a Sersic-like blob on noise), cached between runs."""
    from astropy.io import fits
    from astropy.wcs import WCS

    folder = Path(tempfile.gettempdir()) / f"galdesk-bench-fits-{side}"
    folder.mkdir(exist_ok=True)
    files = [folder / f"g{i:06d}.fits" for i in range(n)]
    missing = [i for i, f in enumerate(files) if not f.exists()]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    for i in missing:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [150.0 + i * 1e-3, 2.0 + i * 5e-4]
        w.wcs.crpix = [side / 2 + 0.5, side / 2 + 0.5]
        w.wcs.cd = np.array([[-0.262, 0.0], [0.0, 0.262]]) / 3600
        r = np.hypot(xx, yy * (0.5 + 0.5 * rng.random()))
        data = (np.exp(-(r / (2 + 6 * rng.random())) ** 0.5 * 3) + 0.01 * rng.normal(size=r.shape)).astype(np.float32)
        header = w.to_header()
        header["BUNIT"] = "nanomaggy"
        fits.PrimaryHDU(data, header=header).writeto(files[i], overwrite=True)
    return files


def plain_fits(files: list[Path], out: Path, size: int = SIZE) -> int:
    from astropy.io import fits

    planes = []
    for f in files:
        d = fits.getdata(f).astype(np.float32)
        k = max(1, d.shape[0] // size)
        d = d[: size * k, : size * k].reshape(size, k, size, k).mean(axis=(1, 3))
        planes.append(d[None])
    with h5py.File(out, "w") as h:
        h.create_dataset("stack", data=np.stack(planes))
    return len(planes)


def plain_jpeg(files: list[Path], out: Path, size: int = SIZE) -> int:
    from PIL import Image

    planes = []
    for f in files:
        with Image.open(f) as im:
            planes.append(np.asarray(im.resize((size, size), Image.BOX)).transpose(2, 0, 1))
    with h5py.File(out, "w") as h:
        h.create_dataset("stack", data=np.stack(planes))
    return len(planes)


def galdesk_ingest(files: list[Path], out: Path, workers: int | None) -> int:
    from galdesk.services.ingest import ingest

    res = ingest(files, out, size=SIZE, workers=workers)
    assert not res.problems, res.problems[:3]
    return res.images


def compare(kind: str, n: int, repeats: int, workers: int | None) -> None:
    files = fits_corpus(n) if kind == "fits" else sorted(JPEGS.glob("*.jpeg"))[: n or None]
    plain = plain_fits if kind == "fits" else plain_jpeg
    times: dict[str, list[float]] = {"plain": [], "galdesk": []}
    stored: dict[str, int] = {}
    for r in range(repeats):
        tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
        try:
            for name, run in (("plain", lambda: plain(files, tmp / "plain.h5")),
                              ("galdesk", lambda: galdesk_ingest(files, tmp / "p", workers))):
                t0 = time.perf_counter()
                count = run()
                times[name].append(time.perf_counter() - t0)
                assert count == len(files), (name, count)
            stored = {"plain": (tmp / "plain.h5").stat().st_size,
                      "galdesk": sum(p.stat().st_size for p in (tmp / "p.galdesk").glob("arrays*.h5"))}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    from galdesk.services.ingest import default_workers

    tp, tg = statistics.median(times["plain"]), statistics.median(times["galdesk"])
    print(f"{kind}: {len(files)} files, working size {SIZE}, {workers or default_workers()} workers, "
          f"{repeats} interleaved runs (medians)")
    print(f"  plain sequential loop  {tp:7.2f} s  {len(files) / tp:7.0f} files/s   runs {fmt(times['plain'])}")
    print(f"  galdesk ingest         {tg:7.2f} s  {len(files) / tg:7.0f} files/s   runs {fmt(times['galdesk'])}")
    print(f"  ratio galdesk / plain  {tg / tp:7.2f}x the time")
    print(f"  stored arrays: galdesk {stored['galdesk'] / 1e6:.1f} MB, plain HDF5 {stored['plain'] / 1e6:.1f} MB")


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def memory(n: int, workers: int | None) -> None:
    import psutil

    src = sorted(JPEGS.glob("*.jpeg"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_mem_"))
    try:
        links = tmp / "links"
        links.mkdir()
        for i in range(n):   # the corpus repeated under new names
            os.symlink(src[i % len(src)], links / f"c{i:07d}.jpeg")
        cmd = [sys.executable, "-m", "galdesk", "ingest", str(links), "-o", str(tmp / "p"), "--size", str(SIZE)]
        if workers:
            cmd += ["--workers", str(workers)]
        t0 = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak_main = peak_tree = 0
        while proc.poll() is None:
            try:
                main_rss = proc.memory_info().rss
                tree = main_rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                continue
            peak_main, peak_tree = max(peak_main, main_rss), max(peak_tree, tree)
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(proc.stderr.read().decode()[-2000:])
        stack = 3 * SIZE * SIZE * 4 * n
        print(f"memory: {n} JPEG cut-outs at {SIZE} px in {elapsed:.1f} s; the float32 stack is {stack / 1e9:.2f} GB "
              f"(stored: {sum(p.stat().st_size for p in (tmp / 'p.galdesk').glob('arrays*.h5')) / 1e9:.2f} GB)")
        print(f"  peak resident, ingest process          {peak_main / 1e9:6.2f} GB")
        print(f"  peak resident, with its worker processes {peak_tree / 1e9:6.2f} GB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", nargs="?", choices=["fits", "jpeg"], default="jpeg")
    ap.add_argument("--n", type=int, default=5000, help="files (jpeg: at most the corpus, 0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--memory", type=int, default=0, metavar="N", help="measure the peak memory of N cut-outs")
    args = ap.parse_args()
    if (args.kind == "jpeg" or args.memory) and not JPEGS.is_dir():
        print(f"no data at {JPEGS}", file=sys.stderr)
        return 1
    if args.memory:
        memory(args.memory, args.workers)
    else:
        compare(args.kind, args.n, args.repeats, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
