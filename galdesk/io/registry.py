"""The format registry: which reader opens which file.

Shaped like astropy/specutils ``data_loader(identifier, reader, priority)``: every format registers

* an **identifier** ``identifier(probe) -> bool`` that looks only at a cheap :class:`Probe` of the file (its first
  2880 bytes, its suffix and, for FITS, the headers of its HDUs) and never raises (it is wrapped: an exception counts
  as "no");
* a **reader** ``reader(probe) -> list[ImageData | SpectrumData]`` that does the real work;
* a **priority**: the highest-priority matching reader wins. Two matches at the same top priority are an error
  (:class:`~galdesk.io.model.ReadError` naming both formats) rather than a silent guess.

:func:`read` is the one entry point for a single file and turns *every* failure (missing file, empty file, a
``.fits`` that is not FITS, a truncated file, a header that claims an enormous array, wrong dimensionality, all-NaN
data, a reader's own exception...) into a one-line ``ReadError``. :func:`read_paths` reads many files and folders,
collecting one :class:`~galdesk.io.model.Problem` per failed file while the rest load.

FITS safety
-----------
Before any reader sees a FITS file, :func:`scan_fits` walks its HDU headers with plain file reads (no astropy data
access) and computes, for each HDU, the data size the header claims (``|BITPIX|/8 * GCOUNT * (PCOUNT + prod
NAXISn)``). A claim above :data:`MAX_DATA_BYTES` is refused with a message saying what the header claims, and a
file whose claimed data extends beyond its end is refused as truncated -- both before astropy allocates anything.
Readers then open FITS files with ``fits.open(path, memmap=False)`` inside a ``with`` block and copy the arrays, so
no file handle outlives the read (arrays from ``fits.getdata`` keep their file open; ~20,000 of them exhaust the
open-file limit).

Folder walking (:func:`expand_paths`)
-------------------------------------
Files named explicitly are always kept. Folders are walked recursively in sorted order, skipping hidden files and
folders (name starting with ``.``) and files that are certainly not data: :data:`SKIP_SUFFIXES` (documentation,
code, configuration, notebooks, archives' listings...) and :data:`SKIP_NAMES`. ``.csv`` and ``.txt`` are *not*
skipped because text spectra use them; a catalogue met while walking becomes a Problem that says it looks like a
catalogue.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from galdesk.io.model import ImageData, Problem, ReadError, SpectrumData
from galdesk.warncap import capture, suppress

__all__ = [
    "MAX_DATA_BYTES",
    "SKIP_SUFFIXES",
    "SKIP_NAMES",
    "FITS_SUFFIXES",
    "Probe",
    "HDUInfo",
    "Keywords",
    "parse_header_text",
    "FitsLayout",
    "FitsGuardError",
    "ReaderEntry",
    "ReadResult",
    "register_reader",
    "unregister_reader",
    "readers",
    "identify",
    "read",
    "read_paths",
    "expand_paths",
    "scan_fits",
    "check_image",
    "check_spectrum",
]

#: Largest data section (bytes) a FITS header may claim before we refuse to read it.
MAX_DATA_BYTES: int = 2 * 1024**3

#: Suffixes (lower case) of files that a folder walk skips: never images or spectra.
SKIP_SUFFIXES: frozenset[str] = frozenset(
    {
        ".md", ".rst", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".py", ".pyc", ".ipynb", ".sh",
        ".html", ".htm", ".log", ".pdf", ".db", ".sqlite", ".lock", ".gitignore",
    }
)
#: File names that a folder walk skips.
SKIP_NAMES: frozenset[str] = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "README", "LICENSE"})

#: Suffixes that promise a FITS file.
FITS_SUFFIXES: frozenset[str] = frozenset({".fits", ".fit", ".fts", ".fits.fz"})

# suffixes whose content must start with a known signature: (format name, magic bytes)
_SUFFIX_MAGIC = {".jpg": ("JPEG", b"\xff\xd8"), ".jpeg": ("JPEG", b"\xff\xd8"), ".png": ("PNG", b"\x89PNG")}

_BLOCK = 2880
_CARD = 80
_ADDRESS_RE = re.compile(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>")
_MAX_HEADER_BLOCKS = 2000  # ~5.7 MB of header: anything longer is corrupt, not a real header
_KINDS = ("image", "spectrum")


# ------------------------------------------------------------------------------------------------------------------
# FITS layout scan (the guard)
# ------------------------------------------------------------------------------------------------------------------
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


def _human_bytes(n: float) -> str:
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
            first = f.read(_BLOCK)
            if index > 0:
                if len(first) < _BLOCK or not first.startswith(b"XTENSION="):
                    layout.warnings.append(f"ignored {size - pos} trailing bytes after HDU {index - 1}")
                    break
            elif len(first) < _BLOCK:
                raise FitsGuardError(f"truncated FITS header: file has only {size} bytes, a header block is {_BLOCK}")
            raw = bytearray(first)
            end = _find_end(first)
            while end < 0:
                if len(raw) >= _MAX_HEADER_BLOCKS * _BLOCK:
                    raise FitsGuardError(f"HDU {index} header has no END card in {_MAX_HEADER_BLOCKS} blocks (corrupt)")
                block = f.read(_BLOCK)
                if len(block) < _BLOCK:
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
                nbytes, kind = _claimed_size(header, index)
            except FitsGuardError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. astropy's VerifyError on an unparsable card
                raise FitsGuardError(f"HDU {index} header is corrupt ({_short(exc)})") from None
            if nbytes > limit:
                raise FitsGuardError(_enormous_message(header, index, nbytes, limit))
            if data_start + nbytes > size:
                raise FitsGuardError(
                    f"truncated FITS file: HDU {index} header claims {_human_bytes(nbytes)} of data "
                    f"(bytes {data_start}..{data_start + nbytes}) but the file has only {size} bytes")
            layout.hdus.append(HDUInfo(header, kind, text))
            layout.header_offsets.append(pos)
            layout.data_offsets.append(data_start)
            layout.data_sizes.append(nbytes)
            pos = data_start + int(math.ceil(nbytes / _BLOCK)) * _BLOCK
    if not layout.hdus:
        raise FitsGuardError("no FITS header found")
    return layout


def _find_end(block: bytes) -> int:
    for i in range(0, len(block), _CARD):
        if block[i:i + 8] == b"END     " or block[i:i + _CARD].rstrip() == b"END":
            return i + _CARD
    return -1


def _claimed_size(header, index: int) -> tuple[int, str]:
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
        if znbytes > MAX_DATA_BYTES:
            raise FitsGuardError(
                f"HDU {index} compressed-image header claims a {' x '.join(map(str, zaxes))} image = "
                f"{_human_bytes(znbytes)} once decompressed, above the {_human_bytes(MAX_DATA_BYTES)} limit")
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
    return (f"HDU {index} header claims {claim} = {_human_bytes(nbytes)}, above the {_human_bytes(limit)} limit; "
            f"refusing to read it")


def _short(exc: BaseException, n: int = 160) -> str:
    """One line, at most ``n`` characters, naming the exception type when the message is empty."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ADDRESS_RE.sub("", text)  # "<_io.BytesIO object at 0x7f...>" means nothing to a user
    if len(text) > n:
        text = text[: n - 1] + "…"
    return text


