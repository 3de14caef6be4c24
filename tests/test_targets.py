"""Every target of every file, and a redshift from wherever the user has one (issue #11, items 4 and 5).

A synthetic DESI coadd + redrock pair (tests/desi_pair.py: a sky fibre, a dead fibre, three emission-line galaxies
at known z, one with ZWARN = 4) goes through the reader, ``fit-lines``, ``batch fit-lines`` (local processes and
Dask), ``ingest`` and projects; a real SDSS text spectrum without a redshift is skipped, then fitted with ``--z``.
"""

from __future__ import annotations

import json
import shutil

import desi_pair as D
import numpy as np
import pytest
from astropy.table import Table

from galdesk.cli import main
from galdesk.io.reading import read

FAST = ["--lines", "halpha,hbeta", "--broad", "no", "--continuum", "local", "--jobs", "1"]
GALAXIES = (D.GAL_A, D.GAL_B, D.GAL_C)
IDS = [str(t) for t in D.TIDS]
REDROCK = f"redrock-{D.NAME}.fits"


@pytest.fixture
def pair(tmp_path):
    return D.write_pair(tmp_path / "desi")


@pytest.fixture
def coadd_alone(tmp_path):
    """The coadd without a redshift file beside it."""
    return D.write_coadd(tmp_path / "alone")


def _by_id(records):
    return {r["id"]: r for r in records}


def _line(r, name):
    return next(ln for ln in r["lines"] if ln["name"] == name and ln["component"] == "narrow")


def test_reader_pairs_redrock_and_keeps_every_target(pair, tmp_path):
    coadd, _ = pair
    out = read(coadd, keep_skipped=True)
    assert [s.id for s in out] == IDS
    by = {s.id: s for s in out}
    assert by[D.SKY].meta["skip_reason"] == "sky fibre (FIBERMAP OBJTYPE SKY)"
    assert "no pixel has a positive inverse variance" in by[D.DEAD].meta["skip_reason"]
    for t in GALAXIES:  # redrock's rows are in another order: matched by TARGETID
        assert "skip_reason" not in by[t].meta
        assert by[t].redshift == D.Z[t] and by[t].meta["z_source"] == REDROCK and by[t].spec_class == "GALAXY"
        assert by[t].meta["zwarn"] == D.ZWARN[t]
    # without keep_skipped the dead and sky fibres are left out, and the others say so
    kept = read(coadd)
    assert [s.id for s in kept] == list(GALAXIES)
    assert "2 other target(s) of this file skipped" in kept[0].meta["warnings"][-1]
    # the pre-Everest name and HDU pair the same way
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(coadd, old / coadd.name)
    D.write_redrock(old, prefix="zbest", hdu="ZBEST")
    assert [s.redshift for s in read(old / coadd.name)] == [D.Z[t] for t in GALAXIES]
    # read on its own, a redrock file says what it is
    from galdesk.io import ReadError

    with pytest.raises(ReadError, match="a DESI redshift file .redrock/zbest., not spectra"):
        read(pair[1])
    # a broken redrock file costs the redshifts, never the spectra
    (old / f"zbest-{D.NAME}.fits").write_bytes(b"SIMPLE  =  broken")
    again = read(old / coadd.name)
    assert [s.redshift for s in again] == [None] * 3 and "cannot be read" in again[0].meta["warnings"][0]


def test_fit_lines_gives_one_record_per_target(pair, tmp_path, capsys):
    coadd, _ = pair
    table = tmp_path / "fits.ecsv"
    assert main(["fit-lines", str(coadd), *FAST, "--json", "-o", str(table)]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in recs] == IDS
    by = _by_id(recs)
    assert [by[i]["status"] for i in IDS] == ["skipped", "skipped", "fitted", "fitted", "fitted"]
    assert by[D.SKY]["skip_reason"].startswith("sky fibre") and by[D.SKY]["lines"] == []
    assert "positive inverse variance" in by[D.DEAD]["skip_reason"] and by[D.DEAD]["broad_needed"] is None
    for t in GALAXIES:
        r = by[t]
        assert r["z"] == D.Z[t] and r["z_source"] == REDROCK and r["skip_reason"] is None
        for name in ("halpha", "hbeta"):  # the injected fluxes, recovered at the paired redshift
            ln = _line(r, name)
            assert ln["flux"] == pytest.approx(D.LINES[name][1], rel=0.05)
            assert abs(ln["flux"] - D.LINES[name][1]) < 5 * ln["flux_err"] + 0.02 * D.LINES[name][1]
    assert by[D.GAL_C]["zwarn"] == 4 and "ZWARN = 4" in by[D.GAL_C]["notes"][0]
    assert by[D.GAL_A]["zwarn"] == 0 and by[D.GAL_A]["notes"] == []
    t = Table.read(table)
    assert list(t["id"].astype(str)) == IDS
    assert list(t["fit_status"]) == ["skipped", "skipped", "fitted", "fitted", "fitted"]
    assert t["skip_reason"][0].startswith("sky fibre") and t["skip_reason"].mask[2:].all()
    assert list(t["zwarn"][2:]) == [0, 0, 4] and list(t["z_source"][2:]) == [REDROCK] * 3
    assert t["halpha_flux"].mask[:2].all() and np.isfinite(t["halpha_flux"][2:]).all()


