"""Catalogue import: formats, column detection, path resolution, missing files, id-only catalogues."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from conftest import need

from galdesk.io import CatalogEntry, ReadError, read_catalog, resolve_catalog


def test_gz1_labels(shared_data):
    path = need(shared_data / "images/gz1/labels.csv")
    table = read_catalog(path)
    assert len(table) == 4988 and table.colnames == ["objid", "gz1_class", "gz1_label", "file"]
    entries, problems = resolve_catalog(table, path.parent)
    assert problems == [] and len(entries) == 4988
    e = entries[0]
    assert isinstance(e, CatalogEntry) and e.row_index == 0
    assert e.id == str(table["objid"][0]) == "588848901532418163"  # int64 ids keep every digit
    assert e.path == (path.parent / table["file"][0]).absolute() and e.path.is_file()
    assert e.path.stem == e.id
    assert e.columns == {"gz1_class": 0, "gz1_label": "elliptical"}
    assert type(e.columns["gz1_class"]) is int
    counts = np.bincount([x.columns["gz1_class"] for x in entries])
    assert counts.tolist() == [3444, 321, 334, 771, 39, 79]


def test_galsim_fits_catalogue_hdu_and_missing_files(shared_data):
    path = need(shared_data / "images/fits/galsim_hst/AEGIS_F606w_catalog.fits")
    table = read_catalog(path)
    entries, problems = resolve_catalog(table, path.parent)
    assert [(e.id, e.hdu) for e in entries] == [("23409", 0), ("14886", 1), ("9024", 2)]
    assert all(e.path.name == "AEGIS_F606w_images_01.fits" for e in entries)
    assert "GAL_FILENAME" not in entries[0].columns and entries[0].columns["BAND"] == "F606W"
    assert len(problems) == 2
    for p, ident in zip(problems, table["IDENT"][3:]):
        assert f"id {ident}" in p.error and "AEGIS_F606w_images_02.fits" in p.error


def test_relative_absolute_missing_and_empty_file_cells(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.fits").write_bytes(b"x")
    other = tmp_path / "elsewhere.fits"
    other.write_bytes(b"x")
    cat = tmp_path / "cat.csv"
    cat.write_text(f"OBJID,Path,z\n1,imgs/a.fits,0.1\n2,{other},0.2\n3,imgs/missing.fits,0.3\n4,,0.4\n")
    entries, problems = resolve_catalog(read_catalog(cat), cat.parent)
    assert [e.id for e in entries] == ["1", "2", "4"]
    assert entries[0].path == (tmp_path / "imgs" / "a.fits").absolute()
    assert entries[1].path == other
    assert entries[2].path is None and entries[2].columns == {"z": 0.4}
    assert len(problems) == 1 and "id 3" in problems[0].error and "missing.fits" in problems[0].error
    assert problems[0].path.endswith("missing.fits")


def test_id_only_catalogue_and_stem_ids(tmp_path):
    cat = tmp_path / "ids.ecsv"
    Table({"specobjid": [299492975510054912, 5], "label": ["agn", "sf"]}).write(cat)
    entries, problems = resolve_catalog(read_catalog(cat), tmp_path)
    assert problems == [] and [e.id for e in entries] == ["299492975510054912", "5"]
    assert all(e.path is None for e in entries)
    (tmp_path / "g1.fits").write_bytes(b"x")
    cat2 = tmp_path / "files.vot"
    Table({"filename": ["g1.fits"], "mag": [17.5]}).write(cat2, format="votable")
    entries, _ = resolve_catalog(read_catalog(cat2), tmp_path)
    assert entries[0].id == "g1" and entries[0].columns == {"mag": 17.5}


def test_catalogue_errors(tmp_path):
    with pytest.raises(ReadError, match="not found"):
        read_catalog(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("id,file\n")
    with pytest.raises(ReadError, match="catalogue has no rows"):
        read_catalog(empty)
    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    with pytest.raises(ReadError, match="empty file"):
        read_catalog(zero)
    odd = tmp_path / "cat.parquetx"
    odd.write_text("a")
    with pytest.raises(ReadError, match="unknown catalogue format"):
        read_catalog(odd)
    fake = tmp_path / "fake.fits"
    fake.write_text("id,file\n1,a\n")
    with pytest.raises(ReadError, match="not a FITS file"):
        read_catalog(fake)
    t = Table({"ra": [1.0], "dec": [2.0]})
    t.meta["source"] = "radec.csv"
    with pytest.raises(ReadError, match="neither a file column .* nor an id column"):
        resolve_catalog(t, tmp_path)


def test_truncated_fits_catalogue(tmp_path, shared_data):
    src = need(shared_data / "images/fits/galsim_hst/real_galaxy_catalog_23.5_example.fits")
    cut = tmp_path / "cut.fits"
    cut.write_bytes(src.read_bytes()[: 2880 * 4 + 100])
    with pytest.raises(ReadError, match="truncated"):
        read_catalog(cut)