# ------------------------------------------------------------------------------------------------------------------
# Probe
# ------------------------------------------------------------------------------------------------------------------
class Probe:
    """Cheap facts about one file, shared by all identifiers (and handed to the chosen reader).

    Attributes
    ----------
    path : Path
    suffix : str
        Lower-case suffix (``".fits"``); ``".fits.fz"`` style double suffixes are kept whole for ``.fz``/``.gz``.
    head : bytes
        The first 2880 bytes (fewer for a shorter file).
    size : int
        File size in bytes.
    is_fits : bool
        The file starts with ``SIMPLE  =``.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        name = self.path.name.lower()
        suffixes = [s.lower() for s in self.path.suffixes]
        if len(suffixes) >= 2 and suffixes[-1] in (".fz", ".gz"):
            self.suffix = "".join(suffixes[-2:])
        else:
            self.suffix = self.path.suffix.lower()
        self.name = name
        self.size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            self.head = f.read(_BLOCK)
        self.is_fits = self.head.startswith(b"SIMPLE  =")
        self._max_bytes = max_bytes
        self.fits_error: str | None = None

    @cached_property
    def fits_layout(self) -> FitsLayout | None:
        """Header-only layout of the FITS file (None if not FITS or not scannable; see ``fits_error``)."""
        if not self.is_fits:
            return None
        try:
            return scan_fits(self.path, self._max_bytes)
        except FitsGuardError as exc:
            self.fits_error = str(exc)
        except OSError as exc:
            self.fits_error = f"cannot read file ({_short(exc)})"
        except Exception as exc:  # noqa: BLE001 - the probe never raises
            self.fits_error = f"corrupt FITS file ({type(exc).__name__}: {_short(exc)})"
        return None

    @cached_property
    def fits_summary(self) -> list[HDUInfo]:
        """One :class:`HDUInfo` ``(header, kind)`` per HDU; ``[]`` for non-FITS or unreadable files.

        Built by :func:`scan_fits` (plain block reads + ``fits.Header.fromstring``) rather than
        ``fits.open(lazy_load_hdus=True)``: the same pass is the size/truncation guard, so headers are parsed once
        before the reader opens the file, and a corrupt header cannot make astropy touch the data.
        """
        layout = self.fits_layout
        return list(layout.hdus) if layout is not None else []

    def image_hdus(self, min_ndim: int = 1) -> list[tuple[int, HDUInfo]]:
        """``(index, info)`` of HDUs holding an array with at least ``min_ndim`` axes."""
        return [(i, h) for i, h in enumerate(self.fits_summary) if h.kind == "image" and len(h.shape) >= min_ndim]

    def table_hdus(self) -> list[tuple[int, HDUInfo]]:
        return [(i, h) for i, h in enumerate(self.fits_summary) if h.kind == "table"]

    def text_head(self) -> str | None:
        """The head decoded as text, or None if it looks binary (NUL bytes or mostly non-printable)."""
        if not self.head or b"\x00" in self.head:
            return None
        try:
            text = self.head.decode("utf-8")
        except UnicodeDecodeError:
            # the 2880-byte cut may split a multi-byte character: retry without the last few bytes
            try:
                text = self.head[:-4].decode("utf-8")
            except UnicodeDecodeError:
                return None
        printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
        return text if printable >= 0.95 * max(len(text), 1) else None

    def __repr__(self) -> str:
        return f"Probe({str(self.path)!r}, suffix={self.suffix!r}, is_fits={self.is_fits})"


# ------------------------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReaderEntry:
    """One registered format."""

    name: str
    kind: str
    identifier: Callable[[Probe], bool]
    reader: Callable[[Probe], list]
    priority: int = 0


_REGISTRY: dict[str, ReaderEntry] = {}
_BUILTINS_LOADED = False


def register_reader(name: str, kind: str, identifier: Callable[[Probe], bool], reader: Callable[[Probe], list],
                    priority: int = 0, *, replace: bool = True) -> ReaderEntry:
    """Register a format.

    Parameters
    ----------
    name : str
        Short unique format name, shown in messages (e.g. ``"sdss-spec"``).
    kind : {"image", "spectrum"}
    identifier : callable
        ``identifier(probe) -> bool``; exceptions are caught and count as False.
    reader : callable
        ``reader(probe) -> list[ImageData | SpectrumData]``; may raise anything, :func:`read` converts it.
    priority : int
        Highest wins among matching readers; a tie at the top is an error.
    replace : bool
        Re-registering a name replaces the old entry (True) or raises ValueError (False).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if not replace and name in _REGISTRY:
        raise ValueError(f"a reader named {name!r} is already registered")
    entry = ReaderEntry(name, kind, identifier, reader, int(priority))
    _REGISTRY[name] = entry
    return entry


