"""Generic 1-D spectra in FITS image HDUs: a wavelength WCS (linear, log-linear, IRAF multispec), the SDSS
log-linear ``COEFF0``/``COEFF1``, or a wavelength array in its own HDU; errors in the same array or in their own HDU.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``fits-1d`` (priority 5) -- generic 1-D spectra in image HDUs
    **Flux HDU**: the first image HDU of shape ``(N,)``, ``(k, N)`` or ``(k, 1, N)`` (k <= 10, N > 10) that has a
    wavelength and whose EXTNAME does not name errors, a mask or a wavelength (below). **Wavelength**, in this
    order: (1) a WCS: ``lambda(i) = CRVAL1 + (i + 1 - CRPIX1) * CDELT1`` (``CD1_1`` if no ``CDELT1``), i 0-based;
    ``DC-FLAG = 1`` means log10 (IRAF); ``CTYPE1 = 'WAVE-LOG'`` is the FITS Paper III logarithmic axis
    (``CRVAL1 * exp(w / CRVAL1)``); another CTYPE1 containing ``LOG`` with ``CRVAL1 < 5`` is log10; IRAF
    ``multispec`` WCS (``WAT2`` ``spec1 = "..."``, dtype 0/1); units from ``CUNIT1`` or the ``WAT1`` ``units=``,
    Angstrom by default. (2) For a one-row flux, ``COEFF0``/``COEFF1`` (SDSS/BOSS: ``10**(COEFF0 + COEFF1 i)``).
    (3) For a one-row flux, an HDU named ``WAVE``/``WAVELENGTH``/``LAMBDA``/``LOGLAM`` of N values (BOSS- or
    DESI-arm-like split files): ``LOGLAM*`` names, or values all below 5.5, are log10; unit from its ``BUNIT`` or
    ``CUNIT1``, else Angstrom.
    **Errors**, in this order: (1) a row of a ``(k, N)`` flux named by ``BANDIDn`` or ``ARRAYn`` (row 0 is always
    the flux; an IRAF BANDID is read up to its `` - ``, so ``'spectrum - background fit, weights variance'`` is the
    flux): ``ivar``/``inverse variance`` -> ivar, ``variance`` -> var, ``sigma``/``error``/``noise``/``uncert`` ->
    sigma. (2) An HDU of N values (or of the flux's shape: its first row) named in :data:`ERROR_HDU_NAMES`
    (specutils' ``STD``/``ERR``/``UNCERT``/``VAR``/``IVAR``, ``ERROR``, ``SIGMA``, ``NOISE``, ``INVVAR``,
    ``VARIANCE``, MUSE's ``STAT`` = variance, ...), or the one the flux header's ``ERRDATA`` names, or one with
    ESO's ``HDUCLAS2 = 'ERROR'`` (``HDUCLAS3`` ``RMSE`` sigma, ``MSE`` variance, ``INVMSE`` ivar, ``INVRMSE``
    1/sigma). Errors with no finite positive value are unusable: ``meta["errors_unusable"]`` says which, and the
    spectrum is read as one without errors. Without errors ``meta["no_errors"] = True``:
    :func:`galdesk.io.reading.check_spectrum` then estimates them from the flux (:mod:`galdesk.io.noise`).
    **Mask**: an HDU of N values named ``MASK``/``QUAL``/``QUALITY``/``DQ`` (or ESO ``HDUCLAS2 = 'QUALITY'``),
    ``!= 0`` masked; ``ANDMASK``/``ORMASK`` (informational SDSS bits) go to ``meta`` only. ``SKY`` -> ``meta["sky"]``;
    ``WDISP``/``WAVEDISP`` with a log-linear grid -> ``resolution_kms`` (SDSS ``wdisp``).
    **Air/vacuum**: ``VACUUM`` (bool), ``AIRORVAC`` (``'air'``/``'vac'``), ``CTYPE1`` ``AWAV`` (air) / ``WAVE``
    (vacuum); otherwise vacuum for the SDSS ``COEFF0`` grid and **air** for the rest, the usual case for
    ground-based generic files (``meta["vacuum_assumed"] = True``). ``BUNIT`` -> ``flux_unit`` when astropy can
    parse it (``meta["bunit"]`` always). Redshift from a ``Z``/``REDSHIFT`` keyword of the spectrum's HDU, else of the
    primary header. ``meta["error_source"]`` says
    where the errors came from.

The WCS wavelength itself is computed by :func:`galdesk.io.formats.common.linear_wcs_wavelength` (also used by the
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
    loglinear_wavelength,
    parse_flux_unit,
    text_or_none,
    wave_unit_factor,
    wdisp_to_kms,
)
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_fits_1d", "ERROR_HDU_NAMES", "MASK_HDU_NAMES", "WAVE_HDU_NAMES"]

#: EXTNAMEs of error HDUs and what their values are.
ERROR_HDU_NAMES: dict[str, str] = {
    **dict.fromkeys(("IVAR", "INVVAR", "IVARIANCE", "INV_VAR", "INVERSE_VARIANCE", "INVVARIANCE", "INVERSE"),
                    "ivar"),
    **dict.fromkeys(("VAR", "VARIANCE", "STAT", "VAR_FLUX", "FLUX_VAR"), "var"),
    **dict.fromkeys(("ERR", "ERROR", "ERRORS", "ERRS", "SIGMA", "NOISE", "STD", "STDDEV", "UNCERT", "UNCERTAINTY",
                     "FLUX_ERR", "FLUXERR", "ERR_FLUX", "FLUX_ERROR", "ERROR_FLUX", "E_FLUX", "RMS"), "sigma"),
}
#: EXTNAMEs of mask HDUs (``!= 0`` masked).
MASK_HDU_NAMES = frozenset({"MASK", "QUAL", "QUALITY", "DQ", "BADPIX"})
#: EXTNAMEs of wavelength HDUs.
WAVE_HDU_NAMES = frozenset({"WAVE", "WAVELENGTH", "WAVELEN", "LAMBDA", "LAM", "LOGLAM", "LOGLAMBDA", "LOGWAVE"})
_INFO_NAMES = {"ANDMASK": "and_mask", "ORMASK": "or_mask", "SKY": "sky", "WDISP": "wdisp", "WAVEDISP": "wdisp"}
_ESO_ERRORS = {"RMSE": "sigma", "MSE": "var", "INVMSE": "ivar", "INVRMSE": "invsigma"}


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


def _error_kind(info) -> str | None:
    """``"ivar"``/``"var"``/``"sigma"``/``"invsigma"`` when an HDU's header says it holds errors, else None."""
    if str(info.kw.get("HDUCLAS2", "")).strip().upper() == "ERROR":
        return _ESO_ERRORS.get(str(info.kw.get("HDUCLAS3", "")).strip().upper(), "sigma")
    return ERROR_HDU_NAMES.get(info.name)


