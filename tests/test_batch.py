"""Batch line fitting and ingest on a Dask LocalCluster give the same answers as local processes."""

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


def test_batch_ingest_on_a_dask_cluster_equals_a_local_ingest(shared_data, tmp_path):
    """`galdesk batch ingest` decodes the files on a Dask LocalCluster (two workers): the same objects, in the same
    order, with the same pixels as a local ingest; a bad file is one problem there too."""
    import json
    import subprocess
    import sys

    import numpy as np

    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    files = [str(p) for p in sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:40]]
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    r = subprocess.run([sys.executable, "-m", "galdesk", "batch", "ingest", *files, str(bad), "-o",
                        str(tmp_path / "d"), "--workers", "2", "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["objects"] == 40 and [p["path"] for p in out["problems"]] == [str(bad)]
    ingest(files, tmp_path / "l", workers=1)
    d, loc = Project.open(tmp_path / "d"), Project.open(tmp_path / "l")
    assert list(d.objects["id"]) == list(loc.objects["id"])
    assert np.array_equal(d.stack("c3"), loc.stack("c3"))


def test_batch_classify_on_a_dask_cluster_equals_a_local_classify(shared_data, tmp_path):
    """`galdesk batch classify` on a LocalCluster, in chunks read by the workers from the project's files: the
    stored probabilities equal a local classification's."""
    import numpy as np

    from galdesk.ml.service import classify_project
    from galdesk.project import Project
    from galdesk.project.results import load_predictions
    from galdesk.services.batch import classify_batch
    from galdesk.services.ingest import ingest

    files = [str(p) for p in sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:30]]
    ingest(files, tmp_path / "p", workers=1)
    local = classify_project(tmp_path / "p.galdesk", device="cpu")
    ref = load_predictions(Project.open(tmp_path / "p.galdesk"))
    out = classify_batch(tmp_path / "p.galdesk", "gz1-binary", "local", n_workers=2, device="cpu", chunk=8)
    got = load_predictions(Project.open(tmp_path / "p.galdesk"))
    assert out["classified"] == local["classified"] == 30 and "Dask" in out["device"]
    assert np.array_equal(got.rows, ref.rows) and np.allclose(got.prob, ref.prob, atol=1e-5)
    r = subprocess.run([sys.executable, "-m", "galdesk", "batch", "classify", str(tmp_path / "p.galdesk"),
                        "--workers", "1", "--device", "cpu", "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and json.loads(r.stdout)["classified"] == 30, r.stderr[-2000:]


def test_batch_features_on_a_dask_cluster_equal_galdesk_features(shared_data, tmp_path):
    """`galdesk batch features` (chunks of 8 on two LocalCluster workers) stores the features `galdesk features`
    stores, averaged over the same four rotations."""
    import numpy as np

    from galdesk.cli import main
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:30]
    ingest(files, tmp_path / "p", workers=1)
    proj = tmp_path / "p.galdesk"
    assert main(["features", str(proj), "--rotations", "4", "--device", "cpu", "--json"]) == 0
    local = Project.open(proj).load_result("features")
    assert main(["batch", "features", str(proj), "--rotations", "4", "--device", "cpu", "--workers", "2",
                 "--chunk", "8", "--json"]) == 0
    dask = Project.open(proj).load_result("features")
    assert np.array_equal(local[0]["row"], dask[0]["row"]) and local[0]["features"].shape == (30, 192)
    assert np.allclose(local[0]["features"], dask[0]["features"], rtol=1e-5, atol=1e-5)
    assert local[1]["rotations"] == dask[1]["rotations"] == 4 and "Dask" in dask[1]["device"]
    assert not (proj / "batch").exists()          # the finished batch's checkpoints are gone


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL of a process group is POSIX")
def test_a_killed_batch_classify_continues_where_it_stopped(shared_data, tmp_path):
    """Killed (SIGKILL, with its LocalCluster) after some chunks finished, `galdesk batch classify` started again
    runs only the chunks it had not finished and stores the predictions of an uninterrupted local run."""
    import os
    import signal
    import time

    import numpy as np

    from galdesk.ml.service import classify_project
    from galdesk.project import Project
    from galdesk.project.results import load_predictions
    from galdesk.services.ingest import ingest

    files = sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:120]
    ingest(files, tmp_path / "p", workers=1)
    proj = tmp_path / "p.galdesk"
    classify_project(proj, device="cpu")
    ref = load_predictions(Project.open(proj))
    (proj / "results" / "predictions.h5").unlink()
    cmd = [sys.executable, "-m", "galdesk", "batch", "classify", str(proj), "--workers", "1", "--device", "cpu",
           "--chunk", "4"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(proj.glob("batch/classify-*/chunk-*.npz"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    still_running = first.poll() is None
    os.killpg(first.pid, signal.SIGKILL)        # the command and its cluster's processes
    first.wait(30)
    kept = len(list(proj.glob("batch/classify-*/chunk-*.npz")))
    assert still_running and 3 <= kept < 30, kept
    assert not (proj / "results" / "predictions.h5").exists()       # nothing committed by the killed run
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming: {kept} of 30 tasks already done" in r.stderr
    got = load_predictions(Project.open(proj))
    assert np.array_equal(got.rows, ref.rows) and np.allclose(got.prob, ref.prob, atol=1e-5)
    assert not (proj / "batch").exists()
