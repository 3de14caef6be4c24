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

``6dfgs`` (priority 20) -- 6dF Galaxy Survey ``*.fits`` (primary image ``(4, N)``, keywords ``Z_HELIO``/``Q_FINAL``)
    Rows: 0 spectrum (counts, *not* flux-calibrated: ``flux_unit = "count"``), 1 variance (``ivar = 1/var``, 0
    where ``var <= 0``), 2 sky (-> ``meta["sky"]``), 3 wavelength (Angstrom, **air**). The row-3 wavelengths are
    used, not the header WCS: the files were passed through IRAF ``dopcor`` (``DOPCOR01 = Z_HELIO``), so the WCS
    (CRVAL1/CDELT1) is the *rest* frame while row 3 is the observed frame (row 3 = WCS * (1 + Z_HELIO)).
    ``redshift = Z_HELIO`` (so ``rest_wavelength()`` reproduces the WCS); raw ``Z``, ``QUALITY``/``Q_FINAL`` in
    ``meta``. Id: ``TARGET`` (the name without the ``.ir`` frame suffix), else the stem.

``lamost`` (priority 20) -- LAMOST DR1-style spectra (``TELESCOP = 'LAMOST'``, primary image ``(5, 3904)``)
    Rows named by ``EXTEN0``. These DR1 files say ``'Flux Inverse Subcontinuum Andmask Ormask'``: row 0 flux
    (relative flux calibration: ``flux_unit = ""``, ``meta["flux_calibration"] = "relative"``), row 1 inverse
    variance, row 2 the continuum-normalised flux (-> ``meta["subcontinuum"]``), rows 3/4 and/or masks. Other
    releases write ``Wavelength`` as row 2; when ``EXTEN0`` names it, that row is used, else the wavelength is
    ``10**(COEFF0 + COEFF1 * i)``. Vacuum per ``VACUUM`` (T for LAMOST). ``mask`` includes ``andmask != 0`` (all
    LAMOST and-mask bits flag bad pixels: bad CCD, bad profile, no sky, bright sky, bad centre, no data).
    ``CLASS``/``SUBCLASS``/``Z``/``Z_ERR`` from the header; ``RA``/``DEC`` -> meta.

``desi-coadd`` (priority 20) -- DESI ``coadd-*.fits``/``spectra-*.fits`` (``B_/R_/Z_WAVELENGTH``, ``_FLUX``,
    ``_IVAR``, ``_MASK``, ``FIBERMAP``, optional ``REDSHIFTS``)
    One spectrum per FIBERMAP row (``id = str(TARGETID)``). The arms are combined on the union of their wavelength
    grids: DESI arms share one 0.8 Angstrom grid, so overlapping pixels coincide (matched to 1e-3 Angstrom) and
    are combined as the inverse-variance weighted mean (ivar summed); pixels with ``MASK != 0`` get ivar 0 before
    combining. If the grids do not coincide, each overlap is cut at its midpoint instead. Vacuum, flux in
    ``1e-17 erg / (s cm2 Angstrom)``. ``Z``/``ZERR``/``SPECTYPE``/``SUBTYPE`` from ``REDSHIFTS`` (matched by
    TARGETID); ``TARGET_RA``/``TARGET_DEC`` -> meta.

``eso-sdp`` (priority 15) -- ESO Phase 3 1-D spectra: a one-row BINTABLE with array columns ``WAVE`` and
    ``FLUX`` (or ``FLUX_REDUCED``), optional ``ERR`` (``ERR_REDUCED``) and ``QUAL`` (``!= 0`` masked).
    Wavelength unit from ``TUNIT`` (``nm`` -> x10, ``um`` -> x1e4, ``m``, ``Angstrom``). Air/vacuum from the
    ESO SDP convention: ``TUCD`` of WAVE ``em.wl;obs.atmos`` means air, ``em.wl`` vacuum; without a TUCD, air
    (ESO pipelines calibrate in air).

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
    (``meta["bunit"]`` always). ``Z``/``REDSHIFT`` keywords when present.