def test_fit_lines_text_names_the_skipped_targets(pair, capsys):
    coadd, _ = pair
    assert main(["fit-lines", str(coadd), *FAST]) == 0
    out, err = capsys.readouterr()
    assert f"{D.SKY}  z = 1.23450  skipped: sky fibre (FIBERMAP OBJTYPE SKY)" in out
    assert f"{D.DEAD}  z = 0.00000  skipped: no pixel has a positive inverse variance" in out
    assert out.count("BPT: ") == 3 and "redshift from redrock-main-dark-1234.fits (ZWARN 4)" in out
    assert "2 problem(s):" in err
    assert f"{coadd} (target {D.SKY}): skipped: sky fibre" in err
    assert f"{coadd} (target {D.DEAD}): skipped: no pixel has a positive inverse variance" in err


def test_without_a_redshift_nothing_is_fitted_and_the_command_fails(coadd_alone, tmp_path, capsys):
    assert main(["fit-lines", str(coadd_alone), *FAST, "-o", str(tmp_path / "t.csv")]) == 2
    out, err = capsys.readouterr()
    for t in GALAXIES:
        assert f"{t}  z = —  skipped: no redshift" in out
    assert "broad component" not in out and "BPT" not in out
    assert "5 problem(s)" in err and "--catalog" in err
    assert err.rstrip().endswith("galdesk fit-lines: nothing could be fitted (5 problem(s))")
    t = Table.read(tmp_path / "t.csv")
    assert list(t["skip_reason"][2:]) == ["no redshift"] * 3 and list(t["fit_status"]) == ["skipped"] * 5
    assert "broad_needed" not in t.colnames or t["broad_needed"].mask.all()


def test_catalogue_redshifts_by_id_and_redrock_files_as_catalogues(coadd_alone, pair, tmp_path, capsys):
    cat = tmp_path / "z.csv"
    Table({"TARGETID": [int(D.GAL_A), int(D.GAL_B)], "Z": [D.Z[D.GAL_A], D.Z[D.GAL_B]]}).write(cat)
    assert main(["fit-lines", str(coadd_alone), *FAST, "--json", "--catalog", str(cat)]) == 0
    by = _by_id(json.loads(capsys.readouterr().out))
    assert by[D.GAL_A]["status"] == by[D.GAL_B]["status"] == "fitted" and by[D.GAL_A]["z_source"] == "z.csv"
    assert by[D.GAL_B]["z"] == D.Z[D.GAL_B] and by[D.GAL_C]["skip_reason"] == "no redshift"
    # a redrock file named among the sources (or with --catalog) is a catalogue, never a "problem"
    _, redrock = pair
    elsewhere = tmp_path / "z" / "redrock-other.fits"
    elsewhere.parent.mkdir()
    shutil.copy(redrock, elsewhere)
    for argv in ([str(coadd_alone), str(elsewhere)], [str(coadd_alone), "--catalog", str(elsewhere)]):
        assert main(["fit-lines", *argv, *FAST, "--json"]) == 0
        recs = json.loads(capsys.readouterr().out)
        assert [r["id"] for r in recs] == IDS
        assert [r["z"] for r in recs[2:]] == [D.Z[t] for t in GALAXIES]
        assert {r["z_source"] for r in recs[2:]} == {"redrock-other.fits"} and recs[4]["zwarn"] == 4
    # an explicit catalogue wins over the file's own redshift, with a note
    cat2 = tmp_path / "z2.csv"
    Table({"TARGETID": [int(D.GAL_A)], "redshift": [0.052]}).write(cat2)
    assert main(["fit-lines", str(pair[0]), *FAST, "--json", "--catalog", str(cat2)]) == 0
    a = _by_id(json.loads(capsys.readouterr().out))[D.GAL_A]
    assert a["z"] == 0.052 and a["z_source"] == "z2.csv" and "replaces the file's z = 0.05000" in a["notes"][0]


