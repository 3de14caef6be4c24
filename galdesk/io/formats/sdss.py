"""SDSS spectra: BOSS/SDSS ``spec-*.fits`` and the old spSpec files.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

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

``sdss-spspec`` (priority 20) -- old SDSS spSpec files (DR1-DR7, e.g. ``sample_sdss.fits``)
    Primary image ``(4 or 5, N)``. Rows from the header's ``ARRAY1..4`` keywords and the DR7 spSpec data model:
    row 0 flux (``SPECTRUM``), row 1 continuum-subtracted flux (-> ``meta["continuum_subtracted"]``), row 2 1-sigma
    error (``ERROR``; ``ivar = 1/err**2``, 0 where ``err <= 0``), row 3 pixel mask (-> ``meta["pixel_mask"]``, not
    applied for the same reason as ``and_mask`` above). A 5th, unlabelled row is kept as ``meta["row4"]``.
    Wavelength ``10**(COEFF0 + COEFF1 * i)`` (log-linear), vacuum per ``VACUUM`` (T). ``BUNIT`` (``'1.0E-17
    erg/cm/s/Ang'``, which astropy cannot parse and which says cm, not cm2) is not parsed: the unit is the SDSS
    one. ``Z``, ``Z_ERR``; class from ``SPEC_CLN`` (0 UNKNOWN, 1 STAR, 2 GALAXY, 3 QSO, 4 HIZ_QSO, 5 SKY,
    6 STAR_LATE, 7 GAL_EM); ``RAOBJ``/``DECOBJ`` -> ``meta["ra"]``/``["dec"]``. The line-measurement tables of
    HDU 1-6 are not read.
"""

from __future__ import annotations

import numpy as np

