"""Helpers shared by the format modules: FITS files and one-row tables read fast, header values, inverse variances,
wavelength and flux units, 1-D spectral WCS and SDSS resolution.

Nothing here registers a reader; the format modules (:mod:`galdesk.io.formats`) import what they need.
"""

from __future__ import annotations

import math
import re

import numpy as np

from galdesk.io.probe import Probe
from galdesk.units import C_KMS
from galdesk.warncap import suppress

__all__ = [
    "fits_open",
    "fast_table",
    "table_columns",
    "text_or_none",
    "float_or_none",
    "header_redshift",
    "REDSHIFT_KEYWORDS",
    "primary_2d",
    "read_primary",
    "ivar_from_sigma",
    "ivar_from_var",
    "loglinear_wavelength",
    "wave_unit_factor",
    "parse_flux_unit",
    "linear_wcs_wavelength",
    "wdisp_to_kms",
]

_SDSS_DLOGLAM = 1e-4


# ------------------------------------------------------------------------------------------------------------------
# FITS files and tables
# ------------------------------------------------------------------------------------------------------------------
def fits_open(path):
    """``fits.open(path, memmap=False)``: use it in a with-block and copy what you keep."""
    from astropy.io import fits

    # memmap=False + a with-block: no file handle outlives the read
    return fits.open(path, memmap=False)


def table_columns(info) -> list[str]:
    """Lower-case column names of a table HDU, from its header alone."""
    h = info.kw
    n = int(h.get("TFIELDS", 0))
    return [str(h.get(f"TTYPE{i}", "")).strip().lower() for i in range(1, n + 1)]


def text_or_none(value) -> str | None:
    """Stripped string, None when empty or missing."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = str(value).strip()
    return text or None


def float_or_none(value) -> float | None:
    """A finite float, None when missing, unparseable, NaN or inf."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


#: Header keywords that carry a spectrum's redshift, in order of preference (IRAF, ESO and survey products).
REDSHIFT_KEYWORDS = ("Z", "REDSHIFT")


def header_redshift(*headers) -> float | None:
    """The first finite :data:`REDSHIFT_KEYWORDS` value of the headers, in the order given (None-s skipped)."""
    for h in headers:
        if h is None:
            continue
        for key in REDSHIFT_KEYWORDS:
            z = float_or_none(h.get(key))
            if z is not None:
                return z
    return None


_TFORM_RE = re.compile(r"^\s*(\d*)([A-Z])")
_TFORM_NP = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S"}


def fast_table(probe: Probe, index: int):
    """Structured array of a BINTABLE read straight from the file, or None if a column needs astropy.

    Creating astropy's ColDefs for the 126-236 column SPECOBJ/SPALL tables costs ~30 ms per file, 30x the rest of
    the read; a one-row table is a few hundred bytes at a known offset (from the header scan). Handles fixed-width
    columns (L B I J K E D A with repeat counts, TSCAL/TZERO); anything else (bits, complex, variable-length arrays,
    heap) returns None and the caller uses astropy.
    """
    layout = probe.fits_layout
    if layout is None:
        return None
    h = layout.hdus[index].kw
    if str(h.get("XTENSION", "")).strip().upper() != "BINTABLE" or int(h.get("PCOUNT", 0)) != 0:
        return None
    nfields, rowlen, nrows = int(h["TFIELDS"]), int(h["NAXIS1"]), int(h["NAXIS2"])
    names, formats, offsets, scales = [], [], [], {}
    logical: set[str] = set()
    offset = 0
    for i in range(1, nfields + 1):
        m = _TFORM_RE.match(str(h.get(f"TFORM{i}", "")))
        if not m or m.group(2) not in _TFORM_NP:
            return None
        rep, code = int(m.group(1) or 1), m.group(2)
        name = str(h.get(f"TTYPE{i}", f"col{i}")).strip()
        shape = (rep,)
        tdim = h.get(f"TDIM{i}")
        if isinstance(tdim, str) and code != "A":
            try:
                dims = tuple(int(d) for d in tdim.strip().strip("()").split(","))[::-1]  # FITS order -> numpy
                if math.prod(dims) == rep:
                    shape = dims
            except ValueError:
                return None
        if code == "A":
            fmt = f"S{max(rep, 1)}"
        elif code == "L":
            fmt = ("S1", shape) if rep > 1 else "S1"
        else:
            fmt = (_TFORM_NP[code], shape) if rep > 1 else _TFORM_NP[code]
        size = rep if code in "AL" else np.dtype(_TFORM_NP[code]).itemsize * rep
        if rep > 0:
            if code == "L":
                logical.add(name)
            names.append(name)
            formats.append(fmt)
            offsets.append(offset)
            if code in "BIJKED" and (f"TSCAL{i}" in h or f"TZERO{i}" in h):
                scales[name] = (float(h.get(f"TSCAL{i}", 1.0)), h.get(f"TZERO{i}", 0), code)
        offset += size
    if offset != rowlen or len({n.upper() for n in names}) != len(names):
        return None
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": rowlen})
    with open(probe.path, "rb") as f:
        f.seek(layout.data_offsets[index])
        raw = f.read(rowlen * nrows)
    rec = np.frombuffer(raw, dtype=dtype, count=nrows)
    out = {}
    for name in names:
        col = rec[name]
        kind = dtype.fields[name][0]
        if name in logical:
            col = col == b"T"
        elif kind.base.kind == "S":
            col = np.char.strip(np.char.decode(np.char.rstrip(col, b"\x00"), "ascii", "replace"))
        elif name in scales:
            tscal, tzero, code = scales[name]
            if code == "K" and tscal == 1.0 and int(tzero) == 2**63:
                col = (col.astype(">i8").view(">u8") ^ np.uint64(2**63)).astype(np.uint64)
            elif code == "B" and tscal == 1.0 and int(tzero) == -128:
                col = (col.astype(np.int16) - 128).astype(np.int8)
            elif tscal == 1.0 and float(tzero).is_integer() and code in "IJK":
                col = col.astype(np.int64) + int(tzero)
            else:
                col = col * tscal + float(tzero)
        else:
            col = col.astype(col.dtype.newbyteorder("="))
        out[name] = np.array(col)
    return out


