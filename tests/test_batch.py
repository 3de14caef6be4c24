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


# -- resumable `batch fit-lines` --------------------------------------------------------------------------------------
#: four SDSS galaxies, an old SDSS text spectrum without a redshift, a LAMOST star (both skipped with their reason)
RESUME = ["spectra/sdss/spec-0266-51602-0013.fits", "spectra/sdss/spec-0266-51602-0107.fits",
          "spectra/sdss/spec-0295-51585-0596.fits", "spectra/sdss/spec-0280-51612-0117.fits",
          "spectra/sdss_old/sample_sdss.txt", "spectra/lamost/spec-55862-B6212_sp06-003.fits"]
QUICK = ["--lines", "halpha", "--broad", "no", "--continuum", "local"]


def _quick():
    from galdesk.lines.config import FitConfig

    return FitConfig(complexes=("halpha",), broad="no", continuum="local")


def _resume_sources(shared_data, tmp_path) -> list[str]:
    """The real spectra of :data:`RESUME` and a file that is not there (an error entry with its reason)."""
    return [str(shared_data / f) for f in RESUME] + [str(tmp_path / "missing.fits")]


def _targets(chunks) -> list[tuple[int, int]]:
    """``(item, target)`` of every fit in ``(item, start, n_targets, fits)`` chunks."""
    return [(i, start + k) for i, start, _n, fits in chunks for k in range(len(fits))]


def test_fit_book_todo_gives_only_the_missing_targets():
    from galdesk.lines.batch import MIN_CHUNK, FitBook

    seen = []
    book = FitBook(3, on_chunk=lambda *c: seen.append(c))
    book.add(1, 0, 20, ["a"])                         # item 1: 20 targets, the first fitted
    book.add(1, 9, 20, ["j", "k", "l"])               # ... and 9:12
    book.add(2, 0, 2, ["x", "y"])                     # item 2 complete
    assert book.gaps(1) == [(1, 9), (12, 20)] and book.gaps(2) == []
    assert book.todo(1) == [(0, 0, None), (1, 1, 9), (1, 12, 20)]   # one worker: unknown files whole, gaps whole
    many = book.todo(8)
    assert many[0] == (0, 0, 1)                       # a file of unknown size: its first target alone
    covered = sorted(k for i, a, b in many[1:] for k in range(a, b))
    assert all(i == 1 for i, _a, _b in many[1:]) and covered == list(range(1, 9)) + list(range(12, 20))
    assert all(b - a >= MIN_CHUNK for _i, a, b in many[1:-1])
    assert book.todo(8, only=[2]) == []
    book.add(0, 0, 1, ["failed"], keep=False)         # a stand-in for a lost worker's task: not reported
    assert [c[:3] for c in seen] == [(1, 0, 20), (1, 9, 20), (2, 0, 2)]
    assert book.results() == ["failed", "a", "j", "k", "l", "x", "y"] and book.n_fits() == 7


@pytest.mark.parametrize("scheduler, workers", [(None, 1), (None, 2), ("local", 1)])
def test_a_stopped_batch_fit_lines_continues_where_it_stopped(shared_data, tmp_path, monkeypatch, scheduler,
                                                              workers):
    """Stopped after some chunks, `batch fit-lines` started again (same files and options) fits only the targets
    it had not finished, in this process, on local processes and on a Dask LocalCluster, and gives the records of
    an uninterrupted run exactly (fits, skips and errors with their reasons)."""
    from galdesk.lines import batch as lines_batch
    from galdesk.services.batch import BATCH_FOLDER, fit_lines_batch, lines_checkpoint
    from galdesk.tasks import Cancelled, RecordingContext

    paths = _resume_sources(shared_data, tmp_path)
    out = tmp_path / "out" / "lines.ecsv"
    uninterrupted = fit_lines_batch(paths, _quick(), scheduler=scheduler, n_workers=workers)
    assert [r["status"] for r in uninterrupted] == ["fitted"] * 4 + ["skipped"] * 2 + ["error"]
    assert uninterrupted[4]["skip_reason"] == "no redshift" and "STAR" in uninterrupted[5]["skip_reason"]

    first = lines_checkpoint(paths, _quick(), out)
    assert first.path.parent == out.parent / BATCH_FOLDER
    with pytest.raises(Cancelled):
        fit_lines_batch(paths, _quick(), scheduler=scheduler, n_workers=workers, checkpoint=first,
                        ctx=RecordingContext(cancel_after=2))
    kept = lines_checkpoint(paths, _quick(), out).load()
    assert 2 <= len(_targets(kept)) < len(paths), kept

    calls = []
    if workers == 1 and scheduler is None:  # in this process: every fit is seen
        fit_target = lines_batch.fit_target
        monkeypatch.setattr(lines_batch, "fit_target", lambda spec, *a, **k: calls.append(spec.source)
                            or fit_target(spec, *a, **k))
    again = lines_checkpoint(paths, _quick(), out)
    saved = []
    save = again.save
    monkeypatch.setattr(again, "save", lambda *chunk: saved.append(chunk) or save(*chunk))
    ctx = RecordingContext()
    resumed = fit_lines_batch(paths, _quick(), scheduler=scheduler, n_workers=workers, checkpoint=again, ctx=ctx)
    assert resumed == uninterrupted
    assert any(line.startswith("resuming: ") for line in ctx.logs), ctx.logs
    # every target fitted exactly once over the two runs: the second one only did what the first had not
    assert sorted(_targets(kept) + _targets(saved)) == [(i, 0) for i in range(len(paths))]
    if calls:
        done = {paths[i] for i, _t in _targets(kept)}
        assert sorted(calls) == sorted(p for p in paths if p not in done and not p.endswith("missing.fits"))


