"""Readers (through a registry), catalogues and exports. Imports no Qt."""

from galdesk.io.model import ImageData, Problem, ReadError, SpectrumData

__all__ = ["ImageData", "SpectrumData", "ReadError", "Problem"]
