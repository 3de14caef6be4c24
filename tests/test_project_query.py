"""Find, filter and sort the object table (galdesk.project.query): ids, positions within a radius (degrees and
sexagesimal), conditions on numbers and text with masked values, sorting with missing values last."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from galdesk.project.query import filter_rows, find_objects, parse_position, sort_rows


@pytest.fixture
def table():
    return Table({
        "id": ["588848901532418163", "588848901530583233", "ngc4486", "spec-0266-51602-0013"],
        "kind": ["image", "image", "image", "spectrum"],
        "ra": [150.0, 150.001, 187.70593, np.nan],
        "dec": [2.2, 2.2, 12.39112, np.nan],
        "z": [0.05, np.nan, 0.00428, 0.1],
        "gz1_label": MaskedColumn(["elliptical", "spiral", "", "elliptical"], mask=[False, False, True, False]),
    })


def test_positions_parse_in_degrees_and_sexagesimal():
    assert parse_position("150.1 2.2") == (150.1, 2.2, 5.0)
    ra, dec, r = parse_position("12:30:49.42 +12:23:28.0 30")
    assert ra == pytest.approx(187.70592, abs=1e-4) and dec == pytest.approx(12.39111, abs=1e-4) and r == 30
    assert parse_position("12h30m49.42s +12d23m28s")[0] == pytest.approx(187.70592, abs=1e-4)
    assert parse_position("ngc4486") is None and parse_position("150 95") is None


def test_find_by_id_then_by_position(table):
    rows, msg = find_objects(table, "ngc4486")
    assert list(rows) == [2] and msg == "id ngc4486"
    rows, msg = find_objects(table, "5888489015")
    assert list(rows) == [0, 1] and "2 ids contain" in msg
    rows, msg = find_objects(table, "M87")
    assert rows.size == 0 and "no id contains" in msg
    # M87 from its sexagesimal position; 150.0005 2.2 within 5": both galaxies, nearest first
    rows, _ = find_objects(table, "12:30:49.42 +12:23:28.0")
    assert list(rows) == [2]
    rows, msg = find_objects(table, "150.0008 2.2")
    assert list(rows) == [1, 0] and "2 within 5\"" in msg
    rows, msg = find_objects(table, "151 2.2")
    assert rows.size == 0 and "the nearest is 588848901530583233" in msg


def test_filter_numbers_text_and_masked_values(table):
    assert list(filter_rows(table, "z < 0.06")) == [0, 2]           # NaN never passes
    assert list(filter_rows(table, "z >= 0.05 and kind == image")) == [0]
    assert list(filter_rows(table, "gz1_label != spiral")) == [0, 3]  # masked never passes
    assert list(filter_rows(table, "gz1_label == 'elliptical'")) == [0, 3]
    assert list(filter_rows(table, "kind == spectrum or z < 0.01 and ra > 180")) == [2, 3]   # and binds first
    for bad, words in (("mag < 20", "no column 'mag'"), ("z < small", "holds numbers"), ("z ~ 1", "cannot read"),
                       ("z < 1 or", "'1 or' is not one")):
        with pytest.raises(ValueError, match=words):
            filter_rows(table, bad)


def test_sort_with_missing_values_last(table):
    assert list(sort_rows(table, np.arange(4), "z")) == [2, 0, 3, 1]
    assert list(sort_rows(table, np.arange(4), "z", descending=True)) == [3, 0, 2, 1]
    assert list(sort_rows(table, np.arange(4), "gz1_label")) == [0, 3, 1, 2]
    assert list(sort_rows(table, [3, 1], "ra")) == [1, 3]
