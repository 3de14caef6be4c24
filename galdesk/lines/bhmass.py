"""Single-epoch virial black-hole masses and AGN luminosities from broad Balmer lines.

The recipes astronomers compare with (one line width and one luminosity, calibrated on reverberation mapping):

* **Hβ + L5100**, Vestergaard & Peterson (2006, ApJ 641, 689), eq. 5:
  log M = log{[FWHM(Hβ) / 1000 km/s]² [λL_λ(5100 Å) / 10⁴⁴ erg/s]^0.50} + 6.91.
  λL5100 is the *nucleus'* continuum: the power law of the AGN pseudo-continuum (:mod:`galdesk.lines.agn`), with
  the host and Fe II removed.
* **Hβ + L(Hβ)**, Vestergaard & Peterson (2006), eq. 6:
  log M = log{[FWHM(Hβ) / 1000 km/s]² [L(Hβ broad) / 10⁴² erg/s]^0.63} + 6.67 — free of host light.
* **Hα**, Greene & Ho (2005, ApJ 630, 122), eq. 6:
  M = 2.0 × 10⁶ M☉ [L(Hα broad) / 10⁴² erg/s]^0.55 [FWHM(Hα) / 1000 km/s]^2.06 — for Seyferts whose
  continuum is the host's.

Luminosities use a flat ΛCDM cosmology with H0 = 70 km/s/Mpc and Ωm = 0.3 (the convention of these calibrations,
of the SDSS quasar catalogues and of PyQSOFit), the spectrum's redshift, and no Galactic or internal extinction
correction. The errors given are the *measurement* errors (line width, flux and continuum, propagated to first
order); every single-epoch estimator carries a further ≈0.43 dex (1σ) of calibration scatter (Vestergaard &
Peterson 2006), reported as ``systematic_dex`` and not added in.
"""

from __future__ import annotations

import functools
import math

__all__ = ["COSMOLOGY", "SYSTEMATIC_DEX", "flux_unit_cgs", "luminosity_distance_cm", "black_hole_masses",
           "describe_masses"]

#: Description of the cosmology used for luminosities.
COSMOLOGY = "flat ΛCDM, H0 = 70 km/s/Mpc, Ωm = 0.3"
#: Calibration scatter of single-epoch virial masses (1σ, dex; Vestergaard & Peterson 2006).
SYSTEMATIC_DEX = 0.43
LN10 = math.log(10.0)


@functools.lru_cache(maxsize=None)
def _cosmo():
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=70.0, Om0=0.3)


def luminosity_distance_cm(z: float) -> float:
    """Luminosity distance in cm for :data:`COSMOLOGY`."""
    return float(_cosmo().luminosity_distance(float(z)).to("cm").value)


@functools.lru_cache(maxsize=64)
def flux_unit_cgs(flux_unit: str) -> float | None:
    """erg s⁻¹ cm⁻² Å⁻¹ per unit of ``flux_unit`` (e.g. 1e-17 for SDSS), or None if it is not an f_λ unit."""
    import astropy.units as u

    if not flux_unit or not str(flux_unit).strip():
        return None
    try:
        unit = u.Unit(str(flux_unit))
        return float(unit.to(u.erg / u.s / u.cm ** 2 / u.AA))
    except (ValueError, TypeError, u.UnitsError):
        return None


def _log_err(value, err):
    """Error of log10(value) from the error of value."""
    if err is None or not (value > 0) or not math.isfinite(err):
        return float("nan")
    return err / (value * LN10)