def unregister_reader(name: str) -> None:
    """Remove a format (no error if it is not registered)."""
    _REGISTRY.pop(name, None)


def _load_builtins() -> None:
    """Import the built-in reader modules once; they register themselves (lazy: avoids an import cycle)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import galdesk.io.images  # noqa: F401
    import galdesk.io.spectra  # noqa: F401


def readers(kind: str | None = None) -> list[ReaderEntry]:
    """Registered formats, highest priority first (optionally only one kind)."""
    _load_builtins()
    entries = [e for e in _REGISTRY.values() if kind is None or e.kind == kind]
    return sorted(entries, key=lambda e: (-e.priority, e.name))


def _safe_identify(entry: ReaderEntry, probe: Probe) -> bool:
    try:
        with suppress():
            return bool(entry.identifier(probe))
    except Exception:  # noqa: BLE001 - identifiers never raise, by contract
        return False


def identify(probe: Probe, kind: str | None = None) -> ReaderEntry:
    """The reader for ``probe``: the highest-priority match.

    Raises
    ------
    ReadError
        If nothing matches (with a description of what the file looks like) or two formats tie at the top.
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS} or None, got {kind!r}")
    matches = [e for e in readers(kind) if _safe_identify(e, probe)]
    if not matches:
        if kind is not None:
            other = next((e for e in readers() if e.kind != kind and _safe_identify(e, probe)), None)
            if other is not None:
                raise ReadError(probe.path, f"this file is a {other.kind} ({other.name} format), not an {kind}"
                                if kind == "image" else
                                f"this file is an {other.kind} ({other.name} format), not a {kind}")
        raise ReadError(probe.path, _no_reader_message(probe, kind))
    top = [e for e in matches if e.priority == matches[0].priority]
    if len(top) > 1:
        names = " and ".join(repr(e.name) for e in top)
        raise ReadError(probe.path, f"ambiguous format: {names} both claim this file at priority {top[0].priority}")
    return top[0]


