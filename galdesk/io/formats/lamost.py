"""LAMOST spectra.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``lamost`` (priority 20) -- LAMOST DR1-style spectra (``TELESCOP = 'LAMOST'``, primary image ``(5, 3904)``)
    Rows named by ``EXTEN0``. These DR1 files say ``'Flux Inverse Subcontinuum Andmask Ormask'``: row 0 flux
    (relative flux calibration: ``flux_unit = ""``, ``meta["flux_calibration"] = "relative"``), row 1 inverse
    variance, row 2 the continuum-normalised flux (-> ``meta["subcontinuum"]``), rows 3/4 and/or masks. Other
    releases write ``Wavelength`` as row 2; when ``EXTEN0`` names it, that row is used, else the wavelength is
    ``10**(COEFF0 + COEFF1 * i)``. Vacuum per ``VACUUM`` (T for LAMOST). ``mask`` includes ``andmask != 0`` (all
    LAMOST and-mask bits flag bad pixels: bad CCD, bad profile, no sky, bright sky, bad centre, no data).
    ``CLASS``/``SUBCLASS``/``Z``/``Z_ERR`` from the header; ``RA``/``DEC`` -> meta.
"""

from __future__ import annotations

import numpy as np

from galdesk.io.formats.common import (
    float_or_none,
    linear_wcs_wavelength,
    loglinear_wavelength,
    primary_2d,
    read_primary,
    text_or_none,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_lamost"]


def _is_lamost(probe: Probe) -> bool:
    info = primary_2d(probe)
    if info is None:
        return False
    h = info.kw
    return "LAMOST" in str(h.get("TELESCOP", "")).upper() and 3 <= info.shape[0] <= 6


def read_lamost(probe: Probe) -> list[SpectrumData]:
    """Read a LAMOST spectrum (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = read_primary(path)
    n = data.shape[1]
    names = [w.lower() for w in str(h.get("EXTEN0", "")).split()]
    if len(names) != data.shape[0]:
        names = ["flux", "inverse", "wavelength", "andmask", "ormask"][: data.shape[0]]

    def row(*keys):
        for k in keys:
            for i, name in enumerate(names):
                if name.startswith(k):
                    return data[i]
        return None

    flux = row("flux")
    ivar = row("inverse", "ivar")
    wave = row("wavelength")
    if wave is None:
        if "COEFF0" in h:
            wave = loglinear_wavelength(h, n)
        else:
            wave = linear_wcs_wavelength(h, n)[0]
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    meta: dict = {"flux_calibration": "relative", "ra": float_or_none(h.get("RA")), "dec": float_or_none(h.get("DEC"))}
    andmask = row("andmask")
    mask = ~(ivar > 0)
    if andmask is not None:
        meta["and_mask"] = andmask.astype(np.int64)
        mask |= meta["and_mask"] != 0
    ormask = row("ormask")
    if ormask is not None:
        meta["or_mask"] = ormask.astype(np.int64)
    sub = row("subcontinuum")
    if sub is not None:
        meta["subcontinuum"] = sub
    for key in ("OBJNAME", "DESIG", "FIBERID", "SUBCLASS", "SN_G", "SN_R", "SN_I"):
        if key in h:
            meta[key.lower()] = h[key]
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=bool(h.get("VACUUM", True)), flux_unit="", redshift=float_or_none(h.get("Z")),
                         redshift_err=float_or_none(h.get("Z_ERR")), spec_class=text_or_none(h.get("CLASS")),
                         subclass=text_or_none(h.get("SUBCLASS")), header=h, meta=meta)]


register_reader("lamost", "spectrum", _is_lamost, read_lamost, priority=20)