def primary_2d(probe: Probe):
    """HDUInfo of the primary HDU if it is a 2-D image, else None."""
    summary = probe.fits_summary
    if not summary or summary[0].kind != "image" or len(summary[0].shape) != 2:
        return None
    return summary[0]


def read_primary(path) -> tuple[np.ndarray, object]:
    """``(data as float64, header copy)`` of the primary HDU."""
    with fits_open(path) as hdul:
        return np.array(hdul[0].data, dtype=np.float64), hdul[0].header.copy()


# ------------------------------------------------------------------------------------------------------------------
# errors and wavelength grids
# ------------------------------------------------------------------------------------------------------------------
def ivar_from_sigma(sigma: np.ndarray) -> np.ndarray:
    """``1 / sigma**2`` where sigma is finite and positive, else 0."""
    sigma = np.asarray(sigma, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(sigma) & (sigma > 0), 1.0 / sigma**2, 0.0)


def ivar_from_var(var: np.ndarray) -> np.ndarray:
    """``1 / var`` where var is finite and positive, else 0."""
    var = np.asarray(var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(var) & (var > 0), 1.0 / var, 0.0)


def loglinear_wavelength(header, n: int) -> np.ndarray:
    """``10**(COEFF0 + COEFF1 * i)`` in float64."""
    c0 = float(header["COEFF0"])
    c1 = float(header["COEFF1"])
    return 10.0 ** (c0 + c1 * np.arange(n, dtype=np.float64))


def wdisp_to_kms(wdisp: np.ndarray, dloglam: float = _SDSS_DLOGLAM) -> np.ndarray:
    """SDSS ``wdisp`` (Gaussian sigma in pixels of ``dloglam``) -> sigma in km/s; NaN where ``wdisp <= 0``.

    A pixel of ``dloglam`` in log10(lambda) is ``dloglam * ln(10)`` in ln(lambda), i.e. a velocity of
    ``c * dloglam * ln(10)`` (69.03 km/s for 1e-4).
    """
    wdisp = np.asarray(wdisp, dtype=np.float64)
    return np.where(wdisp > 0, wdisp * dloglam * np.log(10.0) * C_KMS, np.nan)


# ------------------------------------------------------------------------------------------------------------------
# units and WCS
# ------------------------------------------------------------------------------------------------------------------
_WAVE_UNITS = {"angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "aa": 1.0, "ang": 1.0, "nm": 10.0, "nanometer": 10.0,
               "nanometers": 10.0, "um": 1e4, "micron": 1e4, "microns": 1e4, "micrometer": 1e4, "mum": 1e4,
               "m": 1e10, "meter": 1e10, "cm": 1e8, "pixel": 1.0, "pixels": 1.0}