def _is_mask(info) -> bool:
    return info.name in MASK_HDU_NAMES or str(info.kw.get("HDUCLAS2", "")).strip().upper() == "QUALITY"


def _auxiliary(info) -> bool:
    """An HDU that holds errors, a mask, wavelengths or other per-pixel extras, never the flux."""
    return _error_kind(info) is not None or _is_mask(info) or info.name in WAVE_HDU_NAMES or info.name in _INFO_NAMES


def _n_rows(shape) -> int:
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def _same_pixels(info, n: int, flux_shape) -> bool:
    """An HDU of ``n`` values, or of the flux's own shape."""
    shape = info.shape
    return bool(shape) and shape[-1] == n and (_n_rows(shape) == 1 or tuple(shape) == tuple(flux_shape))


def _wavelength_source(probe: Probe, info):
    """``"wcs"``, ``"coeff"``, ``("hdu", index)`` or None: where the flux HDU's wavelengths come from."""
    h = info.kw
    ctype = str(h.get("CTYPE1", "")).strip().upper()
    if ctype.startswith(("RA-", "DEC-", "GLON", "GLAT", "ELON", "ELAT")):  # a celestial axis is not a wavelength
        return None
    if ("CRVAL1" in h and ("CDELT1" in h or "CD1_1" in h)) or "multispec" in str(h.get("WAT0_001", "")).lower():
        return "wcs"
    if _n_rows(info.shape) != 1:
        return None
    if "COEFF0" in h and "COEFF1" in h:
        return "coeff"
    n = info.shape[-1]
    wave = next((i for i, other in probe.image_hdus() if other.name in WAVE_HDU_NAMES and other.shape == (n,)), None)
    return ("hdu", wave) if wave is not None else None


def _spectral_hdu(probe: Probe):
    """``(index, info, wavelength source)`` of the first image HDU that looks like a 1-D spectrum with a wavelength,
    or None."""
    for i, info in probe.image_hdus():
        shape = info.shape
        if not (len(shape) == 1 or (len(shape) in (2, 3) and _n_rows(shape) <= 10 and shape[-1] > 10)):
            continue
        if _auxiliary(info):
            continue
        source = _wavelength_source(probe, info)
        if source is not None:
            return i, info, source
    return None


def _is_fits_1d(probe: Probe) -> bool:
    return probe.is_fits and _spectral_hdu(probe) is not None


def _row_roles(header, k: int) -> dict[str, int]:
    """Which row (never row 0, the flux) holds which errors, from BANDIDn / ARRAYn descriptions."""
    roles: dict[str, int] = {}
    for i in range(1, k):
        text = str(header.get(f"BANDID{i + 1}", header.get(f"ARRAY{i + 1}", ""))).lower()
        text = text.split(" - ")[0].strip()  # IRAF: 'sigma - background fit, weights variance, clean no'
        if not text:
            continue
        if any(w in text for w in ("ivar", "inverse var", "invvar", "inverse_var")):
            roles.setdefault("ivar", i)
        elif "variance" in text or text == "var":
            roles.setdefault("var", i)
        elif any(w in text for w in ("sigma", "error", "noise", "uncert")):
            roles.setdefault("sigma", i)
    return roles