``text`` (priority 5) -- whitespace or comma separated columns ``wavelength flux [error]``, ``#`` comments
    A comment line (or a first non-numeric line) with as many names as columns names them: wavelength from
    ``wave/wavelength/lambda/lam/wl`` (``loglam`` -> 10**), flux from ``flux/f/fnu/flam``, errors from
    ``err/error/sigma/unc/noise`` (or ``ivar``, ``var``); without names: columns 0, 1, 2. A units line such as
    ``# angstroms ...`` or ``nm``/``micron`` converts the wavelength. ``ivar = 1/err**2`` where ``err > 0``, else
    0. If there is no error column or every error is 0, ``ivar`` is 0 everywhere and ``meta["no_errors"] = True``:
    the mask then does *not* include ``ivar == 0`` (that would hide the whole spectrum) and fitters must weight
    uniformly. Air unless a comment says vacuum (``meta["vacuum_assumed"]``). Other columns -> ``meta["columns"]``.

All readers: all-NaN flux or zero length -> ReadError (enforced centrally by
:func:`galdesk.io.reading.check_spectrum`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.units import C_KMS, SDSS_FLUX_UNIT
from galdesk.warncap import suppress

__all__ = [
    "read_sdss_spec",
    "read_sdss_spspec",
    "read_6dfgs",
    "read_lamost",
    "read_desi_coadd",
    "read_eso_sdp",
    "read_fits_1d",
    "read_text_spectrum",
    "wdisp_to_kms",
    "linear_wcs_wavelength",
]

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
    h = info.kw
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


_TFORM_RE = re.compile(r"^\s*(\d*)([A-Z])")
_TFORM_NP = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S"}


def _fast_table(probe: Probe, index: int):
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
    tables = probe.table_hdus()
    coadd_index = next(i for i, info in tables if {"loglam", "flux", "ivar"} <= set(_columns(info)))
    # only the HDUs we need are touched: BOSS files carry one HDU per exposure after these
    specobj_index = next((i for i, info in tables if info.name in ("SPECOBJ", "SPALL")), None)
    spzline_index = next((i for i, info in tables if info.name == "SPZLINE"), None)
    meta: dict = {}
    with _fits_open(path) as hdul:
        primary = hdul[0].header.copy()
        data = hdul[coadd_index].data
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
        wdisp = _col(data, names, "wdisp")
        specobj = spzline = None
        if specobj_index is not None:
            specobj = _fast_table(probe, specobj_index)
            if specobj is None:
                rec = hdul[specobj_index].data
                specobj = {n: np.array(rec[n]) for n in rec.columns.names}
        if spzline_index is not None:
            fast = _fast_table(probe, spzline_index)
            if fast is not None:
                from astropy.table import Table

                spzline = Table(fast)
            else:
                spzline = _table(hdul[spzline_index])
    wave = 10.0 ** loglam  # float64 from the float32 loglam column
    resolution = wdisp_to_kms(wdisp) if wdisp is not None and (wdisp > 0).any() else None

    redshift = redshift_err = None
    spec_class = subclass = None
    if specobj is not None and all(len(v) > 0 for v in specobj.values()):
        cols = {n.upper(): n for n in specobj}

        def get(key):
            return specobj[cols[key]][0] if key in cols else None

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
    if spzline is not None:
        meta["spzline"] = spzline

    for key, hkey in (("ra", "PLUG_RA"), ("dec", "PLUG_DEC")):
        v = _float(primary.get(hkey))
        if v is None:
            v = _float(primary.get("RA" if key == "ra" else "DEC"))
        meta[key] = v
    for key, hkey in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID")):
        if key not in meta and hkey in primary:
            meta[key] = primary[hkey]
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


register_reader("sdss-spec", "spectrum", _is_sdss_spec, read_sdss_spec, priority=20)


# ------------------------------------------------------------------------------------------------------------------
# shared pieces for image-based spectra
# ------------------------------------------------------------------------------------------------------------------
def _primary_2d(probe: Probe):
    """HDUInfo of the primary HDU if it is a 2-D image, else None."""
    summary = probe.fits_summary
    if not summary or summary[0].kind != "image" or len(summary[0].shape) != 2:
        return None
    return summary[0]


def _ivar_from_sigma(sigma: np.ndarray) -> np.ndarray:
    sigma = np.asarray(sigma, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(sigma) & (sigma > 0), 1.0 / sigma**2, 0.0)


def _ivar_from_var(var: np.ndarray) -> np.ndarray:
    var = np.asarray(var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(var) & (var > 0), 1.0 / var, 0.0)


def _loglinear(header, n: int) -> np.ndarray:
    """``10**(COEFF0 + COEFF1 * i)`` in float64."""
    c0 = float(header["COEFF0"])
    c1 = float(header["COEFF1"])
    return 10.0 ** (c0 + c1 * np.arange(n, dtype=np.float64))


def _read_primary(path) -> tuple[np.ndarray, object]:
    with _fits_open(path) as hdul:
        return np.array(hdul[0].data, dtype=np.float64), hdul[0].header.copy()


# ------------------------------------------------------------------------------------------------------------------
# old SDSS spSpec
# ------------------------------------------------------------------------------------------------------------------
_SPEC_CLN = {0: "UNKNOWN", 1: "STAR", 2: "GALAXY", 3: "QSO", 4: "HIZ_QSO", 5: "SKY", 6: "STAR_LATE", 7: "GAL_EM"}


def _is_sdss_spspec(probe: Probe) -> bool:
    info = _primary_2d(probe)
    if info is None:
        return False
    h = info.kw
    if not 4 <= info.shape[0] <= 5 or "COEFF0" not in h or "COEFF1" not in h:
        return False
    return str(h.get("ARRAY1", "")).strip().upper() == "SPECTRUM" or "SDSS" in str(h.get("TELESCOP", "")).upper()


def read_sdss_spspec(probe: Probe) -> list[SpectrumData]:
    """Read an old SDSS spSpec file (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = _read_primary(path)
    n = data.shape[1]
    wave = _loglinear(h, n)
    flux = data[0]
    ivar = _ivar_from_sigma(data[2])
    meta: dict = {"continuum_subtracted": data[1], "pixel_mask": data[3].astype(np.int64)}
    if data.shape[0] > 4:
        meta["row4"] = data[4]
    cln = h.get("SPEC_CLN")
    spec_class = _SPEC_CLN.get(int(cln)) if isinstance(cln, (int, np.integer)) else None
    meta["spec_cln"] = cln
    for key, hkey in (("ra", "RAOBJ"), ("dec", "DECOBJ")):
        meta[key] = _float(h.get(hkey))
    for key, hkey in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID"), ("z_status", "Z_STATUS"),
                      ("z_warning", "Z_WARNIN"), ("objtype", "OBJTYPE")):
        if hkey in h:
            meta[key] = h[hkey]
    meta["bunit"] = str(h.get("BUNIT", "")).strip()
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path), id=path.stem,
                         vacuum=bool(h.get("VACUUM", True)), flux_unit=SDSS_FLUX_UNIT,
                         redshift=_float(h.get("Z")), redshift_err=_float(h.get("Z_ERR")), spec_class=spec_class,
                         header=h, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# 6dFGS
# ------------------------------------------------------------------------------------------------------------------
def _is_6dfgs(probe: Probe) -> bool:
    info = _primary_2d(probe)
    if info is None or info.shape[0] != 4:
        return False
    h = info.kw
    return "Z_HELIO" in h or "Q_FINAL" in h


def read_6dfgs(probe: Probe) -> list[SpectrumData]:
    """Read a 6dFGS spectrum (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = _read_primary(path)
    wave = data[3]
    flux = data[0]
    ivar = _ivar_from_var(data[1])
    z_helio = _float(h.get("Z_HELIO"))
    meta: dict = {"sky": data[2], "z_raw": _float(h.get("Z")), "quality": h.get("QUALITY"),
                  "q_final": h.get("Q_FINAL"), "ra": _float(h.get("OBSRA")), "dec": _float(h.get("OBSDEC"))}
    if "DOPCOR01" in h:
        meta["dopcor"] = str(h["DOPCOR01"]).strip()
    ident = _str(h.get("TARGET")) or _str(h.get("NAME_V")) or path.stem
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path), id=ident,
                         vacuum=False, flux_unit="count", redshift=z_helio if z_helio is not None else _float(h.get("Z")),
                         header=h, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# LAMOST
# ------------------------------------------------------------------------------------------------------------------
def _is_lamost(probe: Probe) -> bool:
    info = _primary_2d(probe)
    if info is None:
        return False
    h = info.kw
    return "LAMOST" in str(h.get("TELESCOP", "")).upper() and 3 <= info.shape[0] <= 6


def read_lamost(probe: Probe) -> list[SpectrumData]:
    """Read a LAMOST spectrum (rows and decisions in the module docstring)."""
    path = probe.path
    data, h = _read_primary(path)
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
            wave = _loglinear(h, n)
        else:
            wave = linear_wcs_wavelength(h, n)[0]
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    meta: dict = {"flux_calibration": "relative", "ra": _float(h.get("RA")), "dec": _float(h.get("DEC"))}
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
                         vacuum=bool(h.get("VACUUM", True)), flux_unit="", redshift=_float(h.get("Z")),
                         redshift_err=_float(h.get("Z_ERR")), spec_class=_str(h.get("CLASS")),
                         subclass=_str(h.get("SUBCLASS")), header=h, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# DESI coadd / spectra files
# ------------------------------------------------------------------------------------------------------------------
_DESI_ARMS = ("B", "R", "Z")


def _is_desi(probe: Probe) -> bool:
    if not probe.is_fits:
        return False
    names = {info.name for info in probe.fits_summary}
    return "FIBERMAP" in names and any({f"{a}_WAVELENGTH", f"{a}_FLUX"} <= names for a in _DESI_ARMS)


def _combine_arms(arms: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tol: float = 1e-3):
    """Combine ``(wave, flux, ivar)`` arms onto one increasing grid.

    Coinciding pixels (within ``tol`` Angstrom) are ivar-weighted means (ivar summed); where every contribution
    has ivar 0 the plain mean is kept with ivar 0. Returns ``(wave, flux, ivar, aligned)``; when the arms' grids
    do not coincide in their overlaps, each overlap is cut at its midpoint instead (``aligned = False``).
    """
    arms = sorted(arms, key=lambda a: a[0][0])
    aligned = True
    for (w1, _, _), (w2, _, _) in zip(arms, arms[1:]):
        lo, hi = w2[0], w1[-1]
        if hi < lo:
            continue
        a = w1[(w1 >= lo - tol) & (w1 <= hi + tol)]
        b = w2[(w2 >= lo - tol) & (w2 <= hi + tol)]
        if a.size != b.size or (a.size and np.max(np.abs(a - b)) > tol):
            aligned = False
    if aligned:
        allw = np.concatenate([a[0] for a in arms])
        keys = np.round(allw / tol).astype(np.int64)
        uniq, first = np.unique(keys, return_index=True)
        grid = allw[first]
        num = np.zeros(grid.size)
        den = np.zeros(grid.size)
        plain = np.zeros(grid.size)
        count = np.zeros(grid.size)
        for w, f, iv in arms:
            idx = np.searchsorted(uniq, np.round(w / tol).astype(np.int64))
            good = iv > 0
            np.add.at(num, idx[good], f[good] * iv[good])
            np.add.at(den, idx[good], iv[good])
            fin = np.isfinite(f)
            np.add.at(plain, idx[fin], f[fin])
            np.add.at(count, idx[fin], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            flux = np.where(den > 0, num / np.where(den > 0, den, 1), np.where(count > 0, plain / np.maximum(count, 1),
                                                                                 np.nan))
        return grid, flux, den, True
    pieces = []
    for k, (w, f, iv) in enumerate(arms):
        keep = np.ones(w.size, bool)
        if k > 0 and arms[k - 1][0][-1] >= w[0]:
            keep &= w > 0.5 * (w[0] + arms[k - 1][0][-1])
        if k + 1 < len(arms) and arms[k + 1][0][0] <= w[-1]:
            keep &= w <= 0.5 * (arms[k + 1][0][0] + w[-1])
        pieces.append((w[keep], f[keep], iv[keep]))
    return (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]),
            np.concatenate([p[2] for p in pieces]), False)


