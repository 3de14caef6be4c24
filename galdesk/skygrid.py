"""A coordinate grid for a cut-out with a celestial WCS, as DS9 and glue draw it: lines of constant RA and Dec in
pixel coordinates, at round sexagesimal steps, each labelled where it leaves the image.

:func:`sky_grid` does the arithmetic (no Qt): the view draws the polylines it returns. Steps are chosen so that
about ``target`` lines cross the image in each direction: Dec in 1, 2, 5, 10, 15, 30 arcsec, 1, 2, 5, 10, 15, 30
arcmin, 1, 2, 5, 10, 15, 30 degrees; RA the same in seconds, minutes and hours of time (one second of time is
15 arcsec times cos Dec on the sky). A field across RA = 0 h is handled by measuring RA from the image centre.
Lines are traced by converting world to pixel along each line and cut where they leave the image (NaN breaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

__all__ = ["GridLine", "SkyGrid", "sky_grid", "format_ra", "format_dec"]

#: candidate steps in arcsec (Dec) or in seconds of time (RA)
_STEPS = np.array([0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 18000, 36000,
                   54000, 108000], float)


@dataclass
class GridLine:
    """One line of constant RA (``kind="ra"``) or Dec: pixel polyline (0-based, NaN between pieces), its value in
    degrees, its label and where to put it (pixel x, y; None when the line does not reach an edge)."""

    kind: str
    value: float
    x: np.ndarray
    y: np.ndarray
    label: str
    label_at: tuple[float, float] | None = None


@dataclass
class SkyGrid:
    """The grid of one image: its lines and the steps (degrees) they are drawn at."""

    lines: list[GridLine] = field(default_factory=list)
    ra_step: float = 0.0
    dec_step: float = 0.0

    def polyline(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """All lines of one kind as one NaN-separated polyline (one curve item to draw)."""
        xs, ys = [], []
        for line in self.lines:
            if line.kind == kind:
                xs += [line.x, [np.nan]]
                ys += [line.y, [np.nan]]
        if not xs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(xs), np.concatenate(ys)


def _step(span: float, target: int, unit: float) -> float:
    """The candidate step (in degrees; candidates in ``unit`` degrees) giving closest to ``target`` lines."""
    steps = _STEPS * unit
    n = span / steps
    return float(steps[np.argmin(np.abs(np.log((n + 1e-12) / target)))])


def format_ra(deg: float, step: float) -> str:
    """RA as DS9 labels it (``10h00m28.6s``), to the fields and precision the step needs (astropy ``Angle``)."""
    decimals = 1 if step * 240.0 < 1 - 1e-9 else 0
    seconds = round((deg % 360.0) * 240.0, decimals) % 86400.0   # rounded first: 23h59m59.99s is 0h00m00s
    fields = 1 if step >= 15.0 - 1e-9 else 2 if step * 240.0 >= 60.0 - 1e-9 else 3
    return Angle(seconds / 240.0, u.deg).to_string(unit=u.hourangle, sep="hms", fields=fields, precision=decimals,
                                                   pad=False)


def format_dec(deg: float, step: float) -> str:
    """Dec as DS9 labels it (``+02°12′36″``), to the fields and precision the step needs (astropy ``Angle``)."""
    decimals = 1 if step * 3600.0 < 1 - 1e-9 else 0
    fields = 1 if step >= 1.0 - 1e-9 else 2 if step * 60.0 >= 1.0 - 1e-9 else 3
    return Angle(deg, u.deg).to_string(unit=u.deg, format="unicode", fields=fields, precision=decimals,
                                       alwayssign=True, pad=True)


def sky_grid(wcs, ny: int, nx: int, target: int = 4, samples: int = 200) -> SkyGrid:
    """Lines of constant RA and Dec over an ``ny`` x ``nx`` image with the celestial ``wcs`` (astropy WCS).

    Returns an empty grid when the WCS is not equatorial or cannot convert the image's pixels.
    """
    if wcs is None or getattr(wcs, "naxis", 0) != 2 or not getattr(wcs.wcs, "lngtyp", "") == "RA":
        return SkyGrid()
    lng = wcs.wcs.lng
    yy, xx = np.mgrid[-0.5:ny - 0.5:25j, -0.5:nx - 0.5:25j]
    with np.errstate(all="ignore"):
        world = np.asarray(wcs.pixel_to_world_values(xx.ravel(), yy.ravel()))
    ra, dec = (world[0], world[1]) if lng == 0 else (world[1], world[0])
    ok = np.isfinite(ra) & np.isfinite(dec)
    if ok.sum() < 4:
        return SkyGrid()
    ra0 = float(ra[ok][len(ra[ok]) // 2])
    dra = (ra[ok] - ra0 + 180.0) % 360.0 - 180.0         # RA measured from the centre: no jump at 0 h
    dec_lo, dec_hi = float(dec[ok].min()), float(dec[ok].max())
    ra_lo, ra_hi = ra0 + float(dra.min()), ra0 + float(dra.max())
    if dec_hi - dec_lo <= 0 or ra_hi - ra_lo <= 0:
        return SkyGrid()
    dec_step = _step(dec_hi - dec_lo, target, 1 / 3600.0)
    ra_step = _step(ra_hi - ra_lo, target, 15 / 3600.0)
    grid = SkyGrid(ra_step=ra_step, dec_step=dec_step)
    pad_dec, pad_ra = 0.05 * (dec_hi - dec_lo), 0.05 * (ra_hi - ra_lo)
    dec_run = np.linspace(max(dec_lo - pad_dec, -90.0), min(dec_hi + pad_dec, 90.0), samples)
    ra_run = np.linspace(ra_lo - pad_ra, ra_hi + pad_ra, samples)
    seen = set()
    for value in np.arange(np.ceil(ra_lo / ra_step), np.floor(ra_hi / ra_step) + 1) * ra_step:
        key = round(float(value % 360.0) / ra_step) % max(1, round(360.0 / ra_step))
        if key in seen:      # a field around a pole spans all of RA: 0 h and 24 h are one line
            continue
        seen.add(key)
        line = _trace(wcs, lng, np.full(samples, value), dec_run, ny, nx, "ra", float(value % 360.0),
                      format_ra(value, ra_step))
        if line is not None:
            grid.lines.append(line)
    for value in np.arange(np.ceil(dec_lo / dec_step), np.floor(dec_hi / dec_step) + 1) * dec_step:
        line = _trace(wcs, lng, ra_run, np.full(samples, value), ny, nx, "dec", float(value),
                      format_dec(value, dec_step))
        if line is not None:
            grid.lines.append(line)
    return grid


def _trace(wcs, lng, ra, dec, ny, nx, kind, value, label) -> GridLine | None:
    """The pixel polyline of one line inside the image (NaN outside), labelled where it first leaves it."""
    args = (ra % 360.0, dec) if lng == 0 else (dec, ra % 360.0)
    with np.errstate(all="ignore"):
        px, py = (np.asarray(v, float) for v in wcs.world_to_pixel_values(*args))
    inside = (np.isfinite(px) & np.isfinite(py) & (px >= -0.5) & (px <= nx - 0.5) & (py >= -0.5)
              & (py <= ny - 0.5))
    if inside.sum() < 2:
        return None
    x, y = np.where(inside, px, np.nan), np.where(inside, py, np.nan)
    # the label goes where the line meets the bottom edge (RA) or the left edge (Dec), as DS9 puts them
    k = np.flatnonzero(inside)
    ends = [k[0], k[-1]]
    key = (lambda i: py[i]) if kind == "ra" else (lambda i: px[i])
    end = min(ends, key=key)
    return GridLine(kind, value, x, y, label, (float(px[end]), float(py[end])))
