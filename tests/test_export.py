"""Export: catalogue contents and units, row/column choice, FITS/CSV/ECSV/VOTable round trips with astropy,
FITS conventions TOPCAT reads (BINTABLE, TUNIT, TNULL, TCOMM), no silent overwrite, CLI."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from test_vetting import CLASSES, MODEL_HASH, SPECTRA, image_ids, make_project

from galdesk import __version__
from galdesk.catalog.assemble import DEFAULT_FLUX_UNIT, build_catalog
from galdesk.catalog.export import export_catalog, read_catalog
from galdesk.catalog.writers import format_for, write_table
from galdesk.cli.export import add_parsers as add_export_parser
from galdesk.cli.export import cmd_export
from galdesk.project import Project
from galdesk.project.results import load_predictions
from galdesk.vetting import REJECTED, VetSession

FLUX = u.Unit(DEFAULT_FLUX_UNIT)


@pytest.fixture(scope="module")
def template(shared_data, tmp_path_factory):
    """The shared project with some decisions by two vetters."""
    path = tmp_path_factory.mktemp("tmpl") / "exp.galdesk"
    p = make_project(path, shared_data)
    ids = image_ids(p)
    ann = VetSession(p, vetter="ann")
    ann.accept(ids[0], note="textbook")
    ann.decide(ids[1], "spiral", flags=["interesting"], note="Hα knots, \"bar\"?\nsee DR7")
    ann.reject(ids[2], note="star on top")
    ann.decide(SPECTRA[2], "other", note="broad lines")
    bob = VetSession(p, vetter="bob")
    bob.decide(ids[1], "elliptical")  # disagrees with ann
    bob.skip(ids[3])
    p.close()
    return path


@pytest.fixture
def proj(template, tmp_path):
    dest = tmp_path / "p.galdesk"
    shutil.copytree(template, dest)
    p = Project.open(dest)
    yield p
    p.close()


def assert_same_table(a: Table, b: Table, units: bool = True) -> None:
    """Same columns, rows, masks, values (and units)."""
    assert a.colnames == b.colnames
    assert len(a) == len(b)
    for name in a.colnames:
        ca, cb = a[name], b[name]
        ma, mb = np.ma.getmaskarray(ca), np.ma.getmaskarray(cb)
        if ca.dtype.kind in "US" or cb.dtype.kind in "US":
            va = np.where(ma, "", np.asarray(ca).astype(str))
            vb = np.where(mb, "", np.asarray(cb).astype(str))
            assert list(va) == list(vb), name
            continue
        assert list(ma) == list(mb), name
        va, vb = np.asarray(ca)[~ma], np.asarray(cb)[~mb]
        assert np.array_equal(va.astype(float), vb.astype(float)), name
        if units:
            assert (ca.unit or u.dimensionless_unscaled) == (cb.unit or u.dimensionless_unscaled), name


# ------------------------------------------------------------------------------------------------------------------
def spzline_reference(shared, objid: str, line: str) -> dict:
    with open(shared / "reference/sdss_spzline_reference_lines.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["path"].endswith(f"{objid}.fits") and r["LINENAME"] == line:
                return r
    raise LookupError(line)


def test_catalog_contents_units_and_masks(proj, shared_data):
    t = build_catalog(proj)
    assert len(t) == 24
    assert t.colnames[:7] == ["id", "kind", "source", "hdu", "ra", "dec", "z"]
    assert t["ra"].unit == u.deg and t["dec"].unit == u.deg
    row = {str(i): k for k, i in enumerate(t["id"])}
    # spectra: position and redshift from the files; line fits from SDSS SPZLINE
    s0 = row[SPECTRA[0]]
    assert t["ra"][s0] == pytest.approx(27.671528) and t["z"][s0] == pytest.approx(0.05060115)
    spec = proj.spectrum(proj.find(SPECTRA[0], kind="spectrum"))
    assert spec.flux_unit == "1e-17 erg / (s cm2 Angstrom)"
    assert t["H_alpha_flux"].unit == FLUX and t["H_alpha_fwhm"].unit == u.km / u.s and t["H_alpha_ew"].unit == u.AA
    ref = spzline_reference(shared_data, SPECTRA[0], "H_alpha")  # the SDSS pipeline's own numbers
    assert t["H_alpha_flux"][s0] == pytest.approx(float(ref["LINEAREA"]), rel=1e-6)
    assert t["H_alpha_flux_err"][s0] == pytest.approx(float(ref["LINEAREA_ERR"]), rel=1e-6)
    assert t["H_alpha_fwhm"][s0] == pytest.approx(2.3548 * float(ref["LINESIGMA_kms"]), rel=1e-6)
    assert t["bpt_class"][s0] == "Seyfert" and t["broad_needed"][s0] == 0
    qso = row[SPECTRA[3]]
    assert t["broad_needed"][qso] == 1 and t["H_alpha_broad_fwhm"][qso] == 3500.0 and t["delta_bic"][qso] == 250.0
    assert t["H_alpha_broad_flux"].mask[s0]  # narrow-only object: masked, not zero
    # images: predictions and clusters, no line fits
    ids = image_ids(proj)
    preds = load_predictions(proj)
    i1 = row[ids[1]]
    k = list(preds.rows).index(proj.find(ids[1]))
    assert t["pred_class"][i1] == CLASSES[preds.pred[k]]
    assert [t[f"prob_{c}"][i1] for c in CLASSES] == pytest.approx(list(preds.prob[k]))
    assert t["cluster"][i1] == 1 and t["cluster"].mask[s0]
    assert t["H_alpha_flux"].mask[i1] and t["broad_needed"].mask[i1] and t["ra"].mask[i1]
    assert t["pred_class"].mask[s0] and t["prob_spiral"].mask[s0]
    # vetting: latest decision reported, with vetter, note, time, conflict
    assert t["vet_label"][i1] == "elliptical" and t["vetter"][i1] == "bob" and t["n_vetters"][i1] == 2
    assert t["vet_conflict"][i1] == 1
    assert t["vet_action"][row[ids[0]]] == "accept" and t["vet_note"][row[ids[0]]] == "textbook"
    assert t["vet_label"][row[ids[2]]] == REJECTED
    assert t["vet_note"].mask[i1]  # the reported decision is bob's, and bob wrote no note
    ta = build_catalog(proj, vetter="ann")
    assert ta["vet_label"][i1] == "spiral" and ta["vet_flags"][i1] == "interesting"
    assert ta["vet_note"][i1] == 'Hα knots, "bar"? see DR7'  # on one line
    assert t["vet_label"].mask[row[ids[3]]]  # only skipped
    assert t["vet_time"][i1].endswith("+00:00")
    # descriptions everywhere, provenance in meta
    assert all(t[c].description for c in t.colnames)
    assert t.meta["MODELHSH"] == MODEL_HASH and t.meta["CUTSET"] == "3" and t.meta["GALDESK"] == __version__
    assert t.meta["NVETTERS"] == 2 and t.meta["JRNLSEQ"] == proj.journal.last_seq()


def test_only_and_columns(proj):
    assert len(build_catalog(proj, only="vetted")) == 4       # ids 0,1,2 + spectrum 2
    acc = build_catalog(proj, only="accepted")
    assert len(acc) == 3 and REJECTED not in list(acc["vet_label"])
    assert len(build_catalog(proj, only="vetted", vetter="bob")) == 1
    t = build_catalog(proj, columns=["id", "prob_*", "vet_label"])
    assert t.colnames == ["id", "prob_elliptical", "prob_spiral", "prob_other", "vet_label"]
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        build_catalog(proj, columns=["id", "nope"])
    with pytest.raises(ValueError, match="only="):
        build_catalog(proj, only="some")


def test_fits_round_trip_and_topcat_conventions(proj, tmp_path):
    t = build_catalog(proj, vetter="ann")
    out = tmp_path / "cat.fits"
    res = export_catalog(proj, out, vetter="ann")
    assert res.format == "fits" and res.n_rows == 24 and not res.overwritten and res.stale_temp_files == []
    back = Table.read(out)  # plain astropy: the first table HDU
    assert_same_table(t[[c for c in t.colnames if c != "vet_note"]], back[[c for c in t.colnames if c != "vet_note"]])
    assert_same_table(t, read_catalog(out))  # and the note's non-ASCII text decoded back
    assert back["H_alpha_flux"].unit == FLUX and back["ra"].unit == u.deg and back["H_alpha_fwhm"].unit == "km / s"
    with fits.open(out, checksum=True) as hdul:
        assert len(hdul) == 2 and hdul[1].header["XTENSION"] == "BINTABLE" and hdul[1].name == "CATALOG"
        h = hdul[1].header
        names = [h[f"TTYPE{i}"] for i in range(1, h["TFIELDS"] + 1)]
        col = {n: i for i, n in enumerate(names, start=1)}
        assert h[f"TUNIT{col['ra']}"] == "deg"
        assert u.Unit(h[f"TUNIT{col['H_alpha_flux']}"]) == FLUX
        assert u.Unit(h[f"TUNIT{col['H_alpha_fwhm']}"]) == u.km / u.s
        # masked integers carry TNULL, and the null value is what the masked cells hold
        for name in ("cluster", "broad_needed", "hdu"):
            i = col[name]
            assert h[f"TFORM{i}"] in ("I", "J", "K") and f"TNULL{i}" in h
            raw = hdul[1].data[name]
            assert np.all((raw == h[f"TNULL{i}"]) == np.ma.getmaskarray(t[name]))
        assert h[f"TCOMM{col['ra']}"].startswith("right ascension") and h[f"TUCD{col['ra']}"] == "pos.eq.ra;meta.main"
        for hdr in (hdul[0].header, h):
            assert hdr["GALDESK"] == __version__ and hdr["ORIGIN"] == "galdesk" and hdr["CUTSET"] == "3"
            assert hdr["MODELHSH"] == MODEL_HASH and hdr["MODELID"] == "gz-cnn-test" and hdr["SELECT"] == "all"
            assert "T" in hdr["DATE"] and any("galdesk" in str(x) for x in hdr["HISTORY"])
            assert all(len(k) <= 8 for k in hdr.keys())
        # text is ASCII: the note's alpha is escaped, not lost
        assert hdul[1].data["vet_note"][list(t["id"]).index(image_ids(proj)[1])].startswith("H\\u03b1 knots")


def test_csv_round_trip(proj, tmp_path):
    t = build_catalog(proj)
    out = tmp_path / "cat.csv"
    export_catalog(proj, out)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == t.colnames  # one plain header row
    plain = Table.read(out, format="ascii.csv")  # astropy alone: same rows and values
    assert len(plain) == len(t) and plain.colnames == t.colnames
    assert [str(x) for x in plain["id"]] == list(t["id"])
    for name in ("ra", "z", "H_alpha_flux", "prob_spiral", "cluster", "broad_needed"):
        assert list(np.ma.getmaskarray(plain[name])) == list(np.ma.getmaskarray(t[name])), name
        ok = ~np.ma.getmaskarray(t[name])
        assert np.array_equal(np.asarray(plain[name])[ok], np.asarray(t[name])[ok]), name
    # read_catalog keeps text as text and puts the units back
    assert_same_table(t, read_catalog(out, project=proj))
    by_name = read_catalog(out)  # without the project: units from the column names
    assert by_name["H_alpha_flux"].unit == FLUX and by_name["dec"].unit == u.deg and by_name["H_alpha_ew"].unit == u.AA


@pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")  # VOUnit frowns on erg and Angstrom
def test_ecsv_and_votable_round_trip(proj, tmp_path):
    t = build_catalog(proj)
    e = export_catalog(proj, tmp_path / "cat.ecsv")
    back = Table.read(e.path, format="ascii.ecsv")
    assert_same_table(t, back)
    assert back.meta["MODELHSH"] == MODEL_HASH and back["ra"].description == "right ascension (ICRS)"
    v = export_catalog(proj, tmp_path / "cat.xml")
    vt = read_catalog(v.path)
    assert_same_table(t, vt)
    from astropy.io.votable import parse

    vot = parse(v.path)
    infos = {i.name: i.value for i in vot.resources[0].infos}
    assert infos["MODELHSH"] == MODEL_HASH and infos["GALDESK"] == __version__
    fields = {f.name: f for f in vot.get_first_table().fields}
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["ra"].unit) == "deg"


def test_no_silent_overwrite(proj, tmp_path):
    out = tmp_path / "out" / "cat.csv"
    out.parent.mkdir()
    out.write_text("precious\n")
    with pytest.raises(FileExistsError, match="cat.csv.*overwrite"):
        export_catalog(proj, out)
    assert out.read_text() == "precious\n"
    res = export_catalog(proj, out, overwrite=True, only="accepted")
    assert res.overwritten and res.n_rows == 3 and out.read_text().startswith("id,")
    assert [p.name for p in out.parent.iterdir()] == ["cat.csv"]  # no temporary file left behind
    with pytest.raises(ValueError, match="unknown export format"):
        export_catalog(proj, tmp_path / "cat.xlsx")
    assert format_for("a.VOT") == "votable" and format_for("a.fit") == "fits"


def test_write_table_cleans_up_on_error(tmp_path):
    t = Table({"id": ["a"], "obj": [object()]})  # no format can write this column
    out = tmp_path / "x.fits"
    with pytest.raises(Exception):
        write_table(t, out)
    assert list(tmp_path.iterdir()) == []


def _args(argv):
    p = argparse.ArgumentParser()
    add_export_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


def test_cli_export(proj, tmp_path, capsys):
    out = tmp_path / "cli.fits"
    path = str(proj.path)
    assert cmd_export(_args(["export", path, "-o", str(out), "--only", "vetted", "--json"])) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_rows"] == 4 and res["format"] == "fits" and Table.read(out).colnames == res["columns"]
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert cmd_export(_args(["export", path, "-o", str(out)])) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(out) in err and "--overwrite" in err
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert cmd_export(_args(["export", path, "-o", str(out), "--overwrite", "--columns", "id,vet_label"])) == 0
    assert "4 rows x 2 columns" in capsys.readouterr().out
    assert Table.read(out).colnames == ["id", "vet_label"]
    assert cmd_export(_args(["export", path, "-o", str(tmp_path / "x.txt")])) == 2
    assert "x.txt" in capsys.readouterr().err
    assert cmd_export(_args(["export", str(tmp_path / "none.galdesk"), "-o", str(tmp_path / "y.csv")])) == 2
    assert "none.galdesk" in capsys.readouterr().err


def test_empty_project_exports(tmp_path):
    p = Project.create(tmp_path / "empty.galdesk")
    res = export_catalog(p, tmp_path / "e.fits")
    assert res.n_rows == 0 and len(Table.read(tmp_path / "e.fits")) == 0
    p.close()


def test_catalogue_columns_are_exported_with_units(tmp_path, shared_data):
    from astropy.table import Table

    from galdesk.catalog.assemble import build_catalog
    from galdesk.catalog.export import export_catalog
    from galdesk.project import Project
    from galdesk.services.ingest import ingest

    labels = Table.read(shared_data / "images/gz1/labels.csv", format="ascii.csv")[:4]
    labels["file"] = [str(shared_data / "images/gz1" / f) for f in labels["file"]]
    labels["petroMag_r"] = [17.1, 17.5, 16.9, 17.7]
    labels["petroMag_r"].unit = "mag"
    labels.write(tmp_path / "cat.ecsv", format="ascii.ecsv")
    ingest([], tmp_path / "p", catalog=tmp_path / "cat.ecsv", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    t = build_catalog(proj)
    assert list(t["gz1_label"]) == list(labels["gz1_label"])
    assert str(t["petroMag_r"].unit) == "mag"
    export_catalog(proj, tmp_path / "c.fits")
    back = Table.read(tmp_path / "c.fits")
    assert np.allclose(back["petroMag_r"], labels["petroMag_r"]) and str(back["petroMag_r"].unit) == "mag"
    assert [str(v).strip() for v in back["gz1_label"]] == list(labels["gz1_label"])
