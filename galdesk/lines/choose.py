"""Which continuum a spectrum gets under ``continuum="auto"``: decided by the spectrum, never by a survey flag.

SDSS sets SUBCLASS BROADLINE for any line with σ > 200 km/s, ordinary gas in ellipticals and S0s; a quasar
pseudo-continuum (power law + Fe II) under such a galaxy takes the Balmer absorption away and the Balmer fluxes with
it (Hβ −66 %, Hγ/Hβ = 3.1 were seen). So the choice is made from the data, on the pixels free of emission lines:

1. stellar populations (S, :func:`galdesk.lines.stellar.fit_stellar_continuum`);
2. the same plus featureless power laws (SP). If the power laws carry less than :data:`SCREEN_NUCLEUS` of the light
   at 5500 Å, there is no nucleus to speak of: the answer is S;
3. otherwise the broad-line AGN pseudo-continuum (A: host + power law + Fe II, broad lines masked,
   :func:`galdesk.lines.agn.fit_agn_continuum`). A is chosen when the nucleus carries at least
   :data:`MIN_NUCLEUS` of the continuum at 5100 Å in it **and** either it describes the pixels that both fits used
   better than SP by a BIC margin, ΔBIC = χ²(SP) − χ²(A) − :data:`EXTRA_PARAMS` · ln N > 0 (Fe II amplitude, width
   and shift, two power-law weights), or the featureless continuum is overwhelming: stars alone are worse than
   stars + power law by Δχ² > :data:`STRONG_POWERLAW` (a nucleus with weak Fe II, where A and SP fit alike).

Stars + power law is never chosen automatically: a young starburst's blue continuum and a power law are degenerate
(spec-1722-53852-0175, an H II galaxy, would put 69 % of its light in the power law) and the multi-library pPXF
reference, stars only, agrees with stars there. Ask for it with ``FitConfig(stellar_powerlaw=True)``.

The decision and its numbers are kept in :class:`ContinuumChoice` (``SpectrumFit.stellar["choice"]`` in results).
Thresholds were set on the 19 SDSS spectra of ``../shared/data`` against the reference's own split (power law ≥ 39 %
of the light at Hβ: quasar continuum; the rest: stars); ``docs/lines_validation.md`` lists the numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["ContinuumChoice", "choose_continuum", "SCREEN_NUCLEUS", "MIN_NUCLEUS", "EXTRA_PARAMS", "STRONG_POWERLAW"]

#: Power-law share of the light (stars + power law fit) below which the AGN continuum is not even tried.
SCREEN_NUCLEUS = 0.2
#: Least share of the continuum at rest 5100 Å in the nucleus (the AGN fit's power law) for an AGN continuum.
MIN_NUCLEUS = 0.35
#: Free parameters the AGN pseudo-continuum has beyond stars + power law, for the BIC penalty.
EXTRA_PARAMS = 5
#: χ²(stars) − χ²(stars + power law) above which the featureless continuum alone makes a nucleus.
STRONG_POWERLAW = 100.0


@dataclass
class ContinuumChoice:
    """Why a spectrum got its continuum.

    Attributes
    ----------
    kind : {"stellar", "agn"}
    reason : str
        One sentence with the deciding numbers.
    nucleus_screen : float
        Power-law share of the light at 5500 Å in the stars + power law fit.
    nucleus_fraction : float or None
        Power-law share of the continuum at 5100 Å in the AGN fit (None when it was not tried).
    delta_bic : float or None
        χ²(stars + power law) − χ²(AGN) − EXTRA_PARAMS ln N on the pixels both used (> 0 favours the AGN model).
    delta_chi2_powerlaw : float
        χ²(stars) − χ²(stars + power law) on the pixels both used.
    feii_dchi2 : float or None
        The AGN fit's Fe II detection (χ² without Fe II − with it).
    npix : int
        Pixels of the comparison.
    survey_class : str
        The survey's class/subclass, for reference only (not used).
    """

    kind: str
    reason: str
    nucleus_screen: float = float("nan")
    nucleus_fraction: float | None = None
    delta_bic: float | None = None
    delta_chi2_powerlaw: float = float("nan")
    feii_dchi2: float | None = None
    npix: int = 0
    survey_class: str = ""
    fits: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "fits"}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _chi2(spec, model, pix) -> float:
    return float(np.sum((spec.flux[pix] - model[pix]) ** 2 * spec.ivar[pix]))


def choose_continuum(spec, templates=None, inst_sigma_kms=None, agn_masks=None, ctx=None) -> ContinuumChoice:
    """Decide between the stellar and the AGN continuum from the spectrum (see the module text).

    ``fits`` of the result holds the fits made ({"stellar": StellarFit, "agn": AGNContinuumFit}) so that the caller
    does not fit the chosen one again.

    Raises
    ------
    ValueError
        The stellar templates cannot be fitted (too few pixels in their range, no redshift ...).
    """
    from galdesk.lines.stellar import fit_stellar_continuum

    survey = " ".join(str(x) for x in (spec.spec_class, spec.subclass) if x)
    s = fit_stellar_continuum(spec, templates, inst_sigma_kms=inst_sigma_kms, ctx=ctx)
    sp = fit_stellar_continuum(spec, templates, inst_sigma_kms=inst_sigma_kms, powerlaw=True, ctx=ctx)
    good = (np.asarray(spec.ivar) > 0) & ~np.asarray(spec.mask, bool)
    both = s.used & sp.used & good & np.isfinite(s.model) & np.isfinite(sp.model)
    d_pl = _chi2(spec, s.model, both) - _chi2(spec, sp.model, both)
    screen = float(sp.powerlaw_fraction)
    out = ContinuumChoice(kind="stellar", reason="", nucleus_screen=screen, delta_chi2_powerlaw=d_pl,
                          npix=int(both.sum()), survey_class=survey, fits={"stellar": s, "stellar_powerlaw": sp})
    if not np.isfinite(screen):
        out.reason = ("stellar: no power-law share could be measured (the templates fit no light: e.g. a "
                      "continuum-subtracted spectrum)")
        return out
    if not screen >= SCREEN_NUCLEUS:
        out.reason = (f"stellar: a power law would carry {screen:.0%} of the light (< {SCREEN_NUCLEUS:.0%}), "
                      "no nucleus")
        return out
    from galdesk.lines.agn import agn_masks as default_masks
    from galdesk.lines.agn import fit_agn_continuum

    try:
        a = fit_agn_continuum(spec, templates, inst_sigma_kms=inst_sigma_kms,
                              masks=agn_masks if agn_masks is not None else default_masks("masks"), ctx=ctx)
    except ValueError as exc:
        out.reason = f"stellar: the AGN continuum could not be fitted ({exc})"
        return out
    common = both & a.used & np.isfinite(a.model)
    n = int(common.sum())
    dbic = _chi2(spec, sp.model, common) - _chi2(spec, a.model, common) - EXTRA_PARAMS * math.log(max(n, 2))
    nuc = float(a.powerlaw_fraction)
    out.nucleus_fraction, out.delta_bic, out.feii_dchi2, out.npix = nuc, float(dbic), float(a.feii_dchi2), n
    if nuc >= MIN_NUCLEUS and (dbic > 0 or d_pl > STRONG_POWERLAW):
        out.kind = "agn"
        out.fits["agn"] = a
        why = (f"power law + Fe II beat stars + power law by ΔBIC {dbic:.0f} on {n} line-free pixels" if dbic > 0
               else f"stars alone miss the featureless continuum by Δχ² {d_pl:.0f} (> {STRONG_POWERLAW:.0f})")
        out.reason = f"AGN: the nucleus carries {nuc:.0%} of the continuum at 5100 Å (≥ {MIN_NUCLEUS:.0%}) and {why}"
    elif nuc < MIN_NUCLEUS:
        out.reason = (f"stellar: the nucleus would carry only {nuc:.0%} of the continuum at 5100 Å "
                      f"(< {MIN_NUCLEUS:.0%})")
    else:
        out.reason = (f"stellar: power law + Fe II do not describe the line-free pixels better than stars + power "
                      f"law (ΔBIC {dbic:.0f} ≤ 0 on {n} pixels) and stars alone are close (Δχ² {d_pl:.0f})")
    return out