def _no_reader_message(probe: Probe, kind: str | None) -> str:
    what = {None: "image or spectrum", "image": "image", "spectrum": "spectrum"}[kind]
    if probe.is_fits:
        summary = probe.fits_summary
        images = [(i, h) for i, h in enumerate(summary) if h.kind == "image"]
        tables = [(i, h) for i, h in enumerate(summary) if h.kind == "table"]
        if not images and tables:
            return (f"FITS file holds only tables ({len(tables)} table HDU(s)), no {what}: it looks like a "
                    f"catalogue - import it as a catalogue instead")
        if not images:
            return f"FITS file has no data array (no {what} found in {len(summary)} HDU(s))"
        dims = ", ".join(f"HDU {i}: {len(h.shape)}-D {h.shape}" for i, h in images[:4])
        if kind != "spectrum" and all(len(h.shape) not in (2, 3) for _, h in images):
            return (f"wrong dimensionality ({dims}): images must be 2-D (ny, nx) or 3-D (bands, ny, nx), "
                    f"1-D arrays need a wavelength axis (CRVAL1/CDELT1) to be read as spectra")
        return f"no {what} reader recognises this FITS file ({dims})"
    text = probe.text_head()
    if text is not None:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        if probe.suffix in (".csv", ".ecsv", ".tsv"):
            return (f"text table is not a spectrum (first line {first[:60]!r}); if it is a catalogue, import it "
                    f"as a catalogue")
        return f"text file not recognised as a {what} (first line {first[:60]!r})"
    return f"unrecognised file format (suffix {probe.suffix or 'none'!r}, starts with {probe.head[:8]!r})"


# ------------------------------------------------------------------------------------------------------------------
# Validation shared by every reader
# ------------------------------------------------------------------------------------------------------------------
def check_image(img: ImageData) -> ImageData:
    """Enforce the ImageData conventions (float32 ``(n_bands, ny, nx)``, some finite pixel); ValueError if broken."""
    px = np.asarray(img.pixels)
    if px.ndim == 2:
        px = px[None]
    if px.ndim != 3:
        raise ValueError(f"wrong dimensionality: image array has shape {px.shape}, expected (bands, ny, nx)")
    if px.size == 0 or 0 in px.shape:
        raise ValueError(f"zero-size image (shape {px.shape})")
    if px.dtype != np.float32:
        px = px.astype(np.float32)
    if not np.isfinite(px).any():
        raise ValueError(f"image has no finite pixel (all NaN/inf, shape {px.shape})")
    img.pixels = px
    if len(img.bands) != px.shape[0]:
        raise ValueError(f"{len(img.bands)} band names for {px.shape[0]} planes")
    return img