def test_z_option_is_for_one_target_only(pair, coadd_alone, tmp_path, capsys):
    assert main(["fit-lines", str(pair[0]), *FAST, "--z", "0.05"]) == 2
    err = capsys.readouterr().err
    assert f"galdesk fit-lines: --z gives one redshift for one target, but {pair[0]} holds 3 targets" in err
    assert main(["batch", "fit-lines", str(pair[0]), str(coadd_alone), "--z", "0.05", "--workers", "1"]) == 2
    assert "the sources hold 2 spectra" in capsys.readouterr().err
    assert main(["fit-lines", str(pair[0]), *FAST, "--z", "99"]) == 2
    assert "redshift 99 is outside" in capsys.readouterr().err
    bad = tmp_path / "nocol.csv"
    Table({"TARGETID": [1], "mag": [20.0]}).write(bad)
    assert main(["fit-lines", str(pair[0]), *FAST, "--catalog", str(bad)]) == 2
    assert "no numeric redshift column (z or redshift)" in capsys.readouterr().err


def test_z_option_for_a_real_spectrum_without_one(shared_data, capsys):
    """The pyspeckit type-1 Seyfert (a text file with no redshift, lines at rest): skipped, then fitted with --z."""
    from conftest import need

    txt = str(need(shared_data / "spectra/sdss_old/sample_sdss.txt"))
    argv = ["fit-lines", txt, "--lines", "halpha", "--continuum", "local", "--jobs", "1", "--json"]
    assert main(argv) == 2
    r = json.loads(capsys.readouterr().out)[0]
    assert (r["status"], r["skip_reason"], r["lines"], r["broad_needed"]) == ("skipped", "no redshift", [], None)
    assert main(argv + ["--z", "0"]) == 0
    r = json.loads(capsys.readouterr().out)[0]
    assert r["status"] == "fitted" and r["z"] == 0 and r["z_source"] == "--z"
    assert r["broad_needed"] is True  # its broad Hα (pyspeckit: FWHM ~68 A)
    broad = next(ln for ln in r["lines"] if ln["name"] == "halpha" and ln["component"] == "broad")
    assert 2000 < broad["fwhm_kms"] < 5000
    # the EW of a continuum-subtracted spectrum is not a measurement (it was -8,380 to -79,400 Å)
    assert all(ln["ew"] is None for ln in r["lines"])


def test_a_catalogue_that_does_not_name_a_spectrum_says_so(shared_data, tmp_path, capsys):
    """--catalog with rows for other objects: the spectrum is skipped for lack of a redshift, and the record says
    that no catalogue row matched its id or file (it was a bare "no redshift")."""
    from conftest import need

    txt = str(need(shared_data / "spectra/sdss_old/sample_sdss.txt"))
    cat = tmp_path / "z.csv"
    cat.write_text("id,z\nsomething_else,0.1\n")
    assert main(["fit-lines", txt, "--catalog", str(cat), "--lines", "halpha", "--jobs", "1", "--json"]) == 2
    r = json.loads(capsys.readouterr().out)[0]
    assert r["skip_reason"] == "no redshift"
    assert any("no row of z.csv matches this spectrum's id 'sample_sdss' or file 'sample_sdss.txt'" in n
               for n in r["notes"]), r["notes"]


