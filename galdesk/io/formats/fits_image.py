"""FITS images: single HDUs, band cubes, bands in extensions and stamp collections.

Every reader returns :class:`~galdesk.io.model.ImageData` with float32 pixels of shape ``(n_bands, ny, nx)``.

``fits-image`` (priority 0)
    Any FITS file with at least one image HDU that is 2-D or 3-D once leading length-1 axes are dropped (so a
    ``(1, 1, ny, nx)`` radio-style array is a 2-D image). Tables-only files (catalogues) are not claimed. What a file
    becomes, in this order:

    1. **Science + auxiliary planes**: if some HDUs are called ``SCI``/``SCIENCE``/``IMAGE``/``DATA``, only those
       are read (``ERR``, ``DQ``, ``WHT``... planes of the same exposure are not cut-outs).
    2. **One HDU**: a 2-D HDU -> one single-band image; a 3-D HDU ``(bands, ny, nx)`` -> one multi-band image whose
       band names come from ``BAND1..n``, ``FILTER1..n`` or ``FILTn`` header keywords when all n are present,
       else ``"b0", "b1", ...``.
    3. **Bands in extensions**: several 2-D HDUs that all have the *same shape* and *band-like EXTNAMEs* (single
       letters ``u g r i z y Y J H K``, HST/JWST filters ``F606W``..., ``W1``-``W4``, ``NUV``/``FUV``, optionally
       with a survey prefix like ``HSC-G`` or ``SDSS_r``) -> one multi-band image, bands named by EXTNAME. Both
       conditions are required: stamps of equal size without band names stay stamps.
    4. **Stamp collection** otherwise: one image per 2-D/3-D HDU, ``id = "{stem}[{hdu}]"`` and ``hdu`` set (e.g.
       the GalSim AEGIS files: one galaxy per HDU, all of different shapes).

    Tile-compressed images (``.fits.fz``, ``ZIMAGE = T``) count as image HDUs (astropy decompresses them; the
    size guard uses the decompressed size). Single-HDU images have ``id = stem`` (``.fits``/``.fits.fz`` removed).
    The band name of a single plane comes from ``FILTER``, ``BAND``, ``FILTNAM``, ``FILTER1``/``FILTER2`` (skipping
    ``CLEAR*``) or a filter token in the file name (``F814W``), else ``""``. WCS: ``astropy.wcs.WCS(header,
    naxis=2)`` when it has a celestial part, else None; a WCS that cannot be built never fails the read (None,
    message in ``meta["wcs_warning"]``). Integer images with ``BLANK`` get NaN there. ``meta``: ``bunit``,
    ``pixel_scale_arcsec`` (from the WCS), ``extname``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from galdesk.io.fitshead import HDUInfo
from galdesk.io.formats.common import fits_open
from galdesk.io.model import ImageData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.io.wcscore import centre_and_scale
from galdesk.warncap import capture

__all__ = ["read_fits_image", "is_band_name", "band_from_header", "celestial_wcs"]

_SCIENCE_NAMES = {"SCI", "SCIENCE", "IMAGE", "DATA"}
_BAND_RE = re.compile(
    r"^(?:(?:SDSS|HSC|DES|DECAM|LS|PS1|PS|MEGACAM|CFHT|KIDS|LSST|RUBIN|UKIDSS|VISTA|2MASS|WISE|GALEX|BAND|FILTER)"
    r"[-_ ]?)?"
    r"(?:[UGRIZY]|[JHK]S?|W[1-4]|NUV|FUV|F\d{3,4}[WMNLPX]{1,2}|[UGRIZY]['P]?)"
    r"(?:[-_ ]?BAND)?$",
    re.IGNORECASE,
)
_FILTER_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9])F\d{3,4}[WMN](?![A-Za-z0-9])", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------------------------
# FITS helpers
# ------------------------------------------------------------------------------------------------------------------
def is_band_name(name: str) -> bool:
    """True for EXTNAMEs that look like a band or filter (``g``, ``R``, ``HSC-I``, ``F814W``, ``W1``...)."""
    return bool(name) and bool(_BAND_RE.match(name.strip()))


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop leading length-1 axes (keep at least 2)."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _usable(info: HDUInfo) -> bool:
    return info.kind == "image" and len(_squeezed(info.shape)) in (2, 3) and all(n > 0 for n in info.shape)


def band_from_header(header, path: Path | None = None) -> str:
    """Band/filter of a single-plane image from FILTER/BAND/FILTNAM/FILTER1-2 keywords or the file name; else ''."""
    for key in ("FILTER", "BAND", "FILTNAM", "FILTNAM1"):
        v = header.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
    for key in ("FILTER1", "FILTER2", "FILTER3"):
        v = header.get(key)
        if isinstance(v, str) and v.strip() and not v.strip().upper().startswith("CLEAR"):
            return v.strip()
    if path is not None:
        m = _FILTER_TOKEN_RE.search(path.name)
        if m:
            return m.group(0).upper()
    return ""


def _cube_bands(header, n: int) -> list[str]:
    for prefix in ("BAND", "FILTER", "FILT"):
        names = [header.get(f"{prefix}{i}") for i in range(1, n + 1)]
        if all(isinstance(v, str) and v.strip() for v in names) and f"{prefix}{n + 1}" not in header:
            return [v.strip() for v in names]
    return [f"b{i}" for i in range(n)]


_WCS_KEY_RE = re.compile(
    r"^(?:WCSAXES|NAXIS\d*|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CROTA\d|CD\d_\d|PC\d_\d|PC\d{3}\d{3}"
    r"|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|MJD-OBS|DATE-OBS|MJDREF[IF]?"
    r"|[AB]P?_\d+_\d+|[AB]P?_ORDER|[AB]_DMAX|RESTFRQ|RESTFREQ|RESTWAV|SPECSYS)$")


def _wcs_header(header):
    """Only the WCS cards: ``WCS()`` re-verifies and re-serialises every card (~25 ms for a 550-card HST header).

    Lookup-table distortions (CPDIS/D2IM), which need the file anyway, are not kept.
    """
    from astropy.io import fits

    out = fits.Header()
    for card in header.cards:
        if _WCS_KEY_RE.match(card.keyword):
            out.append(card)
    return out


def celestial_wcs(header) -> tuple[object | None, str | None]:
    """``(WCS(header, naxis=2), None)`` if the header has a celestial WCS, else ``(None, reason or None)``.

    Never raises: a broken WCS gives ``(None, message)``.
    """
    try:
        if not any(str(header.get(f"CTYPE{i}", "")).strip() for i in (1, 2)):
            return None, None
        from astropy.wcs import WCS, FITSFixedWarning

        with capture(ignore=(FITSFixedWarning,)) as caught:  # routine 'datfix'/'unitfix' notes dropped
            w = WCS(_wcs_header(header), naxis=2)
        if not w.has_celestial:
            return None, None
        msg = "; ".join(dict.fromkeys(" ".join(str(c.message).split()) for c in caught)) or None
        return w, msg
    except Exception as exc:  # noqa: BLE001 - a bad WCS never fails the read
        return None, f"WCS ignored: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _pixel_scale_arcsec(wcs) -> float | None:
    try:
        from astropy.wcs.utils import proj_plane_pixel_scales

        # the WCS is celestial already (celestial_wcs): .celestial would copy it (0.26 ms a file, 20x the scale)
        scales = proj_plane_pixel_scales(wcs if wcs.is_celestial else wcs.celestial) * 3600.0
        return float(np.mean(scales))
    except Exception:  # noqa: BLE001
        return None


def _hdu_array(hdu) -> np.ndarray:
    """float32 copy of an image HDU's data with leading length-1 axes dropped and BLANK -> NaN."""
    raw = hdu.data
    if raw is None:
        raise ValueError(f"HDU {hdu.name or ''} has no data")
    arr = np.array(raw, dtype=np.float32)  # a copy: nothing refers to the file afterwards
    blank = hdu.header.get("BLANK")
    if blank is not None and np.issubdtype(np.asarray(raw).dtype, np.integer):
        arr[np.asarray(raw) == blank] = np.nan
    arr = arr.reshape(_squeezed(arr.shape))
    return arr


