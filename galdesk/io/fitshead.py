"""The FITS header scanner and its size guard: HDU headers read with plain file reads, before astropy sees the file.

:func:`scan_fits` walks the HDU headers of a FITS file with plain file reads (no astropy data access) and computes,
for each HDU, the data size the header claims (``|BITPIX|/8 * GCOUNT * (PCOUNT + prod NAXISn)``). A claim above
:data:`MAX_DATA_BYTES` is refused with a message saying what the header claims, and a file whose claimed data
extends beyond its end is refused as truncated -- both before astropy allocates anything (:class:`FitsGuardError`).
Readers then open FITS files with ``fits.open(path, memmap=False)`` inside a ``with`` block and copy the arrays, so
no file handle outlives the read (arrays from ``fits.getdata`` keep their file open; ~20,000 of them exhaust the
open-file limit).

The headers are parsed by a small card parser (:func:`parse_header_text`, :class:`Keywords`) that is ~10x faster
than ``astropy.io.fits.Header``; :class:`HDUInfo` builds the astropy Header only when a reader asks for it.

:data:`MAX_DATA_BYTES` is also the limit of one read for the non-FITS readers (PIL images, HDF5 stacks), which look
it up here at call time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galdesk.io.messages import one_line
from galdesk.warncap import suppress

__all__ = [
    "MAX_DATA_BYTES",
    "human_bytes",
    "BLOCK_SIZE",
    "FitsGuardError",
    "Keywords",
    "parse_header_text",
    "HDUInfo",
    "FitsLayout",
    "scan_fits",
]

#: Largest data section (bytes) a FITS header may claim before we refuse to read it.
MAX_DATA_BYTES: int = 2 * 1024**3

#: Bytes in a FITS block (headers and data sections are padded to whole blocks).
BLOCK_SIZE = 2880

_CARD = 80
_MAX_HEADER_BLOCKS = 2000  # ~5.7 MB of header: anything longer is corrupt, not a real header


class FitsGuardError(Exception):
    """A FITS file that must not be handed to astropy (enormous claim, truncated, corrupt header)."""


class Keywords(dict):
    """Header keywords of one HDU parsed by a small, fast card parser (first occurrence of a keyword wins).

    Keys are upper case; ``get``, ``[]`` and ``in`` accept any case, like an astropy Header. Values are str
    (quotes removed, trailing blanks stripped, ``CONTINUE`` joined), bool (T/F), int, float, or None (no value).
    Parsing a 500-card header this way takes ~0.3 ms; ``astropy.io.fits.Header.fromstring`` plus ``get`` ~3 ms.
    """

    # values are stored as _Raw(value text) and parsed on first access: most keywords are never read

    def get(self, key, default=None):
        key = key.upper()
        if not dict.__contains__(self, key):
            return default
        return self[key]

    def __getitem__(self, key):
        key = key.upper()
        v = dict.__getitem__(self, key)
        if isinstance(v, _Raw):
            v = _parse_value(v)
            dict.__setitem__(self, key, v)
        return v

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.upper())

    def items(self):
        return [(k, self[k]) for k in dict.keys(self)]

    def values(self):
        return [self[k] for k in dict.keys(self)]


class _Raw(str):
    """Unparsed value text of a card."""


def _parse_value(text: str):
    text = text.lstrip()
    if text.startswith("'"):
        out = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(c)
            i += 1
        return "".join(out).rstrip()
    token = text.split("/", 1)[0].strip()
    if not token:
        return None
    if token == "T":
        return True
    if token == "F":
        return False
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token.replace("D", "E").replace("d", "e"))
    except ValueError:
        return token


def parse_header_text(text: str) -> Keywords:
    """Keywords of a FITS header given as its 80-character cards (see :class:`Keywords`)."""
    kw = Keywords()
    last = None
    for i in range(0, len(text), _CARD):
        card = text[i:i + _CARD]
        key = card[:8].rstrip()
        if key == "END":
            break
        if key == "CONTINUE":
            prev = kw[last] if last else None
            if isinstance(prev, str) and prev.endswith("&"):
                more = _parse_value(card[8:])
                if isinstance(more, str):
                    dict.__setitem__(kw, last, prev[:-1] + more)
                    continue
            last = None
            continue
        if key == "HIERARCH":
            name, eq, rest = card[8:].partition("=")
            if not eq:
                last = None
                continue
            key, value_text = name.strip(), rest
        elif card[8:10] == "= ":
            value_text = card[10:]
        else:
            last = None
            continue
        key = key.upper()
        if dict.__contains__(kw, key):
            last = None
            continue
        dict.__setitem__(kw, key, _Raw(value_text))
        last = key
    return kw


class HDUInfo:
    """One HDU of a FITS file as seen from its header only; unpacks as ``(header, kind)``.

    Attributes
    ----------
    kw : Keywords
        Fast dict of the header keywords: what identifiers should use.
    kind : str
        ``"image"`` (an array with data, including tile-compressed images), ``"table"`` (BINTABLE / ASCII TABLE),
        ``"empty"`` (no data) or ``"other"`` (random groups, unknown XTENSION).
    header : astropy.io.fits.Header
        Built on first access from the raw cards (slower; for readers that need a real Header).
    """

    __slots__ = ("kw", "kind", "_raw", "_header")

    def __init__(self, kw: Keywords, kind: str, raw: str = "") -> None:
        self.kw = kw
        self.kind = kind
        self._raw = raw
        self._header = None

    @property
    def raw(self) -> str:
        """The header's 80-character cards as read from the file (up to END)."""
        return self._raw

    @property
    def header(self):
        if self._header is None:
            from astropy.io import fits

            with suppress():
                self._header = fits.Header.fromstring(self._raw)
        return self._header

    def __iter__(self):
        yield self.header
        yield self.kind

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.header, self.kind)[i]

    @property
    def shape(self) -> tuple[int, ...]:
        """NumPy-order shape of the data array (``(NAXISn, ..., NAXIS1)``); ``()`` when empty.

        For a tile-compressed image (``ZIMAGE = T``) this is the shape of the decompressed image (``ZNAXISn``).
        """
        try:
            z = "Z" if self.kw.get("ZIMAGE") is True else ""
            n = int(self.kw.get(f"{z}NAXIS", 0))
            return tuple(int(self.kw.get(f"{z}NAXIS{i}", 0)) for i in range(n, 0, -1))
        except Exception:
            return ()

    @property
    def name(self) -> str:
        """EXTNAME, upper case, stripped ('' when absent)."""
        v = self.kw.get("EXTNAME")
        return str(v).strip().upper() if v is not None else ""

    def __repr__(self) -> str:
        return f"HDUInfo(kind={self.kind!r}, name={self.name!r}, shape={self.shape})"


