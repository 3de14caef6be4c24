"""Results of emission-line fits: one line component, one broad/outflow test, one complex, one spectrum.

Plain containers with their JSON form (:meth:`SpectrumFit.to_dict`, the ``line_fit`` journal payload). Units as in
:mod:`galdesk.lines.engine`: observed vacuum Angstrom, the spectrum's flux unit (x Angstrom for integrated
fluxes), km/s, rest-frame equivalent widths in Angstrom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.model import Layout, component_curves, evaluate, template_at
from galdesk.lines.saved import model_record

__all__ = ["LineMeasurement", "BroadTest", "ComplexFit", "SpectrumFit"]


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
    complex_name : str
        The complex it was fitted in.
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
        """Every attribute, NaN and infinities as None (JSON-friendly)."""
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
    complex_name, component : str
        The complex and the extra component (``"broad"`` or ``"outflow"``).
    dof_extra : int
        Extra free parameters of the fit with the component.
    chisqr_without, chisqr_with : float
    ndata : int
    criteria : dict
        Every criterion behind ``needed``: name -> {"value": ..., "limit": ..., "pass": bool} (ΔBIC, F-test, S/N,
        FWHM, velocity offset, parameters at a bound, width ratio, the second library's ΔBIC, the Hα veto).
    rejected : list of str
        The failed criteria, one sentence each (empty when ``needed``).
    delta_bic_alt : float or None
        ΔBIC of the same test on the continuum of the second, independent stellar library (None: not run).
    fit_without, fit_with : ComplexFit
        Both fits (not in :meth:`to_dict`).
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
    criteria: dict = field(default_factory=dict)
    rejected: list = field(default_factory=list)
    delta_bic_alt: float | None = None
    fit_without: Any = field(default=None, repr=False)
    fit_with: Any = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The scalars (not the fits), NaN and infinities as None."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("fit_without", "fit_with", "criteria", "rejected")}
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        d["criteria"] = {k: {kk: (None if isinstance(vv, float) and not math.isfinite(vv) else vv)
                             for kk, vv in c.items()} for k, c in self.criteria.items()}
        d["rejected"] = list(self.rejected)
        return d

    def reject(self, key: str, why: str, value=None, limit=None) -> None:
        """Fail one more criterion: the component is not needed, and ``why`` says so."""
        self.criteria[key] = {"value": value, "limit": limit, "pass": False}
        if why not in self.rejected:
            self.rejected.append(why)
        if self.needed:
            self.needed = False
        self.verdict = f"no {self.component} component needed"


@dataclass
class ComplexFit:
    """Result of fitting one complex.

    Attributes
    ----------
    complex_name : str
        Key of :data:`galdesk.lines.linelist.COMPLEXES`.
    layout : galdesk.lines.model.Layout
        The model that was fitted.
    params : lmfit.Parameters
        Best-fit parameters (physical units) with ``stderr`` from the covariance; pass back as ``params_override``
        for a warm-started refit.
    theta, cov : ndarray
        Parameter vector and covariance in ``layout.names`` order.
    wave, flux, weight : ndarray
        Pixels that entered the fit (observed vacuum Angstrom, flux, 1/sigma).
    z : float
        Redshift the velocities are relative to.
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    chisqr, redchi, bic, aic : float
    ndata, nvarys : int
    success : bool
    message : str
    nfev : int
        Residual evaluations (lmfit) or iterations (batched fitter).
    window : (float, float)
        Fit window, observed vacuum Angstrom.
    vacuum : bool
        Whether the spectrum's own wavelengths are vacuum (else air: :meth:`model_curves` converts).
    measurements : list of LineMeasurement
    tests : list of BroadTest
        Broad / outflow tests run to choose this model.
    mc_samples : int
        Noise realisations behind the errors (0: covariance).
    stellar : (ndarray, ndarray) or None
        The whole-spectrum continuum model around the window (vacuum wavelength, values), when the fit used one.
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
        return template_at(self.layout, self.stellar, wave_vac)

    @property
    def has_broad(self) -> bool:
        """The model has a broad Balmer component."""
        return "broad" in self.layout.g_comp

    @property
    def has_outflow(self) -> bool:
        """The model has an [OIII] outflow wing."""
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
        return component_curves(self.layout, self.theta, w, self.z, self.inst, self.tmpl_at(w))

    def residuals(self) -> np.ndarray:
        """(data - model) / sigma on the fitted pixels."""
        tm = self.tmpl_at(self.wave)
        m = evaluate(self.layout, self.theta[None, :], self.wave[None, :], np.array([self.z]), self.inst[None, :],
                     tmpl=None if tm is None else tm[None, :])
        return (self.flux - m[0]) * self.weight

    def measurement(self, name: str, component: str = "narrow") -> LineMeasurement | None:
        """The measurement of one line component, or None if the model has none."""
        for m in self.measurements:
            if m.name == name and m.component == component:
                return m
        return None


