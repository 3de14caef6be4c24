"""Emission lines in vacuum wavelengths (SDSS convention), air/vacuum conversion and line complexes.

Wavelengths are the vacuum values the SDSS spectro-1D pipeline uses (``LINEWAVE`` in the ``SPZLINE`` HDU, i.e. the
air wavelengths of ``emlines.par`` converted to vacuum). Spectra in air (6dFGS, most long-slit data) are compared
after :func:`vac_to_air` of these values, never by converting the data.

A *complex* is a set of lines that overlap or share a continuum window and are therefore fitted together (one
residual function): Hα+[NII] is one complex, not three fits. Narrow lines of a complex share one velocity and one
width (km/s); doublets with a ratio fixed by atomic physics are tied (:data:`DOUBLET_RATIOS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LINES",
    "LABELS",
    "BALMER",
    "DOUBLET_RATIOS",
    "Complex",
    "COMPLEXES",
    "air_to_vac",
    "vac_to_air",
]

#: Rest-frame vacuum wavelengths in Angstrom (SDSS ``LINEWAVE``).
LINES: dict[str, float] = {
    "oii3726": 3727.091727,
    "oii3729": 3729.875448,
    "hdelta": 4102.892,
    "hgamma": 4341.684313,
    "heii4686": 4686.991444,
    "hbeta": 4862.682994,
    "oiii4959": 4960.294901,
    "oiii5007": 5008.239638,
    "oi6300": 6302.046377,
    "siii6312": 6313.805533,
    "oi6363": 6365.535420,
    "nii6548": 6549.858929,
    "halpha": 6564.613894,
    "nii6584": 6585.268445,
    "sii6717": 6718.294208,
    "sii6731": 6732.678076,
}

#: Human-readable labels (for plots and tables).
LABELS: dict[str, str] = {
    "oii3726": "[OII] 3726",
    "oii3729": "[OII] 3729",
    "hdelta": "Hδ",
    "hgamma": "Hγ",
    "heii4686": "HeII 4686",
    "hbeta": "Hβ",
    "oiii4959": "[OIII] 4959",
    "oiii5007": "[OIII] 5007",
    "oi6300": "[OI] 6300",
    "siii6312": "[SIII] 6312",
    "oi6363": "[OI] 6363",
    "nii6548": "[NII] 6548",
    "halpha": "Hα",
    "nii6584": "[NII] 6584",
    "sii6717": "[SII] 6717",
    "sii6731": "[SII] 6731",
}

#: Balmer lines: the ones that can carry a broad (BLR) component and sit in a stellar absorption trough.
BALMER = ("halpha", "hbeta", "hgamma", "hdelta")

#: Fixed flux ratios: weak line -> (strong line, strong/weak flux ratio). Storey & Zeippen (2000) give 2.98 for
#: [OIII] 5007/4959; for [NII] 6584/6548 we use 2.96 (Osterbrock & Ferland 2006), for [OI] 6300/6363 3.0.
DOUBLET_RATIOS: dict[str, tuple[str, float]] = {
    "oiii4959": ("oiii5007", 2.98),
    "nii6548": ("nii6584", 2.96),
    "oi6363": ("oi6300", 3.0),
}


#: Electron-density calibration of the density-sensitive doublets at 10^4 K (Sanders et al. 2016, ApJ 816, 23,
#: eq. 7): line -> (partner, a, b, c) with ratio(line/partner) = a (b + n_e) / (c + n_e), n_e in cm^-3.
DENSITY_CALIBRATION: dict[str, tuple[str, float, float, float]] = {
    "sii6717": ("sii6731", 0.4315, 2107.0, 627.1),
    "oii3729": ("oii3726", 0.3771, 2468.0, 638.4),
}

#: Density-sensitive doublets: line -> (partner, lowest, highest flux ratio line/partner): the high-density (a) and
#: low-density (a b / c) limits of :data:`DENSITY_CALIBRATION` ([SII] 6717/6731: 0.4315-1.4498; [OII] 3729/3726:
#: 0.3771-1.4578). The fit uses the partner's flux and the bounded ratio.
BOUNDED_RATIOS: dict[str, tuple[str, float, float]] = {
    line: (partner, a, a * b / c) for line, (partner, a, b, c) in DENSITY_CALIBRATION.items()
}


def electron_density(line: str, ratio: float, ratio_err: float | None = None) -> dict:
    """Electron density (cm^-3) from a doublet ratio (Sanders et al. 2016 at 10^4 K).

    Returns
    -------
    dict
        ``ratio``, ``ratio_err``, ``n_e`` (None at or beyond the low/high-density limit), ``n_e_lo``/``n_e_hi``
        (the densities at ratio +- its error, clipped: ``n_e_lo = 0`` when the ratio is consistent with the
        low-density limit, ``n_e_hi = None`` when consistent with the high-density limit) and ``limit``
        (``"low-density"``, ``"high-density"`` or None).
    """
    _, a, b, c = DENSITY_CALIBRATION[line]
    r_hi, r_lo = a * b / c, a

    def ne(r):
        if r >= r_hi:
            return 0.0
        if r <= r_lo:
            return None
        return (c * r - a * b) / (a - r)

    err = float(ratio_err) if ratio_err is not None and np.isfinite(ratio_err) else 0.0
    tol = 1e-6 * r_hi
    limit = "low-density" if ratio >= r_hi - tol else ("high-density" if ratio <= r_lo + tol else None)
    value = None if limit else ne(ratio)
    return {"ratio": float(ratio), "ratio_err": float(err), "n_e": value, "n_e_lo": ne(ratio + err),
            "n_e_hi": ne(ratio - err), "limit": limit}


@dataclass(frozen=True)
class Complex:
    """A group of lines fitted together.

    Attributes
    ----------
    name : str
        Key in :data:`COMPLEXES`.
    lines : tuple of str
        Line names (keys of :data:`LINES`) that get a narrow component.
    broad : tuple of str
        Lines that may get broad (BLR) component(s); Balmer lines only.
    outflow : tuple of str
        Lines that may get a second, broader "outflow wing" component ([OIII]).
    absorption : tuple of str
        Balmer lines that may get a stellar absorption trough.
    """

    name: str
    lines: tuple[str, ...]
    broad: tuple[str, ...] = ()
    outflow: tuple[str, ...] = ()
    absorption: tuple[str, ...] = ()
    label: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def wave_range(self) -> tuple[float, float]:
        """(min, max) rest vacuum wavelength of its lines, Angstrom."""
        w = [LINES[n] for n in self.lines]
        return min(w), max(w)


#: The complexes the fitter knows. ``"halpha"`` is Hα+[NII] 6548,6584 ([SII] is its own complex ``"sii"``).
COMPLEXES: dict[str, Complex] = {
    # the outflow wing of Hα+[NII] is used only with the [OIII] wing's kinematics (galdesk.lines.spectrum)
    "halpha": Complex("halpha", ("nii6548", "halpha", "nii6584"), broad=("halpha",), absorption=("halpha",),
                      outflow=("nii6548", "halpha", "nii6584"), label="Hα + [NII]"),
    "hbeta": Complex("hbeta", ("hbeta", "oiii4959", "oiii5007"), broad=("hbeta",),
                     outflow=("oiii4959", "oiii5007"), absorption=("hbeta",), label="Hβ + [OIII]"),
    "sii": Complex("sii", ("sii6717", "sii6731"), label="[SII] 6717,6731"),
    # [SIII] 6312 lies 560 km/s from [OI] 6300: fitted with it rather than masked
    "oi": Complex("oi", ("oi6300", "siii6312", "oi6363"), label="[OI] 6300,6363 + [SIII] 6312"),
    "oii": Complex("oii", ("oii3726", "oii3729"), label="[OII] 3726,3729"),
    "hgamma": Complex("hgamma", ("hgamma",), broad=("hgamma",), absorption=("hgamma",), label="Hγ"),
    # weak, in a deep stellar trough: not fitted by default (--lines hdelta); it takes the Balmer kinematics
    "hdelta": Complex("hdelta", ("hdelta",), absorption=("hdelta",), label="Hδ"),
    "heii": Complex("heii", ("heii4686",), label="HeII 4686"),
}


def _n_air(s2: np.ndarray) -> np.ndarray:
    """Refractive index of standard air (Morton 2000, eq. 8; the IAU standard of Edlén 1966 / Birch & Downs 1994).

    ``s2`` is (1e4 / lambda_vac[Angstrom])**2 in micron^-2.
    """
    return 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def vac_to_air(wave_vac):
    """Vacuum to air wavelength (Morton 2000), Angstrom; values below 2000 A are returned unchanged (convention).

    Parameters
    ----------
    wave_vac : float or array_like
        Vacuum wavelength, Angstrom.

    Returns
    -------
    float or ndarray
        Air wavelength, Angstrom.
    """
    w = np.asarray(wave_vac, dtype=float)
    s2 = (1e4 / w) ** 2
    out = np.where(w >= 2000.0, w / _n_air(s2), w)
    return float(out) if out.ndim == 0 else out


def air_to_vac(wave_air):
    """Air to vacuum wavelength, the exact inverse of :func:`vac_to_air` (fixed-point iteration, < 1e-8 A).

    Parameters
    ----------
    wave_air : float or array_like
        Air wavelength, Angstrom; values below 2000 A are returned unchanged.

    Returns
    -------
    float or ndarray
        Vacuum wavelength, Angstrom.
    """
    a = np.asarray(wave_air, dtype=float)
    v = a.copy()
    for _ in range(4):  # n - 1 ~ 3e-4, so each pass gains ~3.5 decimal digits
        v = a * _n_air((1e4 / v) ** 2)
    out = np.where(a >= 2000.0, v, a)
    return float(out) if out.ndim == 0 else out
