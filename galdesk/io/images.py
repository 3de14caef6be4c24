"""Image (cut-out) readers, registered with :mod:`galdesk.io.registry`.

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
    size guard uses the decompressed size). Single-HDU images have ``id = stem`` (``.fits``/``.fits.fz`` removed). The band name of a single plane comes from ``FILTER``, ``BAND``,
    ``FILTNAM``, ``FILTER1``/``FILTER2`` (skipping ``CLEAR*``) or a filter token in the file name (``F814W``),
    else ``""``. WCS: ``astropy.wcs.WCS(header, naxis=2)`` when it has a celestial part, else None; a WCS that
    cannot be built never fails the read (None, message in ``meta["wcs_warning"]``). Integer images with ``BLANK``
    get NaN there. ``meta``: ``bunit``, ``pixel_scale_arcsec`` (from the WCS), ``extname``.

``image-pil`` (priority 10) -- JPEG/PNG (and TIFF/BMP/GIF through PIL), recognised by magic bytes
    RGB -> 3 planes ``["r", "g", "b"]`` (0..255, ``rgb=True``), RGBA/LA -> alpha dropped, palette/CMYK -> RGB,
    greyscale -> 1 plane ``["grey"]`` (``rgb=False``), 16-bit/float modes -> 1 plane of their values. Always
    flipped vertically so row 0 is the bottom (the FITS convention). A JPEG without its end-of-image marker (or a
    PNG without IEND) is refused as truncated even if PIL was told to load truncated images elsewhere.

``hdf5-stack`` (priority 10) -- HDF5 files (``.h5``/``.hdf5`` or the HDF5 signature)
    The dataset ``images`` (any case) or else the only 3-D/4-D dataset. Layouts: ``N x H x W``;
    ``N x H x W x C`` (channels last: last axis 1..4 and H, W > 4); ``N x C x H x W`` (axis 1 is 1..4). Optional
    1-D datasets ``labels``/``label``/``ans``/``y`` -> ``meta["label"]`` and ``ids``/``id``/``objid``/``names`` ->
    ``id`` (else ``"{stem}:{i}"``). uint8 stacks with 3 channels are colour cut-outs (``rgb=True``, bands r g b),
    stored top row first like the JPEGs they come from, so they are flipped vertically too, unless the dataset has
    an attribute ``origin = "lower"``. A stack whose float32 copy would exceed
    :data:`~galdesk.io.fitshead.MAX_DATA_BYTES` is refused by ``read()``; ``galdesk ingest`` streams stacks above
    :data:`galdesk.services.ingest.STREAM_BYTES` slice by slice (:func:`iter_hdf5_stack`), whatever their size. HDF5
    files without such a stack are refused with the list of their datasets.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from galdesk.io import fitshead
from galdesk.io.fitshead import HDUInfo
from galdesk.io.messages import one_line
from galdesk.io.model import ImageData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.warncap import capture

__all__ = [
    "read_fits_image",
    "read_pil_image",
    "read_hdf5_stack",
    "is_band_name",
    "band_from_header",
    "celestial_wcs",
]

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

        scales = proj_plane_pixel_scales(wcs.celestial) * 3600.0
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


def _make_image(arr, bands, header, path: Path, ident: str, hdu_index: int | None) -> ImageData:
    if arr.ndim == 2:
        arr = arr[None]
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
    path = probe.path
    mode, indices = _plan(probe)
    stem = path.name[: -len(probe.suffix)] if probe.suffix and path.name.lower().endswith(probe.suffix) else path.stem
    out: list[ImageData] = []
    with registry_open(path) as hdul:
        if mode == "bands":
            planes, bands = [], []
            for i in indices:
                planes.append(_hdu_array(hdul[i]))
                bands.append(str(hdul[i].header.get("EXTNAME", "")).strip())
            header = hdul[indices[0]].header.copy()
            img = _make_image(np.stack(planes), bands, header, path, stem, None)
            img.meta["band_hdus"] = list(indices)
            img.meta.pop("extname", None)
            return [img]
        for i in indices:
            hdu = hdul[i]
            header = hdu.header.copy()
            arr = _hdu_array(hdu)
            if arr.ndim == 3:
                bands = _cube_bands(header, arr.shape[0])
            else:
                bands = [band_from_header(header, path)]
            ident = stem if mode == "single" else f"{stem}[{i}]"
            out.append(_make_image(arr, bands, header, path, ident, None if mode == "single" and i == 0 else i))
    return out


def registry_open(path):
    """``fits.open(path, memmap=False)``: use it in a with-block and copy what you keep."""
    from astropy.io import fits

    return fits.open(path, memmap=False)


# ------------------------------------------------------------------------------------------------------------------
# JPEG / PNG through PIL
# ------------------------------------------------------------------------------------------------------------------
_PIL_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_PIL_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff"}


def _is_pil_image(probe: Probe) -> bool:
    head = probe.head
    if head.startswith(b"BM"):  # two bytes only: insist on the suffix too
        return probe.suffix == ".bmp"
    return any(head.startswith(m) for m in _PIL_MAGIC)


def _check_complete(raw: bytes) -> None:
    """Refuse a JPEG without its end-of-image marker or a PNG without IEND (cut-off downloads)."""
    tail = raw[-4096:].rstrip(b"\x00 \r\n\t")
    if raw.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail[-4096:]:
        raise ValueError(f"truncated JPEG: no end-of-image marker ({len(raw)} bytes)")
    if raw.startswith(b"\x89PNG") and b"IEND" not in tail[-64:]:
        raise ValueError(f"truncated PNG: no IEND chunk ({len(raw)} bytes)")


def read_pil_image(probe: Probe) -> list[ImageData]:
    """Read a JPEG/PNG cut-out (rules in the module docstring)."""
    from PIL import Image

    path = probe.path
    raw = path.read_bytes()
    _check_complete(raw)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
            nbands = len(im.getbands())
            if w * h * nbands * 4 > fitshead.MAX_DATA_BYTES:  # float32 copy; refuse before decoding
                raise ValueError(f"image header claims {w} x {h} x {nbands} pixels, above the "
                                 f"{fitshead.MAX_DATA_BYTES / 1024**3:.0f} GiB limit")
            im.load()  # decode now, inside the try: a corrupt stream fails here
            mode = im.mode
            meta = {"pil_mode": mode, "format": None}
            fmt = im.format
            if mode in ("RGBA", "LA", "PA"):
                im2 = im.convert("RGB" if mode != "LA" else "L")
            elif mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
                im2 = im.convert("RGB")
            elif mode == "1":
                im2 = im.convert("L")
            else:
                im2 = im
            arr = np.asarray(im2)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot decode image ({one_line(exc)})") from None
    if arr.ndim == 2:
        planes = arr[None]
    elif arr.ndim == 3:
        planes = np.moveaxis(arr, -1, 0)
    else:
        raise ValueError(f"unexpected decoded image shape {arr.shape}")
    planes = np.ascontiguousarray(planes[:, ::-1, :], dtype=np.float32)  # row 0 = bottom, like FITS
    rgb = planes.shape[0] == 3 and arr.dtype == np.uint8
    if planes.shape[0] == 3:
        bands = ["r", "g", "b"]
    else:
        bands = ["grey"] * planes.shape[0]
    meta.pop("format")
    meta["image_format"] = fmt
    return [ImageData(pixels=planes, bands=bands, source=str(path), id=path.stem, rgb=rgb, meta=meta)]


# ------------------------------------------------------------------------------------------------------------------
# HDF5 stacks
# ------------------------------------------------------------------------------------------------------------------
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LABEL_NAMES = ("labels", "label", "ans", "y", "targets", "classes")
_ID_NAMES = ("ids", "id", "objid", "names", "name")


HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def _is_hdf5(probe: Probe) -> bool:
    return probe.head.startswith(_HDF5_MAGIC) or probe.suffix in HDF5_SUFFIXES


def is_hdf5_path(path) -> bool:
    """An HDF5 file by its name or its signature (without parsing it)."""
    p = Path(path)
    if p.suffix.lower() in HDF5_SUFFIXES:
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC
    except OSError:
        return False


def _find_ci(group, names) -> object | None:
    lower = {k.lower(): k for k in group.keys()}
    for n in names:
        if n in lower:
            return group[lower[n]]
    return None


def _layout(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return "NHW"
    n, a, b, c = shape
    if 1 <= c <= 4 and a > 4 and b > 4:
        return "NHWC"
    if 1 <= a <= 4 and b > 4 and c > 4:
        return "NCHW"
    raise ValueError(f"cannot tell the channel axis of a {shape} stack (expected N x H x W x C or N x C x H x W "
                     f"with C <= 4)")


def _open_stack(f):
    """The image dataset of an open HDF5 file, its layout and its per-image labels/ids datasets (or None)."""
    import h5py

    ds = _find_ci(f, ("images", "image", "imgs"))
    if ds is not None and not isinstance(ds, h5py.Dataset):
        ds = None
    if ds is None:
        found: list = []
        listing: list[str] = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                listing.append(f"{name} {obj.shape}")
                if obj.ndim in (3, 4):
                    found.append(obj)

        f.visititems(visit)
        if len(found) != 1:
            shown = ", ".join(listing[:8]) or "none"
            why = "several 3-D/4-D datasets and none named 'images'" if found else "no 3-D/4-D dataset"
            raise ValueError(f"not an image stack: {why} (datasets: {shown})")
        ds = found[0]
    if ds.ndim not in (3, 4):
        raise ValueError(f"dataset '{ds.name}' has shape {ds.shape}; an image stack is N x H x W (x C)")
    layout = _layout(tuple(ds.shape))
    n = int(ds.shape[0])
    if n == 0:
        raise ValueError(f"image stack '{ds.name}' is empty (shape {ds.shape})")
    labels = _find_ci(f, _LABEL_NAMES)
    labels = labels if isinstance(labels, h5py.Dataset) and labels.shape[:1] == (n,) else None
    ids = _find_ci(f, _ID_NAMES)
    ids = ids if isinstance(ids, h5py.Dataset) and ids.shape[:1] == (n,) else None
    return ds, layout, labels, ids


def hdf5_stack_size(path) -> tuple[int, int]:
    """``(number of images, bytes of their float32 copy)`` of an HDF5 image stack; ValueError if it is none."""
    import h5py

    with h5py.File(path, "r") as f:
        ds, _, _, _ = _open_stack(f)
        return int(ds.shape[0]), 4 * int(np.prod(ds.shape, dtype=np.float64))


def _stack_slice(path, opened, start: int, stop: int) -> list[ImageData]:
    """Images ``start:stop`` of a stack; ``opened`` is :func:`_open_stack`'s result (found once per file)."""
    ds, layout, labels_ds, ids_ds = opened
    origin = ds.attrs.get("origin", None)
    if isinstance(origin, bytes):
        origin = origin.decode()
    raw = ds[start:stop]
    labels = labels_ds[start:stop] if labels_ds is not None else None
    ids = ids_ds[start:stop] if ids_ds is not None else None
    if layout == "NHWC":
        raw = np.moveaxis(raw, -1, 1)
    elif layout == "NHW":
        raw = raw[:, None]
    nchan = raw.shape[1]
    rgb = raw.dtype == np.uint8 and nchan == 3
    flip = rgb and origin != "lower"
    bands = ["r", "g", "b"] if nchan == 3 and rgb else [f"b{i}" for i in range(nchan)]
    out = []
    stem = Path(path).stem
    for k in range(raw.shape[0]):
        i = start + k
        planes = raw[k, :, ::-1, :] if flip else raw[k]
        if ids is not None:
            v = ids[k]
            ident = v.decode(errors="replace") if isinstance(v, bytes) else str(v.item() if hasattr(v, "item") else v)
        else:
            ident = f"{stem}:{i}"
        meta = {"index": i, "dataset": ds.name}
        if labels is not None:
            v = labels[k]
            meta["label"] = v.decode(errors="replace") if isinstance(v, bytes) else (
                v.item() if hasattr(v, "item") and np.ndim(v) == 0 else np.asarray(v).tolist())
        out.append(ImageData(pixels=np.ascontiguousarray(planes, dtype=np.float32), bands=list(bands),
                             source=str(path), id=ident, hdu=None, rgb=rgb, meta=meta))
    return out