@dataclass
class SpectrumFit:
    """All complexes of one spectrum, the broad-line verdict and the BPT class.

    Attributes
    ----------
    source, id : str
        The spectrum's file and id.
    z : float or None
    complexes : dict
        Complex name -> :class:`ComplexFit`, in the configured order.
    broad : BroadTest or None
        The broad-line test of Hα, else Hβ, else Hγ.
    bpt : dict
        Log line ratios with errors (``log_n2ha``, ``log_n2ha_err``, ...).
    bpt_class : str or None
    skipped : dict
        Complex -> why it was not fitted.
    error : str or None
        Why the whole spectrum failed (batch fits).
    stellar : dict or None
        Summary of the whole-spectrum continuum fit (``kind`` "stellar" or "agn"), or ``{"error": ...}``.
    density : dict
        ``"sii"``/``"oii"`` -> electron density (:func:`galdesk.lines.linelist.electron_density`).
    flux_unit : str
        The spectrum's flux-density unit.
    bh_mass : dict
        Luminosities and virial masses (:func:`galdesk.lines.bhmass.black_hole_masses`).
    oiii_kinematics : dict
        [OIII] 5007 velocity percentiles and W80 (:func:`galdesk.lines.profile.line_kinematics`).
    skip_reason : str or None
        Why the spectrum was not fitted at all although it was read (``"no redshift"``, a sky or fully masked
        fibre); a skipped spectrum has no lines. Distinct from ``error`` (the file or the fit failed).
    z_source : str or None
        Where ``z`` came from (``"--z"``, a catalogue's or a redrock file's name, ``"file"``, ...).
    zwarn : int or None
        The redshift fitter's warning bits (DESI redrock ``ZWARN``); non-zero: fitted, but the redshift is flagged.
    notes : list of str
        Remarks on the inputs (a flagged redshift, a catalogue z that differs from the file's, ...).
    errors_estimated : str or None
        How the flux errors were estimated when the file had none (``spec.meta["errors_estimated"]``, e.g.
        ``"DER_SNR, 101 px"``); None when they are the file's own.
    """

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
    skip_reason: str | None = None
    z_source: str | None = None
    zwarn: int | None = None
    notes: list[str] = field(default_factory=list)
    errors_estimated: str | None = None

    @property
    def status(self) -> str:
        """``"error"`` (``error`` set), ``"skipped"`` (``skip_reason`` set) or ``"fitted"``."""
        return "error" if self.error else ("skipped" if self.skip_reason else "fitted")

    @property
    def lines(self) -> list[LineMeasurement]:
        """Every measurement of every complex."""
        out: list[LineMeasurement] = []
        for cf in self.complexes.values():
            out.extend(cf.measurements)
        return out

    @property
    def broad_needed(self) -> bool:
        """The broad-line test found a broad component needed."""
        return bool(self.broad.needed) if self.broad is not None else False

    @property
    def delta_bic(self) -> float | None:
        """ΔBIC of the broad-line test (> 0 favours the broad component), None without a test."""
        return None if self.broad is None else float(self.broad.delta_bic)

    def line(self, name: str, component: str = "narrow") -> LineMeasurement | None:
        """The measurement of one line component in any complex, or None."""
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
        ``skipped``, ``error`` and ``model`` (per complex, the best-fit parameters with what is needed to evaluate
        them again, see :func:`galdesk.lines.saved.model_record`: views draw a saved fit without refitting it).

        What happened to the spectrum: ``status`` (``"fitted"``, ``"skipped"`` or ``"error"``), ``skip_reason``
        (why a spectrum that was read was not fitted, e.g. ``"no redshift"``; ``skipped`` keeps the per-complex
        reasons), ``z_source``, ``zwarn`` and ``notes`` (where the redshift came from and what is doubtful).
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
        out = {
            "source": self.source,
            "id": self.id,
            "z": clean(self.z),
            "lines": lines,
            "broad_needed": self.broad_needed,
            "delta_bic": clean(self.delta_bic),
            "delta_bic_alt": clean(self.broad.delta_bic_alt) if self.broad is not None and
            self.broad.delta_bic_alt is not None else None,
            "broad_rejected": "; ".join(self.broad.rejected) if self.broad is not None and self.broad.rejected
            else None,
            "errors_estimated": self.errors_estimated,
            "flux_unit": self.flux_unit,
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
            "status": self.status,
            "skip_reason": self.skip_reason,
            "z_source": self.z_source,
            "zwarn": self.zwarn,
            "notes": list(self.notes),
            "model": {k: model_record(cf) for k, cf in self.complexes.items()},
        }
        if self.status != "fitted":  # not fitted: no broad-line test and no continuum, rather than "no" and "local"
            out.update(broad_needed=None, delta_bic=None, continuum=None)
        return out
