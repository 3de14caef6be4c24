"""Batch line fitting on a Dask LocalCluster gives the same answers as local processes."""

import json
import subprocess
import sys

import dask.distributed  # noqa: E402,F401  (the [dask] extra: CI installs it)
import pytest

FILES = ["spectra/sdss/spec-0332-52367-0639.fits", "spectra/sdss/spec-0295-51585-0596.fits"]


def test_dask_local_cluster_matches_local_processes(shared_data, tmp_path):
    from galdesk.lines.config import FitConfig
    from galdesk.services.batch import fit_lines_batch
    from galdesk.tasks import RecordingContext

    paths = [str(shared_data / f) for f in FILES] + [str(tmp_path / "missing.fits")]
    cfg = FitConfig(complexes=("halpha",))
    ctx = RecordingContext()
    on_dask = fit_lines_batch(paths, cfg, scheduler="local", ctx=ctx, n_workers=1)
    local = fit_lines_batch(paths, cfg, scheduler=None, n_workers=1)
    assert [r["source"] for r in on_dask] == paths
    assert on_dask[2]["error"] and "missing.fits" in on_dask[2]["source"]
    for a, b in zip(on_dask[:2], local[:2]):
        assert a["broad_needed"] == b["broad_needed"]
        fa = {(ln["name"], ln["component"]): ln["flux"] for ln in a["lines"]}
        fb = {(ln["name"], ln["component"]): ln["flux"] for ln in b["lines"]}
        assert fa.keys() == fb.keys()
        assert all(fa[k] == pytest.approx(fb[k], rel=1e-9) for k in fa)
    assert ctx.reports[-1][0] == 1.0


def test_cli_batch_reports_unreachable_scheduler(tmp_path, shared_data):
    out = subprocess.run([sys.executable, "-m", "galdesk", "batch", "fit-lines", str(shared_data / FILES[0]),
                          "--scheduler", "tcp://127.0.0.1:9", "--json"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "scheduler" in out.stderr


def test_cli_batch_local_processes(tmp_path, shared_data):
    out = subprocess.run([sys.executable, "-m", "galdesk", "batch", "fit-lines", str(shared_data / FILES[0]),
                          "--lines", "halpha", "--workers", "1", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["broad_needed"] is True