from galdesk.io.formats.common import (
    fast_table,
    fits_open,
    float_or_none,
    ivar_from_sigma,
    loglinear_wavelength,
    primary_2d,
    read_primary,
    table_columns,
    text_or_none,
    wdisp_to_kms,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.units import SDSS_FLUX_UNIT

__all__ = ["read_sdss_spec", "read_sdss_spspec"]


def _col(data, names: dict[str, str], key: str, dtype=np.float64):
    """A column copied out of a FITS_rec (``names`` maps lower-case -> actual name), or None."""
    actual = names.get(key)
    if actual is None:
        return None
    return np.array(data[actual], dtype=dtype)


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
        cols = set(table_columns(info))
        if {"loglam", "flux", "ivar"} <= cols:
            return True
    return False


def _sdss_hdus(probe: Probe) -> tuple[int, int | None, int | None]:
    """Indices of the COADD table and of the SPECOBJ/SPALL and SPZLINE tables (None when absent)."""
    tables = probe.table_hdus()
    coadd_index = next(i for i, info in tables if {"loglam", "flux", "ivar"} <= set(table_columns(info)))
    # only the HDUs we need are touched: BOSS files carry one HDU per exposure after these
    specobj_index = next((i for i, info in tables if info.name in ("SPECOBJ", "SPALL")), None)
    spzline_index = next((i for i, info in tables if info.name == "SPZLINE"), None)
    return coadd_index, specobj_index, spzline_index


def _coadd_columns(data, meta: dict):
    """``(loglam, flux, ivar, wdisp)`` of the COADD table; and/or masks, sky and model go to ``meta``."""
    names = {n.lower(): n for n in data.columns.names}
    loglam = _col(data, names, "loglam")
    flux = _col(data, names, "flux")
    ivar = _col(data, names, "ivar")
    for key in ("and_mask", "or_mask"):
        arr = _col(data, names, key, np.int64)
        if arr is not None:
            meta[key] = arr
    for key in ("sky", "model"):
        arr = _col(data, names, key)
        if arr is not None:
            meta[key] = arr
    return loglam, flux, ivar, _col(data, names, "wdisp")


def _specobj_row(probe: Probe, hdul, index: int | None) -> dict | None:
    """Columns of the SPECOBJ/SPALL table (read straight from the file when possible), or None."""
    if index is None:
        return None
    specobj = fast_table(probe, index)
    if specobj is None:
        rec = hdul[index].data
        specobj = {n: np.array(rec[n]) for n in rec.columns.names}
    return specobj


def _spzline_table(probe: Probe, hdul, index: int | None):
    """The SPZLINE table as an astropy Table, or None."""
    if index is None:
        return None
    fast = fast_table(probe, index)
    if fast is not None:
        from astropy.table import Table

        return Table(fast)
    return _table(hdul[index])


def _specobj_fields(specobj: dict | None, meta: dict):
    """``(redshift, redshift_err, class, subclass)`` from the SPECOBJ/SPALL row; its ids and flags go to ``meta``."""
    if specobj is None or not all(len(v) > 0 for v in specobj.values()):
        return None, None, None, None
    cols = {n.upper(): n for n in specobj}

    def get(key):
        return specobj[cols[key]][0] if key in cols else None

    fields = (float_or_none(get("Z")), float_or_none(get("Z_ERR")), text_or_none(get("CLASS")),
              text_or_none(get("SUBCLASS")))
    for key in ("ZWARNING", "PLATE", "MJD", "FIBERID", "SPECOBJID", "BESTOBJID", "OBJID", "SN_MEDIAN_ALL",
                "VDISP", "VDISP_ERR"):
        v = get(key)
        if v is None or np.ndim(v) != 0:  # some surveys store e.g. OBJID as a 5-int array
            continue
        meta[key.lower()] = text_or_none(v) if isinstance(v, (str, bytes)) else np.asarray(v).item()
    return fields


def _primary_fields(primary, meta: dict) -> None:
    """Position (PLUG_RA/PLUG_DEC, else RA/DEC) and plate/mjd/fiberid not already known, from the primary header."""
    for key, hkey in (("ra", "PLUG_RA"), ("dec", "PLUG_DEC")):
        v = float_or_none(primary.get(hkey))
        if v is None:
            v = float_or_none(primary.get("RA" if key == "ra" else "DEC"))
        meta[key] = v
    for key, hkey in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID")):
        if key not in meta and hkey in primary:
            meta[key] = primary[hkey]


def read_sdss_spec(probe: Probe) -> list[SpectrumData]:
    """Read an SDSS/BOSS ``spec-*.fits`` file (see the module docstring for every decision)."""
    path = probe.path
    coadd_index, specobj_index, spzline_index = _sdss_hdus(probe)
    meta: dict = {}
    with fits_open(path) as hdul:
        primary = hdul[0].header.copy()
        loglam, flux, ivar, wdisp = _coadd_columns(hdul[coadd_index].data, meta)
        specobj = _specobj_row(probe, hdul, specobj_index)
        spzline = _spzline_table(probe, hdul, spzline_index)
    wave = 10.0 ** loglam  # float64 from the float32 loglam column
    resolution = wdisp_to_kms(wdisp) if wdisp is not None and (wdisp > 0).any() else None
    redshift, redshift_err, spec_class, subclass = _specobj_fields(specobj, meta)
    if spzline is not None:
        meta["spzline"] = spzline
    _primary_fields(primary, meta)
    spec = SpectrumData(
        wavelength=wave,
        flux=flux,
        ivar=ivar,
        mask=~np.isfinite(flux) | ~(ivar > 0),
        source=str(path),
        id=path.stem,
        vacuum=bool(primary.get("VACUUM", True)),
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


# ------------------------------------------------------------------------------------------------------------------
# old SDSS spSpec
# ------------------------------------------------------------------------------------------------------------------
_SPEC_CLN = {0: "UNKNOWN", 1: "STAR", 2: "GALAXY", 3: "QSO", 4: "HIZ_QSO", 5: "SKY", 6: "STAR_LATE", 7: "GAL_EM"}


def _is_sdss_spspec(probe: Probe) -> bool:
    info = primary_2d(probe)
    if info is None:
        return False
    h = info.kw
    if not 4 <= info.shape[0] <= 5 or "COEFF0" not in h or "COEFF1" not in h:
        return False
    return str(h.get("ARRAY1", "")).strip().upper() == "SPECTRUM" or "SDSS" in str(h.get("TELESCOP", "")).upper()


def read_sdss_spspec(probe: Probe) -> list[SpectrumData]:
    """Read an old SDSS spSpec file (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = read_primary(path)
    n = data.shape[1]
    wave = loglinear_wavelength(h, n)
    flux = data[0]
    ivar = ivar_from_sigma(data[2])
    meta: dict = {"continuum_subtracted": data[1], "pixel_mask": data[3].astype(np.int64)}
    if data.shape[0] > 4:
        meta["row4"] = data[4]
    cln = h.get("SPEC_CLN")
    spec_class = _SPEC_CLN.get(int(cln)) if isinstance(cln, (int, np.integer)) else None
    meta["spec_cln"] = cln
    for key, hkey in (("ra", "RAOBJ"), ("dec", "DECOBJ")):
        meta[key] = float_or_none(h.get(hkey))
    for key, hkey in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID"), ("z_status", "Z_STATUS"),
                      ("z_warning", "Z_WARNIN"), ("objtype", "OBJTYPE")):
        if hkey in h:
            meta[key] = h[hkey]
    meta["bunit"] = str(h.get("BUNIT", "")).strip()
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path), id=path.stem,
                         vacuum=bool(h.get("VACUUM", True)), flux_unit=SDSS_FLUX_UNIT,
                         redshift=float_or_none(h.get("Z")), redshift_err=float_or_none(h.get("Z_ERR")),
                         spec_class=spec_class, header=h, meta=meta)]


register_reader("sdss-spec", "spectrum", _is_sdss_spec, read_sdss_spec, priority=20)
register_reader("sdss-spspec", "spectrum", _is_sdss_spspec, read_sdss_spspec, priority=20)
