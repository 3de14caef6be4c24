"""How to fit a spectrum: :class:`FitConfig` and the continuum choices (:data:`CONTINUA`).

Units as in the rest of :mod:`galdesk.lines`: velocities and dispersions in km/s, wavelengths in Angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass

from galdesk.lines import linelist as LL

__all__ = ["CONTINUA", "FitConfig"]

#: Values of :attr:`FitConfig.continuum`.
CONTINUA = ("auto", "stellar", "agn", "local")


@dataclass
class FitConfig:
    """How to fit a spectrum (with :func:`~galdesk.lines.spectrum.fit_spectrum`, which "fit_spectrum" below means).

    Attributes
    ----------
    complexes : tuple of str
        Keys of :data:`galdesk.lines.linelist.COMPLEXES` to fit (those outside the spectrum are skipped).
    broad : {"auto", "yes", "no"}
        Broad Balmer component(s): test with ΔBIC and F-test and keep it if needed ("auto"), always, or never.
    n_broad : int or "auto"
        Number of broad Gaussians per Balmer line (their sum is reported as one broad line); "auto" starts with one
        and adds a second (up to ``max_broad``) while that lowers the BIC by more than ``bic_threshold``.
    max_broad : int
        Most broad Gaussians per Balmer line with ``n_broad="auto"``.
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
    mc_seed : int
        Seed of the Monte Carlo noise (results are reproducible).
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
    broad_dv_max : float
        Largest |broad − narrow| centroid offset (km/s) of a broad-line region; a broad Gaussian further away sits in
        the continuum between lines (a LINER's "broad Hα" at +2300 km/s between [NII] and [SII]). For very broad
        lines the limit is ``broad_dv_fwhm_fraction`` of the FWHM when that is larger.
    refine_redshift : bool
        When the narrow lines end at ``narrow_v_max`` from the given redshift, or the fit put them far from where
        they are found, fit again at the narrow-line redshift (the result's ``z`` and a note say so); off: the
        given z is kept whatever the fit says.
    fit_stars : bool
        Fit spectra whose file classes them as stars (``spec_class`` STAR); by default they are skipped with that
        reason in batch fits (a K star's absorption on galaxy templates left [OIII] "at S/N 15").
    broad_dv_fwhm_fraction : float
        The offset limit grows with the broad line's width: quasars' broad lines sit up to ~1,500-2,000 km/s from
        their narrow lines (Shen et al. 2016), a quarter of a typical 6,000-8,000 km/s FWHM; a bump of 2,600 km/s
        FWHM at +2,300 km/s is still rejected.
    outflow_min_ratio : float
        An outflow wing must be at least this many times broader (dispersion) than the core, else it is a core split,
        not an outflow.
    check_templates : str or None
        The broad-line verdict must survive a change of stellar library: the test is repeated on the continuum of
        this template file (default "mastar": the bundled MaStar SSPs,
        :func:`galdesk.lines.stellar.second_template_path`) and ΔBIC must pass there too. None or "" disables it.
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

    complexes: tuple[str, ...] = ("halpha", "hbeta", "hgamma", "sii", "oi", "oii")
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
    broad_dv_max: float = 1000.0
    broad_dv_fwhm_fraction: float = 0.25
    fit_stars: bool = False
    refine_redshift: bool = True
    outflow_min_ratio: float = 1.5
    check_templates: str | None = "mastar"
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
