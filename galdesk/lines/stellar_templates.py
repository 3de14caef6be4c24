"""Stellar templates for :mod:`galdesk.lines.stellar`: the bundled files and any set in the same FITS layout (an image
of N templates on a uniform ln λ grid, header ``LNLAM0``, ``DLNLAM``, ``FWHM_A``, ``VACUUM``; optional ``TEMPLATES``
table and per-pixel ``FWHM`` extension), read once per path."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galdesk.lines import linelist as LL

__all__ = ["Templates", "load_templates", "default_template_path", "template_resource", "second_template_path",
           "POWERLAW_SLOPES"]

#: Slopes alpha of the featureless power-law components f_lambda ~ lambda^alpha (``powerlaw=True``).
POWERLAW_SLOPES = (-2.0, -1.5, -1.0, -0.5)



def template_resource(name: str) -> Path:
    """``resources/templates/<name>`` next to the ``galdesk`` package (the bundled template files)."""
    import galdesk

    return Path(galdesk.__file__).resolve().parent.parent / "resources" / "templates" / name


def default_template_path() -> Path:
    """``resources/templates/bc03_miles_ssp.fits``."""
    return template_resource("bc03_miles_ssp.fits")


def second_template_path() -> Path:
    """``resources/templates/mastar_ssp.fits``: the independent library (MaStar SSPs, Maraston et al. 2020) that the
    broad-line verdict must survive (``scripts/build_mastar_templates.py``)."""
    return template_resource("mastar_ssp.fits")


@dataclass(frozen=True, eq=False)
class Templates:
    """Stellar templates on a uniform ln(λ) grid (rest frame).

    Attributes
    ----------
    flux : ndarray (n_templates, n_pix)
    ln0, dln : float
        ln(λ/Å) of the first pixel and the step.
    fwhm_a : float
        Template resolution, FWHM in Angstrom.
    ages_gyr, z_zsun, norm : ndarray
        Per template (NaN when the file does not say).
    source : str
    fwhm_pix : ndarray or None
        Resolution per pixel, FWHM in Angstrom (image extension ``FWHM``), for libraries whose resolution varies
        with wavelength (MaStar); None: ``fwhm_a`` everywhere.
    """

    flux: np.ndarray
    ln0: float
    dln: float
    fwhm_a: float
    ages_gyr: np.ndarray
    z_zsun: np.ndarray
    norm: np.ndarray
    source: str
    fwhm_pix: np.ndarray | None = None

    @property
    def lam(self) -> np.ndarray:
        return np.exp(self.ln0 + self.dln * np.arange(self.flux.shape[1]))

    def fwhm_at(self, lam_rest):
        """Template resolution (FWHM, Angstrom) at rest wavelengths: a scalar for a constant resolution."""
        if self.fwhm_pix is None:
            return self.fwhm_a
        return np.interp(np.asarray(lam_rest, float), self.lam, self.fwhm_pix)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Templates:
    from astropy.io import fits
    from astropy.table import Table

    try:
        with fits.open(path) as h:
            hd = h[0].header
            flux = np.asarray(h[0].data, dtype=float)
            names = [x.name for x in h]
            tab = Table.read(h["TEMPLATES"]) if "TEMPLATES" in names else None
            fwhm_pix = np.asarray(h["FWHM"].data, dtype=float).ravel() if "FWHM" in names else None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable template FITS file ({exc})") from exc
    if flux.ndim != 2 or flux.shape[0] < 1 or flux.shape[1] < 100:
        raise ValueError(f"{path}: expected an image of N templates x pixels, got shape {np.shape(flux)}")
    missing = [k for k in ("LNLAM0", "DLNLAM", "FWHM_A") if k not in hd]
    if missing:
        raise ValueError(f"{path}: header lacks {', '.join(missing)} (uniform ln-lambda grid and resolution)")
    if not np.all(np.isfinite(flux)):
        raise ValueError(f"{path}: templates contain NaN or infinite values")
    if fwhm_pix is not None and (fwhm_pix.size != flux.shape[1] or not np.all(np.isfinite(fwhm_pix) & (fwhm_pix > 0))):
        raise ValueError(f"{path}: the FWHM extension must give a positive resolution for each of the "
                         f"{flux.shape[1]} pixels")
    ln0, dln = float(hd["LNLAM0"]), float(hd["DLNLAM"])
    if not hd.get("VACUUM", True):  # an air grid: shift to vacuum at its middle (sub-km/s over the range)
        mid = math.exp(ln0 + dln * flux.shape[1] / 2)
        ln0 += math.log(float(LL.air_to_vac(mid)) / mid)
    n = flux.shape[0]

    def col(name):
        return np.asarray(tab[name], float) if tab is not None and name in tab.colnames else np.full(n, np.nan)

    return Templates(flux=flux, ln0=ln0, dln=dln, fwhm_a=float(hd["FWHM_A"]), ages_gyr=col("AGE_GYR"),
                     z_zsun=col("Z_ZSUN"), norm=col("NORM"), source=str(path), fwhm_pix=fwhm_pix)


def load_templates(path: str | Path | None = None) -> Templates:
    """Read a template set (default: the bundled BC03 MILES SSPs); cached per path.

    Raises
    ------
    ValueError
        The file is missing, unreadable or not in the expected layout (the message names it).
    """
    p = Path(path) if path is not None else default_template_path()
    if not p.is_file():
        raise ValueError(f"{p}: stellar template file not found")
    return _load(str(p.resolve()))
