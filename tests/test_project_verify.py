"""A damaged project is refused with one message naming each damaged file (galdesk.project.verify), by
``galdesk info`` and by the window, instead of an error per thumbnail or a stack of dialogs."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import h5py
import pytest

from galdesk.project import Project, ProjectError
from galdesk.project.verify import check_project, project_problems


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from galdesk.services.demo import make_demo_project

    return make_demo_project(tmp_path_factory.mktemp("verify") / "demo", n_galaxies=12)


def _copy(demo, tmp_path, name="p"):
    dest = tmp_path / f"{name}.galdesk"
    shutil.copytree(demo, dest)
    return dest


def _problems(path):
    p = Project.open(path)
    try:
        return project_problems(p)
    finally:
        p.close()


def test_a_whole_project_has_no_problems(demo):
    assert _problems(demo) == []
    p = Project.open(demo)
    check_project(p)            # no raise
    p.close()


def test_a_project_opened_by_a_relative_path(demo, tmp_path, monkeypatch):
    """``galdesk gui p.galdesk`` from the folder that holds it: the journal check must not need an absolute path
    (it built a file URI from the relative one and the window refused the project)."""
    _copy(demo, tmp_path)
    monkeypatch.chdir(tmp_path)
    p = Project.open("p.galdesk")
    p.journal.append("note", "x", {"text": "a decision, so that the journal file exists"})
    p.close()
    p = Project.open("p.galdesk")
    try:
        assert not p.path.is_absolute() and (p.path / "journal.sqlite").exists()
        assert project_problems(p) == []
        check_project(p)
    finally:
        p.close()


SEGMENT = "arrays-000001.h5"     # the demo's arrays: one segment


@pytest.mark.parametrize("damage, file, words", [
    ("truncate", SEGMENT, "damaged"),
    ("garbage", "objects.ecsv", "unreadable"),
    ("garbage", "journal.sqlite", "not a readable vetting journal"),
    ("missing", SEGMENT, "missing"),
    ("garbage", "arrays.json", "damaged"),
    ("missing", "arrays.json", "missing"),
])
def test_each_damaged_file_is_named_once(demo, tmp_path, damage, file, words):
    path = _copy(demo, tmp_path)
    assert [p.name for p in Project.open(path).arrays.paths()] == [SEGMENT]
    target = path / file
    if damage == "truncate":
        with open(target, "r+b") as f:
            f.truncate(os.path.getsize(target) // 2)
    elif damage == "garbage":
        target.write_bytes(b"\x00garbage, not what galdesk wrote\n" * 50)
    else:
        target.unlink()
    problems = _problems(path)
    assert len(problems) == 1 and problems[0].startswith(str(target)) and words in problems[0], problems
    if file == "arrays.json":    # without a readable index no segment is judged a leftover and deleted
        assert (path / SEGMENT).exists()
    p = Project.open(path)
    with pytest.raises(ProjectError, match="damaged project"):
        check_project(p)
    p.close()


def test_a_stack_shorter_than_the_objects_say(demo, tmp_path):
    path = _copy(demo, tmp_path)
    with h5py.File(path / SEGMENT, "a") as f:
        name = [f"stacks/{g}" for g in f["stacks"]][0]
        data = f[name][:2]
        del f[name]
        f[name] = data
    problems = _problems(path)
    assert len(problems) == 1 and "holds 2 cut-outs" in problems[0], problems


def test_info_says_it_in_one_message(demo, tmp_path):
    path = _copy(demo, tmp_path)
    (path / "journal.sqlite").write_bytes(b"garbage" * 100)
    r = subprocess.run([sys.executable, "-m", "galdesk", "info", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"galdesk info: {path}: damaged project") and "journal.sqlite" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2          # the headline and the one damaged file


def test_an_empty_journal_file_is_not_damage(demo, tmp_path):
    """A journal file without tables (created, never written: e.g. a crash at the first vet) is made on use."""
    path = _copy(demo, tmp_path)
    (path / "journal.sqlite").unlink(missing_ok=True)
    sqlite3.connect(path / "journal.sqlite").close()
    assert _problems(path) == []
    con = sqlite3.connect(path / "journal.sqlite")
    con.execute("CREATE TABLE other (x)")
    con.close()
    assert "not a vetting journal" in _problems(path)[0]


@pytest.mark.gui
def test_the_window_refuses_it_with_one_dialog(demo, tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from galdesk.gui.main_window import MainWindow
    from galdesk.gui.qtapp import make_app

    make_app()
    boxes = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: boxes.append((title, text)))
    path = _copy(demo, tmp_path)
    with open(path / SEGMENT, "r+b") as f:
        f.truncate(os.path.getsize(path / SEGMENT) // 2)
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(path) is False
    assert w.state.project is None
    assert len(boxes) == 1 and boxes[0][0] == "Cannot open project" and SEGMENT in boxes[0][1]
    assert w.open_project(demo) is True          # a whole one opens as before
    w.state.set_project(None)
    w.close()
