"""The command-line convention (galdesk/cli/common.py): one error line ``galdesk COMMAND: message`` naming the file,
exit 2 for what a user can cause, 130 after Ctrl+C; outputs checked before the work; nothing of the user's deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

SPEC = "spectra/sdss/spec-0266-51602-0107.fits"


def _run(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "galdesk", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def _one_error_line(r, command: str, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"galdesk {command}: "), last
    for w in words:
        assert w in last, (w, last)


def test_an_existing_or_unwritable_output_is_refused_before_any_fitting(tmp_path, shared_data):
    out = tmp_path / "t.ecsv"
    out.write_text("keep")
    t0 = time.monotonic()
    r = _run("fit-lines", shared_data / "spectra/sdss", "-o", out, "--jobs", "1")
    _one_error_line(r, "fit-lines", str(out), "--overwrite")
    assert time.monotonic() - t0 < 30 and out.read_text() == "keep"     # refused at once, not after the batch
    r = _run("fit-lines", shared_data / SPEC, "-o", tmp_path / "no" / "such" / "t.ecsv", "--jobs", "1")
    _one_error_line(r, "fit-lines", "does not exist")
    assert not (tmp_path / "no").exists()                                # a mistyped folder is not created
    r = _run("batch", "fit-lines", shared_data / SPEC, "-o", out)
    _one_error_line(r, "batch", str(out))


def test_user_errors_are_one_line(tmp_path, shared_data):
    _one_error_line(_run("info", tmp_path / "missing.galdesk"), "info", "missing.galdesk")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  = garbage")
    r = _run("fit-lines", bad, "--jobs", "1")
    _one_error_line(r, "fit-lines", "nothing could be fitted")
    assert f"  {bad}: " in r.stderr and r.stderr.count(str(bad)) == 1   # the file named once, no class names
    assert _run("demo", "-o", tmp_path / "d").returncode == 0
    _one_error_line(_run("train", tmp_path / "d.galdesk", "--label-column", "nosuch"), "train", "'nosuch'")
    r = _run("train", tmp_path / "d.galdesk", "--label-column", "nosuch")
    assert '"' not in r.stderr.strip().splitlines()[-1]                  # no quotes around the whole message


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "mine-data"
    mine.mkdir()
    (mine / "important.txt").write_text("years of work")
    _one_error_line(_run("demo", "-o", tmp_path / "mine"), "demo", "not made by galdesk demo")
    assert (mine / "important.txt").read_text() == "years of work"
    assert _run("demo", "-o", tmp_path / "d").returncode == 0
    assert _run("demo", "-o", tmp_path / "d", "--overwrite").returncode == 0   # its own sample it may replace


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group is POSIX")
def test_ctrl_c_stops_a_parallel_fit_at_once(tmp_path, shared_data):
    proc = subprocess.Popen([sys.executable, "-m", "galdesk", "fit-lines", str(shared_data / "spectra/sdss"),
                             "--jobs", "2", "--mc", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    time.sleep(6)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)   # what Ctrl+C in a terminal does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and time.monotonic() - t0 < 5, (proc.returncode, time.monotonic() - t0)
    assert err.strip().splitlines()[-1] == "galdesk fit-lines: cancelled"


@pytest.mark.skipif(sys.platform != "linux", reason="the .desktop files are Linux's")
def test_shortcut_makes_a_double_click_launcher(tmp_path):
    """`galdesk shortcut` (pyshortcuts): a desktop and an applications-menu entry that start the window without a
    terminal."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": ""}
    r = subprocess.run([sys.executable, "-m", "galdesk", "shortcut"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for path in (tmp_path / "Desktop" / "galdesk.desktop", tmp_path / ".local/share/applications/galdesk.desktop"):
        text = path.read_text()
        assert "Terminal=false" in text and "Exec=" in text and "galdesk" in text.split("Exec=")[1].split()[0]
