"""Helpers for the emission-line tests: read SDSS spec files and the reference tables (no galdesk.io needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from galdesk.io.model import SpectrumData

C_KMS = 299792.458

#: SDSS SPZLINE names -> galdesk.lines names
SDSS_NAMES = {
    "[O_II] 3725": "oii3726", "[O_II] 3727": "oii3729", "H_gamma": "hgamma", "H_beta": "hbeta",
    "[O_III] 4959": "oiii4959", "[O_III] 5007": "oiii5007", "[O_I] 6300": "oi6300", "[N_II] 6548": "nii6548",
    "H_alpha": "halpha", "[N_II] 6583": "nii6584", "[S_II] 6716": "sii6717", "[S_II] 6730": "sii6731",
}


def read_sdss(path) -> SpectrumData:
    """SpectrumData from an SDSS/BOSS spec-*.fits (HDU1 COADD, HDU2 SPECOBJ), wdisp -> resolution_kms."""
    try:  # the project reader, when it exists
        from galdesk.io.reading import read  # noqa: F401

        spec = read(path)[0]
        if spec.resolution_kms is not None and spec.redshift is not None:
            return spec
    except Exception:
        pass
    from astropy.io import fits

    with fits.open(path, memmap=False) as f:
        d = f[1].data
        wave = 10 ** np.asarray(d["loglam"], dtype=float)
        flux = np.asarray(d["flux"], dtype=float)
        ivar = np.asarray(d["ivar"], dtype=float)
        names = [n.lower() for n in d.columns.names]
        wdisp = np.asarray(d["wdisp"], dtype=float) if "wdisp" in names else None
        so = f[2].data
        z = float(so["Z"][0])
        cls = str(so["CLASS"][0]).strip() if "CLASS" in so.columns.names else None
        sub = str(so["SUBCLASS"][0]).strip() if "SUBCLASS" in so.columns.names else None
    # ivar already carries the pipeline's bad-pixel rejection; and_mask bits such as BRIGHTSKY would also drop
    # usable pixels (the SDSS line fitter uses ivar too)
    mask = (ivar <= 0) | ~np.isfinite(flux)
    res = wdisp * 1e-4 * np.log(10) * C_KMS if wdisp is not None else None
    return SpectrumData(wavelength=wave, flux=flux, ivar=np.where(mask, 0.0, ivar), mask=mask, source=str(path),
                        id=Path(path).stem, vacuum=True, flux_unit="1e-17 erg / (s cm2 Angstrom)", redshift=z,
                        spec_class=cls, subclass=sub, resolution_kms=res)


def spzline_rows(shared: Path) -> list[dict]:
    with open(shared / "reference" / "sdss_spzline_reference_lines.csv") as fh:
        return list(csv.DictReader(fh))


def spectra_index(shared: Path) -> dict[str, dict]:
    with open(shared / "reference" / "sdss_spectra_index.csv") as fh:
        return {r["path"]: r for r in csv.DictReader(fh)}


def narrow_line_galaxies(shared: Path) -> list[str]:
    """Index paths of GALAXY spectra that are not broad-line and have a redshift."""
    out = []
    for p, r in spectra_index(shared).items():
        if r["CLASS"] == "GALAXY" and "BROAD" not in r["SUBCLASS"] and r["Z"] and float(r["Z"]) > 0:
            out.append(p)
    return out
