"""A synthetic DESI coadd and its redrock file, following the DESI data model (no real DESI data is in shared/data).

Five fibres: a sky fibre (FIBERMAP OBJTYPE SKY), a dead fibre (every pixel masked), and three emission-line
galaxies at known redshifts, one of them with ZWARN = 4 (redrock's SMALL_DELTA_CHI2). The coadd's name part
(``main-dark-1234``) pairs it with ``redrock-main-dark-1234.fits``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

C_KMS = 299792.458
NAME = "main-dark-1234"
TIDS = np.array([39627000000000100, 39627000000000101, 39627000000000102, 39627000000000103, 39627000000000104],
                dtype=np.int64)
SKY, DEAD, GAL_A, GAL_B, GAL_C = (str(t) for t in TIDS)
#: redrock's answer per target (the sky fibre's Z is the nonsense redrock gives sky, with its SKY bit)
Z = {SKY: 1.2345, DEAD: 0.0, GAL_A: 0.05, GAL_B: 0.12, GAL_C: 0.08}
ZWARN = {SKY: 1, DEAD: 512, GAL_A: 0, GAL_B: 0, GAL_C: 4}
SPECTYPE = {SKY: "GALAXY", DEAD: "GALAXY", GAL_A: "GALAXY", GAL_B: "GALAXY", GAL_C: "GALAXY"}
#: line -> (rest vacuum wavelength, integrated flux in 1e-17 erg/s/cm2) of every galaxy
LINES = {"hbeta": (4862.68, 100.0), "oiii5007": (5008.24, 60.0), "oiii4959": (4960.30, 20.0),
         "halpha": (6564.61, 300.0), "nii6584": (6585.27, 90.0), "nii6548": (6549.86, 30.0)}
SIGMA_KMS = 120.0
STEP = 0.8
GRIDS = {"B": 3600.0 + STEP * np.arange(2751), "R": 5760.0 + STEP * np.arange(2326),
         "Z": 7520.0 + STEP * np.arange(2881)}


def galaxy_flux(wave: np.ndarray, z: float) -> np.ndarray:
    """Continuum 5 (1e-17 erg/s/cm2/A) with the :data:`LINES` as Gaussians at redshift ``z``."""
    flux = np.full(wave.size, 5.0)
    for rest, total in LINES.values():
        centre = rest * (1 + z)
        sigma = centre * SIGMA_KMS / C_KMS
        flux += total / (sigma * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    return flux


def spectra(seed: int = 3) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """arm -> (flux, ivar, mask) arrays of shape (5, n) in :data:`TIDS` order."""
    rng = np.random.default_rng(seed)
    noise = 0.3
    out = {}
    for arm, w in GRIDS.items():
        flux = np.zeros((5, w.size), np.float32)
        ivar = np.full((5, w.size), 1 / noise**2, np.float32)
        mask = np.zeros((5, w.size), np.int32)
        flux[0] = rng.normal(0, noise, w.size)                       # sky fibre: sky-subtracted noise
        ivar[1] = 0.0                                                 # dead fibre
        mask[1] = 1
        flux[1] = rng.normal(0, 1, w.size)
        for k, tid in ((2, GAL_A), (3, GAL_B), (4, GAL_C)):
            flux[k] = galaxy_flux(w, Z[tid]) + rng.normal(0, noise, w.size)
        out[arm] = (flux, ivar, mask)
    return out


def write_coadd(folder: Path, name: str = NAME) -> Path:
    """``folder/coadd-<name>.fits``: FIBERMAP (TARGETID, OBJTYPE, TARGET_RA/DEC) and the B/R/Z arms."""
    from astropy.io import fits
    from astropy.table import Table

    folder.mkdir(parents=True, exist_ok=True)
    hdus = [fits.PrimaryHDU()]
    fm = Table({"TARGETID": TIDS, "OBJTYPE": ["SKY", "TGT", "TGT", "TGT", "TGT"],
                "TARGET_RA": [150.0, 150.1, 150.2, 150.3, 150.4], "TARGET_DEC": [2.0, 2.1, 2.2, 2.3, 2.4]})
    hdus.append(fits.table_to_hdu(fm))
    hdus[-1].name = "FIBERMAP"
    for arm, (flux, ivar, mask) in spectra().items():
        for kind, data in (("WAVELENGTH", GRIDS[arm]), ("FLUX", flux), ("IVAR", ivar), ("MASK", mask)):
            hdus.append(fits.ImageHDU(data, name=f"{arm}_{kind}"))
    path = folder / f"coadd-{name}.fits"
    fits.HDUList(hdus).writeto(path)
    return path


def write_redrock(folder: Path, name: str = NAME, prefix: str = "redrock", hdu: str = "REDSHIFTS") -> Path:
    """``folder/<prefix>-<name>.fits``: the REDSHIFTS (zbest: ZBEST) table, in another order than the FIBERMAP,
    with a FIBERMAP HDU as redrock writes it."""
    from astropy.io import fits
    from astropy.table import Table

    order = TIDS[::-1]
    red = Table({"TARGETID": order, "CHI2": np.ones(5), "COEFF": np.zeros((5, 10)),
                 "Z": [Z[str(t)] for t in order], "ZERR": np.full(5, 1e-5),
                 "ZWARN": [ZWARN[str(t)] for t in order], "NPIXELS": np.full(5, 7000),
                 "SPECTYPE": [SPECTYPE[str(t)] for t in order], "SUBTYPE": [""] * 5, "DELTACHI2": np.full(5, 100.0)})
    hdus = [fits.PrimaryHDU(), fits.table_to_hdu(red)]
    hdus[-1].name = hdu
    fm = fits.table_to_hdu(Table({"TARGETID": TIDS}))
    fm.name = "FIBERMAP"
    hdus.append(fm)
    path = folder / f"{prefix}-{name}.fits"
    fits.HDUList(hdus).writeto(path)
    return path


def write_pair(folder: Path) -> tuple[Path, Path]:
    """The coadd and its redrock file in ``folder``."""
    return write_coadd(folder), write_redrock(folder)