def test_batch_fit_lines_every_target_locally_and_on_dask(pair, capsys, monkeypatch):
    from galdesk.lines import batch
    from galdesk.lines.config import FitConfig
    from galdesk.services.batch import fit_lines_batch

    coadd, _ = pair
    assert main(["batch", "fit-lines", str(coadd), "--lines", "halpha", "--broad", "no", "--continuum", "local",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "fitted 3/5 spectra (2 skipped, 0 errors) with local processes" in out
    cfg = FitConfig(complexes=("halpha",), broad="no", continuum="local")
    sequential = fit_lines_batch([str(coadd)], cfg, n_workers=1)
    monkeypatch.setattr(batch, "MIN_CHUNK", 1)  # split the file into one-target chunks across two processes
    pooled = fit_lines_batch([str(coadd)], cfg, n_workers=2)
    on_dask = fit_lines_batch([str(coadd)], cfg, scheduler="local", n_workers=1)
    for run in (pooled, on_dask):
        assert [r["id"] for r in run] == IDS
        assert [r["status"] for r in run] == [r["status"] for r in sequential]
        for a, b in zip(run[2:], sequential[2:]):
            assert _line(a, "halpha")["flux"] == pytest.approx(_line(b, "halpha")["flux"], rel=1e-9)


def test_batch_fit_lines_resumes_inside_a_multi_target_file(pair, tmp_path, monkeypatch):
    """A run that kept only some chunks of a coadd's targets (as if killed before the others were written),
    started again, fits only the targets between them, on local processes, and gives the same records."""
    from galdesk.lines import batch
    from galdesk.lines.config import FitConfig
    from galdesk.services.batch import fit_lines_batch, lines_checkpoint

    coadd, redrock = pair
    paths = [str(coadd), str(redrock)]                # the redrock file is a catalogue, not a spectrum
    cfg = FitConfig(complexes=("halpha",), broad="no", continuum="local")
    monkeypatch.setattr(batch, "MIN_CHUNK", 1)        # one-target chunks across two processes
    out = tmp_path / "t.fits"
    first = lines_checkpoint(paths, cfg, out)
    save = first.save
    monkeypatch.setattr(first, "save", lambda i, start, n, fits: start in (0, 2) and save(i, start, n, fits))
    full = fit_lines_batch(paths, cfg, n_workers=2, checkpoint=first)
    assert [r["id"] for r in full] == IDS and [r["status"] for r in full][2:] == ["fitted"] * 3
    again = lines_checkpoint(paths, cfg, out)
    assert sorted(c[1] for c in again.load()) == [0, 2]
    saved = []
    save2 = again.save
    monkeypatch.setattr(again, "save", lambda *c: saved.append(c) or save2(*c))
    assert fit_lines_batch(paths, cfg, n_workers=2, checkpoint=again) == full
    assert sorted(start + k for _i, start, _n, fits in saved for k in range(len(fits))) == [1, 3, 4]


def test_chunks_cover_every_target_once():
    from galdesk.lines.batch import MIN_CHUNK, chunks

    for n, jobs in ((1, 4), (5, 2), (500, 16), (37, 3)):
        parts = chunks(n, 1, jobs)
        covered = [k for a, b in parts for k in range(a, b)]
        assert covered == list(range(1, n))
        assert all(b - a >= MIN_CHUNK for a, b in parts[:-1])


def test_ingest_skips_dead_and_sky_fibres_and_takes_redrock_as_a_catalogue(pair, coadd_alone, tmp_path):
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    coadd, redrock = pair
    res = ingest([coadd.parent], tmp_path / "p", workers=1)  # the folder: coadd and its redrock file
    assert res.spectra == 3 and len(res.problems) == 2
    texts = sorted(p.error for p in res.problems)
    assert texts[0].startswith(f"target {D.SKY} skipped: sky fibre")
    assert texts[1].startswith(f"target {D.DEAD} skipped: no pixel has a positive inverse variance")
    assert all(p.path == str(coadd) for p in res.problems)  # the redrock file is no problem
    proj = Project.open(tmp_path / "p.galdesk")
    z = {str(i): float(v) for i, v in zip(proj.objects["id"], proj.objects["z"])}
    assert z == {t: D.Z[t] for t in GALAXIES}
    proj.close()
    # a coadd without its redrock file beside it, with the redrock file given as a source elsewhere
    other = tmp_path / "zfiles" / "redrock-x.fits"
    other.parent.mkdir()
    shutil.copy(redrock, other)
    res = ingest([coadd_alone, other], tmp_path / "q", workers=1)
    assert res.spectra == 3 and res.catalog_matched == 3 and len(res.problems) == 2
    proj = Project.open(tmp_path / "q.galdesk")
    assert {str(i): float(v) for i, v in zip(proj.objects["id"], proj.objects["z"])} == z
    assert proj.manifest["catalogs"] == [str(other)]
    proj.close()


def test_project_spectra_without_redshift_are_skipped_and_not_journaled(coadd_alone, tmp_path, capsys):
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    ingest([coadd_alone], tmp_path / "p", workers=1)
    project = str(tmp_path / "p.galdesk")
    assert main(["fit-lines", project, *FAST, "--json"]) == 2
    assert [r["skip_reason"] for r in json.loads(capsys.readouterr().out)] == ["no redshift"] * 3
    proj = Project.open(project)
    assert proj.journal.latest("line_fit") == {}
    proj.close()
    cat = tmp_path / "z.csv"
    Table({"id": [D.GAL_B], "z": [D.Z[D.GAL_B]]}).write(cat)
    assert main(["fit-lines", project, *FAST, "--json", "--catalog", str(cat)]) == 0
    recs = _by_id(json.loads(capsys.readouterr().out))
    assert recs[D.GAL_B]["status"] == "fitted" and recs[D.GAL_B]["z_source"] == "z.csv"
    proj = Project.open(project)
    assert set(proj.journal.latest("line_fit")) == {D.GAL_B}
    proj.close()