def read_desi_coadd(probe: Probe) -> list[SpectrumData]:
    """Read a DESI coadd/spectra file: one spectrum per target (rules in the module docstring)."""
    path = probe.path
    with _fits_open(path) as hdul:
        names = {hdu.name.upper(): i for i, hdu in enumerate(hdul)}
        fibermap = hdul[names["FIBERMAP"]].data
        fm_cols = {c.upper(): c for c in fibermap.columns.names}
        targetids = np.array(fibermap[fm_cols["TARGETID"]]).astype(np.int64)
        ntarget = targetids.size
        ra = np.array(fibermap[fm_cols["TARGET_RA"]], dtype=float) if "TARGET_RA" in fm_cols else None
        dec = np.array(fibermap[fm_cols["TARGET_DEC"]], dtype=float) if "TARGET_DEC" in fm_cols else None
        arms = {}
        for a in _DESI_ARMS:
            if f"{a}_WAVELENGTH" not in names or f"{a}_FLUX" not in names:
                continue
            w = np.array(hdul[names[f"{a}_WAVELENGTH"]].data, dtype=np.float64).ravel()
            f = np.array(hdul[names[f"{a}_FLUX"]].data, dtype=np.float64).reshape(ntarget, -1)
            iv = (np.array(hdul[names[f"{a}_IVAR"]].data, dtype=np.float64).reshape(ntarget, -1)
                  if f"{a}_IVAR" in names else np.zeros_like(f))
            m = (np.array(hdul[names[f"{a}_MASK"]].data).reshape(ntarget, -1) != 0
                 if f"{a}_MASK" in names else np.zeros(f.shape, bool))
            if f.shape[1] != w.size:
                raise ValueError(f"{a}_FLUX has {f.shape[1]} pixels but {a}_WAVELENGTH has {w.size}")
            arms[a] = (w, f, np.where(m, 0.0, iv))
        if not arms:
            raise ValueError("no DESI arm has both WAVELENGTH and FLUX")
        redshifts: dict[int, dict] = {}
        if "REDSHIFTS" in names:
            z = hdul[names["REDSHIFTS"]].data
            zc = {c.upper(): c for c in z.columns.names}
            for k in range(len(z)):
                tid = int(z[zc["TARGETID"]][k])
                redshifts[tid] = {key: z[zc[key]][k] for key in ("Z", "ZERR", "ZWARN", "SPECTYPE", "SUBTYPE")
                                  if key in zc}
        primary = hdul[0].header.copy()
    out = []
    for t in range(ntarget):
        wave, flux, ivar, aligned = _combine_arms([(w, f[t], iv[t]) for w, f, iv in arms.values()])
        tid = int(targetids[t])
        zinfo = redshifts.get(tid, {})
        meta = {"targetid": tid, "arms": list(arms), "arms_aligned": aligned}
        if ra is not None:
            meta["ra"], meta["dec"] = float(ra[t]), float(dec[t])
        if "ZWARN" in zinfo:
            meta["zwarn"] = int(zinfo["ZWARN"])
        out.append(SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path),
                                id=str(tid), vacuum=True, flux_unit=SDSS_FLUX_UNIT,
                                redshift=_float(zinfo.get("Z")), redshift_err=_float(zinfo.get("ZERR")),
                                spec_class=_str(zinfo.get("SPECTYPE")), subclass=_str(zinfo.get("SUBTYPE")),
                                header=primary, meta=meta))
    return out


