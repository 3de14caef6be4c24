"""The format registry: which reader opens which file.

Shaped like astropy/specutils ``data_loader(identifier, reader, priority)``: every format registers

* an **identifier** ``identifier(probe) -> bool`` that looks only at a cheap :class:`~galdesk.io.probe.Probe` of the
  file (its first 2880 bytes, its suffix and, for FITS, the headers of its HDUs) and never raises (it is wrapped: an
  exception counts as "no");
* a **reader** ``reader(probe) -> list[ImageData | SpectrumData]`` that does the real work;
* a **priority**: the highest-priority matching reader wins. Two matches at the same top priority are an error
  (:class:`~galdesk.io.model.ReadError` naming both formats) rather than a silent guess.

The built-in formats live in :mod:`galdesk.io.formats`, one module per format family; each registers its readers
with :func:`register_reader` when imported. :mod:`galdesk.io.reading` (and so ``import galdesk.io``) imports that
package, so the built-ins are registered before the first read. This module imports no reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from galdesk.io.model import ReadError
from galdesk.io.probe import Probe
from galdesk.warncap import suppress

__all__ = [
    "ReaderEntry",
    "register_reader",
    "unregister_reader",
    "readers",
    "identify",
]

_KINDS = ("image", "spectrum")


@dataclass(frozen=True)
class ReaderEntry:
    """One registered format."""

    name: str
    kind: str
    identifier: Callable[[Probe], bool]
    reader: Callable[[Probe], list]
    priority: int = 0


_REGISTRY: dict[str, ReaderEntry] = {}


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
        ``reader(probe) -> list[ImageData | SpectrumData]``; may raise anything,
        :func:`~galdesk.io.reading.read` converts it.
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


def readers(kind: str | None = None) -> list[ReaderEntry]:
    """Registered formats, highest priority first (optionally only one kind)."""
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
        if not images and {"REDSHIFTS", "ZBEST"} & {h.name for _, h in tables}:
            return ("a DESI redshift file (redrock/zbest), not spectra: it is paired with the coadd-/spectra- file "
                    "of the same name by itself, and ingest and fit-lines take it as a catalogue")
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
    # messages describe a file's shape, never quote its contents (a catalogue row may name any file, even a secret)
    text = probe.text_head()
    if text is not None:
        shape = describe_text(text)
        if probe.suffix in (".csv", ".ecsv", ".tsv"):
            return f"text table is not a spectrum ({shape}); if it is a catalogue, import it as a catalogue"
        return f"text file not recognised as a {what} ({shape})"
    return f"unrecognised file format (suffix {probe.suffix or 'none'!r}, binary data of no known kind)"


def describe_text(text: str) -> str:
    """The shape of a text file's head without quoting it: lines and columns of numbers or words."""
    rows = [ln.replace(",", " ").split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        return "no data lines"
    numeric = sum(all(_is_number(c) for c in r) for r in rows)
    widths = sorted({len(r) for r in rows})
    cols = f"{widths[0]}" if len(widths) == 1 else f"{widths[0]}-{widths[-1]}"
    return f"{len(rows)} line(s) of {cols} column(s), {numeric} of them all numbers"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