def _meta(header) -> dict:
    meta: dict = {}
    if header.get("BUNIT"):
        meta["bunit"] = str(header["BUNIT"]).strip()
    if header.get("EXTNAME"):
        meta["extname"] = str(header["EXTNAME"]).strip()
    return meta


def _make_image(arr, bands, header, path: Path, ident: str, hdu_index: int | None, light: bool = False
                ) -> ImageData:
    """The ImageData of one array; ``light`` (an ingest's read): no Header or WCS object, the centre and the pixel
    scale in ``meta`` (``header`` is the HDU's :class:`~galdesk.io.fitshead.HDUInfo` or an astropy Header)."""
    if arr.ndim == 2:
        arr = arr[None]
    if light:
        raw = header.raw if isinstance(header, HDUInfo) else header.tostring()
        meta = _meta(_kw(header))
        meta.update(centre_and_scale(raw, arr.shape[-2], arr.shape[-1]))
        return ImageData(pixels=np.ascontiguousarray(arr, dtype=np.float32), bands=list(bands), source=str(path),
                         id=ident, hdu=hdu_index, rgb=False, meta=meta)
    if isinstance(header, HDUInfo):
        header = header.header
    wcs, warn = celestial_wcs(header)
    meta = _meta(header)
    if warn:
        meta["wcs_warning"] = warn
    if wcs is not None:
        scale = _pixel_scale_arcsec(wcs)
        if scale is not None:
            meta["pixel_scale_arcsec"] = scale
    return ImageData(pixels=np.ascontiguousarray(arr, dtype=np.float32), bands=list(bands), source=str(path),
                     id=ident, header=header, wcs=wcs, hdu=hdu_index, rgb=False, meta=meta)


