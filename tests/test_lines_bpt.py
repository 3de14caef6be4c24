"""BPT demarcation curves and the classification rule."""

import numpy as np
import pytest

from galdesk.lines import bpt


def test_curves_published_values():
    assert bpt.kauffmann03(-0.5) == pytest.approx(0.61 / (-0.55) + 1.30)
    assert bpt.kewley01_nii(0.0) == pytest.approx(0.61 / (-0.47) + 1.19)
    assert bpt.kewley01_sii(0.0) == pytest.approx(0.72 / (-0.32) + 1.30)
    assert bpt.kewley01_oi(-1.0) == pytest.approx(0.73 / (-0.41) + 1.33)
    assert bpt.kewley06_sii(0.0) == pytest.approx(0.76)
    assert bpt.kewley06_oi(0.0) == pytest.approx(1.30)
    assert bpt.schawinski07(0.0) == pytest.approx(0.45)
    assert np.isnan(bpt.kauffmann03(0.1))
    # Ka03 lies below Ke01 everywhere it is defined
    x = np.linspace(-1.0, 0.0, 50)
    assert np.all(bpt.kauffmann03(x) < bpt.kewley01_nii(x))


@pytest.mark.parametrize("n2,o3,s2,o1,want", [
    (-0.8, -0.2, -0.7, -1.8, "star-forming"),
    (-0.2, 0.0, -0.5, -1.5, "composite"),
    (0.0, 0.9, -0.2, -1.0, "Seyfert"),
    (0.1, 0.2, 0.0, -0.4, "LINER"),
    (-0.8, -0.2, 0.2, None, "ambiguous"),   # star-forming in [NII] but AGN in [SII]
    (0.0, 0.9, None, None, "Seyfert"),      # [NII] only: Schawinski split
    (0.1, 0.2, None, None, "LINER"),
])
def test_classes(n2, o3, s2, o1, want):
    assert bpt.classify_bpt(n2, o3, s2, o1) == want


def test_errors_straddling_a_line_make_it_ambiguous():
    x = -0.3
    y = float(bpt.kauffmann03(x)) - 0.2  # below Ka03
    assert bpt.classify_bpt(x, y) == "star-forming"
    assert bpt.classify_bpt(x, y, n2ha_err=0.05, o3hb_err=0.15) == "ambiguous"
    assert bpt.classify_bpt(x, y, n2ha_err=0.01, o3hb_err=0.01) == "star-forming"
    with pytest.raises(ValueError):
        bpt.classify_bpt(None, 0.1)