def black_hole_masses(z: float | None, flux_unit: str, hbeta=None, halpha=None, f5100: float | None = None,
                      f5100_err: float | None = None) -> dict:
    """Luminosities and virial masses of one spectrum.

    Parameters
    ----------
    z : float
        Redshift (luminosity distance, rest wavelengths).
    flux_unit : str
        The spectrum's flux unit (an f_λ unit such as ``"1e-17 erg / (s cm2 Angstrom)"``).
    hbeta, halpha : LineMeasurement or None
        The broad Hβ / Hα (sum of the broad Gaussians): ``flux``, ``flux_err`` (flux unit × Å), ``fwhm_kms``,
        ``fwhm_err``.
    f5100, f5100_err : float or None
        The nucleus' continuum at rest 5100 Å, observed f_λ in ``flux_unit`` (the AGN fit's ``powerlaw_5100``).

    Returns
    -------
    dict
        ``log_l5100`` (λL_λ, erg/s), ``log_l_hbeta``, ``log_l_halpha`` (broad lines, erg/s), ``log_mbh_hbeta``
        (VP06 eq. 5), ``log_mbh_hbeta_lhb`` (VP06 eq. 6), ``log_mbh_halpha`` (GH05 eq. 6), in log10 M☉, each with
        ``*_err`` (measurement error, dex); ``systematic_dex``, ``cosmology``, ``messages``. A quantity whose
        inputs are missing is absent.
    """
    out: dict = {"systematic_dex": SYSTEMATIC_DEX, "cosmology": COSMOLOGY, "messages": []}
    if z is None or not (z > 0):
        out["messages"].append("no positive redshift: no luminosities")
        return out
    scale = flux_unit_cgs(flux_unit)
    if scale is None:
        out["messages"].append(f"flux unit {flux_unit!r} is not an f_λ unit: no luminosities")
        return out
    four_pi_d2 = 4.0 * math.pi * luminosity_distance_cm(z) ** 2

    def line(m):
        if m is None or not (m.flux > 0) or not (m.fwhm_kms > 0):
            return None
        lum = four_pi_d2 * m.flux * scale
        return (math.log10(lum), _log_err(m.flux, m.flux_err), math.log10(m.fwhm_kms / 1000.0),
                _log_err(m.fwhm_kms, m.fwhm_err))

    hb, ha = line(hbeta), line(halpha)
    l5100 = None
    if f5100 is not None and f5100 > 0 and math.isfinite(f5100):
        # λL_λ(rest 5100) = 4π d_L² λ_obs f_λ,obs
        l5100 = (math.log10(four_pi_d2 * 5100.0 * (1 + z) * f5100 * scale), _log_err(f5100, f5100_err))
        out["log_l5100"], out["log_l5100_err"] = l5100
    if hb is not None:
        out["log_l_hbeta"], out["log_l_hbeta_err"] = hb[0], hb[1]
    if ha is not None:
        out["log_l_halpha"], out["log_l_halpha_err"] = ha[0], ha[1]

    def combine(terms):
        """Sum of coefficient x log-quantity with errors added in quadrature."""
        val = sum(c * v for c, v, _ in terms)
        err = math.sqrt(sum((c * e) ** 2 for c, _, e in terms if math.isfinite(e)))
        return val, err

    if hb is not None and l5100 is not None:
        v, e = combine([(2.0, hb[2], hb[3]), (0.5, l5100[0] - 44.0, l5100[1])])
        out["log_mbh_hbeta"], out["log_mbh_hbeta_err"] = v + 6.91, e
    if hb is not None:
        v, e = combine([(2.0, hb[2], hb[3]), (0.63, hb[0] - 42.0, hb[1])])
        out["log_mbh_hbeta_lhb"], out["log_mbh_hbeta_lhb_err"] = v + 6.67, e
    if ha is not None:
        v, e = combine([(2.06, ha[2], ha[3]), (0.55, ha[0] - 42.0, ha[1])])
        out["log_mbh_halpha"], out["log_mbh_halpha_err"] = v + math.log10(2.0e6), e
    return out


def describe_masses(bh: dict) -> str:
    """One line of text for a :func:`black_hole_masses` result ("" when it holds no mass)."""
    labels = (("log_mbh_hbeta", "Hβ+L5100"), ("log_mbh_hbeta_lhb", "Hβ+L(Hβ)"), ("log_mbh_halpha", "Hα"))
    masses = [f"{lab} {bh[k]:.2f} ± {bh.get(f'{k}_err') or float('nan'):.2f}" for k, lab in labels
              if bh.get(k) is not None]
    if not masses:
        return ""
    l5100 = f"; log λL5100 {bh['log_l5100']:.2f}" if bh.get("log_l5100") is not None else ""
    return (f"virial log M_BH/M☉: {', '.join(masses)}{l5100} (measurement errors; "
            f"±{bh.get('systematic_dex', SYSTEMATIC_DEX):.2f} dex calibration scatter)")
