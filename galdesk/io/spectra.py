"""Spectrum readers, registered with :mod:`galdesk.io.registry`.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use). Formats and the decisions taken
for each:

``sdss-spec`` (priority 20) -- SDSS/BOSS ``spec-*.fits`` (and the same structure under other names)
    HDU ``COADD``: ``wavelength = 10**loglam`` (vacuum; computed in float64 from the float32 ``loglam``), ``flux``
    in ``1e-17 erg / (s cm2 Angstrom)``, ``ivar``. **Mask** = ``ivar <= 0`` or non-finite flux: the pipeline
    already sets ``ivar = 0`` on pixels with severe problems, whereas ``and_mask`` also carries informational bits
    (e.g. BRIGHTSKY, near an emission line) that must not throw data away; ``and_mask``/``or_mask`` are kept in
    ``meta``. **Resolution**: ``wdisp`` is a Gaussian sigma in pixels of ``dloglam = 1e-4``, so
    ``resolution_kms = wdisp * 1e-4 * ln(10) * c`` (NaN where ``wdisp <= 0``). HDU ``SPECOBJ`` (SDSS) or ``SPALL``
    (BOSS/DR9+) gives ``Z``, ``Z_ERR``, ``CLASS``, ``SUBCLASS`` (stripped; empty -> None), ``ZWARNING`` in ``meta``.
    HDU ``SPZLINE`` -> ``meta["spzline"]`` (astropy Table, LINENAME stripped). ``meta["sky"]``, ``meta["model"]``,
    ``meta["ra"]``/``meta["dec"]`` (PLUG_RA/PLUG_DEC of the primary header, degrees), plate/mjd/fiberid. Id: file
    stem. A fibre without data (ivar = 0 everywhere, e.g. spec-0269-51581-0003) still loads, with a
    ``meta["warnings"]`` entry, because its SPECOBJ row (ZWARNING) is still information.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from galdesk.io.model import ReadError, SpectrumData
from galdesk.io.registry import Probe, register_reader

__all__ = [
    "C_KMS",
    "SDSS_FLUX_UNIT",
    "read_sdss_spec",
    "wdisp_to_kms",
]

#: Speed of light in km/s.
C_KMS = 299792.458
#: Flux unit of SDSS/BOSS/DESI spectra.
SDSS_FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"

_SDSS_DLOGLAM = 1e-4


# ------------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------------
def _fits_open(path):
    from astropy.io import fits

    # memmap=False + a with-block: no file handle outlives the read
    return fits.open(path, memmap=False)


def _columns(info) -> list[str]:
    """Lower-case column names of a table HDU, from its header alone."""
    h = info.header
    n = int(h.get("TFIELDS", 0))
    return [str(h.get(f"TTYPE{i}", "")).strip().lower() for i in range(1, n + 1)]


def _str(value) -> str | None:
    """Stripped string, None when empty or missing."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = str(value).strip()
    return text or None