def read_hdf5_stack(probe: Probe) -> list[ImageData]:
    """Read an HDF5 image stack (rules in the module docstring)."""
    import h5py

    with h5py.File(probe.path, "r") as f:
        opened = _open_stack(f)
        ds = opened[0]
        out_bytes = 4 * int(np.prod(ds.shape, dtype=np.float64))
        if out_bytes > fitshead.MAX_DATA_BYTES:
            raise ValueError(f"image stack '{ds.name}' {tuple(ds.shape)} would need {out_bytes / 1024**3:.1f} GiB "
                             f"as float32, above the {fitshead.MAX_DATA_BYTES / 1024**3:.0f} GiB limit of one "
                             f"read (galdesk ingest streams such stacks slice by slice)")
        return _stack_slice(probe.path, opened, 0, int(ds.shape[0]))


def read_hdf5_image(path, object_id: str) -> ImageData:
    """One image of an HDF5 stack, found by its id (the ``ids`` dataset, else ``"{stem}:{index}"``), reading only
    that image."""
    import h5py

    with h5py.File(path, "r") as f:
        opened = _open_stack(f)
        ds, _, _, ids = opened
        index = None
        if ids is not None:
            vals = ids[()]
            for i, v in enumerate(vals):
                text = v.decode(errors="replace") if isinstance(v, bytes) else str(v.item() if hasattr(v, "item")
                                                                                      else v)
                if text == str(object_id):
                    index = i
                    break
        else:
            stem, _, tail = str(object_id).rpartition(":")
            if stem == Path(path).stem and tail.isdigit() and int(tail) < ds.shape[0]:
                index = int(tail)
        if index is None:
            raise ValueError(f"{path}: no image with id {object_id!r} in stack '{ds.name}'")
        return _stack_slice(path, opened, index, index + 1)[0]


def iter_hdf5_stack(path, slice_bytes: int = 256 * 1024**2):
    """Yield the images of an HDF5 stack a slice at a time (at most ``slice_bytes`` of float32 pixels each), so
    that stacks larger than memory or :data:`~galdesk.io.fitshead.MAX_DATA_BYTES` can be ingested."""
    import h5py

    with h5py.File(path, "r") as f:
        opened = _open_stack(f)  # once: a file without an 'images' dataset is searched dataset by dataset
        ds = opened[0]
        n = int(ds.shape[0])
        per = max(1, int(slice_bytes // max(4 * int(np.prod(ds.shape[1:], dtype=np.float64)), 1)))
        for start in range(0, n, per):
            yield _stack_slice(path, opened, start, min(n, start + per))


register_reader("fits-image", "image", _is_fits_image, read_fits_image, priority=0)
register_reader("image-pil", "image", _is_pil_image, read_pil_image, priority=10)
register_reader("hdf5-stack", "image", _is_hdf5, read_hdf5_stack, priority=10)
