"""Generic 1-D spectra in a FITS image HDU with a linear, log-linear or IRAF multispec wavelength WCS.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``fits-1d`` (priority 5) -- generic 1-D spectra with a wavelength WCS in an image HDU
    ``lambda(i) = CRVAL1 + (i + 1 - CRPIX1) * CDELT1`` (``CD1_1`` if no ``CDELT1``), i 0-based. **Log**: ``DC-FLAG
    = 1`` means log10 (IRAF): ``10**lambda``; ``CTYPE1 = 'WAVE-LOG'`` is the FITS Paper III logarithmic axis
    (``CRVAL1 * exp(w / CRVAL1)``, w the linear offset); another CTYPE1 containing ``LOG`` with ``CRVAL1 < 5``
    is read as log10. IRAF ``multispec`` WCS (``WAT2`` ``spec1 = "..."``, dtype 0/1) is supported. Units from
    ``CUNIT1`` or the ``WAT1`` ``units=``; Angstrom by default. Arrays of shape ``(k, N)`` or ``(k, 1, N)`` with
    k <= 10 (IRAF multispec-like): row 0 is the flux; a row named ``sigma``/``error`` (variance) by ``BANDIDn``
    or ``ARRAYn`` gives the errors. **Air/vacuum**: ``VACUUM`` (bool), ``AIRORVAC`` (``'air'``/``'vac'``),
    ``CTYPE1`` ``AWAV`` (air) / ``WAVE`` (vacuum); otherwise **air**, the usual case for ground-based generic
    files (``meta["vacuum_assumed"] = True``). ``BUNIT`` -> ``flux_unit`` when astropy can parse it
    (``meta["bunit"]`` always). Redshift from a ``Z``/``REDSHIFT`` keyword of the spectrum's HDU, else of the
    primary header.

The wavelength itself is computed by :func:`galdesk.io.formats.common.linear_wcs_wavelength` (also used by the
LAMOST reader).
"""

from __future__ import annotations

import numpy as np

from galdesk.io.formats.common import (
    fits_open,
    header_redshift,
    ivar_from_sigma,
    ivar_from_var,
    linear_wcs_wavelength,
    parse_flux_unit,
    text_or_none,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_fits_1d"]


def _vacuum_from_header(header) -> bool | None:
    """True/False when the header says vacuum/air, None when it does not say."""
    v = header.get("VACUUM")
    if isinstance(v, bool):
        return v
    v = header.get("AIRORVAC")
    if isinstance(v, str) and v.strip():
        return v.strip().lower().startswith("vac")
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype.startswith("AWAV"):
        return False
    if ctype.startswith("WAVE"):
        return True
    return None


def _spectral_hdu(probe: Probe):
    """(index, info) of the first image HDU that looks like a 1-D spectrum with a wavelength axis, or None."""
    for i, info in probe.image_hdus():
        shape = info.shape
        h = info.kw
        if len(shape) == 1 or (len(shape) in (2, 3) and int(np.prod(shape[:-1])) <= 10 and shape[-1] > 10):
            has_wcs = "CRVAL1" in h and ("CDELT1" in h or "CD1_1" in h)
            if has_wcs or "multispec" in str(h.get("WAT0_001", "")).lower():
                ctype = str(h.get("CTYPE1", "")).strip().upper()
                # a celestial or pixel axis is not a wavelength
                if ctype.startswith(("RA-", "DEC-", "GLON", "GLAT", "ELON", "ELAT")):
                    continue
                return i, info
    return None


def _is_fits_1d(probe: Probe) -> bool:
    return probe.is_fits and _spectral_hdu(probe) is not None


def _row_roles(header, k: int) -> dict[str, int]:
    """Which row holds what, from BANDIDn / ARRAYn descriptions (row 0 = flux by default)."""
    roles: dict[str, int] = {}
    for i in range(k):
        text = str(header.get(f"BANDID{i + 1}", header.get(f"ARRAY{i + 1}", ""))).lower()
        if not text:
            continue
        if "variance" in text and "var" not in roles:
            roles["var"] = i
        elif any(w in text for w in ("sigma", "error", "noise", "uncert")) and "sigma" not in roles:
            roles["sigma"] = i
    return roles


def read_fits_1d(probe: Probe) -> list[SpectrumData]:
    """Read a generic 1-D spectrum with a wavelength WCS (rules in the module docstring)."""
    path = probe.path
    index, info = _spectral_hdu(probe)
    with fits_open(path) as hdul:
        data = np.array(hdul[index].data, dtype=np.float64)
        h = hdul[index].header.copy()
        primary = hdul[0].header if index != 0 else None
        z = header_redshift(h, primary)
    n = data.shape[-1]
    rows = data.reshape(-1, n)
    wave, winfo = linear_wcs_wavelength(h, n)
    flux = rows[0]
    roles = _row_roles(h, rows.shape[0])
    meta: dict = {"wcs": winfo, "bunit": text_or_none(h.get("BUNIT")), "hdu": index}
    if "sigma" in roles:
        ivar = ivar_from_sigma(rows[roles["sigma"]])
    elif "var" in roles:
        ivar = ivar_from_var(rows[roles["var"]])
    else:
        ivar = np.zeros(n)
        meta["no_errors"] = True
    if rows.shape[0] > 1:
        meta["other_rows"] = rows[1:]
    vac = _vacuum_from_header(h)
    meta["vacuum_assumed"] = vac is None
    mask = ~np.isfinite(flux) if meta.get("no_errors") else ~(ivar > 0)
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=bool(vac) if vac is not None else False, flux_unit=parse_flux_unit(h.get("BUNIT")),
                         redshift=z, header=h, meta=meta)]


register_reader("fits-1d", "spectrum", _is_fits_1d, read_fits_1d, priority=5)
