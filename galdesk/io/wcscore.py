"""Centre and pixel scale of a cut-out from its header's WCS cards, with wcslib's core only.

``astropy.wcs.WCS(header)`` costs about 1.2 ms a file (it re-verifies and re-serialises the header, builds SIP and
lookup-table distortions and runs ``wcsfix``); an ingest needs two numbers from it, the sky position of the
cut-out's centre and its pixel scale. :func:`centre_and_scale` builds a bare :class:`astropy.wcs.Wcsprm` from the
WCS cards alone (~0.07 ms) and converts one pixel. A header with distortion cards (SIP ``A_ORDER``, ``CPDIS``,
``D2IMDIS``, TPV ``PV1_5``+) or a DSS plate solution, which move the centre by milli-arcseconds to arcseconds,
goes through the full WCS instead, so the numbers are the same as ``WCS(header).all_pix2world`` in every case
(checked on astropy's own WCS test headers, tests/test_fast_read.py).
"""

from __future__ import annotations

import re

import numpy as np

from galdesk.warncap import suppress

__all__ = ["wcs_cards", "centre_and_scale"]

#: header keywords of a celestial WCS (the key letter of alternate WCSs is not kept: the primary WCS is used)
_WCS_KEY = re.compile(
    r"^(?:WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE"
    r"|RADESYS|RADECSYS|EQUINOX|EPOCH|MJD-OBS|DATE-OBS)$")
#: distortion cards, and the DSS plate solution (``PLTRAH``, ``AMDX``n), which the full WCS translates itself
_DISTORTION = re.compile(r"^(?:A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|CPDIS\d|D2IMDIS\d|PV\d_(?:[5-9]|\d\d)"
                         r"|PLTRAH|AMDX\d+)$")


def wcs_cards(raw_header: str) -> tuple[str, bool]:
    """``(cards, distorted)``: the WCS cards of a header given as its raw 80-character cards, and whether the header
    has distortion cards that the bare wcslib core does not apply."""
    kept = []
    distorted = False
    for i in range(0, len(raw_header), 80):
        card = raw_header[i:i + 80]
        key = card[:8].rstrip()
        if key == "END":
            break
        if card[8:10] != "= ":
            continue
        if _WCS_KEY.match(key):
            kept.append(card)
        elif _DISTORTION.match(key):
            distorted = True
    return "".join(kept), distorted


def centre_and_scale(raw_header: str, ny: int, nx: int) -> dict:
    """``{"ra", "dec", "pixel_scale_arcsec"}`` of a ``ny`` x ``nx`` image (the values it can give; ``{}`` without
    a celestial WCS or for a WCS in another system than equatorial, such as galactic or ecliptic).

    The centre is the middle of the pixel grid, ``((nx - 1) / 2, (ny - 1) / 2)`` in 0-based pixels, as
    ``WCS.all_pix2world``; the scale is the mean of the two celestial axes' scales, as
    ``astropy.wcs.utils.proj_plane_pixel_scales``. Never raises.
    """
    try:
        cards, distorted = wcs_cards(raw_header)
        if "CTYPE1" not in cards and "CTYPE2" not in cards:
            return {}
        if distorted:
            return _full(raw_header, ny, nx)
        from astropy.wcs import Wcsprm

        with suppress():
            w = Wcsprm(header=cards.encode("ascii"), relax=True)
            w.fix()
            w.set()
        if w.lng < 0 or w.lat < 0 or not w.lngtyp == "RA":
            return {}
        pixel = np.ones((1, w.naxis))  # a cube's further axes at their first pixel
        pixel[0, :2] = nx / 2 + 0.5, ny / 2 + 0.5
        world = w.p2s(pixel, 1)["world"][0]
        matrix = w.get_cdelt()[:, None] * w.get_pc()
        scales = np.sqrt((matrix[:, [w.lng, w.lat]] ** 2).sum(axis=0)) * 3600.0
        return _finite({"ra": world[w.lng], "dec": world[w.lat], "pixel_scale_arcsec": np.mean(scales)})
    except Exception:  # noqa: BLE001 - a WCS that cannot convert gives no position
        return {}


def _full(raw_header: str, ny: int, nx: int) -> dict:
    """The same numbers through the full astropy WCS (distortions applied)."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    with suppress():
        w = WCS(fits.Header.fromstring(raw_header), naxis=2)
    if not w.has_celestial or w.wcs.lngtyp != "RA":
        return {}
    world = w.all_pix2world([[nx / 2 - 0.5, ny / 2 - 0.5]], 0)[0]
    scale = float(np.mean(proj_plane_pixel_scales(w.celestial) * 3600.0))
    return _finite({"ra": world[w.wcs.lng], "dec": world[w.wcs.lat], "pixel_scale_arcsec": scale})


def _finite(values: dict) -> dict:
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}