# ------------------------------------------------------------------------------------------------------------------
# units and WCS helpers
# ------------------------------------------------------------------------------------------------------------------
_WAVE_UNITS = {"angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "aa": 1.0, "ang": 1.0, "nm": 10.0, "nanometer": 10.0,
               "nanometers": 10.0, "um": 1e4, "micron": 1e4, "microns": 1e4, "micrometer": 1e4, "mum": 1e4,
               "m": 1e10, "meter": 1e10, "cm": 1e8, "pixel": 1.0, "pixels": 1.0}


def _wave_factor(unit: str | None) -> float | None:
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


def _flux_unit(bunit) -> str:
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
    """Wavelength in Angstrom of ``n`` pixels from a 1-D spectral WCS (rules in the module docstring).

    Returns
    -------
    wavelength : ndarray, float64
    info : dict
        ``{"log": "none"|"log10"|"paper3", "unit_factor": float, "multispec": bool}``
    """
    ms = _multispec_wavelength(header, n)
    unit_text = header.get("CUNIT1") or _wat_value(header, "units")
    factor = _wave_factor(unit_text) or 1.0
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


# ------------------------------------------------------------------------------------------------------------------
# ESO Phase 3 (SDP) 1-D spectra
# ------------------------------------------------------------------------------------------------------------------
def _eso_columns(info) -> dict[str, int] | None:
    if info.kind != "table" or int(info.kw.get("NAXIS2", 0)) != 1:
        return None
    cols = {name.upper(): i + 1 for i, name in enumerate(_columns(info))}
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
    with _fits_open(path) as hdul:
        row = hdul[index].data[0]
        primary = hdul[0].header.copy()
        table_names = {n.upper(): n for n in hdul[index].data.columns.names}
        wave = np.array(row[table_names[wname]], dtype=np.float64).ravel()
        flux = np.array(row[table_names[fname]], dtype=np.float64).ravel()
        err = np.array(row[table_names[ename]], dtype=np.float64).ravel() if ename else None
        qual = np.array(row[table_names[qname]]).ravel() if qname else None
    wunit = h.get(f"TUNIT{wi}")
    factor = _wave_factor(wunit)
    if factor is None:
        factor = 1.0
    wave = wave * factor
    ucd = str(h.get(f"TUCD{wi}", "")).strip().lower()
    vacuum = False if (not ucd or "obs.atmos" in ucd) else True
    ivar = _ivar_from_sigma(err) if err is not None else np.zeros_like(flux)
    mask = ~(ivar > 0)
    meta: dict = {"wave_unit": wunit, "vacuum_assumed": not ucd, "object": _str(primary.get("OBJECT"))}
    if qual is not None:
        meta["qual"] = qual
        mask |= qual != 0
    if err is None:
        meta["no_errors"] = True
        mask = qual != 0 if qual is not None else np.zeros(flux.size, bool)
    funit_text = h.get(f"TUNIT{fi}")
    meta["flux_unit_text"] = funit_text
    z = _float(primary.get("REDSHIFT", primary.get("Z")))
    for key in ("RA", "DEC"):
        meta[key.lower()] = _float(primary.get(key))
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit=_flux_unit(funit_text), redshift=z, header=primary, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# generic 1-D FITS with a wavelength WCS
# ------------------------------------------------------------------------------------------------------------------
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
    with _fits_open(path) as hdul:
        data = np.array(hdul[index].data, dtype=np.float64)
        h = hdul[index].header.copy()
    n = data.shape[-1]
    rows = data.reshape(-1, n)
    wave, winfo = linear_wcs_wavelength(h, n)
    flux = rows[0]
    roles = _row_roles(h, rows.shape[0])
    meta: dict = {"wcs": winfo, "bunit": _str(h.get("BUNIT")), "hdu": index}
    if "sigma" in roles:
        ivar = _ivar_from_sigma(rows[roles["sigma"]])
    elif "var" in roles:
        ivar = _ivar_from_var(rows[roles["var"]])
    else:
        ivar = np.zeros(n)
        meta["no_errors"] = True
    if rows.shape[0] > 1:
        meta["other_rows"] = rows[1:]
    vac = _vacuum_from_header(h)
    meta["vacuum_assumed"] = vac is None
    z = _float(h.get("Z", h.get("REDSHIFT")))
    mask = ~np.isfinite(flux) if meta.get("no_errors") else ~(ivar > 0)
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=bool(vac) if vac is not None else False, flux_unit=_flux_unit(h.get("BUNIT")),
                         redshift=z, header=h, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# text spectra
