"""The two data models every reader returns: :class:`ImageData` and :class:`SpectrumData`.

Conventions
-----------
* Images: ``pixels`` is always a float32 array of shape ``(n_bands, ny, nx)``, row-major as in FITS
  (``pixels[b, y, x]``; y = 0 is the first FITS row, i.e. the *bottom* of the image in DS9). Colour JPEG/PNG
  cut-outs are converted so that their first row is the bottom too (they are flipped vertically on reading), and
  carry ``bands = ["r", "g", "b"]`` with ``rgb=True`` (values 0..255).
* Spectra: ``wavelength`` in Angstrom (float64, increasing), ``vacuum`` says whether it is a vacuum wavelength
  (SDSS, DESI: True; 6dFGS, most text files: False unless known). ``flux`` float64 in ``flux_unit``; ``ivar`` is the
  inverse variance (0 where unknown or bad); ``mask`` True marks pixels NOT to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ImageData", "SpectrumData", "ReadError", "Problem"]


class ReadError(Exception):
    """A file could not be read. ``str(err)`` is a one-line message that names the file and the problem."""

    def __init__(self, path, message: str) -> None:
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


@dataclass
class Problem:
    """One file (or catalogue row) that could not be used, with the reason, for the Problems list."""

    path: str
    error: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error}


@dataclass
class ImageData:
    """A galaxy cut-out.

    Attributes
    ----------
    pixels : ndarray, float32, shape (n_bands, ny, nx)
        (uint8 for the 8-bit cut-outs of an ingest's light read: :func:`galdesk.io.reading.read`)
    bands : list of str
        Band / filter name per plane (e.g. ``["F814W"]``, ``["g", "r", "i"]``, ``["r", "g", "b"]`` for JPEG).
    source : str
        Path of the file it came from.
    id : str
        Object identifier (catalogue id, file stem, or ``stem[hdu]`` for stamp collections).
    header : astropy.io.fits.Header or None
    wcs : astropy.wcs.WCS or None
        Celestial WCS of the plane, when the file has one.
    hdu : int or None
        HDU index for multi-extension stamp files.
    rgb : bool
        True for 8-bit colour survey cut-outs (display as-is, no stretch needed).
    meta : dict
        Anything else a reader wants to keep (e.g. pixel scale in arcsec).
    """

    pixels: np.ndarray
    bands: list[str]
    source: str
    id: str
    header: Any = None
    wcs: Any = None
    hdu: int | None = None
    rgb: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[2])

    @property
    def n_bands(self) -> int:
        return int(self.pixels.shape[0])


@dataclass
class SpectrumData:
    """A 1-D spectrum.

    Attributes
    ----------
    wavelength : ndarray, float64
        Angstrom, increasing.
    flux : ndarray, float64
    ivar : ndarray, float64
        Inverse variance of ``flux``; 0 where the value is unknown or bad.
    mask : ndarray, bool
        True marks pixels that must not be used (bad, NaN, ivar == 0, flagged by the pipeline).
    source, id : str
    vacuum : bool
        True if wavelengths are in vacuum (SDSS convention), False for air.
    flux_unit : str
        e.g. ``"1e-17 erg / (s cm2 Angstrom)"``; ``"count"`` for uncalibrated spectra.
    redshift, redshift_err : float or None
        From the file, when it has one.
    spec_class, subclass : str or None
        Survey classification (e.g. SDSS CLASS/SUBCLASS), when the file has one.
    header : astropy.io.fits.Header or dict or None
    resolution_kms : ndarray or None
        Instrumental dispersion per pixel as a Gaussian sigma in km/s (SDSS ``wdisp`` converted), when known.
    meta : dict
        Extras: ``"spzline"`` (astropy Table of the SDSS pipeline line fits), ``"sky"``, survey ids, etc.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    source: str
    id: str
    vacuum: bool = True
    flux_unit: str = ""
    redshift: float | None = None
    redshift_err: float | None = None
    spec_class: str | None = None
    subclass: str | None = None
    header: Any = None
    resolution_kms: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def error(self) -> np.ndarray:
        """1-sigma error (inf where ivar == 0)."""
        with np.errstate(divide="ignore"):
            return np.where(self.ivar > 0, 1.0 / np.sqrt(np.where(self.ivar > 0, self.ivar, 1.0)), np.inf)

    @property
    def good(self) -> np.ndarray:
        """Pixels usable for fitting: not masked, finite flux, ivar > 0."""
        return (~self.mask) & np.isfinite(self.flux) & (self.ivar > 0)

    def rest_wavelength(self) -> np.ndarray:
        """Wavelength in the rest frame (observed / (1 + z)); the observed one if z is unknown."""
        z = self.redshift or 0.0
        return self.wavelength / (1.0 + z)

    def __len__(self) -> int:
        return int(self.wavelength.size)