@dataclass
class FitsLayout:
    """Where each HDU lies in a FITS file, from :func:`scan_fits`."""

    hdus: list[HDUInfo]
    header_offsets: list[int]
    data_offsets: list[int]
    data_sizes: list[int]
    warnings: list[str] = field(default_factory=list)


def human_bytes(n: float) -> str:
    """``n`` bytes as a short text ("14.6 TiB")."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


_BITPIX_NAMES = {8: "8-bit integers", 16: "16-bit integers", 32: "32-bit integers", 64: "64-bit integers",
                 -32: "32-bit floats", -64: "64-bit floats"}


def _int_card(header, key: str, default: int | None, hdu: int) -> int:
    value = header.get(key, default)
    if value is None:
        raise FitsGuardError(f"HDU {hdu} header has no {key} keyword (corrupt FITS header)")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FitsGuardError(f"HDU {hdu} header has a non-integer {key} = {value!r} (corrupt FITS header)")
    return int(value)


def scan_fits(path: str | os.PathLike, max_bytes: int | None = None) -> FitsLayout:
    """Walk the HDU headers of a FITS file without touching its data.

    Parameters
    ----------
    path : path-like
    max_bytes : int, optional
        Largest allowed data section per HDU in bytes; :data:`MAX_DATA_BYTES` when None.

    Returns
    -------
    FitsLayout

    Raises
    ------
    FitsGuardError
        If a header is unterminated or corrupt, claims more than ``max_bytes`` of data, or claims data beyond the
        end of the file (truncated). Trailing bytes after the last HDU that are not an extension are ignored
        (astropy does the same) and noted in ``layout.warnings``.
    """
    limit = MAX_DATA_BYTES if max_bytes is None else int(max_bytes)
    path = Path(path)
    size = path.stat().st_size
    layout = FitsLayout([], [], [], [])
    pos = 0
    with open(path, "rb") as f:
        while pos < size:
            index = len(layout.hdus)
            f.seek(pos)
            first = f.read(BLOCK_SIZE)
            if index > 0:
                if len(first) < BLOCK_SIZE or not first.startswith(b"XTENSION="):
                    layout.warnings.append(f"ignored {size - pos} trailing bytes after HDU {index - 1}")
                    break
            elif len(first) < BLOCK_SIZE:
                raise FitsGuardError(f"truncated FITS header: file has only {size} bytes, a header block is "
                                     f"{BLOCK_SIZE}")
            raw = bytearray(first)
            end = _find_end(first)
            while end < 0:
                if len(raw) >= _MAX_HEADER_BLOCKS * BLOCK_SIZE:
                    raise FitsGuardError(f"HDU {index} header has no END card in {_MAX_HEADER_BLOCKS} blocks (corrupt)")
                block = f.read(BLOCK_SIZE)
                if len(block) < BLOCK_SIZE:
                    raise FitsGuardError(f"truncated FITS file: HDU {index} header is cut off (no END card before "
                                         f"the end of the file at byte {size})")
                found = _find_end(block)
                if found >= 0:
                    end = len(raw) + found
                raw += block
            text = bytes(raw[:end]).decode("ascii", errors="replace")
            header = parse_header_text(text)
            data_start = pos + len(raw)
            try:
                nbytes, kind = _claimed_size(header, index, limit)
            except FitsGuardError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. astropy's VerifyError on an unparsable card
                raise FitsGuardError(f"HDU {index} header is corrupt ({one_line(exc)})") from None
            if nbytes > limit:
                raise FitsGuardError(_enormous_message(header, index, nbytes, limit))
            if data_start + nbytes > size:
                raise FitsGuardError(
                    f"truncated FITS file: HDU {index} header claims {human_bytes(nbytes)} of data "
                    f"(bytes {data_start}..{data_start + nbytes}) but the file has only {size} bytes")
            layout.hdus.append(HDUInfo(header, kind, text))
            layout.header_offsets.append(pos)
            layout.data_offsets.append(data_start)
            layout.data_sizes.append(nbytes)
            pos = data_start + int(math.ceil(nbytes / BLOCK_SIZE)) * BLOCK_SIZE
    if not layout.hdus:
        raise FitsGuardError("no FITS header found")
    return layout


def _find_end(block: bytes) -> int:
    for i in range(0, len(block), _CARD):
        if block[i:i + 8] == b"END     " or block[i:i + _CARD].rstrip() == b"END":
            return i + _CARD
    return -1


def _claimed_size(header, index: int, limit: int = MAX_DATA_BYTES) -> tuple[int, str]:
    bitpix = _int_card(header, "BITPIX", None, index)
    if bitpix not in _BITPIX_NAMES:
        raise FitsGuardError(f"HDU {index} header has an invalid BITPIX = {bitpix} (corrupt FITS header)")
    naxis = _int_card(header, "NAXIS", None, index)
    if not 0 <= naxis <= 999:
        raise FitsGuardError(f"HDU {index} header has an invalid NAXIS = {naxis}")
    axes = [_int_card(header, f"NAXIS{i}", None, index) for i in range(1, naxis + 1)]
    if any(a < 0 for a in axes):
        raise FitsGuardError(f"HDU {index} header has a negative axis length {axes}")
    pcount = _int_card(header, "PCOUNT", 0, index)
    gcount = _int_card(header, "GCOUNT", 1, index)
    if pcount < 0 or gcount < 0:
        raise FitsGuardError(f"HDU {index} header has a negative PCOUNT/GCOUNT")
    groups = bool(header.get("GROUPS", False)) and naxis > 0 and axes[0] == 0
    if naxis == 0:
        npix = 0
    elif groups:
        npix = math.prod(axes[1:])
    else:
        npix = math.prod(axes)
    nbytes = abs(bitpix) // 8 * gcount * (pcount + npix)
    xtension = str(header.get("XTENSION", "")).strip().upper() if index > 0 else ""
    if xtension == "BINTABLE" and header.get("ZIMAGE") is True:
        # tile-compressed image (.fits.fz): the decompressed size is what would be allocated
        zbitpix = _int_card(header, "ZBITPIX", None, index)
        zaxes = [_int_card(header, f"ZNAXIS{i}", None, index)
                 for i in range(1, _int_card(header, "ZNAXIS", None, index) + 1)]
        znbytes = abs(zbitpix) // 8 * math.prod(zaxes) if zaxes else 0
        if znbytes > limit:
            raise FitsGuardError(
                f"HDU {index} compressed-image header claims a {' x '.join(map(str, zaxes))} image = "
                f"{human_bytes(znbytes)} once decompressed, above the {human_bytes(limit)} limit")
        return nbytes, ("image" if znbytes > 0 else "empty")
    if xtension in ("BINTABLE", "TABLE", "A3DTABLE"):
        kind = "table"
    elif groups or (xtension and xtension != "IMAGE"):
        kind = "other"
    elif npix == 0:
        kind = "empty"
    else:
        kind = "image"
    return nbytes, kind


def _enormous_message(header, index: int, nbytes: int, limit: int) -> str:
    try:
        naxis = int(header.get("NAXIS", 0))
        dims = " x ".join(str(int(header.get(f"NAXIS{i}", 0))) for i in range(1, naxis + 1))
        what = _BITPIX_NAMES.get(int(header.get("BITPIX", 0)), "values")
        claim = f"a {dims} array of {what}"
    except Exception:  # noqa: BLE001
        claim = "an array"
    return (f"HDU {index} header claims {claim} = {human_bytes(nbytes)}, above the {human_bytes(limit)} limit; "
            f"refusing to read it")