def _float(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _col(data, names: dict[str, str], key: str, dtype=np.float64):
    """A column copied out of a FITS_rec (``names`` maps lower-case -> actual name), or None."""
    actual = names.get(key)
    if actual is None:
        return None
    return np.array(data[actual], dtype=dtype)


def wdisp_to_kms(wdisp: np.ndarray, dloglam: float = _SDSS_DLOGLAM) -> np.ndarray:
    """SDSS ``wdisp`` (Gaussian sigma in pixels of ``dloglam``) -> sigma in km/s; NaN where ``wdisp <= 0``.

    A pixel of ``dloglam`` in log10(lambda) is ``dloglam * ln(10)`` in ln(lambda), i.e. a velocity of
    ``c * dloglam * ln(10)`` (69.03 km/s for 1e-4).
    """
    wdisp = np.asarray(wdisp, dtype=np.float64)
    return np.where(wdisp > 0, wdisp * dloglam * np.log(10.0) * C_KMS, np.nan)


def _table(hdu):
    """An astropy Table copy of a table HDU with byte/str columns stripped."""
    from astropy.table import Table

    t = Table(hdu.data, copy=True)
    for name in t.colnames:
        if t[name].dtype.kind in "SU":
            t[name] = np.char.strip(np.asarray(t[name]).astype(str))
    return t


# ------------------------------------------------------------------------------------------------------------------
# SDSS / BOSS spec-*.fits
# ------------------------------------------------------------------------------------------------------------------
def _is_sdss_spec(probe: Probe) -> bool:
    if not probe.is_fits:
        return False
    for _, info in probe.table_hdus():
        cols = set(_columns(info))
        if {"loglam", "flux", "ivar"} <= cols:
            return True
    return False


def read_sdss_spec(probe: Probe) -> list[SpectrumData]:
    """Read an SDSS/BOSS ``spec-*.fits`` file (see the module docstring for every decision)."""
    path = probe.path
    coadd_index = next(i for i, info in probe.table_hdus() if {"loglam", "flux", "ivar"} <= set(_columns(info)))
    with _fits_open(path) as hdul:
        primary = hdul[0].header.copy()
        coadd = hdul[coadd_index]
        data = coadd.data
        names = {n.lower(): n for n in data.columns.names}
        loglam = _col(data, names, "loglam")
        wave = 10.0 ** loglam
        flux = _col(data, names, "flux")
        ivar = _col(data, names, "ivar")
        meta: dict = {}
        for key in ("and_mask", "or_mask"):
            arr = _col(data, names, key, np.int64)
            if arr is not None:
                meta[key] = arr
        for key in ("sky", "model"):
            arr = _col(data, names, key)
            if arr is not None:
                meta[key] = arr
        wdisp = _col(data, names, "wdisp")
        resolution = None
        if wdisp is not None and (wdisp > 0).any():
            resolution = wdisp_to_kms(wdisp)

        # the object's pipeline results: SPECOBJ (SDSS DR8+) or SPALL (BOSS / dr9-style files)
        specobj = None
        spzline = None
        for i, hdu in enumerate(hdul):
            if i == 0 or i == coadd_index:
                continue
            name = (hdu.name or "").upper()
            if name in ("SPECOBJ", "SPALL") and specobj is None:
                specobj = hdu
            elif name == "SPZLINE" and spzline is None:
                spzline = hdu
        redshift = redshift_err = None
        spec_class = subclass = None
        if specobj is not None and specobj.data is not None and len(specobj.data) > 0:
            row = specobj.data[0]
            cols = {n.upper(): n for n in specobj.data.columns.names}

            def get(key):
                return row[cols[key]] if key in cols else None

            redshift = _float(get("Z"))
            redshift_err = _float(get("Z_ERR"))
            spec_class = _str(get("CLASS"))
            subclass = _str(get("SUBCLASS"))
            for key in ("ZWARNING", "PLATE", "MJD", "FIBERID", "SPECOBJID", "BESTOBJID", "OBJID", "SN_MEDIAN_ALL",
                        "VDISP", "VDISP_ERR"):
                v = get(key)
                if v is None or np.ndim(v) != 0:  # some surveys store e.g. OBJID as a 5-int array
                    continue
                meta[key.lower()] = _str(v) if isinstance(v, (str, bytes)) else np.asarray(v).item()
        if spzline is not None and spzline.data is not None:
            meta["spzline"] = _table(spzline)

    for key, hkey in (("ra", "PLUG_RA"), ("dec", "PLUG_DEC")):
        v = _float(primary.get(hkey))
        if v is None:
            v = _float(primary.get("RA" if key == "ra" else "DEC"))
        meta[key] = v
    for key, hkey in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID")):
        if key not in meta and hkey in primary:
            meta[key] = primary[hkey]
    vacuum = bool(primary.get("VACUUM", True))
    spec = SpectrumData(
        wavelength=wave,
        flux=flux,
        ivar=ivar,
        mask=~np.isfinite(flux) | ~(ivar > 0),
        source=str(path),
        id=path.stem,
        vacuum=vacuum,
        flux_unit=SDSS_FLUX_UNIT,
        redshift=redshift,
        redshift_err=redshift_err,
        spec_class=spec_class,
        subclass=subclass,
        header=primary,
        resolution_kms=resolution,
        meta=meta,
    )
    return [spec]


register_reader("sdss-spec", "spectrum", _is_sdss_spec, read_sdss_spec, priority=20)