def check_spectrum(spec: SpectrumData) -> SpectrumData:
    """Enforce the SpectrumData conventions; ValueError when the spectrum is unusable.

    Wavelength becomes float64 and increasing (a strictly decreasing one is reversed with all per-pixel arrays);
    ivar is set to 0 where it is negative or non-finite; ``mask`` gains non-finite flux and, unless
    ``meta["no_errors"]`` is set (a file without errors: the fitter must weight uniformly), ``ivar == 0``.
    """
    wave = np.asarray(spec.wavelength, dtype=np.float64).ravel()
    flux = np.asarray(spec.flux, dtype=np.float64).ravel()
    n = wave.size
    if n == 0 or flux.size == 0:
        raise ValueError("zero-length spectrum")
    ivar = np.asarray(spec.ivar, dtype=np.float64).ravel() if spec.ivar is not None else np.zeros(n)
    mask = np.asarray(spec.mask, dtype=bool).ravel() if spec.mask is not None else np.zeros(n, bool)
    if not (flux.size == n and ivar.size == n and mask.size == n):
        raise ValueError(f"array lengths differ: wavelength {n}, flux {flux.size}, ivar {ivar.size}, "
                         f"mask {mask.size}")
    res = spec.resolution_kms
    if res is not None:
        res = np.asarray(res, dtype=np.float64).ravel()
        if res.size != n:
            res = None
    finite_flux = np.isfinite(flux)
    if not finite_flux.any():
        raise ValueError(f"spectrum flux is all NaN/inf ({n} pixels)")
    if not np.isfinite(wave).all():
        raise ValueError("wavelength array has NaN/inf values")
    if n > 1:
        d = np.diff(wave)
        if np.all(d < 0):
            wave, flux, ivar, mask = wave[::-1], flux[::-1], ivar[::-1], mask[::-1]
            finite_flux = finite_flux[::-1]
            if res is not None:
                res = res[::-1]
        elif not np.all(d > 0):
            raise ValueError("wavelength is not monotonic")
    if not (wave > 0).all():
        raise ValueError(f"non-positive wavelengths (first {wave[0]:g} Angstrom)")
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    mask = mask | ~finite_flux
    if not spec.meta.get("no_errors"):
        mask |= ivar <= 0
    spec.wavelength, spec.flux, spec.ivar, spec.mask, spec.resolution_kms = (
        np.ascontiguousarray(wave), np.ascontiguousarray(flux), np.ascontiguousarray(ivar),
        np.ascontiguousarray(mask), res)
    if mask.all():
        spec.meta.setdefault("warnings", []).append("no usable pixel (every pixel masked or ivar == 0)")
    return spec


# ------------------------------------------------------------------------------------------------------------------
# read / read_paths / expand_paths
# ------------------------------------------------------------------------------------------------------------------
def read(path: str | os.PathLike, kind: str | None = None) -> list[ImageData | SpectrumData]:
    """Read one file with the registered reader that claims it.

    Parameters
    ----------
    path : path-like
    kind : {"image", "spectrum"} or None
        Consider only readers of this kind.

    Returns
    -------
    list of ImageData or SpectrumData
        One file may hold several objects (stamp collections, DESI coadds, HDF5 stacks).

    Raises
    ------
    ReadError
        For every failure, with a one-line message (``str(err)`` starts with the path).
    """
    p = Path(path)
    try:
        if not p.exists():
            raise ReadError(p, "file not found")
        if p.is_dir():
            raise ReadError(p, "is a folder, not a file (use read_paths to read folders)")
        probe = Probe(p)
        if probe.size == 0:
            raise ReadError(p, "empty file (0 bytes)")
        if probe.suffix in (".fits.gz", ".fit.gz", ".fts.gz"):
            raise ReadError(p, "gzip-compressed FITS is not supported: decompress it first (gunzip)")
        if probe.suffix in FITS_SUFFIXES and not probe.is_fits:
            raise ReadError(p, f"not a FITS file despite its {probe.suffix} name (starts with {_describe_head(probe)})")
        magic = _SUFFIX_MAGIC.get(probe.suffix)
        if magic is not None and not probe.head.startswith(magic[1]):
            raise ReadError(p, f"not a {magic[0]} file despite its {probe.suffix} name "
                               f"(starts with {_describe_head(probe)})")
        if probe.is_fits and probe.fits_layout is None:
            raise ReadError(p, probe.fits_error or "unreadable FITS file")
        entry = identify(probe, kind)
        try:
            with capture() as caught:
                out = list(entry.reader(probe) or [])
        except (ReadError, MemoryError):
            raise
        except ValueError as exc:  # readers raise ValueError for problems they diagnosed themselves
            raise ReadError(p, f"{entry.name}: {_short(exc, 200)}") from exc
        except Exception as exc:  # noqa: BLE001 - name the format and the exception type
            raise ReadError(p, f"{entry.name} reader failed: {type(exc).__name__}: {_short(exc, 200)}") from exc
        if not out:
            raise ReadError(p, f"{entry.name} reader found nothing to load")
        notes = _warning_texts(caught)
        if probe.fits_layout is not None:
            notes = probe.fits_layout.warnings + notes
        for obj in out:
            if isinstance(obj, ImageData):
                check_image(obj)
            elif isinstance(obj, SpectrumData):
                check_spectrum(obj)
            else:
                raise ReadError(p, f"reader {entry.name} returned a {type(obj).__name__}")
            obj.meta.setdefault("format", entry.name)
            if notes:
                obj.meta.setdefault("warnings", [])
                obj.meta["warnings"].extend(n for n in notes if n not in obj.meta["warnings"])
        return out
    except ReadError:
        raise
    except MemoryError:
        raise ReadError(p, "out of memory while reading") from None
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line ReadError
        raise ReadError(p, _short(exc, 240)) from exc


