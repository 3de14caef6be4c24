"""Crash safety: SIGKILL a vetting process in the middle of a stream of decisions, and an export in the middle of
writing; nothing acknowledged is lost and the old export is intact.

The child processes are real Python processes running the library code (no mocks); the parent kills them with
SIGKILL, which cannot be caught, so nothing runs at exit (no flush, no close, no SQLite checkpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from test_vetting import make_project

from galdesk.catalog.export import export_catalog, read_catalog
from galdesk.catalog.writers import stale_temp_files
from galdesk.project import Project
from galdesk.project.journal import Record
from galdesk.vetting import VET_KINDS, Replay, VetSession

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROOT = Path(__file__).resolve().parents[1]

VET_CHILD = textwrap.dedent("""
    import itertools, json, sys
    from galdesk.project import Project
    from galdesk.vetting import VetSession

    proj = Project.open(sys.argv[1])
    s = VetSession(proj, vetter="kim")
    ids = [str(i) for i in proj.objects["id"]]
    labels = s.schema.classes + ["rejected"]
    print("ready", flush=True)
    for i in itertools.count():
        oid = ids[(7 * i) % len(ids)]
        if i % 11 == 10:
            rec = s.undo()
        elif i % 17 == 16:
            rec = s.redo() or s.note(oid, f"note {i}")
        elif i % 13 == 12:
            rec = s.flag(oid, "recheck", on=bool(i % 2))
        else:
            rec = s.decide(oid, labels[i % len(labels)], note=f"n{i}", context={"stretch": "asinh"})
        # acknowledged: the call returned, so the record is committed
        print(json.dumps(rec.__dict__), flush=True)
""")

EXPORT_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from galdesk.catalog.assemble import build_catalog
    from galdesk.catalog.writers import write_table
    from galdesk.project import Project

    proj = Project.open(sys.argv[1])
    t = build_catalog(proj)
    big = t[np.resize(np.arange(len(t)), int(sys.argv[3]))]  # the same catalogue, many times: a slow write
    print("writing", flush=True)
    write_table(big, sys.argv[2], overwrite=True)
    print("done", flush=True)
""")


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return  # it already ended; the test's own assertions say why
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def template(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "crash.galdesk"
    make_project(path, shared_data).close()
    return path


@pytest.fixture
def proj_path(template, tmp_path) -> Path:
    dest = tmp_path / "p.galdesk"
    shutil.copytree(template, dest)
    return dest


# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_ack", [9, 57])
def test_sigkill_during_vetting_loses_nothing_acknowledged(proj_path, tmp_path, n_ack):
    proc = _spawn(VET_CHILD, proj_path)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        acked: list[Record] = []
        while len(acked) < n_ack:
            line = proc.stdout.readline()
            assert line, f"child ended early: {proc.stderr.read()}"
            acked.append(Record(**json.loads(line)))
    finally:
        _kill(proc)  # in the middle of the stream: the child is appending as fast as it can

    proj = Project.open(proj_path)
    j = proj.journal
    assert j.integrity_check() == "ok"
    kim = j.records(VET_KINDS, author="kim")
    # every acknowledged record is in the journal, identical, and they are its first records (no gap, no reorder)
    assert len(kim) >= n_ack
    for a, b in zip(acked, kim):
        assert (a.seq, a.kind, a.key, a.author, a.time) == (b.seq, b.kind, b.key, b.author, b.time)
        assert json.loads(json.dumps(a.payload)) == b.payload
    # the export holds the decision state the journal gives ...
    out = tmp_path / "after.csv"
    export_catalog(proj, out, only="all", vetter="kim")
    exported = read_catalog(out, project=proj)
    row = {str(i): k for k, i in enumerate(exported["id"])}
    full = Replay.from_journal(j).effective("kim")
    acked_only = Replay()
    acked_only.feed(acked)
    expect_acked = acked_only.effective("kim")
    later = {r.key for r in kim[n_ack:]}  # objects touched by records the parent never saw acknowledged
    assert set(expect_acked) - later, "the kill came too late to leave untouched objects"
    for oid, k in row.items():
        label = exported["vet_label"][k]
        label = None if np.ma.is_masked(label) else str(label)
        assert label == (full[oid]["label"] if oid in full else None)
        if oid not in later:  # ... and for objects nothing unacknowledged touched, exactly what was acknowledged
            assert label == (expect_acked[oid]["label"] if oid in expect_acked else None)
            if oid in expect_acked and expect_acked[oid]["label"] is not None:
                assert exported["vetter"][k] == "kim"
                note = exported["vet_note"][k]
                assert ("" if np.ma.is_masked(note) else str(note)) == expect_acked[oid]["note"]
    # reopening resumes where the vetter stopped
    s = VetSession(proj, vetter="kim")
    pos = s.resume_position()
    assert pos["last_seq"] == kim[-1].seq and pos["last_id"] == kim[-1].key
    assert s.current(include_undecided=True) == full
    s.decide(pos["queue"][0] if pos["queue"] else kim[-1].key, "other")  # and the journal still takes records
    proj.close()


@pytest.mark.parametrize("fmt, rows, at_bytes", [("csv", 20000, 1 << 20), ("fits", 20000, 0)])
def test_sigkill_during_export_keeps_old_file(proj_path, tmp_path, fmt, rows, at_bytes):
    proj = Project.open(proj_path)
    VetSession(proj, vetter="ann").decide(str(proj.objects["id"][0]), "spiral")
    out = tmp_path / f"catalog.{fmt}"
    export_catalog(proj, out)
    old_bytes = out.read_bytes()
    old_table = read_catalog(out, project=proj)
    proj.close()

    proc = _spawn(EXPORT_CHILD, proj_path, out, rows)
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
        deadline = time.monotonic() + 60
        temps: list[str] = []
        while time.monotonic() < deadline:
            temps = stale_temp_files(out)
            if temps and Path(temps[0]).stat().st_size >= at_bytes:
                break  # the new version is being written
            time.sleep(0.002)
        assert temps, "the child never started writing"
    finally:
        _kill(proc)
    assert "done" not in proc.stdout.read()  # killed before the rename, not after

    # the old file is intact, byte for byte, and reads back the same
    assert out.read_bytes() == old_bytes
    back = read_catalog(out, project=Project.open(proj_path))
    assert len(back) == len(old_table) == 24 and list(back["id"]) == list(old_table["id"])
    # the interrupted write is a hidden temporary file that no reader takes for the catalogue
    leftovers = stale_temp_files(out)
    assert leftovers and all(Path(p).name.startswith(".") and p.endswith(".tmp") for p in leftovers)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("catalog")] == [out.name]
    # a later export replaces the file and reports the leftover
    res = export_catalog(proj_path, out, overwrite=True)
    assert res.overwritten and res.stale_temp_files == leftovers
    assert len(Table.read(out, format="ascii.csv" if fmt == "csv" else None)) == 24


def test_cli_vet_from_another_process_reaches_export(proj_path, tmp_path):
    oid = str(Project.open(proj_path).objects["id"][5])
    r = subprocess.run([sys.executable, "-m", "galdesk", "vet", str(proj_path), "--id", oid, "--label", "other",
                        "--vetter", "lee", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    seq = json.loads(r.stdout)["record"]["seq"]
    proj = Project.open(proj_path)
    assert proj.journal.get(seq).author == "lee"
    res = export_catalog(proj, tmp_path / "c.ecsv", only="vetted")
    t = Table.read(res.path)
    assert list(t["id"]) == [oid] and t["vet_label"][0] == "other" and t["vetter"][0] == "lee"
    proj.close()