# ------------------------------------------------------------------------------------------------------------------
_TEXT_SUFFIXES = {".txt", ".dat", ".csv", ".tsv", ".asc", ".ascii", ".spec", ".tab", ""}
_WAVE_NAMES = ("wavelength", "wave", "lambda", "lam", "wl", "wav", "loglam", "angstrom", "angstroms")
_FLUX_NAMES = ("flux", "f", "flam", "f_lambda", "fnu", "fluxes", "spec", "spectrum", "counts")
_ERR_NAMES = ("err", "error", "errors", "sigma", "unc", "uncertainty", "noise", "flux_err", "fluxerr", "e_flux",
              "dflux")
_NUM_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$|^[+-]?(?:nan|inf)$", re.IGNORECASE)


def _split(line: str, comma: bool) -> list[str]:
    return [t.strip() for t in line.split(",")] if comma else line.split()


def _text_layout(text: str):
    """``(comma, names or None, header_lines, comment_lines)`` if ``text`` looks like a numeric table, else None."""
    lines = text.splitlines()
    comments: list[str] = []
    names = None
    header_lines = 0
    data_lines: list[str] = []
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        if s.startswith(("#", "%", ";", "!")):
            comments.append(s.lstrip("#%;! ").strip())
            continue
        data_lines.append(s)
        if len(data_lines) >= 4:
            break
    if not data_lines:
        return None
    comma = "," in data_lines[-1]
    first = _split(data_lines[0], comma)
    if not all(_NUM_RE.match(t) for t in first):
        names = [t.strip().strip('"').strip("'").lower() for t in first]
        header_lines = 1
        data_lines = data_lines[1:]
        if not data_lines:
            return None
    for d in data_lines[:-1] if len(data_lines) > 1 else data_lines:  # the last one may be cut by the 2880 head
        toks = _split(d, comma)
        if len(toks) < 2 or not all(_NUM_RE.match(t) for t in toks):
            return None
    ncol = len(_split(data_lines[0], comma))
    if names is None:
        for c in comments:
            toks = [t.lower() for t in (c.split(",") if comma else c.split())]
            if len(toks) == ncol and any(t in _WAVE_NAMES for t in toks):
                names = [t.strip() for t in toks]
                break
    if names is not None and len(names) != ncol:
        return None
    return comma, names, header_lines, comments