def _to_ivar(values: np.ndarray, kind: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if kind == "ivar":
        return np.where(np.isfinite(values) & (values > 0), values, 0.0)
    if kind == "var":
        return ivar_from_var(values)
    if kind == "invsigma":
        return np.where(np.isfinite(values) & (values > 0), values**2, 0.0)
    return ivar_from_sigma(values)


def _error_hdu(probe: Probe, index: int, info):
    """``(index, kind)`` of the error HDU that goes with the flux HDU ``index``, or None."""
    n = info.shape[-1]
    named = str(info.kw.get("ERRDATA", "")).strip().upper()
    candidates = [(i, other) for i, other in probe.image_hdus() if i != index and _same_pixels(other, n, info.shape)]
    if named:
        hit = next(((i, other) for i, other in candidates if other.name == named), None)
        if hit is not None:
            return hit[0], _error_kind(hit[1]) or "sigma"
    return next(((i, _error_kind(other)) for i, other in candidates if _error_kind(other)), None)


def _first_row(data, n: int) -> np.ndarray:
    return np.asarray(data, dtype=np.float64).reshape(-1, n)[0]


def _errors(rows, header, hdul, err_hdu, meta: dict) -> np.ndarray | None:
    """The inverse variance from the flux rows or the error HDU (None when there are no usable errors); where it
    came from, or why it is unusable, goes to ``meta``."""
    n = rows.shape[1]
    roles = _row_roles(header, rows.shape[0])
    source = None
    if roles:
        kind, row = next(iter(roles.items()))
        ivar, source = _to_ivar(rows[row], kind), f"row {row} ({kind})"
    elif err_hdu is not None:
        i, kind = err_hdu
        ivar = _to_ivar(_first_row(hdul[i].data, n), kind)
        source = f"HDU {i} {str(hdul[i].name).strip() or '(no name)'} ({kind})"
    if source is None:
        return None
    if not (ivar > 0).any():
        meta["errors_unusable"] = f"{source}: no finite positive value"
        return None
    meta["error_source"] = source
    return ivar


def _split_extras(probe: Probe, index: int, info, hdul, meta: dict) -> np.ndarray:
    """The mask from a MASK/QUAL/DQ HDU (False everywhere without one); and/or masks, sky and wdisp to ``meta``."""
    n = info.shape[-1]
    mask = np.zeros(n, bool)
    for i, other in probe.image_hdus():
        if i == index or not _same_pixels(other, n, info.shape):
            continue
        if _is_mask(other):
            mask |= _first_row(hdul[i].data, n) != 0
            meta["mask_hdu"] = i
        elif other.name in _INFO_NAMES:
            meta[_INFO_NAMES[other.name]] = _first_row(hdul[i].data, n)
    return mask


def _wave_from_hdu(hdul, i: int, name: str) -> np.ndarray:
    values = np.asarray(hdul[i].data, dtype=np.float64).ravel()
    h = hdul[i].header
    if name.startswith("LOG") or (np.isfinite(values).all() and np.nanmax(values) < 5.5):
        return 10.0 ** values
    return values * (wave_unit_factor(h.get("BUNIT") or h.get("CUNIT1") or h.get("TUNIT1")) or 1.0)


def read_fits_1d(probe: Probe) -> list[SpectrumData]:
    """Read a generic 1-D spectrum (rules in the module docstring)."""
    path = probe.path
    index, info, source = _spectral_hdu(probe)
    err_hdu = _error_hdu(probe, index, info)
    meta: dict = {"hdu": index}
    with fits_open(path) as hdul:
        data = np.array(hdul[index].data, dtype=np.float64)
        h = hdul[index].header.copy()
        n = data.shape[-1]
        rows = data.reshape(-1, n)
        ivar = _errors(rows, h, hdul, err_hdu, meta)
        mask = _split_extras(probe, index, info, hdul, meta)
        if source == "wcs":
            wave, meta["wcs"] = linear_wcs_wavelength(h, n)
        elif source == "coeff":
            wave = loglinear_wavelength(h, n)
        else:
            wave = _wave_from_hdu(hdul, source[1], probe.fits_summary[source[1]].name)
            meta["wave_hdu"] = source[1]
        primary = hdul[0].header if index != 0 else None
        z = header_redshift(h, primary)
    flux = rows[0]
    meta["bunit"] = text_or_none(h.get("BUNIT"))
    if ivar is None:
        ivar = np.zeros(n)
        meta["no_errors"] = True
    if rows.shape[0] > 1:
        meta["other_rows"] = rows[1:]
    resolution = None
    wdisp = meta.pop("wdisp", None)
    if source == "coeff" and wdisp is not None and (wdisp > 0).any():
        resolution = wdisp_to_kms(wdisp, float(h["COEFF1"]))
    vac = _vacuum_from_header(h)
    meta["vacuum_assumed"] = vac is None
    vacuum = bool(vac) if vac is not None else source == "coeff"
    mask = mask | ~np.isfinite(flux) if meta.get("no_errors") else mask | ~(ivar > 0)
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit=parse_flux_unit(h.get("BUNIT")),
                         redshift=z, header=h, resolution_kms=resolution,
                         meta=meta)]


register_reader("fits-1d", "spectrum", _is_fits_1d, read_fits_1d, priority=5)