def test_a_changed_input_or_option_never_reuses_a_checkpoint(shared_data, tmp_path):
    """The checkpoint is keyed by the files (path, size, time), the options and the redshifts given: a file
    touched since, another FitConfig or a --z start afresh, while the same inputs find the kept chunks."""
    import os
    import shutil

    from galdesk.services.batch import fit_lines_batch, lines_checkpoint
    from galdesk.tasks import Cancelled, RecordingContext

    src = tmp_path / "in"
    src.mkdir()
    for f in RESUME[:3]:
        shutil.copy2(shared_data / f, src)
    paths = sorted(str(p) for p in src.iterdir())
    out = tmp_path / "lines.fits"
    with pytest.raises(Cancelled):
        fit_lines_batch(paths, _quick(), n_workers=1, checkpoint=lines_checkpoint(paths, _quick(), out),
                        ctx=RecordingContext(cancel_after=1))
    assert len(lines_checkpoint(paths, _quick(), out).load()) == 1        # the same inputs: reused
    other = _quick()
    other.window_kms = 2500.0
    assert lines_checkpoint(paths, other, out).load() == []
    assert lines_checkpoint(paths, _quick(), out, z=0.1).load() == []
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))      # the file was written again
    touched = lines_checkpoint(paths, _quick(), out)
    assert touched.load() == []
    ctx = RecordingContext()
    records = fit_lines_batch(paths, _quick(), n_workers=1, checkpoint=touched, ctx=ctx)
    assert [r["status"] for r in records] == ["fitted"] * 3 and not any("resuming" in s for s in ctx.logs)


def test_a_damaged_chunk_file_is_fitted_again(shared_data, tmp_path):
    """A chunk file that cannot be read (a disk that failed, a hand edit) is not trusted: its targets are fitted
    again, the others are reused, and the records are an uninterrupted run's."""
    from galdesk.services.batch import fit_lines_batch, lines_checkpoint
    from galdesk.tasks import Cancelled, RecordingContext

    paths = [str(shared_data / f) for f in RESUME[:4]]
    out = tmp_path / "lines.csv"
    uninterrupted = fit_lines_batch(paths, _quick(), n_workers=1)
    with pytest.raises(Cancelled):
        fit_lines_batch(paths, _quick(), n_workers=1, checkpoint=lines_checkpoint(paths, _quick(), out),
                        ctx=RecordingContext(cancel_after=2))
    files = sorted(lines_checkpoint(paths, _quick(), out).path.glob("chunk-*.npz"))
    assert len(files) == 2
    files[0].write_bytes(b"not a chunk")
    again = lines_checkpoint(paths, _quick(), out)
    assert [c[0] for c in again.load()] == [1]
    assert fit_lines_batch(paths, _quick(), n_workers=1, checkpoint=again) == uninterrupted
    assert len(list(again.path.glob("chunk-*.npz"))) == 5          # the damaged one stays unread beside 4 good ones


def test_cli_batch_fit_lines_resumes_and_clears_its_checkpoint(shared_data, tmp_path, monkeypatch, capsys):
    """`galdesk batch fit-lines ... -o TABLE` cancelled half-way keeps its finished chunks beside the table; run
    again, it says it resumes, writes the table an uninterrupted run writes, and removes `.galdesk-batch`."""
    from astropy.table import Table

    from galdesk import tasks
    from galdesk.cli import main
    from galdesk.cli.common import EXIT_CANCELLED

    paths = _resume_sources(shared_data, tmp_path)
    ref, out = tmp_path / "ref" / "lines.ecsv", tmp_path / "run" / "lines.ecsv"
    ref.parent.mkdir()
    out.parent.mkdir()
    cmd = ["batch", "fit-lines", *paths, *QUICK, "--workers", "1"]
    assert main([*cmd, "-o", str(ref)]) == 0                # some fitted (the missing file is a problem listed)
    assert ref.exists() and not (ref.parent / ".galdesk-batch").exists()
    capsys.readouterr()
    real = tasks.ConsoleContext
    monkeypatch.setattr(tasks, "ConsoleContext", lambda quiet=False: tasks.RecordingContext(cancel_after=3))
    assert main([*cmd, "-o", str(out)]) == EXIT_CANCELLED
    chunks = list((out.parent / ".galdesk-batch").glob("fit-lines-*/chunk-*.npz"))
    assert len(chunks) == 3 and not out.exists()
    monkeypatch.setattr(tasks, "ConsoleContext", real)
    capsys.readouterr()
    assert main([*cmd, "-o", str(out)]) == 0
    assert "resuming: 3 spectra of 3 files already fitted" in capsys.readouterr().err
    assert not (out.parent / ".galdesk-batch").exists()
    assert out.read_bytes() == ref.read_bytes()                # the same table, byte for byte
    assert len(Table.read(out)) == len(paths)