def _warning_texts(caught) -> list[str]:
    out: list[str] = []
    for w in caught or []:
        text = _short(w.message, 200)
        if text not in out:
            out.append(text)
        if len(out) >= 10:
            break
    return out


def _describe_head(probe: Probe) -> str:
    head = probe.head
    if head.startswith(b"\x1f\x8b"):
        return "gzip magic bytes - a compressed file"
    if head.startswith(b"\x89PNG"):
        return "PNG magic bytes"
    if head.startswith(b"\xff\xd8"):
        return "JPEG magic bytes"
    if head.startswith(b"\x89HDF"):
        return "HDF5 magic bytes"
    text = probe.text_head()
    if text is not None:
        return f"text {text[:30]!r}"
    return repr(head[:12])


@dataclass
class ReadResult:
    """What :func:`read_paths` loaded and what it could not.

    Attributes
    ----------
    images : list of ImageData
    spectra : list of SpectrumData
    problems : list of Problem
        One per file that failed, with its one-line reason.
    """

    images: list[ImageData] = field(default_factory=list)
    spectra: list[SpectrumData] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images) + len(self.spectra)


def expand_paths(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Files as given; folders walked recursively (sorted), skipping hidden and non-data files.

    Parameters
    ----------
    paths : path-like or iterable of path-like

    Returns
    -------
    list of Path
        In the order given, each folder's files sorted by relative path. A path that does not exist is kept (it
        becomes a "file not found" Problem in :func:`read_paths`). Duplicates are dropped.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.absolute()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in paths:
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if _skip_in_walk(name):
                        continue
                    add(Path(root) / name)
        else:
            add(p)
    return out


def _skip_in_walk(name: str) -> bool:
    if name.startswith(".") or name in SKIP_NAMES or name.endswith("~"):
        return True
    return Path(name).suffix.lower() in SKIP_SUFFIXES


def read_paths(paths, ctx=None, kind: str | None = None) -> ReadResult:
    """Read many files and folders; failures become Problems, the rest load.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Files and folders (see :func:`expand_paths`).
    ctx : galdesk.tasks.TaskContext, optional
        Receives ``progress(i / n, message)`` per file; ``check_cancelled()`` is called between files, so
        :class:`galdesk.tasks.Cancelled` propagates.
    kind : {"image", "spectrum"} or None

    Returns
    -------
    ReadResult
    """
    files = expand_paths(paths)
    result = ReadResult()
    n = len(files)
    for i, path in enumerate(files):
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(i / n, f"reading {path.name}")
        try:
            objs = read(path, kind=kind)
        except ReadError as exc:
            result.problems.append(Problem(str(path), str(exc)))
            continue
        for obj in objs:
            (result.images if isinstance(obj, ImageData) else result.spectra).append(obj)
    if ctx is not None:
        ctx.progress(1.0, f"read {n - len(result.problems)} of {n} files")
    return result