def _is_text_spectrum(probe: Probe) -> bool:
    if probe.is_fits or probe.suffix not in _TEXT_SUFFIXES:
        return False
    text = probe.text_head()
    if text is None:
        return False
    layout = _text_layout(text)
    if layout is None:
        return False
    names = layout[1]
    # a header row must name a wavelength column: otherwise it is a catalogue, not a spectrum
    return names is None or any(n in _WAVE_NAMES for n in names)


def _find(names, candidates) -> int | None:
    for c in candidates:
        if c in names:
            return names.index(c)
    return None


def read_text_spectrum(probe: Probe) -> list[SpectrumData]:
    """Read a text spectrum (rules in the module docstring)."""
    path = probe.path
    text = path.read_text(encoding="utf-8", errors="replace")
    layout = _text_layout(text)
    if layout is None:
        raise ValueError("not a numeric table of wavelength, flux[, error]")
    comma, names, header_lines, comments = layout
    # all comment lines of the whole file (the head only saw the first 2880 bytes)
    comments = [ln.strip().lstrip("#%;! ").strip() for ln in text.splitlines()
                if ln.strip().startswith(("#", "%", ";", "!"))]
    rows = []
    seen_header = 0
    for ln in text.splitlines():
        s = ln.strip()
        if not s or s.startswith(("#", "%", ";", "!")):
            continue
        if seen_header < header_lines:
            seen_header += 1
            continue
        toks = _split(s, comma)
        rows.append([float(t.replace("d", "e").replace("D", "E")) for t in toks])
    if not rows:
        raise ValueError("no data rows")
    ncol = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != ncol), None)
    if bad is not None:
        raise ValueError(f"row {bad + 1} has {len(rows[bad])} columns, expected {ncol}")
    table = np.array(rows, dtype=np.float64)
    if names is None:
        names = ["wavelength", "flux", "error"][:ncol] + [f"col{i}" for i in range(3, ncol)]
        iw, jf, ke, kind = 0, 1, (2 if ncol >= 3 else None), "sigma"
    else:
        iw = _find(names, _WAVE_NAMES)
        jf = _find(names, _FLUX_NAMES)
        if iw is None:
            iw = 0
        if jf is None:
            jf = 1 if iw != 1 else 0
        ke, kind = _find(names, _ERR_NAMES), "sigma"
        if ke is None and "ivar" in names:
            ke, kind = names.index("ivar"), "ivar"
        elif ke is None and ("var" in names or "variance" in names):
            ke, kind = _find(names, ("var", "variance")), "var"
    wave = table[:, iw]
    meta: dict = {"columns": {}}
    if names[iw] == "loglam":
        wave = 10.0 ** wave
    # units: a comment line with as many tokens as columns, whose wavelength token is a known unit
    factor = None
    for c in comments:
        toks = c.split(",") if comma else c.split()
        if len(toks) == ncol:
            f = _wave_factor(toks[iw])
            if f is not None and toks[iw].strip().lower() not in ("pixel", "pixels"):
                factor = f
                meta["units_line"] = c
                break
    if factor is not None:
        wave = wave * factor
    flux = table[:, jf]
    if ke is None:
        ivar = np.zeros(flux.size)
    elif kind == "ivar":
        ivar = np.where(np.isfinite(table[:, ke]) & (table[:, ke] > 0), table[:, ke], 0.0)
    elif kind == "var":
        ivar = _ivar_from_var(table[:, ke])
    else:
        ivar = _ivar_from_sigma(table[:, ke])
    no_errors = not (ivar > 0).any()
    if no_errors:
        meta["no_errors"] = True
    for k, nme in enumerate(names):
        if k not in (iw, jf, ke):
            meta["columns"][nme] = table[:, k]
    lowered = " ".join(comments).lower()
    vacuum = ("vacuum" in lowered or re.search(r"\bvac\b", lowered) is not None) and "air" not in lowered.split()
    meta["vacuum_assumed"] = not vacuum and "air" not in lowered.split()
    meta["column_names"] = names
    mask = ~np.isfinite(flux) if no_errors else ~(ivar > 0)
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit="", header={"comments": comments}, meta=meta)]


register_reader("sdss-spspec", "spectrum", _is_sdss_spspec, read_sdss_spspec, priority=20)
register_reader("6dfgs", "spectrum", _is_6dfgs, read_6dfgs, priority=20)
register_reader("lamost", "spectrum", _is_lamost, read_lamost, priority=20)
register_reader("desi-coadd", "spectrum", _is_desi, read_desi_coadd, priority=20)
register_reader("eso-sdp", "spectrum", _is_eso_sdp, read_eso_sdp, priority=15)
register_reader("fits-1d", "spectrum", _is_fits_1d, read_fits_1d, priority=5)
register_reader("text", "spectrum", _is_text_spectrum, read_text_spectrum, priority=5)
