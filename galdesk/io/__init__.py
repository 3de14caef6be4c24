"""Readers (through a registry), catalogue import and resampling. Imports no Qt.

Modules: :mod:`~galdesk.io.model` (ImageData, SpectrumData, ReadError, Problem), :mod:`~galdesk.io.reading` (read,
read_paths, expand_paths), :mod:`~galdesk.io.registry` (register_reader, identify), :mod:`~galdesk.io.probe`
(Probe), :mod:`~galdesk.io.fitshead` (the FITS header scan and its size guard), :mod:`~galdesk.io.catalog`.
"""

from galdesk.io.catalog import CatalogEntry, read_catalog, resolve_catalog
from galdesk.io.fitshead import MAX_DATA_BYTES
from galdesk.io.model import ImageData, Problem, ReadError, SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.reading import ReadResult, expand_paths, read, read_paths
from galdesk.io.registry import register_reader

__all__ = [
    "ImageData",
    "SpectrumData",
    "ReadError",
    "Problem",
    "MAX_DATA_BYTES",
    "Probe",
    "ReadResult",
    "expand_paths",
    "read",
    "read_paths",
    "register_reader",
    "CatalogEntry",
    "read_catalog",
    "resolve_catalog",
]