def wave_unit_factor(unit: str | None) -> float | None:
    """Factor to Angstrom for a unit string (None if unknown)."""
    if unit is None:
        return None
    u = str(unit).strip().lower().replace("ångström", "angstrom")
    if not u:
        return None
    if u in _WAVE_UNITS:
        return _WAVE_UNITS[u]
    try:
        from astropy import units

        return float(units.Unit(unit).to(units.AA))
    except Exception:  # noqa: BLE001 - an unparseable unit string is just unknown
        return None


def parse_flux_unit(bunit) -> str:
    """A flux unit string astropy can parse, or '' (the raw text goes to meta by the callers)."""
    if not bunit or not str(bunit).strip():
        return ""
    text = str(bunit).strip()
    from astropy import units

    for candidate in (text, text.replace("Ang", "Angstrom").replace("AA", "Angstrom")):
        for fmt in (None, "fits", "cds"):
            try:
                with suppress():
                    u = units.Unit(candidate, format=fmt)
                if isinstance(u, units.UnrecognizedUnit):
                    continue
                return u.to_string()
            except Exception:  # noqa: BLE001
                continue
    return ""


def _wat_value(header, key: str) -> str | None:
    """``key=value`` from the concatenated IRAF WAT1_nnn cards."""
    text = "".join(str(header.get(f"WAT1_{i:03d}", "")) for i in range(1, 100) if f"WAT1_{i:03d}" in header)
    for part in text.split():
        if part.lower().startswith(key + "="):
            return part.split("=", 1)[1]
    return None


def _multispec_wavelength(header, n: int) -> np.ndarray | None:
    """Wavelength from an IRAF multispec WAT2 ``spec1 = "ap beam dtype w1 dw nw z ..."`` (dtype 0 or 1)."""
    if "multispec" not in str(header.get("WAT0_001", "")).lower():
        return None
    keys = sorted(k for k in header if k.startswith("WAT2_"))
    text = "".join(str(header[k]).ljust(68) for k in keys)
    m = re.search(r'spec1\s*=\s*"([^"]*)"', text)
    if not m:
        return None
    fields = m.group(1).split()
    dtype, w1, dw, z = int(float(fields[2])), float(fields[3]), float(fields[4]), float(fields[6])
    lam = w1 + dw * np.arange(n, dtype=np.float64)
    if dtype == 1:
        lam = 10.0 ** lam
    elif dtype != 0:
        raise ValueError(f"IRAF multispec dispersion type {dtype} (non-linear) is not supported")
    return lam / (1.0 + z)


def linear_wcs_wavelength(header, n: int) -> tuple[np.ndarray, dict]:
    """Wavelength in Angstrom of ``n`` pixels from a 1-D spectral WCS (rules in :mod:`galdesk.io.formats.wcs1d`).

    Returns
    -------
    wavelength : ndarray, float64
    info : dict
        ``{"log": "none"|"log10"|"paper3", "unit_factor": float, "multispec": bool}``
    """
    ms = _multispec_wavelength(header, n)
    unit_text = header.get("CUNIT1") or _wat_value(header, "units")
    factor = wave_unit_factor(unit_text) or 1.0
    if ms is not None:
        return ms * factor, {"log": "multispec", "unit_factor": factor, "multispec": True}
    if "CRVAL1" not in header:
        raise ValueError("no wavelength WCS (CRVAL1 missing)")
    crval = float(header["CRVAL1"])
    step = header.get("CDELT1", header.get("CD1_1"))
    if step is None:
        raise ValueError("no wavelength step (CDELT1 / CD1_1 missing)")
    step = float(step)
    crpix = float(header.get("CRPIX1", 1.0))
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    offset = (np.arange(n, dtype=np.float64) + 1.0 - crpix) * step
    dcflag = header.get("DC-FLAG")
    if dcflag is not None and int(dcflag) == 1:
        return 10.0 ** (crval + offset) * factor, {"log": "log10", "unit_factor": factor, "multispec": False}
    if ctype.endswith("-LOG") and crval > 5:
        return crval * np.exp(offset / crval) * factor, {"log": "paper3", "unit_factor": factor, "multispec": False}
    if "LOG" in ctype and crval < 5:
        return 10.0 ** (crval + offset) * factor, {"log": "log10", "unit_factor": factor, "multispec": False}
    return (crval + offset) * factor, {"log": "none", "unit_factor": factor, "multispec": False}
