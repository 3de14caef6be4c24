"""Readers (through a registry), catalogues and exports. Imports no Qt."""

from galdesk.io.catalog import CatalogEntry, read_catalog, resolve_catalog
from galdesk.io.model import ImageData, Problem, ReadError, SpectrumData
from galdesk.io.registry import (
    MAX_DATA_BYTES,
    Probe,
    ReadResult,
    expand_paths,
    read,
    read_paths,
    register_reader,
)

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
