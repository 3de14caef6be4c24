"""Thumbnail grid with 10,000 objects: time to show the grid, and to repaint while scrolling (offscreen Qt).

Compares galdesk's lazy model/view grid with the obvious alternative of one QLabel widget per object (built for
2,000 objects only and extrapolated: 10,000 widgets take minutes). Reports milliseconds and ratios.

Run:  QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_thumbnails.py [N]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_project(path: Path, n: int):
    from astropy.table import Table

    from galdesk.project import Project

    proj = Project.create(path, working_size=64)
    rng = np.random.default_rng(0)
    stack = (rng.random((n, 3, 64, 64), dtype=np.float32) * 255).astype(np.float32)
    segment = proj.arrays.write_segment({"c3": stack}, [])
    proj.arrays.commit([segment], proj.arrays.objects_commit())
    t = Table({"id": [f"g{i:06d}" for i in range(n)], "kind": ["image"] * n, "source": ["synthetic"] * n,
               "hdu": np.full(n, -1), "bands": ["r,g,b"] * n, "group": ["c3"] * n, "row": np.arange(n),
               "ra": np.full(n, np.nan), "dec": np.full(n, np.nan), "z": np.full(n, np.nan),
               "spec_class": [""] * n, "subclass": [""] * n})
    proj._write_objects(t)
    return Project.open(proj.path)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    from PySide6.QtWidgets import QApplication, QGridLayout, QLabel, QScrollArea, QWidget

    from galdesk.gui.app import make_app
    from galdesk.gui.widgets.thumbnails import ThumbnailGrid, rgb8_to_qimage

    app = make_app()
    tmp = Path(tempfile.mkdtemp())
    try:
        proj = make_project(tmp / "bench", n)
        grid = ThumbnailGrid()
        grid.resize(1000, 800)
        t0 = time.perf_counter()
        grid.thumbs.set_project(proj)
        grid.show()
        app.processEvents()
        t_show = time.perf_counter() - t0
        bar = grid.verticalScrollBar()
        times = []
        for k in range(40):
            bar.setValue(int(bar.maximum() * k / 39))
            t0 = time.perf_counter()
            grid.viewport().repaint()
            app.processEvents()
            times.append(time.perf_counter() - t0)
        print(f"{n} objects: galdesk grid shown in {1e3 * t_show:.0f} ms; repaint after a scroll jump: median "
              f"{1e3 * np.median(times):.1f} ms, max {1e3 * np.max(times):.1f} ms")

        m = min(n, 2000)
        t0 = time.perf_counter()
        from PySide6.QtGui import QPixmap

        from galdesk.display import DisplaySettings, thumbnail_rgb8

        area = QScrollArea()
        inner = QWidget()
        lay = QGridLayout(inner)
        s = DisplaySettings()
        for i in range(m):
            lab = QLabel()
            lab.setPixmap(QPixmap.fromImage(rgb8_to_qimage(thumbnail_rgb8(proj.thumbnail_planes(i), s, rgb8=True))))
            lay.addWidget(lab, i // 10, i % 10)
        area.setWidget(inner)
        area.resize(1000, 800)
        area.show()
        app.processEvents()
        t_widgets = (time.perf_counter() - t0) * n / m
        print(f"one QLabel per object: {1e3 * t_widgets:.0f} ms for {n} (extrapolated from {m}); "
              f"ratio {t_widgets / t_show:.0f}x slower to show")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    QApplication.instance().quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
