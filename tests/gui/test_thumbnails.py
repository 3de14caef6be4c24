"""The thumbnail grid renders only what is visible: 10,000 objects cost a few dozen thumbnails, not 10,000."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_ten_thousand_objects_render_lazily(qtbot, tmp_path):
    from bench_thumbnails import make_project

    from galdesk.gui.app import make_app
    from galdesk.gui.widgets.thumbnails import ThumbnailGrid

    make_app()
    proj = make_project(tmp_path / "big", 10000)
    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    grid.resize(800, 600)
    calls = []
    original = grid.thumbs._pixmap
    grid.thumbs._pixmap = lambda row: (calls.append(row), original(row))[1]
    grid.thumbs.set_project(proj)
    grid.show()
    qtbot.waitExposed(grid)
    qtbot.wait(50)
    assert grid.model().rowCount() == 10000
    assert 0 < len(set(calls)) < 300
    grid.verticalScrollBar().setValue(grid.verticalScrollBar().maximum())
    qtbot.wait(50)
    assert 9999 in calls            # the last ones are drawn once scrolled to
    assert len(set(calls)) < 600    # and still only a few hundred were ever rendered
    assert proj._stack_cache == {}  # the whole stack was never loaded on the GUI thread


def test_rows_shown_later_keep_their_colour_rule(qtbot, shared_data, tmp_path):
    """A grid first shown empty (as the Dendrogram tab does) still shows JPEG cut-outs as they are."""
    import numpy as np

    from galdesk.display import DisplaySettings, render
    from galdesk.gui.app import make_app
    from galdesk.gui.widgets.thumbnails import ThumbnailGrid
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    make_app()
    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:2], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    grid.thumbs.set_project(proj, rows=[])
    grid.thumbs.set_rows([1])
    img = grid.thumbs._pixmap(1).toImage()
    expected = render(proj.thumbnail_planes(1), DisplaySettings(), rgb8=True)[::-1]
    c = img.pixelColor(20, 30)
    assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in expected[30, 20])
    assert np.ptp(expected) > 0
