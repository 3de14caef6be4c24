"""ESO Phase 3 (science data product) 1-D spectra.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``eso-sdp`` (priority 15) -- ESO Phase 3 1-D spectra: a one-row BINTABLE with array columns ``WAVE`` and
    ``FLUX`` (or ``FLUX_REDUCED``), optional ``ERR`` (``ERR_REDUCED``) and ``QUAL`` (``!= 0`` masked).
    Wavelength unit from ``TUNIT`` (``nm`` -> x10, ``um`` -> x1e4, ``m``, ``Angstrom``). Air/vacuum from the
    ESO SDP convention: ``TUCD`` of WAVE ``em.wl;obs.atmos`` means air, ``em.wl`` vacuum; without a TUCD, air
    (ESO pipelines calibrate in air). Redshift from a ``Z`` or ``REDSHIFT`` keyword of the primary header, else of
    the table's.
"""

from __future__ import annotations

import numpy as np

from galdesk.io.formats.common import (
    fits_open,
    float_or_none,
    header_redshift,
    ivar_from_sigma,
    parse_flux_unit,
    table_columns,
    text_or_none,
    wave_unit_factor,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_eso_sdp"]


def _eso_columns(info) -> dict[str, int] | None:
    if info.kind != "table" or int(info.kw.get("NAXIS2", 0)) != 1:
        return None
    cols = {name.upper(): i + 1 for i, name in enumerate(table_columns(info))}
    if not any(w in cols for w in ("WAVE", "WAVELENGTH", "LAMBDA")):
        return None
    if not any(f in cols for f in ("FLUX", "FLUX_REDUCED")):
        return None
    return cols


def _is_eso_sdp(probe: Probe) -> bool:
    return probe.is_fits and any(_eso_columns(info) for _, info in probe.table_hdus())


def read_eso_sdp(probe: Probe) -> list[SpectrumData]:
    """Read an ESO Phase 3 one-row binary-table spectrum (rules in the module docstring)."""
    path = probe.path
    index, info = next((i, info) for i, info in probe.table_hdus() if _eso_columns(info))
    cols = _eso_columns(info)
    h = info.kw

    def pick(*names):
        for nme in names:
            if nme in cols:
                return nme, cols[nme]
        return None, None

    wname, wi = pick("WAVE", "WAVELENGTH", "LAMBDA")
    fname, fi = pick("FLUX", "FLUX_REDUCED")
    ename, ei = pick("ERR", "ERR_REDUCED", "ERROR", "SIGMA")
    qname, qi = pick("QUAL", "QUALITY")
    with fits_open(path) as hdul:
        row = hdul[index].data[0]
        primary = hdul[0].header.copy()
        table_names = {n.upper(): n for n in hdul[index].data.columns.names}
        wave = np.array(row[table_names[wname]], dtype=np.float64).ravel()
        flux = np.array(row[table_names[fname]], dtype=np.float64).ravel()
        err = np.array(row[table_names[ename]], dtype=np.float64).ravel() if ename else None
        qual = np.array(row[table_names[qname]]).ravel() if qname else None
    wunit = h.get(f"TUNIT{wi}")
    factor = wave_unit_factor(wunit)
    if factor is None:
        factor = 1.0
    wave = wave * factor
    ucd = str(h.get(f"TUCD{wi}", "")).strip().lower()
    vacuum = False if (not ucd or "obs.atmos" in ucd) else True
    ivar = ivar_from_sigma(err) if err is not None else np.zeros_like(flux)
    mask = ~(ivar > 0)
    meta: dict = {"wave_unit": wunit, "vacuum_assumed": not ucd, "object": text_or_none(primary.get("OBJECT"))}
    if qual is not None:
        meta["qual"] = qual
        mask |= qual != 0
    if err is None:
        meta["no_errors"] = True
        mask = qual != 0 if qual is not None else np.zeros(flux.size, bool)
    funit_text = h.get(f"TUNIT{fi}")
    meta["flux_unit_text"] = funit_text
    z = header_redshift(primary, h)
    for key in ("RA", "DEC"):
        meta[key.lower()] = float_or_none(primary.get(key))
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit=parse_flux_unit(funit_text), redshift=z, header=primary, meta=meta)]


register_reader("eso-sdp", "spectrum", _is_eso_sdp, read_eso_sdp, priority=15)
