"""6dF Galaxy Survey spectra.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``6dfgs`` (priority 20) -- 6dF Galaxy Survey ``*.fits`` (primary image ``(4, N)``, keywords ``Z_HELIO``/``Q_FINAL``)
    Rows: 0 spectrum (counts, *not* flux-calibrated: ``flux_unit = "count"``), 1 variance (``ivar = 1/var``, 0
    where ``var <= 0``), 2 sky (-> ``meta["sky"]``), 3 wavelength (Angstrom, **air**). The row-3 wavelengths are
    used, not the header WCS: the files were passed through IRAF ``dopcor`` (``DOPCOR01 = Z_HELIO``), so the WCS
    (CRVAL1/CDELT1) is the *rest* frame while row 3 is the observed frame (row 3 = WCS * (1 + Z_HELIO)).
    ``redshift = Z_HELIO`` (so ``rest_wavelength()`` reproduces the WCS); raw ``Z``, ``QUALITY``/``Q_FINAL`` in
    ``meta``. Id: ``TARGET`` (the name without the ``.ir`` frame suffix), else the stem.
"""

from __future__ import annotations

from galdesk.io.formats.common import float_or_none, ivar_from_var, primary_2d, read_primary, text_or_none
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_6dfgs"]


def _is_6dfgs(probe: Probe) -> bool:
    info = primary_2d(probe)
    if info is None or info.shape[0] != 4:
        return False
    h = info.kw
    return "Z_HELIO" in h or "Q_FINAL" in h


def read_6dfgs(probe: Probe) -> list[SpectrumData]:
    """Read a 6dFGS spectrum (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = read_primary(path)
    wave = data[3]
    flux = data[0]
    ivar = ivar_from_var(data[1])
    z_helio = float_or_none(h.get("Z_HELIO"))
    meta: dict = {"sky": data[2], "z_raw": float_or_none(h.get("Z")), "quality": h.get("QUALITY"),
                  "q_final": h.get("Q_FINAL"), "ra": float_or_none(h.get("OBSRA")),
                  "dec": float_or_none(h.get("OBSDEC"))}
    if "DOPCOR01" in h:
        meta["dopcor"] = str(h["DOPCOR01"]).strip()
    ident = text_or_none(h.get("TARGET")) or text_or_none(h.get("NAME_V")) or path.stem
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path), id=ident,
                         vacuum=False, flux_unit="count",
                         redshift=z_helio if z_helio is not None else float_or_none(h.get("Z")),
                         header=h, meta=meta)]


register_reader("6dfgs", "spectrum", _is_6dfgs, read_6dfgs, priority=20)
