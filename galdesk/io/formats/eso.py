"""ESO Phase 3 (science data product) 1-D spectra.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``eso-sdp`` (priority 15) -- ESO Phase 3 1-D spectra: a one-row BINTABLE with array columns ``WAVE`` and
    ``FLUX`` (or ``FLUX_REDUCED``), optional errors and ``QUAL`` (``!= 0`` masked). **Errors**: the column that
    goes with the flux (``ERR`` with ``FLUX``, ``ERR_REDUCED`` with ``FLUX_REDUCED``), else the first of
    ``ERR``/``ERR_REDUCED``/``ERROR``/``SIGMA``/``FLUX_ERR``/``NOISE`` (1-sigma), ``VAR``/``VARIANCE`` (variance)
    or ``IVAR`` (inverse variance); ``meta["error_source"]`` names it. Without one, or when it has no finite
    positive value (``meta["errors_unusable"]``), ``meta["no_errors"] = True`` and
    :func:`galdesk.io.reading.check_spectrum` estimates errors from the flux (:mod:`galdesk.io.noise`).
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
    ivar_from_var,
    parse_flux_unit,
    table_columns,
    text_or_none,
    wave_unit_factor,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_eso_sdp"]


#: Error columns (upper case) and what they hold, in the order they are looked for.
_ERROR_COLUMNS = {"ERR": "sigma", "ERR_REDUCED": "sigma", "ERROR": "sigma", "SIGMA": "sigma", "FLUX_ERR": "sigma",
                  "NOISE": "sigma", "VAR": "var", "VARIANCE": "var", "IVAR": "ivar"}


def _column_ivar(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "ivar":
        return np.where(np.isfinite(values) & (values > 0), values, 0.0)
    return ivar_from_var(values) if kind == "var" else ivar_from_sigma(values)


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
    ename, ei = pick("ERR_REDUCED" if fname == "FLUX_REDUCED" else "ERR", *_ERROR_COLUMNS)
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
    meta: dict = {"wave_unit": wunit, "vacuum_assumed": not ucd, "object": text_or_none(primary.get("OBJECT"))}
    ivar = _column_ivar(err, _ERROR_COLUMNS.get(ename, "sigma")) if err is not None else None
    if ivar is not None and not (ivar > 0).any():
        meta["errors_unusable"] = f"column {ename}: no finite positive value"
        ivar = None
    elif ivar is not None:
        meta["error_source"] = f"column {ename}"
    if ivar is None:
        ivar = np.zeros_like(flux)
        meta["no_errors"] = True
    mask = np.zeros(flux.size, bool) if meta.get("no_errors") else ~(ivar > 0)
    if qual is not None:
        meta["qual"] = qual
        mask |= qual != 0
    funit_text = h.get(f"TUNIT{fi}")
    meta["flux_unit_text"] = funit_text
    z = header_redshift(primary, h)
    for key in ("RA", "DEC"):
        meta[key.lower()] = float_or_none(primary.get(key))
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit=parse_flux_unit(funit_text), redshift=z, header=primary, meta=meta)]


register_reader("eso-sdp", "spectrum", _is_eso_sdp, read_eso_sdp, priority=15)
