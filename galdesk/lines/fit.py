"""Gaussian emission-line fitting with lmfit: complexes, broad-component test, derived quantities.

The interactive engine and the reference for the batched fitter (:mod:`galdesk.lines.vectorized`). Each complex is
fitted with ONE residual function handed to :func:`lmfit.minimize` (Levenberg–Marquardt, analytic Jacobian); the
model itself lives in :mod:`galdesk.lines.model`. Units throughout:

* wavelengths: observed-frame vacuum Angstrom (air spectra are converted with :func:`~galdesk.lines.linelist.air_to_vac`
  on the fly; the data are never resampled);
* flux: the spectrum's flux-density unit x Angstrom (observed frame), e.g. 1e-17 erg/s/cm^2 for SDSS;
* velocity: km/s relative to the redshift ``spec.redshift``; dispersion (sigma) and FWHM: intrinsic km/s, the
  instrumental dispersion (``spec.resolution_kms``, SDSS ``wdisp``) removed in quadrature;
* equivalent width: rest frame, Angstrom, positive for emission.

Uncertainties come from the covariance (J^T W J)^-1 with W = inverse variance, not rescaled by the reduced chi^2
unless ``FitConfig.scale_covar``; derived quantities (flux of tied lines, FWHM of multi-Gaussian broad lines, EW)
are propagated with the numerical gradient. ``FitConfig.mc_samples > 0`` instead refits that many noise
realisations (with the batched fitter, all at once) and reports their standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.model import FWHM_PER_SIGMA, Layout, covariance, evaluate, fwhm_of_sum, propagate
from galdesk.tasks import Cancelled, NullContext
from galdesk.units import C_KMS

__all__ = [
    "FitConfig",
    "LineMeasurement",
    "ComplexFit",
    "BroadTest",
    "SpectrumFit",
    "fit_complex",
    "fit_spectrum",
    "summarize",
    "broad_test",
    "compare_fits",
    "build_layout",
    "prepare_data",
]

#: Lines that are not fitted but lie close to fitted ones: their pixels are masked out of a complex's window.
INTERLOPERS: dict[str, float] = {
    "neiii3869": 3869.856797,
    "hdelta": 4102.891631,
    "oiii4363": 4364.435300,
    "hei5876": 5877.249,
    "siii6312": 6313.805533,
    "hei6678": 6679.995,
    "ariii7135": 7137.757103,
}


#: Values of :attr:`FitConfig.continuum`.
CONTINUA = ("auto", "stellar", "agn", "local")


@dataclass
class FitConfig:
    """How to fit a spectrum.

    Attributes
    ----------
    complexes : tuple of str
        Keys of :data:`galdesk.lines.linelist.COMPLEXES` to fit (those outside the spectrum are skipped).
    broad : {"auto", "yes", "no"}
        Broad Balmer component(s): test with ΔBIC and F-test and keep it if needed ("auto"), always, or never.
    n_broad : int or "auto"
        Number of broad Gaussians per Balmer line (their sum is reported as one broad line); "auto" starts with one
        and adds a second (up to ``max_broad``) while that lowers the BIC by more than ``bic_threshold``.
    outflow : {"auto", "yes", "no"}
        Second, broader [OIII] component ("outflow wing"), tested like the broad one.
    continuum_order : int
        Order of the local polynomial continuum (1 = linear).
    window_kms : float
        Half-width of the fitting window beyond the outermost line of a complex, km/s (narrow lines only).
    broad_window_kms : float
        The same when a broad component is considered (both fits of a broad test use this window).
    window_angstrom : float or None
        If set, a rest-frame half-width in Angstrom that replaces the two above.
    continuum : {"auto", "stellar", "agn", "local"}
        "stellar": fit the whole spectrum with stellar-population templates, emission masked
        (:func:`galdesk.lines.stellar.fit_stellar_continuum`), and use that model in every window as a continuum
        template with a free scale, plus the local polynomial: the Balmer absorption under Hβ and Hα then has the
        stellar populations' shape, and its depth is fitted jointly with the lines (as the SDSS pipeline's
        ``linebackfit`` does with its stellar background). "local": polynomial only (plus the Gaussian trough of
        ``absorption``). "agn": the broad-line AGN pseudo-continuum, host galaxy + power law + Fe II with the broad
        lines masked (:func:`galdesk.lines.agn.fit_agn_continuum`), used like the stellar model but with the
        local polynomial of order ``agn_continuum_order`` and the broad window ``agn_broad_window_kms``.
        "auto" (default): "stellar", or "agn" for SDSS class QSO or subclass BROADLINE, falling back to "local"
        when the templates cannot be fitted (the reason is kept in ``spec.meta["stellar_error"]``). The continuum
        fit is done once per spectrum and cached in ``spec.meta`` (``"stellar_fit"``, ``"stellar_continuum"``,
        ``"continuum_kind"``); a model put in ``spec.meta["stellar_continuum"]`` by the caller (same pixels as the
        flux) is used as it is.
    stellar_templates : str or None
        Template FITS file (default: the bundled BC03 MILES SSPs, see :mod:`galdesk.lines.stellar`).
    density_bounds : bool
        Fit [SII] 6717 as R x [SII] 6731 and [OII] 3729 as R x [OII] 3726 with R bounded by atomic physics
        (:data:`galdesk.lines.linelist.BOUNDED_RATIOS`, the low- and high-density limits), instead of two free
        fluxes that noise can push to impossible ratios.
    stellar_powerlaw : bool
        Add featureless power laws to the stellar templates (an AGN continuum, which otherwise passes for young
        stars with deep Balmer absorption); off by default (see ``docs/lines_validation.md`` §1).
    agn_continuum_order : int
        Order of the local polynomial on top of the AGN pseudo-continuum (0: a constant offset). The
        pseudo-continuum already has the slope; a free slope inside one window trades with the wings of a broad
        line as wide as the window (spec-1599's broad Hβ became a 21 000 km/s Gaussian under a tilted line).
    agn_broad_window_kms : float
        ``broad_window_kms`` with the AGN pseudo-continuum: wide enough that a 10 000 km/s broad line has
        continuum on both sides.
    agn_windows : {"masks", "qso"}
        Pixels the AGN pseudo-continuum is fitted to: everything outside the broad lines and the narrow lines
        (default), or only the line-free windows of quasar catalogues (Shen et al. 2011, PyQSOFit;
        :data:`galdesk.lines.agn.QSO_WINDOWS`) to reproduce their recipe. The windows constrain the Fe II width
        much less (``docs/lines_validation.md`` §3).
    stellar_scale_free : bool
        Let the stellar model's scale (``stellar_scale``) vary in each window instead of holding it at 1. Off by
        default: inside one window the scale is degenerate with the polynomial and the emission-line wings (on
        SDSS galaxies it wandered to 2.8 under Hα+[NII]), and the whole-spectrum fit already fixed it.
    absorption : bool or "auto"
        With the local continuum only: add a stellar Balmer absorption trough (negative Gaussian, own width,
        velocity tied to the narrow lines) under Hα, Hβ and Hγ so that their emission fluxes are not biased low.
        "auto": for everything but SDSS class QSO (a quasar dominates its continuum, and a trough there only trades
        flux with the broad line). In a broad test the fit with the broad line keeps the trough of the fit without
        it (fixed: a free trough and a broad line of similar width cancel); its depth is capped (``abs_ew_max``).
        Never used together with a stellar continuum.
    mc_samples : int
        Noise realisations for Monte Carlo errors (0 = covariance only).
    mask_kms : float
        Half-width (km/s) of the masks put on other lines that fall in a window.
    narrow_sigma_max, broad_sigma_min, broad_sigma_max, outflow_sigma_max, abs_sigma_min, abs_sigma_max : float
        Bounds on intrinsic dispersions, km/s.
    abs_ew_max : float
        Deepest Balmer absorption trough allowed, rest-frame EW in Angstrom (of the starting continuum).
    narrow_v_max, broad_v_max : float
        Bounds on |velocity offset| from the redshift, km/s.
    inst_sigma_kms : float or None
        Instrumental dispersion to use when the spectrum has no ``resolution_kms`` (default 0).
    bic_threshold, ftest_alpha, min_broad_snr : float
        A broad (or outflow) component is "needed" when ΔBIC > bic_threshold, the F-test p-value < ftest_alpha and
        its flux S/N > min_broad_snr.
    bpt_min_snr : float
        Minimum S/N of each line of a BPT ratio.
    tie_balmer : bool
        In :func:`fit_spectrum`, give narrow Hβ the velocity and width of narrow Hα (fixed) instead of those of
        [OIII]: in AGN the [OIII] kinematics differ from the Balmer lines' (the SDSS pipeline and GELATO tie Balmer
        lines to each other too).
    tie_broad : bool
        In :func:`fit_spectrum`, when Hα needs a broad component, give the broad Hβ (and Hγ) Gaussians Hα's broad
        velocities and widths (fixed; fluxes free) — one broad-line region, as GELATO fits it. Off by default
        (PyQSOFit, SDSS and the Hβ-based black-hole mass recipes measure Hβ's own width); on, a weak broad Hβ is
        detected more easily (fewer free parameters) and its flux no longer trades with a free width.
    broad_fwhm_min : float
        A broad component narrower than this FWHM (km/s) is a wing, not a broad-line region: never "needed".
    tie_snr : float
        In :func:`fit_spectrum`, a complex other than Hα/Hβ whose strongest narrow line has S/N below this is refitted
        with its narrow velocity and width fixed to those of Hα+[NII] (else Hβ+[OIII]): weak lines cannot
        constrain their own width. 0 disables.
    scale_covar : bool
        Multiply the covariance by the reduced chi^2.
    max_nfev : int
        Cap on residual evaluations per lmfit fit. Fits that reach it are the degenerate ones (a broad Gaussian
        pinned at a velocity bound, where lmfit's bound transform has no gradient); on the SDSS and 6dF test
        spectra lowering it from 4000 to 1500 made whole-spectrum fits 2.4x faster and changed no model choice
        (one quasar's narrow fluxes by 2-5 %).
    """

    complexes: tuple[str, ...] = ("halpha", "hbeta", "sii", "oi", "oii")
    broad: str = "auto"
    n_broad: int | str = "auto"
    max_broad: int = 2
    outflow: str = "auto"
    continuum_order: int = 1
    continuum: str = "auto"
    stellar_templates: str | None = None
    stellar_scale_free: bool = False
    stellar_powerlaw: bool = False
    agn_continuum_order: int = 0
    agn_broad_window_kms: float = 12000.0
    agn_windows: str = "masks"
    density_bounds: bool = True
    window_kms: float = 3000.0
    broad_window_kms: float = 9000.0
    window_angstrom: float | None = None
    absorption: bool | str = "auto"
    mc_samples: int = 0
    mc_seed: int = 12345
    mask_kms: float = 700.0
    narrow_sigma_max: float = 500.0
    abs_sigma_min: float = 550.0
    abs_sigma_max: float = 2000.0
    abs_ew_max: float = 10.0
    broad_sigma_min: float = 450.0
    broad_sigma_max: float = 12000.0
    outflow_sigma_max: float = 2500.0
    narrow_v_max: float = 600.0
    broad_v_max: float = 3000.0
    inst_sigma_kms: float | None = None
    bic_threshold: float = 10.0
    ftest_alpha: float = 1e-3
    min_broad_snr: float = 3.0
    bpt_min_snr: float = 3.0
    tie_snr: float = 10.0
    tie_balmer: bool = True
    tie_broad: bool = False
    broad_fwhm_min: float = 1200.0
    scale_covar: bool = False
    max_nfev: int = 1500

    def __post_init__(self) -> None:
        for key in ("broad", "outflow"):
            if getattr(self, key) not in ("auto", "yes", "no"):
                raise ValueError(f"FitConfig.{key} must be 'auto', 'yes' or 'no', not {getattr(self, key)!r}")
        if self.continuum not in CONTINUA:
            raise ValueError(f"FitConfig.continuum must be one of {', '.join(CONTINUA)}, not {self.continuum!r}")
        if self.agn_windows not in ("masks", "qso"):
            raise ValueError(f"FitConfig.agn_windows must be 'masks' or 'qso', not {self.agn_windows!r}")
        unknown = [c for c in self.complexes if c not in LL.COMPLEXES]
        if unknown:
            raise ValueError(f"unknown complexes {unknown}; known: {sorted(LL.COMPLEXES)}")


@dataclass
class LineMeasurement:
    """Derived quantities of one component of one line.

    Attributes
    ----------
    name : str
        Line key (``"halpha"``, ``"nii6584"`` ...).
    wave_vac : float
        Rest vacuum wavelength, Angstrom.
    component : str
        ``"narrow"``, ``"broad"``, ``"outflow"`` or ``"absorption"``.
    flux, flux_err : float
        Integrated flux, spectrum flux unit x Angstrom (absorption: absorbed flux, positive).
    fwhm_kms, fwhm_err : float
        Intrinsic FWHM (instrument removed), km/s; for several broad Gaussians the FWHM of their sum.
    sigma_kms : float
        Intrinsic dispersion (FWHM / 2.3548 for a single Gaussian), km/s.
    sigma_obs_kms : float
        Observed dispersion (intrinsic and instrumental in quadrature), km/s — what SDSS and GELATO report.
    v_kms, v_err : float
        Flux-weighted velocity offset from the redshift, km/s.
    ew, ew_err : float
        Rest-frame equivalent width, Angstrom, positive for emission.
    snr : float
        flux / flux_err.
    continuum : float
        Continuum (polynomial + absorption trough) at the line centre, spectrum flux unit.
    """

    name: str
    wave_vac: float
    component: str
    flux: float
    flux_err: float
    fwhm_kms: float
    fwhm_err: float
    sigma_kms: float
    sigma_obs_kms: float
    v_kms: float
    v_err: float
    ew: float
    ew_err: float
    snr: float
    continuum: float
    complex_name: str = ""

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


@dataclass
class BroadTest:
    """Comparison of a fit without and with an extra component (broad Balmer or [OIII] outflow).

    Attributes
    ----------
    delta_bic : float
        BIC(without) - BIC(with); positive favours the extra component. BIC = chi^2 + k ln N (known noise).
    f_stat, p_value : float
        F-test for nested models: F = (Δchi^2 / Δk) / (chi^2_with / (N - k_with)).
    component_snr : float
        S/N of the extra component's total flux.
    needed : bool
    verdict : str
        ``"broad component needed"`` / ``"no broad component needed"`` (or "outflow ...").
    """

    complex_name: str
    component: str
    delta_bic: float
    f_stat: float
    p_value: float
    dof_extra: int
    chisqr_without: float
    chisqr_with: float
    ndata: int
    component_snr: float
    needed: bool
    verdict: str
    fit_without: Any = field(default=None, repr=False)
    fit_with: Any = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("fit_without", "fit_with")}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass
class ComplexFit:
    """Result of fitting one complex.

    Attributes
    ----------
    params : lmfit.Parameters
        Best-fit parameters (physical units) with ``stderr`` from the covariance; pass back as ``params_override``
        for a warm-started refit.
    theta, cov : ndarray
        Parameter vector and covariance in ``layout.names`` order.
    wave, flux, weight : ndarray
        Pixels that entered the fit (observed vacuum Angstrom, flux, 1/sigma).
    chisqr, redchi, bic, aic : float
    ndata, nvarys : int
    success : bool
    message : str
    measurements : list of LineMeasurement
    tests : list of BroadTest
        Broad / outflow tests run to choose this model.
    """

    complex_name: str
    layout: Layout
    params: Any
    theta: np.ndarray
    cov: np.ndarray
    wave: np.ndarray
    flux: np.ndarray
    weight: np.ndarray
    z: float
    inst: np.ndarray
    chisqr: float
    redchi: float
    bic: float
    aic: float
    ndata: int
    nvarys: int
    success: bool
    message: str
    nfev: int
    window: tuple[float, float]
    vacuum: bool = True
    measurements: list[LineMeasurement] = field(default_factory=list)
    tests: list[BroadTest] = field(default_factory=list)
    mc_samples: int = 0
    stellar: tuple | None = field(default=None, repr=False)

    def tmpl_at(self, wave_vac) -> np.ndarray | None:
        """The stellar-continuum template (unscaled) at vacuum wavelengths, or None without one."""
        if self.stellar is None or self.layout.tidx < 0:
            return None
        return np.interp(np.asarray(wave_vac, dtype=float), self.stellar[0], self.stellar[1])

    @property
    def has_broad(self) -> bool:
        return "broad" in self.layout.g_comp

    @property
    def has_outflow(self) -> bool:
        return "outflow" in self.layout.g_comp

    def _to_vac(self, wave) -> np.ndarray:
        w = np.asarray(wave, dtype=float)
        return w if self.vacuum else LL.air_to_vac(w)

    def model_curves(self, wave) -> dict[str, np.ndarray]:
        """Model components on a wavelength grid, for plotting.

        Parameters
        ----------
        wave : array_like
            Observed wavelength in the spectrum's own convention (vacuum or air), Angstrom.

        Returns
        -------
        dict
            ``"total"``, ``"continuum"`` (polynomial + stellar template + absorption troughs), ``"stellar"`` (the
            scaled stellar template, when there is one) and one curve per line component,
            keyed ``"<line>_<component>"`` (e.g. ``"halpha_narrow"``, ``"halpha_broad"``, ``"hbeta_absorption"``);
            several broad Gaussians of one line are summed. All in the spectrum's flux unit.
        """
        w = self._to_vac(wave)
        tm = self.tmpl_at(w)
        model, (g, cont) = evaluate(self.layout, self.theta[None, :], w[None, :], np.array([self.z]),
                                    self.inst[None, :], components=True, tmpl=None if tm is None else tm[None, :])
        out: dict[str, np.ndarray] = {"total": model[0]}
        if tm is not None:
            out["stellar"] = self.theta[self.layout.tidx] * tm
        continuum = cont[0].copy()
        for i, (line, comp) in enumerate(zip(self.layout.g_line, self.layout.g_comp)):
            key = f"{line}_{comp}"
            out[key] = out.get(key, 0.0) + g[0, i]
            if comp == "absorption":
                continuum += g[0, i]
        out["continuum"] = continuum
        return out

    def residuals(self) -> np.ndarray:
        """(data - model) / sigma on the fitted pixels."""
        tm = self.tmpl_at(self.wave)
        m = evaluate(self.layout, self.theta[None, :], self.wave[None, :], np.array([self.z]), self.inst[None, :],
                     tmpl=None if tm is None else tm[None, :])
        return (self.flux - m[0]) * self.weight

    def measurement(self, name: str, component: str = "narrow") -> LineMeasurement | None:
        for m in self.measurements:
            if m.name == name and m.component == component:
                return m
        return None


@dataclass
class SpectrumFit:
    """All complexes of one spectrum, the broad-line verdict and the BPT class."""

    source: str
    id: str
    z: float | None
    complexes: dict[str, ComplexFit] = field(default_factory=dict)
    broad: BroadTest | None = None
    bpt: dict = field(default_factory=dict)
    bpt_class: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    stellar: dict | None = None
    density: dict = field(default_factory=dict)
    flux_unit: str = ""
    bh_mass: dict = field(default_factory=dict)
    oiii_kinematics: dict = field(default_factory=dict)

    @property
    def lines(self) -> list[LineMeasurement]:
        out: list[LineMeasurement] = []
        for cf in self.complexes.values():
            out.extend(cf.measurements)
        return out

    @property
    def broad_needed(self) -> bool:
        return bool(self.broad.needed) if self.broad is not None else False

    @property
    def delta_bic(self) -> float | None:
        return None if self.broad is None else float(self.broad.delta_bic)

    def line(self, name: str, component: str = "narrow") -> LineMeasurement | None:
        for m in self.lines:
            if m.name == name and m.component == component:
                return m
        return None

    def to_dict(self) -> dict:
        """The per-spectrum JSON record (see the issue): source, z, lines, broad_needed, delta_bic, bpt_class.

        Extra keys: ``absorption`` (fitted Balmer troughs), ``tests`` (every broad/outflow test), ``bpt`` (log
        ratios and errors), ``fit`` (chi^2 per complex), ``continuum`` ("stellar", "agn" or "local"), ``stellar``
        (the continuum fit, ``kind`` "stellar" or "agn": velocity, dispersion, light-weighted age..., or Fe II
        width and flux, host and power-law shares for "agn"; or why there is none), ``density``
        (electron density from [SII] and [OII], see :func:`galdesk.lines.linelist.electron_density`), ``bh_mass``
        (when a broad line is needed: broad-line and 5100 Å luminosities and single-epoch virial masses with their
        measurement errors, see :func:`galdesk.lines.bhmass.black_hole_masses`), ``oiii_kinematics`` (v05-v95
        and W80 of the whole [OIII] 5007 profile, core + wing, see :func:`galdesk.lines.profile.line_kinematics`),
        ``skipped`` and ``error``.
        """
        keys = ("name", "wave_vac", "component", "flux", "flux_err", "fwhm_kms", "fwhm_err", "ew", "snr")

        def clean(v):
            if isinstance(v, (float, np.floating)):
                v = float(v)
                return v if math.isfinite(v) else None
            return v

        lines, absorption = [], []
        for m in self.lines:
            rec = {k: clean(getattr(m, k)) for k in keys}
            rec.update(sigma_kms=clean(m.sigma_kms), v_kms=clean(m.v_kms), complex=m.complex_name)
            (absorption if m.component == "absorption" else lines).append(rec)
        tests = [t.to_dict() for cf in self.complexes.values() for t in cf.tests]
        return {
            "source": self.source,
            "id": self.id,
            "z": clean(self.z),
            "lines": lines,
            "broad_needed": self.broad_needed,
            "delta_bic": clean(self.delta_bic),
            "bpt_class": self.bpt_class,
            "bpt": {k: clean(v) for k, v in self.bpt.items()},
            "absorption": absorption,
            "tests": tests,
            "fit": {k: {"chisqr": clean(cf.chisqr), "redchi": clean(cf.redchi), "ndata": cf.ndata,
                        "success": cf.success} for k, cf in self.complexes.items()},
            "continuum": (((self.stellar or {}).get("kind") or "stellar")
                          if any(cf.layout.tidx >= 0 for cf in self.complexes.values()) else "local"),
            "stellar": self.stellar,
            "density": {k: {q: clean(v) for q, v in d.items()} for k, d in self.density.items()},
            "bh_mass": {k: clean(v) for k, v in self.bh_mass.items()},
            "oiii_kinematics": {k: clean(v) for k, v in self.oiii_kinematics.items()},
            "skipped": dict(self.skipped),
            "error": self.error,
        }


# ---------------------------------------------------------------------------------------------------------------
# data preparation and model layout
# ---------------------------------------------------------------------------------------------------------------
def _window(cx: LL.Complex, z: float, config: FitConfig, broad: bool, agn: bool = False) -> tuple[float, float]:
    lo, hi = cx.wave_range
    if config.window_angstrom is not None:
        return (lo - config.window_angstrom) * (1 + z), (hi + config.window_angstrom) * (1 + z)
    bw = config.agn_broad_window_kms if agn else config.broad_window_kms
    w = (bw if broad else config.window_kms) / C_KMS
    return lo * (1 - w) * (1 + z), hi * (1 + w) * (1 + z)


def prepare_data(spec, complex_name: str, config: FitConfig, window=None, broad: bool = False) -> dict:
    """Select the pixels of one complex: inside the window, good, away from other lines.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    complex_name : str
    config : FitConfig
    window : (float, float) or None
        Observed wavelength range in the spectrum's convention, Angstrom; default from the config.
    broad : bool
        Use the broad window.

    Returns
    -------
    dict with ``wave`` (vacuum, Angstrom), ``flux``, ``weight`` (1/sigma), ``z``, ``inst`` (callable: vacuum
    wavelength -> instrumental sigma in km/s), ``window`` (vacuum Angstrom).

    Raises
    ------
    ValueError
        No redshift, the window is outside the spectrum, or too few good pixels.
    """
    cx = LL.COMPLEXES[complex_name]
    z = spec.redshift
    if z is None or not np.isfinite(z):
        raise ValueError(f"{spec.id}: a redshift is needed to fit emission lines")
    z = float(z)
    wave = np.asarray(spec.wavelength, dtype=float)
    if not spec.vacuum:
        wave = LL.air_to_vac(wave)
    flux = np.asarray(spec.flux, dtype=float)
    stellar = stellar_continuum(spec, config)
    agn = stellar is not None and isinstance(spec.meta, dict) and spec.meta.get("continuum_kind") == "agn"
    if window is None:
        lo, hi = _window(cx, z, config, broad, agn)
    else:
        lo, hi = (float(window[0]), float(window[1]))
        if not spec.vacuum:
            lo, hi = LL.air_to_vac(lo), LL.air_to_vac(hi)
    sel = spec.good & (wave >= lo) & (wave <= hi)
    if stellar is not None:
        sel &= np.isfinite(stellar)
    # other lines inside the window would bias the continuum and widths: mask them, but never closer than half
    # way to one of the complex's own lines
    others = {k: v for k, v in LL.LINES.items() if k not in cx.lines}
    others.update({k: v for k, v in INTERLOPERS.items() if k not in cx.lines})
    own = np.array([LL.LINES[n] for n in cx.lines])
    for rest in others.values():
        gap = float(np.min(np.abs(own - rest)) / rest)
        half = min(config.mask_kms / C_KMS, 0.5 * gap)
        c = rest * (1 + z)
        if lo - c * half < c < hi + c * half:
            sel &= np.abs(wave - c) > c * half
    # the window must actually contain the lines
    line_obs = np.array([LL.LINES[n] for n in cx.lines]) * (1 + z)
    if wave.size == 0 or line_obs.min() < wave[0] or line_obs.max() > wave[-1]:
        raise ValueError(f"{complex_name} outside the spectrum ({wave[0]:.0f}-{wave[-1]:.0f} A at z={z:.4f})")
    near = np.zeros_like(sel)
    for c in line_obs:
        near |= np.abs(wave - c) < c * 300.0 / C_KMS
    if np.count_nonzero(sel & near) < 3:
        raise ValueError(f"{complex_name}: no good pixels at the lines")
    if np.count_nonzero(sel) < 12:
        raise ValueError(f"{complex_name}: too few good pixels ({np.count_nonzero(sel)})")
    res = spec.resolution_kms
    if res is not None:
        rw = wave[np.isfinite(res) & (np.asarray(res) > 0)]
        rv = np.asarray(res)[np.isfinite(res) & (np.asarray(res) > 0)]
    if res is not None and rw.size:
        def inst(lam, _rw=rw, _rv=rv):
            return np.interp(lam, _rw, _rv)
    else:
        const = float(config.inst_sigma_kms or 0.0)

        def inst(lam, _c=const):
            return np.full(np.shape(lam), _c, dtype=float)
    return {
        "wave": wave[sel],
        "flux": flux[sel],
        "weight": np.sqrt(np.asarray(spec.ivar, dtype=float)[sel]),
        "z": z,
        "inst": inst,
        "window": (lo, hi),
        "vacuum": bool(spec.vacuum),
        "id": spec.id,
        "spec_class": spec.spec_class,
        "tmpl": stellar[sel] if stellar is not None else None,
        "agn": agn,
        "stellar": _stellar_window(wave, stellar, lo, hi),
    }


def _stellar_window(wave, stellar, lo, hi):
    """(vacuum wave, stellar model) over a window, every pixel where the model is defined (for plots/EWs)."""
    if stellar is None:
        return None
    pad = 0.02 * (hi - lo)
    w = (wave >= lo - pad) & (wave <= hi + pad) & np.isfinite(stellar)
    return (wave[w].copy(), stellar[w].copy())


def continuum_kind(spec, config: FitConfig) -> str:
    """The continuum ``config.continuum`` asks for on this spectrum: "stellar", "agn" or "local" ("auto" is
    "agn" for SDSS class QSO and for subclass BROADLINE, else "stellar")."""
    if config.continuum != "auto":
        return config.continuum
    broad_line = str(spec.spec_class or "").upper() == "QSO" or "BROADLINE" in str(spec.subclass or "").upper()
    return "agn" if broad_line else "stellar"


def stellar_continuum(spec, config: FitConfig) -> np.ndarray | None:
    """The continuum model of a spectrum (its pixels; NaN where undefined), or None for a local continuum.

    Stellar populations (:func:`galdesk.lines.stellar.fit_stellar_continuum`) or, for broad-line AGN, host +
    power law + Fe II (:func:`galdesk.lines.agn.fit_agn_continuum`), as :func:`continuum_kind` says. Fitted once
    per spectrum and cached in ``spec.meta``: ``"stellar_continuum"`` (the model), ``"stellar_fit"`` (the
    :class:`~galdesk.lines.stellar.StellarFit` or :class:`~galdesk.lines.agn.AGNContinuumFit`),
    ``"continuum_kind"`` ("stellar"/"agn") or ``"stellar_error"`` (why there is none).

    Raises
    ------
    ValueError
        ``continuum`` "stellar" or "agn" was asked for and the templates cannot be fitted.
    """
    kind = continuum_kind(spec, config)
    if kind == "local":
        return None
    meta = spec.meta if isinstance(spec.meta, dict) else None
    if meta is None:
        spec.meta = meta = {}
    have = meta.get("stellar_continuum")
    key = f"{kind}|{config.stellar_templates or ''}|powerlaw={bool(config.stellar_powerlaw)}"
    if kind == "agn" and config.agn_windows != "masks":
        key += f"|windows={config.agn_windows}"
    if have is not None and meta.get("stellar_key", key) == key:
        have = np.asarray(have, dtype=float)
        if have.shape != np.shape(spec.flux):
            raise ValueError(f"{spec.id}: stellar_continuum has shape {have.shape}, the flux {np.shape(spec.flux)}")
        return have
    if meta.get("stellar_error") is not None and meta.get("stellar_key") == key:
        if config.continuum != "auto":
            raise ValueError(meta["stellar_error"])
        return None
    meta["stellar_key"] = key
    try:
        if kind == "agn":
            from galdesk.lines.agn import agn_masks, fit_agn_continuum

            st = fit_agn_continuum(spec, config.stellar_templates, inst_sigma_kms=config.inst_sigma_kms,
                                   masks=agn_masks(config.agn_windows))
        else:
            from galdesk.lines.stellar import fit_stellar_continuum

            st = fit_stellar_continuum(spec, config.stellar_templates, inst_sigma_kms=config.inst_sigma_kms,
                                       powerlaw=config.stellar_powerlaw)
    except ValueError as exc:
        what = "AGN continuum" if kind == "agn" else "stellar continuum"
        meta["stellar_error"] = f"{what}: {exc}"
        for k in ("stellar_fit", "stellar_continuum", "continuum_kind"):
            meta.pop(k, None)
        if config.continuum != "auto":
            raise ValueError(meta["stellar_error"]) from exc
        return None
    meta.pop("stellar_error", None)
    meta["stellar_fit"] = st
    meta["stellar_continuum"] = st.model
    meta["continuum_kind"] = kind
    return st.model


def _guess_continuum(wave, flux, z, cx, order, exclude_kms=1500.0):
    """Initial polynomial: robust straight line through the pixels away from the lines."""
    rest_ref = float(np.mean([LL.LINES[n] for n in cx.lines]))
    lam_ref = rest_ref * (1 + z)
    x = 100.0 * (wave / lam_ref - 1.0)
    far = np.ones(wave.size, bool)
    for n in cx.lines:
        c = LL.LINES[n] * (1 + z)
        far &= np.abs(wave - c) > c * exclude_kms / C_KMS
    if np.count_nonzero(far) < 6:
        far = np.ones(wave.size, bool)
    xl, yl = x[far], flux[far]
    left, right = xl < np.median(xl), xl >= np.median(xl)
    coef = np.zeros(order + 1)
    if left.any() and right.any() and order >= 1:
        x0, x1 = np.median(xl[left]), np.median(xl[right])
        y0, y1 = np.median(yl[left]), np.median(yl[right])
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        coef[0] = y0 - slope * x0
        coef[1] = slope
    else:
        coef[0] = np.median(yl)
    return rest_ref, coef, x


def build_layout(data: dict, complex_name: str, config: FitConfig, n_broad: int = 0, outflow: bool = False,
                 absorption: bool | None = None, start: "ComplexFit | None" = None,
                 broad_sigma0: float = 1500.0, fixed: dict | None = None,
                 balmer_kin: tuple[float, float] | None = None) -> tuple[Layout, np.ndarray]:
    """Build the parameter layout and the instrumental widths of one complex.

    Parameters
    ----------
    data : dict
        From :func:`prepare_data`.
    complex_name : str
    config : FitConfig
    n_broad : int
        Broad Gaussians per Balmer line of the complex (0 = narrow only).
    outflow : bool
        Add the [OIII] outflow component (complexes with outflow lines only).
    absorption : bool or None
        Balmer absorption trough; default ``config.absorption`` (off when a stellar continuum was subtracted).
    start : ComplexFit or None
        Previous fit whose parameter values seed the shared parameters (narrow solution before a broad fit).
    broad_sigma0 : float
        Starting intrinsic dispersion of the first broad Gaussian, km/s.
    fixed : dict or None
        Parameter name -> value to hold fixed (e.g. the narrow kinematics of a stronger complex).
    balmer_kin : (float, float) or None
        Narrow velocity and intrinsic dispersion (km/s) for the Balmer line of a mixed complex (Hβ in Hβ+[OIII]),
        held fixed — in :func:`fit_spectrum`, those of Hα.

    Returns
    -------
    layout : Layout
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    """
    cx = LL.COMPLEXES[complex_name]
    z = data["z"]
    wave, flux = data["wave"], data["flux"]
    if absorption is None:
        absorption = config.absorption
        if absorption == "auto":
            absorption = str(data.get("spec_class") or "").upper() != "QSO"
        absorption = bool(absorption)
    tmpl = data.get("tmpl")
    if tmpl is not None:
        absorption = False
    order = int(config.agn_continuum_order if data.get("agn") else config.continuum_order)
    rest_ref, cont0, x = _guess_continuum(wave, flux if tmpl is None else flux - tmpl, z, cx, order)

    names: list[str] = []
    init: list[float] = []
    lower: list[float] = []
    upper: list[float] = []

    def add(name, value, lo, hi):
        names.append(name)
        init.append(float(np.clip(value, lo, hi)))
        lower.append(lo)
        upper.append(hi)
        return len(names) - 1

    iv = add("narrow_v", 0.0, -config.narrow_v_max, config.narrow_v_max)
    isg = add("narrow_sigma", 100.0, 1.0, config.narrow_sigma_max)
    # Balmer lines may follow other kinematics than the forbidden lines of their complex (Hβ vs [OIII] in AGN):
    # with ``balmer_kin`` their narrow velocity/width are separate parameters, fixed at the given values
    ibv_n, ibs_n = iv, isg
    if balmer_kin is not None and any(n in LL.BALMER for n in cx.lines) and \
            any(n not in LL.BALMER for n in cx.lines):
        ibv_n = add("balmer_v", balmer_kin[0], -config.narrow_v_max, config.narrow_v_max)
        ibs_n = add("balmer_sigma", balmer_kin[1], 1.0, config.narrow_sigma_max)

    def cont_at(lam):
        xx = 100.0 * (lam / (rest_ref * (1 + z)) - 1.0)
        return float(sum(c * xx ** k for k, c in enumerate(cont0)))

    def peak_flux(line, sig_kms, dv_kms=250.0):
        c = LL.LINES[line] * (1 + z)
        near = np.abs(wave - c) < c * dv_kms / C_KMS
        pk = float(np.max(flux[near] - cont_at(c))) if near.any() else 0.0
        s_inst = float(data["inst"](np.array([c]))[0])
        sl = c * math.hypot(sig_kms, s_inst) / C_KMS
        return pk * math.sqrt(2 * math.pi) * sl

    g_line, g_comp, g_kin, rest, fidx, vidx, sidx, fmult, sadd, ridx = [], [], [], [], [], [], [], [], [], []

    def gauss(line, comp, kin, fi, vi, si, mult, sa=-1, ri=-1):
        sadd.append(sa)
        ridx.append(ri)
        g_line.append(line)
        g_comp.append(comp)
        g_kin.append(kin)
        rest.append(LL.LINES[line])
        fidx.append(fi)
        vidx.append(vi)
        sidx.append(si)
        fmult.append(mult)

    big = 1e30
    # narrow lines: strong line of each doublet is free, the weak one tied by the atomic ratio
    free_flux: dict[str, int] = {}
    ratio_of: dict[str, int] = {}
    bounded = {ln: v for ln, v in LL.BOUNDED_RATIOS.items()
               if config.density_bounds and ln in cx.lines and v[0] in cx.lines}
    for line in cx.lines:
        if line in LL.DOUBLET_RATIOS and LL.DOUBLET_RATIOS[line][0] in cx.lines:
            continue
        if line in bounded:
            continue
        f0 = peak_flux(line, 100.0)
        free_flux[line] = add(f"{line}_flux", max(f0, 0.0), 0.0, big)
    for line, (partner, lo_r, hi_r) in bounded.items():
        # [SII] 6717 = R x [SII] 6731 with R inside the atomic-physics range (likewise [OII] 3729/3726)
        f_l, f_p = peak_flux(line, 100.0), peak_flux(partner, 100.0)
        r0 = f_l / f_p if f_p > 0 and f_l > 0 else 1.0
        # start inside the range: lmfit's bound transform has no gradient at a bound, a start there stays there
        pad = 0.15 * (hi_r - lo_r)
        ratio_of[line] = add(f"{line}_ratio", float(np.clip(r0, lo_r + pad, hi_r - pad)), lo_r, hi_r)
    for line in cx.lines:
        if line in ratio_of:
            partner = bounded[line][0]
            gauss(line, "narrow", "narrow", free_flux[partner], iv, isg, 1.0, ri=ratio_of[line])
        elif line in free_flux:
            bal = line in LL.BALMER
            gauss(line, "narrow", "balmer" if bal and ibv_n != iv else "narrow", free_flux[line],
                  ibv_n if bal else iv, ibs_n if bal else isg, 1.0)
        else:
            strong, ratio = LL.DOUBLET_RATIOS[line]
            gauss(line, "narrow", "narrow", free_flux[strong], iv, isg, 1.0 / ratio)

    # broad Balmer components
    ib1s = -1
    for k in range(1, n_broad + 1):
        if not cx.broad:
            break
        ibv = add(f"broad{k}_v", 0.0, -config.broad_v_max, config.broad_v_max)
        s0 = broad_sigma0 * (2.5 ** (k - 1))
        if k == 1:
            ibs = ib1s = add("broad1_sigma", s0, config.broad_sigma_min, config.broad_sigma_max)
            sa = -1
        else:  # broad k = broad 1 + delta: the Gaussians keep their order
            ibs = ib1s
            sa = add(f"broad{k}_dsigma", s0 - broad_sigma0, 10.0, config.broad_sigma_max)
        for line in cx.broad:
            c = LL.LINES[line] * (1 + z)
            near = np.abs(wave - c) < c * 2.5 * s0 / C_KMS
            area = 0.0
            if near.sum() > 3:
                resid = flux[near] - np.array([cont_at(w_) for w_ in wave[near]])
                area = float(np.sum(resid * np.gradient(wave[near])))
            fb = max(0.5 * area / n_broad, 1e-3 * abs(cont_at(c)) * c * s0 / C_KMS + 1e-6)
            ib = add(f"{line}_b{k}_flux", fb, 0.0, big)
            gauss(line, "broad", f"broad{k}", ib, ibv, ibs, 1.0, sa)

    # [OIII] outflow wing: shares a velocity and width, weak line tied by the same ratio
    if outflow and cx.outflow:
        iov = add("outflow_v", -150.0, -2000.0, 1000.0)
        # outflow = narrow + delta: the wing stays the broader of the two
        ios = add("outflow_dsigma", 300.0, 20.0, config.outflow_sigma_max)
        strong = [ln for ln in cx.outflow if ln not in LL.DOUBLET_RATIOS] or list(cx.outflow[:1])
        free_out = {}
        for line in strong:
            f0 = 0.3 * max(peak_flux(line, 100.0), 0.0) + 1e-6
            free_out[line] = add(f"{line}_out_flux", f0, 0.0, big)
        for line in cx.outflow:
            if line in free_out:
                gauss(line, "outflow", "outflow", free_out[line], iov, isg, 1.0, ios)
            else:
                st, ratio = LL.DOUBLET_RATIOS[line]
                gauss(line, "outflow", "outflow", free_out[st], iov, isg, 1.0 / ratio, ios)

    # Balmer absorption trough (stellar): negative Gaussian, velocity tied to the narrow lines
    if absorption and cx.absorption:
        # wider than any narrow line (else trough and emission cancel) and at most abs_ew_max A deep (rest EW):
        # stellar Balmer troughs have sigma ~ 10-15 A and EW < ~10 A
        ias = add("abs_sigma", 900.0, config.abs_sigma_min, config.abs_sigma_max)
        for line in cx.absorption:
            c = LL.LINES[line] * (1 + z)
            level = max(cont_at(c), 0.0)
            f0 = 1.0 * (1 + z) * level + 1e-6  # ~1 A rest EW
            fmax = config.abs_ew_max * (1 + z) * level + 2e-6
            ia = add(f"{line}_abs_flux", f0, 0.0, fmax)
            gauss(line, "absorption", "abs", ia, ibv_n, ias, -1.0)

    cidx = [add(f"cont_c{k}", cont0[k], -big, big) for k in range(order + 1)]
    # the stellar model's scale: its features (the Balmer troughs) may be shallower or deeper here than the
    # whole-spectrum fit made them; the polynomial takes up the level
    tidx = add("stellar_scale", 1.0, 0.0, 5.0) if tmpl is not None else -1

    layout = Layout(
        complex_name=complex_name, names=names, init=np.array(init), lower=np.array(lower),
        upper=np.array(upper), vary=np.ones(len(names), bool), g_line=g_line, g_comp=g_comp, g_kin=g_kin,
        rest=np.array(rest), fidx=np.array(fidx, int), vidx=np.array(vidx, int), sidx=np.array(sidx, int),
        fmult=np.array(fmult, float), cidx=np.array(cidx, int), rest_ref=rest_ref, sadd=np.array(sadd, int),
        tidx=tidx, ridx=np.array(ridx, int),
    )
    if start is not None:
        for i, n in enumerate(layout.names):
            if n in start.layout.names:
                layout.init[i] = np.clip(start.theta[start.layout.index(n)], layout.lower[i], layout.upper[i])
    for n in ("balmer_v", "balmer_sigma"):
        if n in layout.names:
            layout.vary[layout.index(n)] = False
    if tidx >= 0 and not config.stellar_scale_free:
        layout.vary[tidx] = False
    for n, val in (fixed or {}).items():
        if n in layout.names:
            i = layout.index(n)
            layout.init[i] = np.clip(val, layout.lower[i], layout.upper[i])
            layout.vary[i] = False
    centres = layout.rest * (1 + z)
    inst = np.asarray(data["inst"](centres), dtype=float)
    return layout, inst


# ---------------------------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------------------------
def _to_params(layout: Layout, override=None):
    import lmfit

    params = lmfit.Parameters()
    for i, n in enumerate(layout.names):
        lo = layout.lower[i] if layout.lower[i] > -1e29 else -np.inf
        hi = layout.upper[i] if layout.upper[i] < 1e29 else np.inf
        params.add(n, value=float(layout.init[i]), min=lo, max=hi, vary=bool(layout.vary[i]))
    if override is not None:
        items = override.items()
        for n, p in items:
            if n not in params:
                continue
            if hasattr(p, "value"):
                params[n].set(value=float(np.clip(p.value, params[n].min, params[n].max)), vary=bool(p.vary))
                if p.vary and p.min is not None and p.max is not None:
                    params[n].set(min=p.min, max=p.max)
            else:
                params[n].set(value=float(np.clip(p, params[n].min, params[n].max)))
    return params


def _at_bound(layout: Layout, theta: np.ndarray) -> np.ndarray:
    lo, hi = layout.lower, layout.upper
    tol = 1e-7 * (np.abs(theta) + 1.0)
    return (theta - lo < tol) | (hi - theta < tol)


def _finish(layout: Layout, data: dict, inst: np.ndarray, theta: np.ndarray, vary: np.ndarray, config: FitConfig,
            params=None, success=True, message="", nfev=0) -> ComplexFit:
    """Statistics, covariance and measurements at ``theta`` (shared by lmfit and batched results)."""
    wave, flux, weight = data["wave"], data["flux"], data["weight"]
    z = data["z"]
    tmpl = data.get("tmpl")
    model, J = evaluate(layout, theta[None, :], wave[None, :], np.array([z]), inst[None, :], jac=True,
                        tmpl=None if tmpl is None else tmpl[None, :])
    r = (flux - model[0]) * weight
    chisqr = float(r @ r)
    n = wave.size
    k = int(np.count_nonzero(vary))
    dof = max(n - k, 1)
    redchi = chisqr / dof
    # parameters pinned at a bound are not free: leave them out of the joint covariance (else a trough stuck at
    # zero depth inflates the broad line's error), and give them their conditional error 1/sqrt(A_ii), the
    # scale of an upper limit
    jw = J[0] * weight[:, None]
    pinned = vary & _at_bound(layout, theta)
    cov = covariance(jw, vary & ~pinned)
    for i in np.flatnonzero(pinned):
        a_ii = float(jw[:, i] @ jw[:, i])
        cov[i, i] = 1.0 / a_ii if a_ii > 0 else 0.0
    if config.scale_covar:
        cov = cov * redchi
    if params is None:
        params = _to_params(layout)
        for i, nme in enumerate(layout.names):
            params[nme].set(value=float(theta[i]))
    for i, nme in enumerate(layout.names):
        params[nme].stderr = float(math.sqrt(cov[i, i])) if cov[i, i] > 0 else None
    cf = ComplexFit(
        complex_name=layout.complex_name, layout=layout, params=params, theta=theta.copy(), cov=cov, wave=wave,
        flux=flux, weight=weight, z=z, inst=inst, chisqr=chisqr, redchi=redchi, bic=chisqr + k * math.log(n),
        aic=chisqr + 2 * k, ndata=n, nvarys=k, success=bool(success), message=message, nfev=int(nfev),
        window=data["window"], vacuum=data.get("vacuum", True), stellar=data.get("stellar"),
    )
    cf.measurements = measure(cf)
    return cf


def _lmfit_run(layout: Layout, data: dict, inst: np.ndarray, config: FitConfig, ctx, params_override=None):
    import lmfit

    wave, flux, weight = data["wave"], data["flux"], data["weight"]
    zarr = np.array([data["z"]])
    tmpl = None if data.get("tmpl") is None else data["tmpl"][None, :]
    names = layout.names
    params = _to_params(layout, params_override)
    vary_names = [n for n in names if params[n].vary]
    vidx = np.array([names.index(n) for n in vary_names], int)
    theta = np.array([params[n].value for n in names])

    def current(p):
        for i, n in enumerate(names):
            theta[i] = p[n].value
        return theta[None, :]

    def resid(p):
        m = evaluate(layout, current(p), wave[None, :], zarr, inst[None, :], tmpl=tmpl)
        return (flux - m[0]) * weight

    def dfun(p):
        _, J = evaluate(layout, current(p), wave[None, :], zarr, inst[None, :], jac=True, tmpl=tmpl)
        return -(J[0][:, vidx] * weight[:, None])

    def iter_cb(p, it, res, *a, **k):
        return ctx.cancelled()

    result = lmfit.minimize(resid, params, method="leastsq", Dfun=dfun, iter_cb=iter_cb,
                            max_nfev=config.max_nfev, scale_covar=False, calc_covar=False)
    if result.aborted and ctx.cancelled():
        raise Cancelled()
    final = np.array([result.params[n].value for n in names])
    vary = np.array([result.params[n].vary for n in names])
    return _finish(layout, data, inst, final, vary, config, params=result.params, success=result.success,
                   message=str(result.message), nfev=result.nfev)


def _fit_variant(spec_data: dict, complex_name: str, config: FitConfig, ctx, n_broad=0, outflow=False, start=None,
                 multistart: bool = True, fixed: dict | None = None) -> ComplexFit:
    """Fit one model variant. With a broad component, two starts (from ``start`` with a 1200 km/s broad line, and
    from scratch with a 3000 km/s one) guard against the local minima of blended profiles; the best chi^2 wins."""
    starts = [(start, 1200.0)]
    if n_broad and multistart:
        starts.append((None, 3000.0))
    best = None
    for st, s0 in starts:
        bk = (fixed["balmer_v"], fixed["balmer_sigma"]) if fixed and "balmer_v" in fixed else None
        layout, inst = build_layout(spec_data, complex_name, config, n_broad=n_broad, outflow=outflow,
                                    start=st, broad_sigma0=s0, fixed=fixed, balmer_kin=bk)
        fit = _lmfit_run(layout, spec_data, inst, config, ctx)
        if best is None or fit.chisqr < best.chisqr - 1e-9:
            best = fit
    return best


def _broad_variant(data: dict, complex_name: str, config: FitConfig, ctx, start: ComplexFit,
                   outflow: bool = False, fixed: dict | None = None) -> ComplexFit:
    """Broad fit with ``config.n_broad`` Gaussians, or for "auto" one, then more while ΔBIC > bic_threshold."""
    if config.n_broad != "auto":
        return _fit_variant(data, complex_name, config, ctx, n_broad=max(int(config.n_broad), 1), start=start,
                            outflow=outflow, fixed=fixed)
    fit = _fit_variant(data, complex_name, config, ctx, n_broad=1, start=start, outflow=outflow, fixed=fixed)
    for nb in range(2, int(config.max_broad) + 1):
        ctx.check_cancelled()
        more = _fit_variant(data, complex_name, config, ctx, n_broad=nb, start=fit, outflow=outflow, fixed=fixed)
        if fit.bic - more.bic > config.bic_threshold:
            fit = more
        else:
            break
    return fit


def _hold_trough(fit: ComplexFit, fixed: dict | None) -> dict:
    """``fixed`` plus the Balmer trough of ``fit``: a broad emission line and a free trough of similar width
    cancel each other (a degenerate pair), so a broad fit keeps the trough found without the broad line."""
    out = dict(fixed or {})
    for i, n in enumerate(fit.layout.names):
        if n == "abs_sigma" or n.endswith("_abs_flux"):
            out[n] = float(fit.theta[i])
    return out


def _n_broad(fit: ComplexFit) -> int:
    return len({k for k in fit.layout.g_kin if k.startswith("broad")})


def compare_fits(without: ComplexFit, with_: ComplexFit, config: FitConfig, component: str = "broad") -> BroadTest:
    """ΔBIC and F-test between nested fits of the same pixels; verdict on the extra component.

    Parameters
    ----------
    without, with_ : ComplexFit
        Fits without and with the extra component, on the same pixels.
    config : FitConfig
        Supplies the thresholds.
    component : {"broad", "outflow"}
    """
    from scipy import stats

    n = with_.ndata
    dk = max(with_.nvarys - without.nvarys, 1)
    dchi = without.chisqr - with_.chisqr
    dof = max(n - with_.nvarys, 1)
    f_stat = (dchi / dk) / (with_.chisqr / dof) if with_.chisqr > 0 else float("inf")
    p = float(stats.f.sf(f_stat, dk, dof)) if np.isfinite(f_stat) and f_stat > 0 else 1.0
    dbic = without.bic - with_.bic
    # S/N of the extra component's total flux (all its lines, all its Gaussians)
    flux = sum(m.flux for m in with_.measurements if m.component == component)
    errs = [m.flux_err for m in with_.measurements if m.component == component and m.flux > 0]
    err = math.sqrt(sum(e * e for e in errs)) if errs else float("nan")
    snr = flux / err if err and np.isfinite(err) and err > 0 else 0.0
    needed = bool(dbic > config.bic_threshold and p < config.ftest_alpha and snr > config.min_broad_snr)
    if component == "broad":
        fw = [m.fwhm_kms for m in with_.measurements if m.component == "broad"]
        needed = needed and bool(fw) and max(fw) >= config.broad_fwhm_min
    verdict = f"{component} component needed" if needed else f"no {component} component needed"
    return BroadTest(complex_name=with_.complex_name, component=component, delta_bic=float(dbic),
                     f_stat=float(f_stat), p_value=p, dof_extra=dk, chisqr_without=without.chisqr,
                     chisqr_with=with_.chisqr, ndata=n, component_snr=float(snr), needed=needed, verdict=verdict,
                     fit_without=without, fit_with=with_)


def fit_complex(spec, complex_name: str, config: FitConfig | None = None, ctx=None, params_override=None,
                window=None, fixed: dict | None = None) -> ComplexFit:
    """Fit one complex of one spectrum.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        Needs ``redshift``; uses ``ivar``/``mask`` (masked pixels excluded, residuals weighted by 1/sigma) and
        ``resolution_kms`` (instrumental sigma removed from widths).
    complex_name : str
        Key of :data:`galdesk.lines.linelist.COMPLEXES`.
    config : FitConfig
    ctx : galdesk.tasks.TaskContext or None
        Cancellation (lmfit's ``iter_cb`` returns ``ctx.cancelled()``); :class:`~galdesk.tasks.Cancelled` is raised.
    params_override : lmfit.Parameters or dict or None
        Starting values (and ``vary`` flags) for a warm-started interactive refit: a single fit of the model that
        these parameters describe (their broad/outflow parameters decide the variant), no model selection.
    window : (float, float) or None
        Observed wavelength range, Angstrom, in the spectrum's convention.
    fixed : dict or None
        Parameters held fixed at the given values (e.g. ``{"narrow_v": 12.0, "narrow_sigma": 85.0}``).

    Returns
    -------
    ComplexFit
        With ``tests`` holding the broad/outflow comparisons when ``config.broad``/``outflow`` is "auto"/"yes".
    """
    config = config or FitConfig()
    ctx = ctx or NullContext()
    cx = LL.COMPLEXES[complex_name]
    if complex_name not in LL.COMPLEXES:
        raise ValueError(f"unknown complex {complex_name!r}")
    if params_override is not None:
        keys = list(params_override.keys())
        nb = len({k.split("_")[0] for k in keys if k.startswith("broad") and k.endswith("sigma")})
        out = any(k.startswith("outflow_") for k in keys)
        data = prepare_data(spec, complex_name, config, window, broad=bool(nb) or config.broad != "no")
        layout, inst = build_layout(data, complex_name, config, n_broad=nb, outflow=out,
                                    absorption=any(k == "abs_sigma" for k in keys))
        return _lmfit_run(layout, data, inst, config, ctx, params_override)

    want_broad = bool(cx.broad) and config.broad != "no"
    want_out = bool(cx.outflow) and config.outflow != "no"
    data = prepare_data(spec, complex_name, config, window, broad=want_broad or want_out)
    tests: list[BroadTest] = []
    best = _fit_variant(data, complex_name, config, ctx, fixed=fixed)
    if want_broad:
        ctx.check_cancelled()
        wb = _broad_variant(data, complex_name, config, ctx, start=best, fixed=_hold_trough(best, fixed))
        t = compare_fits(best, wb, config, "broad")
        tests.append(t)
        if config.broad == "yes" or t.needed:
            best = wb
    if want_out:
        ctx.check_cancelled()
        wo = _fit_variant(data, complex_name, config, ctx, n_broad=_n_broad(best), outflow=True, start=best,
                          fixed=fixed)
        t = compare_fits(best, wo, config, "outflow")
        tests.append(t)
        if config.outflow == "yes" or t.needed:
            best = wo
    best.tests = tests
    if config.mc_samples > 0:
        from galdesk.lines.vectorized import mc_errors

        mc_errors(best, config.mc_samples, seed=config.mc_seed)
    return best


def broad_test(spec, complex_name: str = "halpha", config: FitConfig | None = None, ctx=None) -> BroadTest:
    """Fit a complex with and without a broad Balmer component and compare them.

    Parameters
    ----------
    spec : SpectrumData
    complex_name : str
        ``"halpha"`` (default), ``"hbeta"`` or ``"hgamma"``.
    config : FitConfig
        ``broad`` is ignored (both fits are made); ``outflow`` is not used here.

    Returns
    -------
    BroadTest
        ``delta_bic`` (> 0 favours the broad component), ``f_stat``, ``p_value``, ``verdict``; ``fit_without`` and
        ``fit_with`` hold both fits.
    """
    config = replace(config or FitConfig(), broad="auto", outflow="no")
    ctx = ctx or NullContext()
    if not LL.COMPLEXES[complex_name].broad:
        raise ValueError(f"{complex_name} has no broad-capable line")
    data = prepare_data(spec, complex_name, config, None, broad=True)
    f0 = _fit_variant(data, complex_name, config, ctx)
    f1 = _broad_variant(data, complex_name, config, ctx, start=f0, fixed=_hold_trough(f0, None))
    return compare_fits(f0, f1, config, "broad")


# ---------------------------------------------------------------------------------------------------------------
# derived quantities
# ---------------------------------------------------------------------------------------------------------------
def _groups(layout: Layout) -> list[tuple[str, str, list[int]]]:
    out: dict[tuple[str, str], list[int]] = {}
    for i, (line, comp) in enumerate(zip(layout.g_line, layout.g_comp)):
        out.setdefault((line, comp), []).append(i)
    return [(k[0], k[1], v) for k, v in out.items()]


def _quantities(layout: Layout, theta: np.ndarray, z: float, inst: np.ndarray, groups, stellar=None) -> np.ndarray:
    """(n_groups, 5) for ``theta`` (P,), or (B, n_groups, 5) for (B, P): flux, FWHM (intrinsic km/s), velocity,
    EW (rest, A), continuum at centre. One model evaluation for the whole batch."""
    th = np.atleast_2d(np.asarray(theta, dtype=float))
    nb, ng = th.shape[0], len(groups)
    fl = layout.fluxes(th)
    v = th[:, layout.vidx]
    s = layout.sigmas(th)
    out = np.zeros((nb, ng, 5))
    wc = np.zeros((nb, ng))
    for j, (_, comp, idx) in enumerate(groups):
        f = -fl[:, idx] if comp == "absorption" else fl[:, idx]
        tot = f.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            vw = np.where(tot != 0, np.sum(f * v[:, idx], axis=1) / tot, v[:, idx[0]])
        if len(idx) == 1:
            fw = FWHM_PER_SIGMA * s[:, idx[0]]
        else:
            fw = np.array([fwhm_of_sum(f[b], v[b, idx], s[b, idx]) for b in range(nb)])
        out[:, j, 0], out[:, j, 1], out[:, j, 2] = tot, fw, vw
        wc[:, j] = layout.rest[idx[0]] * (1 + z) * (1 + vw / C_KMS)
    if ng:
        tm = np.interp(wc, stellar[0], stellar[1]) if layout.tidx >= 0 else None
        _, (g, cont) = evaluate(layout, th, wc, np.full(nb, z), np.broadcast_to(inst, (nb, len(inst))),
                                components=True, tmpl=tm)
        absm = np.array([c == "absorption" for c in layout.g_comp])
        level = cont + (g[:, absm].sum(axis=1) if absm.any() else 0.0)
        out[:, :, 4] = level
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, :, 3] = out[:, :, 0] / level / (1 + z)
    return out if np.ndim(theta) == 2 else out[0]


def measure(cf: ComplexFit, cov: np.ndarray | None = None) -> list[LineMeasurement]:
    """Derived quantities of every line component with errors propagated from the covariance.

    Parameters
    ----------
    cf : ComplexFit
    cov : ndarray or None
        Covariance to propagate (default ``cf.cov``).
    """
    layout, theta, z, inst = cf.layout, cf.theta, cf.z, cf.inst
    cov = cf.cov if cov is None else cov
    groups = _groups(layout)
    q0, err = propagate(lambda th: _quantities(layout, th, z, inst, groups, cf.stellar), theta, cov)
    out = []
    for j, (line, comp, idx) in enumerate(groups):
        flux, fw, vw, ew, lev = q0[j]
        s_int = fw / FWHM_PER_SIGMA
        s_inst = float(inst[idx[0]])
        f_err = err[j, 0]
        out.append(LineMeasurement(
            name=line, wave_vac=LL.LINES[line], component=comp, flux=float(flux), flux_err=float(f_err),
            fwhm_kms=float(fw), fwhm_err=float(err[j, 1]), sigma_kms=float(s_int),
            sigma_obs_kms=float(math.hypot(s_int, s_inst)), v_kms=float(vw), v_err=float(err[j, 2]),
            ew=float(ew), ew_err=float(err[j, 3]), snr=float(flux / f_err) if f_err > 0 else float("nan"),
            continuum=float(lev), complex_name=cf.complex_name,
        ))
    return out


# ---------------------------------------------------------------------------------------------------------------
# whole spectrum
# ---------------------------------------------------------------------------------------------------------------
def _densities(sf: SpectrumFit, min_snr: float) -> dict:
    """Electron densities from the [SII] and [OII] doublets whose total flux has S/N >= ``min_snr``."""
    out = {}
    for key, (line, (partner, _, _, _)) in zip(("sii", "oii"), LL.DENSITY_CALIBRATION.items()):
        m1, m2 = sf.line(line), sf.line(partner)
        if m1 is None or m2 is None or m2.flux <= 0:
            continue
        tot, tot_err = m1.flux + m2.flux, math.hypot(m1.flux_err, m2.flux_err)
        if not (tot_err > 0 and tot / tot_err >= min_snr):
            continue
        cf = sf.complexes.get(m1.complex_name)
        p = cf.params.get(f"{line}_ratio") if cf is not None and cf.params is not None else None
        if p is not None:
            r, r_err = float(p.value), (float(p.stderr) if p.stderr else 0.0)
        else:  # free fluxes: the ratio and its first-order error (covariance of the two fluxes neglected)
            r = m1.flux / m2.flux
            r_err = r * math.hypot(m1.flux_err / m1.flux if m1.flux > 0 else 0.0, m2.flux_err / m2.flux)
        out[key] = LL.electron_density(line, r, r_err)
    return out


def _flux_sum(sf: SpectrumFit, items: list[LineMeasurement]) -> tuple[float, float]:
    """Total flux of line components and its error, with the correlations of components fitted together (e.g. an
    [OIII] core and its wing, which trade flux; the [SII] doublet fitted as F and R·F) taken from the fit's
    covariance; the components' own errors (covariance or Monte Carlo) set the scale."""
    flux = float(sum(m.flux for m in items))
    err = np.array([m.flux_err for m in items], dtype=float)
    rho = np.eye(len(items))
    cfs = {m.complex_name for m in items}
    cf = sf.complexes.get(next(iter(cfs))) if len(cfs) == 1 else None
    if cf is not None and cf.cov is not None and len(items) > 1:
        lay, th = cf.layout, cf.theta
        grads = np.zeros((len(items), th.size))
        for i, m in enumerate(items):
            for k, (line, comp) in enumerate(zip(lay.g_line, lay.g_comp)):
                if line != m.name or comp != m.component:
                    continue
                r = th[lay.ridx[k]] if lay.ridx[k] >= 0 else 1.0
                grads[i, lay.fidx[k]] += lay.fmult[k] * r
                if lay.ridx[k] >= 0:
                    grads[i, lay.ridx[k]] += lay.fmult[k] * th[lay.fidx[k]]
        c = grads @ cf.cov @ grads.T
        sd = np.sqrt(np.clip(np.diag(c), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = c / np.outer(sd, sd)
        rho = np.where(np.isfinite(r), np.clip(r, -1, 1), 0.0)
        np.fill_diagonal(rho, 1.0)
    return flux, float(math.sqrt(max(float(err @ rho @ err), 0.0)))


def _bpt_ratios(sf: SpectrumFit, min_snr: float) -> dict:
    """log [NII]/Hα, [OIII]/Hβ, [SII]/Hα, [OI]/Hα with errors, from the narrow Balmer lines and the whole
    narrow-line-region emission of each forbidden line: [OIII] 5007 is its core plus, where one was needed, its
    outflow wing (the demarcation lines are calibrated on single-Gaussian fluxes; the core alone made Seyferts with
    strong wings LINERs or "ambiguous")."""
    def get(name, components=("narrow",)):
        return [m for m in (sf.line(name, c) for c in components) if m is not None]

    def den(name):
        m = sf.line(name)
        if m is None or not np.isfinite(m.snr) or m.snr < min_snr or m.flux <= 0:
            return None
        return m

    out = {}
    ha, hb = den("halpha"), den("hbeta")

    def ratio(key, names, d, components=("narrow",)):
        items = [m for n in names for m in get(n, components)]
        if d is None or not items or any(not get(n) for n in names):
            return
        f, fe = _flux_sum(sf, items)
        if not (f > 0 and fe > 0 and f / fe >= min_snr):
            return
        out[key] = math.log10(f / d.flux)
        out[key + "_err"] = (1 / math.log(10)) * math.hypot(fe / f, d.flux_err / d.flux)

    ratio("log_n2ha", ["nii6584"], ha)
    ratio("log_o3hb", ["oiii5007"], hb, components=("narrow", "outflow"))
    ratio("log_s2ha", ["sii6717", "sii6731"], ha)
    ratio("log_o1ha", ["oi6300"], ha)
    return out


#: Complexes whose lines are blended at SDSS-like resolution (R ~ 2000): their velocity is tied to Hα's.
UNRESOLVED = ("oii",)


def _broad_tie(ha: ComplexFit | None, name: str, config: FitConfig) -> dict:
    """With ``config.tie_broad``: the broad Gaussians' velocities and widths of Hα, for Hβ/Hγ (else {})."""
    if not config.tie_broad or ha is None or name not in ("hbeta", "hgamma") or not ha.tests:
        return {}
    test = next((t for t in ha.tests if t.component == "broad"), None)
    nb = _n_broad(ha)
    if test is None or not test.needed or nb == 0:
        return {}
    # broad1_v, broad1_sigma, broad2_v, broad2_dsigma, ...: every broad kinematic parameter
    return {n: float(ha.theta[i]) for i, n in enumerate(ha.layout.names) if n.startswith("broad")}


def fit_spectrum(spec, config: FitConfig | None = None, ctx=None) -> SpectrumFit:
    """Fit every configured complex of a spectrum, decide on a broad component, classify on the BPT diagrams.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
    config : FitConfig
    ctx : TaskContext or None
        Progress per complex; cancellation between complexes and inside lmfit.

    Returns
    -------
    SpectrumFit
        Complexes outside the spectrum (or without good pixels) are listed in ``skipped`` with the reason.
        ``broad`` is the Hα test when Hα was fitted, else the Hβ test.
    """

    config = config or FitConfig()
    ctx = ctx or NullContext()
    sf = SpectrumFit(source=str(spec.source), id=str(spec.id), z=spec.redshift,
                     flux_unit=str(getattr(spec, "flux_unit", "") or ""))
    # strong complexes first: their narrow kinematics are the reference for weak ones
    order = sorted(config.complexes, key=lambda c: (c not in ("halpha", "hbeta"), c != "halpha"))
    n = len(order)
    for i, name in enumerate(order):
        ctx.check_cancelled()
        ctx.progress(i / n, f"{spec.id}: {name}")
        try:
            fixed = None
            ha = sf.complexes.get("halpha")
            if name == "hbeta" and ha is not None and config.tie_balmer:
                fixed = {"balmer_v": float(ha.theta[ha.layout.index("narrow_v")]),
                         "balmer_sigma": float(ha.theta[ha.layout.index("narrow_sigma")])}
            cfg = config
            tie = _broad_tie(ha, name, config)
            if tie:
                # the same broad-line region: Hβ (Hγ) take Hα's broad velocities and widths, only fluxes are free
                fixed = {**(fixed or {}), **tie}
                cfg = replace(config, n_broad=_n_broad(ha))
            ref = sf.complexes.get("halpha") or sf.complexes.get("hbeta")
            if name in UNRESOLVED and ref is not None:
                # a doublet blended at the instrument's resolution: its centroid cannot tell a velocity shift
                # from a change of ratio, so it takes the Balmer lines' velocity (its width stays free)
                fixed = {"narrow_v": float(ref.theta[ref.layout.index("narrow_v")])}
            cf = fit_complex(spec, name, cfg, ctx, fixed=fixed)
            if name not in ("halpha", "hbeta") and ref is not None and config.tie_snr > 0:
                snr = max((m.snr for m in cf.measurements if m.component == "narrow" and np.isfinite(m.snr)),
                          default=0.0)
                if snr < config.tie_snr:
                    fixed = {k: float(ref.theta[ref.layout.index(k)]) for k in ("narrow_v", "narrow_sigma")}
                    cf = fit_complex(spec, name, cfg, ctx, fixed={**fixed, **tie})
            sf.complexes[name] = cf
        except Cancelled:
            raise
        except ValueError as exc:
            sf.skipped[name] = str(exc)
    sf.complexes = {k: sf.complexes[k] for k in config.complexes if k in sf.complexes}
    meta = spec.meta if isinstance(spec.meta, dict) else {}
    if config.continuum != "local":
        st = meta.get("stellar_fit")
        if st is not None:
            sf.stellar = {"kind": meta.get("continuum_kind", "stellar"), **st.to_dict()}
        elif meta.get("stellar_error"):
            sf.stellar = {"error": meta["stellar_error"]}
    if sf.z is not None and sf.z > 0:
        # load astropy.cosmology here, on the worker (~0.5 s, once per process): summarize() also runs on the GUI
        # thread after an interactive refit, where a first broad line would otherwise pay for it
        from galdesk.lines.bhmass import luminosity_distance_cm

        luminosity_distance_cm(sf.z)
    summarize(sf, config)
    if sf.stellar and sf.stellar.get("kind") == "agn":
        # Fe II strength relative to broad Hβ (Boroson & Green 1992), an Eigenvector-1 coordinate
        hb, ff, fe = sf.line("hbeta", "broad"), sf.stellar.get("feii_flux"), sf.stellar.get("feii_flux_err")
        ok = hb is not None and ff is not None and math.isfinite(hb.flux) and hb.flux > 0
        sf.stellar["r_feii"] = float(ff / hb.flux) if ok else None
        sf.stellar["r_feii_err"] = (float(ff / hb.flux * math.hypot(fe / ff, hb.flux_err / hb.flux))
                                    if ok and fe is not None and ff > 0 and math.isfinite(hb.flux_err) else None)
    ctx.progress(1.0, f"{spec.id}: done")
    return sf


def _bh_mass(sf: SpectrumFit) -> dict:
    """Luminosities and single-epoch virial masses (:mod:`galdesk.lines.bhmass`) from the broad Hβ and Hα in the
    result (a broad component stays only where its test found it needed, or where ``broad="yes"`` asked for it);
    the nucleus' 5100 Å continuum comes from the AGN pseudo-continuum's power law."""
    from galdesk.lines.bhmass import black_hole_masses

    hb, ha = sf.line("hbeta", "broad"), sf.line("halpha", "broad")
    if hb is None and ha is None:
        return {}
    st = sf.stellar or {}
    f5100 = st.get("powerlaw_5100") if st.get("kind") == "agn" else None
    return black_hole_masses(sf.z, sf.flux_unit, hbeta=hb, halpha=ha, f5100=f5100,
                             f5100_err=st.get("powerlaw_5100_err"))


def _oiii_kinematics(sf: SpectrumFit, min_snr: float) -> dict:
    """Velocity percentiles and W80 of [OIII] 5007 (core + wing) when the line is detected (S/N >= min_snr)."""
    from galdesk.lines.profile import line_kinematics

    items = [m for m in (sf.line("oiii5007"), sf.line("oiii5007", "outflow")) if m is not None]
    cf = sf.complexes.get(items[0].complex_name) if items else None
    if cf is None:
        return {}
    f, fe = _flux_sum(sf, items)
    return line_kinematics(cf, "oiii5007") if f > 0 and fe > 0 and f / fe >= min_snr else {}


def summarize(sf: SpectrumFit, config: FitConfig | None = None) -> SpectrumFit:
    """(Re)derive the spectrum-level verdicts from its complexes: the broad test (Hα's, else Hβ's, else Hγ's),
    the BPT log ratios with errors and the BPT class. Called by :func:`fit_spectrum` and after an interactive
    refit replaces one complex."""
    from galdesk.lines.bpt import classify_bpt

    config = config or FitConfig()
    sf.broad = None
    for name in ("halpha", "hbeta", "hgamma"):
        cf = sf.complexes.get(name)
        if cf is not None:
            t = [t for t in cf.tests if t.component == "broad"]
            if t:
                sf.broad = t[0]
                break
    sf.bpt = _bpt_ratios(sf, config.bpt_min_snr)
    sf.density = _densities(sf, config.bpt_min_snr)
    sf.bh_mass = _bh_mass(sf)
    sf.oiii_kinematics = _oiii_kinematics(sf, config.bpt_min_snr)
    sf.bpt_class = None
    if "log_n2ha" in sf.bpt and "log_o3hb" in sf.bpt:
        b = sf.bpt
        sf.bpt_class = classify_bpt(b["log_n2ha"], b["log_o3hb"], b.get("log_s2ha"), b.get("log_o1ha"),
                                    n2ha_err=b.get("log_n2ha_err"), o3hb_err=b.get("log_o3hb_err"),
                                    s2ha_err=b.get("log_s2ha_err"), o1ha_err=b.get("log_o1ha_err"))
    return sf
