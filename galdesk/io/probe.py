"""The :class:`Probe`: cheap facts about one file, shared by every format identifier and handed to the chosen reader.

A probe reads the first 2880 bytes of the file and its suffix; for a FITS file it scans the HDU headers on first
use (:func:`galdesk.io.fitshead.scan_fits`, which is also the size/truncation guard). It never raises once built:
a FITS file that cannot be scanned has ``fits_layout = None`` and the reason in ``fits_error``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from galdesk.io.fitshead import BLOCK_SIZE, FitsGuardError, FitsLayout, HDUInfo, scan_fits
from galdesk.io.messages import one_line

__all__ = ["Probe"]


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
    light : bool
        The caller keeps only pixels and plain metadata (an ingest): readers may leave out the astropy Header and
        WCS objects and put the sky position of the centre and the pixel scale in ``meta`` instead.
    working_size : int or None
        With ``light``: the size the caller shrinks cut-outs to; a reader may return them shrunk already.
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
            self.head = f.read(BLOCK_SIZE)
        self.is_fits = self.head.startswith(b"SIMPLE  =")
        self._max_bytes = max_bytes
        self.fits_error: str | None = None
        self.light = False
        self.working_size: int | None = None

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
            self.fits_error = f"cannot read file ({one_line(exc)})"
        except Exception as exc:  # noqa: BLE001 - the probe never raises
            self.fits_error = f"corrupt FITS file ({type(exc).__name__}: {one_line(exc)})"
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