def _kw(header):
    """What answers ``get``/``in`` for a header given as HDUInfo (its fast keywords) or an astropy Header."""
    return header.kw if isinstance(header, HDUInfo) else header


def _fitsio_ready(info: HDUInfo) -> bool:
    """An HDU that fitsio reads exactly as astropy would: uncompressed, unscaled, no BLANK."""
    kw = info.kw
    return (kw.get("ZIMAGE") is not True and kw.get("BITPIX") in (8, 16, 32, 64, -32, -64) and "BLANK" not in kw
            and kw.get("BSCALE", 1) == 1 and kw.get("BZERO", 0) == 0)


def _fitsio_arrays(probe: Probe, indices: list[int]) -> list[np.ndarray] | None:
    """float32 arrays of the HDUs ``indices`` read with fitsio (cfitsio: ~0.08 ms for a small cut-out against
    ~0.6 ms for ``astropy.io.fits.open``), or None when fitsio is not installed (Windows), an HDU needs astropy's
    handling (tile compression, BSCALE/BZERO, BLANK) or fitsio fails; the caller then reads with astropy.

    The size guard has already checked every HDU's claim (:func:`galdesk.io.fitshead.scan_fits`), so nothing is
    allocated from an unchecked header."""
    infos = probe.fits_summary
    if not all(_fitsio_ready(infos[i]) for i in indices):
        return None
    try:
        import fitsio
    except ImportError:
        return None
    try:
        with fitsio.FITS(str(probe.path)) as f:
            arrays = [np.asarray(f[i].read(), dtype=np.float32) for i in indices]
    except Exception:  # noqa: BLE001 - astropy reads it again and says what is wrong
        return None
    out = []
    for i, arr in zip(indices, arrays):
        if arr.shape != infos[i].shape:
            return None
        out.append(arr.reshape(_squeezed(arr.shape)))
    return out


# ------------------------------------------------------------------------------------------------------------------
# FITS reader
# ------------------------------------------------------------------------------------------------------------------
def _is_fits_image(probe: Probe) -> bool:
    return probe.is_fits and any(_usable(info) for info in probe.fits_summary)


def _plan(probe: Probe) -> tuple[str, list[int]]:
    """Decide how to read a FITS file: ("single" | "bands" | "stamps", HDU indices)."""
    usable = [(i, info) for i, info in enumerate(probe.fits_summary) if _usable(info)]
    if not usable:
        raise ValueError("no 2-D or 3-D image HDU")
    science = [(i, info) for i, info in usable if info.name in _SCIENCE_NAMES]
    if science:
        usable = science
    if len(usable) == 1:
        return "single", [usable[0][0]]
    shapes = {_squeezed(info.shape) for _, info in usable}
    if (len(shapes) == 1 and len(next(iter(shapes))) == 2
            and all(is_band_name(info.name) for _, info in usable)
            and len({info.name for _, info in usable}) == len(usable)):
        return "bands", [i for i, _ in usable]
    return "stamps", [i for i, _ in usable]


def read_fits_image(probe: Probe) -> list[ImageData]:
    """Read a FITS image, cube, band set or stamp collection (rules in the module docstring)."""
    mode, indices = _plan(probe)
    arrays = _fitsio_arrays(probe, indices)
    if arrays is None:
        with fits_open(probe.path) as hdul:
            arrays = [_hdu_array(hdul[i]) for i in indices]
            # astropy's header of a tile-compressed HDU is the image's, not the table's: keep it
            headers = [hdul[i].header.copy() for i in indices]
    else:
        headers = [probe.fits_summary[i] for i in indices]
    return _images(probe, mode, indices, arrays, headers)


def _images(probe: Probe, mode: str, indices: list[int], arrays: list, headers: list) -> list[ImageData]:
    """The ImageData of a file's arrays, as :func:`_plan` decided (one image of all bands, or one per HDU)."""
    path, light = probe.path, probe.light
    stem = path.name[: -len(probe.suffix)] if probe.suffix and path.name.lower().endswith(probe.suffix) else path.stem
    if mode == "bands":
        bands = [str(_kw(h).get("EXTNAME", "")).strip() for h in headers]
        img = _make_image(np.stack(arrays), bands, headers[0], path, stem, None, light)
        img.meta["band_hdus"] = list(indices)
        img.meta.pop("extname", None)
        return [img]
    out: list[ImageData] = []
    for i, arr, header in zip(indices, arrays, headers):
        bands = _cube_bands(_kw(header), arr.shape[0]) if arr.ndim == 3 else [band_from_header(_kw(header), path)]
        ident = stem if mode == "single" else f"{stem}[{i}]"
        out.append(_make_image(arr, bands, header, path, ident, None if mode == "single" and i == 0 else i, light))
    return out


register_reader("fits-image", "image", _is_fits_image, read_fits_image, priority=0)
