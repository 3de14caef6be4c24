"""Physical constants and unit strings shared by readers, line fitting and export (no dependencies).

One place for each, so that a reader, the line engine and the demo never disagree on them.
"""

__all__ = ["C_KMS", "SDSS_FLUX_UNIT"]

#: speed of light in km/s (CODATA exact value, as ``astropy.constants.c``)
C_KMS = 299792.458

#: flux density unit of SDSS/BOSS/DESI spectra (astropy unit string)
SDSS_FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"
