"""The parameters of one complex's model: :func:`build_layout` (names, starting values, bounds and the Gaussians
that use them, see :class:`galdesk.lines.model.Layout`) and :func:`to_params` (the same as ``lmfit.Parameters``).

Starting values come from the data: narrow fluxes from the peak above the local continuum guess, broad fluxes
from the area of the residual, Balmer troughs from the continuum level. Units: fluxes in the spectrum's flux unit x
Angstrom (observed frame), velocities and intrinsic dispersions in km/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.config import FitConfig
from galdesk.lines.continuum import guess_continuum
from galdesk.lines.model import Layout
from galdesk.units import C_KMS

__all__ = ["build_layout", "to_params"]

#: Stands for "unbounded" in :attr:`Layout.lower` / ``upper`` (lmfit gets ±inf).
BIG = 1e30


@dataclass
class _Builder:
    """Parameters and Gaussians of a layout under construction, with the data that set starting values."""

    data: dict
    z: float
    rest_ref: float
    cont0: np.ndarray
    names: list = field(default_factory=list)
    init: list = field(default_factory=list)
    lower: list = field(default_factory=list)
    upper: list = field(default_factory=list)
    gauss_cols: dict = field(default_factory=lambda: {k: [] for k in (
        "g_line", "g_comp", "g_kin", "rest", "fidx", "vidx", "sidx", "fmult", "sadd", "ridx")})

    def add(self, name: str, value: float, lo: float, hi: float) -> int:
        """A parameter (starting value clipped into its bounds); returns its index."""
        self.names.append(name)
        self.init.append(float(np.clip(value, lo, hi)))
        self.lower.append(lo)
        self.upper.append(hi)
        return len(self.names) - 1

    def gauss(self, line, comp, kin, fi, vi, si, mult, sa=-1, ri=-1) -> None:
        """A Gaussian of ``line`` using the flux, velocity and dispersion parameters ``fi``, ``vi``, ``si`` (plus
        ``sa`` added to the dispersion, ``ri`` multiplying the flux; -1 for none) with flux multiplier ``mult``."""
        for key, val in (("sadd", sa), ("ridx", ri), ("g_line", line), ("g_comp", comp), ("g_kin", kin),
                         ("rest", LL.LINES[line]), ("fidx", fi), ("vidx", vi), ("sidx", si), ("fmult", mult)):
            self.gauss_cols[key].append(val)

    def cont_at(self, lam) -> float:
        """The starting continuum polynomial at observed wavelength ``lam``."""
        xx = 100.0 * (lam / (self.rest_ref * (1 + self.z)) - 1.0)
        return float(sum(c * xx ** k for k, c in enumerate(self.cont0)))

    def peak_flux(self, line: str, sig_kms: float, dv_kms: float = 250.0) -> float:
        """Flux of a Gaussian of dispersion ``sig_kms`` whose peak is the highest pixel above the continuum within
        ``dv_kms`` of the line."""
        wave, flux = self.data["wave"], self.data["flux"]
        c = LL.LINES[line] * (1 + self.z)
        near = np.abs(wave - c) < c * dv_kms / C_KMS
        pk = float(np.max(flux[near] - self.cont_at(c))) if near.any() else 0.0
        s_inst = float(self.data["inst"](np.array([c]))[0])
        sl = c * math.hypot(sig_kms, s_inst) / C_KMS
        return pk * math.sqrt(2 * math.pi) * sl

    def layout(self, complex_name: str, cidx: list[int], tidx: int) -> Layout:
        gc = self.gauss_cols
        return Layout(
            complex_name=complex_name, names=self.names, init=np.array(self.init), lower=np.array(self.lower),
            upper=np.array(self.upper), vary=np.ones(len(self.names), bool), g_line=gc["g_line"],
            g_comp=gc["g_comp"], g_kin=gc["g_kin"], rest=np.array(gc["rest"]), fidx=np.array(gc["fidx"], int),
            vidx=np.array(gc["vidx"], int), sidx=np.array(gc["sidx"], int), fmult=np.array(gc["fmult"], float),
            cidx=np.array(cidx, int), rest_ref=self.rest_ref, sadd=np.array(gc["sadd"], int), tidx=tidx,
            ridx=np.array(gc["ridx"], int),
        )


def build_layout(data: dict, complex_name: str, config: FitConfig, n_broad: int = 0, outflow: bool = False,
                 absorption: bool | None = None, start=None, broad_sigma0: float = 1500.0, fixed: dict | None = None,
                 balmer_kin: tuple[float, float] | None = None) -> tuple[Layout, np.ndarray]:
    """Build the parameter layout and the instrumental widths of one complex.

    Parameters
    ----------
    data : dict
        From :func:`galdesk.lines.window.prepare_data`.
    complex_name : str
    config : FitConfig
    n_broad : int
        Broad Gaussians per Balmer line of the complex (0 = narrow only).
    outflow : bool
        Add the [OIII] outflow component (complexes with outflow lines only).
    absorption : bool or None
        Balmer absorption trough; default ``config.absorption`` (off when a stellar continuum was subtracted).
    start : galdesk.lines.results.ComplexFit or None
        Previous fit whose parameter values seed the shared parameters (narrow solution before a broad fit).
    broad_sigma0 : float
        Starting intrinsic dispersion of the first broad Gaussian, km/s.
    fixed : dict or None
        Parameter name -> value to hold fixed (e.g. the narrow kinematics of a stronger complex).
    balmer_kin : (float, float) or None
        Narrow velocity and intrinsic dispersion (km/s) for the Balmer line of a mixed complex (Hβ in Hβ+[OIII]),
        held fixed — in :func:`galdesk.lines.spectrum.fit_spectrum`, those of Hα.

    Returns
    -------
    layout : Layout
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    """
    cx = LL.COMPLEXES[complex_name]
    z = data["z"]
    absorption = _use_absorption(data, config, absorption)
    tmpl = data.get("tmpl")
    order = int(config.agn_continuum_order if data.get("agn") else config.continuum_order)
    rest_ref, cont0, _ = guess_continuum(data["wave"], data["flux"] if tmpl is None else data["flux"] - tmpl, z, cx,
                                         order)
    b = _Builder(data=data, z=z, rest_ref=rest_ref, cont0=cont0)
    iv = b.add("narrow_v", 0.0, -config.narrow_v_max, config.narrow_v_max)
    isg = b.add("narrow_sigma", 100.0, 1.0, config.narrow_sigma_max)
    # Balmer lines may follow other kinematics than the forbidden lines of their complex (Hβ vs [OIII] in AGN):
    # with ``balmer_kin`` their narrow velocity/width are separate parameters, fixed at the given values
    ibv_n, ibs_n = iv, isg
    if balmer_kin is not None and any(n in LL.BALMER for n in cx.lines) and \
            any(n not in LL.BALMER for n in cx.lines):
        ibv_n = b.add("balmer_v", balmer_kin[0], -config.narrow_v_max, config.narrow_v_max)
        ibs_n = b.add("balmer_sigma", balmer_kin[1], 1.0, config.narrow_sigma_max)
    _add_narrow(b, cx, config, (iv, isg), (ibv_n, ibs_n))
    if cx.broad:
        _add_broad(b, cx, config, n_broad, broad_sigma0)
    if outflow and cx.outflow:
        _add_outflow(b, cx, config, isg)
    if absorption and cx.absorption:
        _add_absorption(b, cx, config, ibv_n)
    cidx = [b.add(f"cont_c{k}", cont0[k], -BIG, BIG) for k in range(order + 1)]
    # the stellar model's scale: its features (the Balmer troughs) may be shallower or deeper here than the
    # whole-spectrum fit made them; the polynomial takes up the level
    tidx = b.add("stellar_scale", 1.0, 0.0, 5.0) if tmpl is not None else -1
    layout = b.layout(complex_name, cidx, tidx)
    _set_start_and_fixed(layout, config, start, fixed)
    centres = layout.rest * (1 + z)
    inst = np.asarray(data["inst"](centres), dtype=float)
    return layout, inst


def _use_absorption(data: dict, config: FitConfig, absorption: bool | None) -> bool:
    """Whether the model gets Balmer troughs: as asked, else ``config.absorption`` ("auto": not for SDSS class
    QSO); never on a continuum model (its own Balmer absorption is there already)."""
    if absorption is None:
        absorption = config.absorption
        if absorption == "auto":
            absorption = str(data.get("spec_class") or "").upper() != "QSO"
        absorption = bool(absorption)
    if data.get("tmpl") is not None:
        absorption = False
    return absorption


def _add_narrow(b: _Builder, cx: LL.Complex, config: FitConfig, kin: tuple[int, int],
                balmer: tuple[int, int]) -> None:
    """Narrow lines: the strong line of each doublet is free, the weak one tied by the atomic ratio; a
    density-sensitive doublet is ``F`` and ``R F`` with ``R`` bounded (``config.density_bounds``). ``kin`` and
    ``balmer`` are the (velocity, dispersion) parameters of the forbidden and the Balmer lines."""
    iv, isg = kin
    ibv_n, ibs_n = balmer
    free_flux: dict[str, int] = {}
    ratio_of: dict[str, int] = {}
    bounded = {ln: v for ln, v in LL.BOUNDED_RATIOS.items()
               if config.density_bounds and ln in cx.lines and v[0] in cx.lines}
    for line in cx.lines:
        if line in LL.DOUBLET_RATIOS and LL.DOUBLET_RATIOS[line][0] in cx.lines:
            continue
        if line in bounded:
            continue
        f0 = b.peak_flux(line, 100.0)
        free_flux[line] = b.add(f"{line}_flux", max(f0, 0.0), 0.0, BIG)
    for line, (partner, lo_r, hi_r) in bounded.items():
        # [SII] 6717 = R x [SII] 6731 with R inside the atomic-physics range (likewise [OII] 3729/3726)
        f_l, f_p = b.peak_flux(line, 100.0), b.peak_flux(partner, 100.0)
        r0 = f_l / f_p if f_p > 0 and f_l > 0 else 1.0
        # start inside the range: lmfit's bound transform has no gradient at a bound, a start there stays there
        pad = 0.15 * (hi_r - lo_r)
        ratio_of[line] = b.add(f"{line}_ratio", float(np.clip(r0, lo_r + pad, hi_r - pad)), lo_r, hi_r)
    for line in cx.lines:
        if line in ratio_of:
            partner = bounded[line][0]
            b.gauss(line, "narrow", "narrow", free_flux[partner], iv, isg, 1.0, ri=ratio_of[line])
        elif line in free_flux:
            bal = line in LL.BALMER
            b.gauss(line, "narrow", "balmer" if bal and ibv_n != iv else "narrow", free_flux[line],
                    ibv_n if bal else iv, ibs_n if bal else isg, 1.0)
        else:
            strong, ratio = LL.DOUBLET_RATIOS[line]
            b.gauss(line, "narrow", "narrow", free_flux[strong], iv, isg, 1.0 / ratio)


def _add_broad(b: _Builder, cx: LL.Complex, config: FitConfig, n_broad: int, broad_sigma0: float) -> None:
    """``n_broad`` broad Gaussians per Balmer line, each with its own velocity; the k-th is 2.5^(k-1) times wider
    at the start and written as the first one's dispersion + a positive delta, so they keep their order."""
    wave, flux, z = b.data["wave"], b.data["flux"], b.z
    ib1s = -1
    for k in range(1, n_broad + 1):
        ibv = b.add(f"broad{k}_v", 0.0, -config.broad_v_max, config.broad_v_max)
        s0 = broad_sigma0 * (2.5 ** (k - 1))
        if k == 1:
            ibs = ib1s = b.add("broad1_sigma", s0, config.broad_sigma_min, config.broad_sigma_max)
            sa = -1
        else:  # broad k = broad 1 + delta: the Gaussians keep their order
            ibs = ib1s
            sa = b.add(f"broad{k}_dsigma", s0 - broad_sigma0, 10.0, config.broad_sigma_max)
        for line in cx.broad:
            c = LL.LINES[line] * (1 + z)
            near = np.abs(wave - c) < c * 2.5 * s0 / C_KMS
            area = 0.0
            if near.sum() > 3:
                resid = flux[near] - np.array([b.cont_at(w_) for w_ in wave[near]])
                area = float(np.sum(resid * np.gradient(wave[near])))
            fb = max(0.5 * area / n_broad, 1e-3 * abs(b.cont_at(c)) * c * s0 / C_KMS + 1e-6)
            ib = b.add(f"{line}_b{k}_flux", fb, 0.0, BIG)
            b.gauss(line, "broad", f"broad{k}", ib, ibv, ibs, 1.0, sa)


def _add_outflow(b: _Builder, cx: LL.Complex, config: FitConfig, isg: int) -> None:
    """[OIII] outflow wing: one velocity, a dispersion = the narrow one + a positive delta (the wing stays the
    broader of the two), the weak line of the doublet tied by the same ratio."""
    iov = b.add("outflow_v", -150.0, -2000.0, 1000.0)
    ios = b.add("outflow_dsigma", 300.0, 20.0, config.outflow_sigma_max)
    strong = [ln for ln in cx.outflow if ln not in LL.DOUBLET_RATIOS] or list(cx.outflow[:1])
    free_out = {}
    for line in strong:
        f0 = 0.3 * max(b.peak_flux(line, 100.0), 0.0) + 1e-6
        free_out[line] = b.add(f"{line}_out_flux", f0, 0.0, BIG)
    for line in cx.outflow:
        if line in free_out:
            b.gauss(line, "outflow", "outflow", free_out[line], iov, isg, 1.0, ios)
        else:
            st, ratio = LL.DOUBLET_RATIOS[line]
            b.gauss(line, "outflow", "outflow", free_out[st], iov, isg, 1.0 / ratio, ios)


def _add_absorption(b: _Builder, cx: LL.Complex, config: FitConfig, ibv_n: int) -> None:
    """Stellar Balmer troughs: negative Gaussians of one width, velocity tied to the narrow Balmer lines (``ibv_n``),
    wider than any narrow line (else trough and emission cancel) and at most ``config.abs_ew_max`` A deep (rest
    EW): stellar Balmer troughs have sigma ~ 10-15 A and EW < ~10 A."""
    z = b.z
    ias = b.add("abs_sigma", 900.0, config.abs_sigma_min, config.abs_sigma_max)
    for line in cx.absorption:
        c = LL.LINES[line] * (1 + z)
        level = max(b.cont_at(c), 0.0)
        f0 = 1.0 * (1 + z) * level + 1e-6  # ~1 A rest EW
        fmax = config.abs_ew_max * (1 + z) * level + 2e-6
        ia = b.add(f"{line}_abs_flux", f0, 0.0, fmax)
        b.gauss(line, "absorption", "abs", ia, ibv_n, ias, -1.0)


def _set_start_and_fixed(layout: Layout, config: FitConfig, start, fixed: dict | None) -> None:
    """Seed shared parameters from a previous fit, then hold fixed what must not vary: the Balmer kinematics of a
    mixed complex, the continuum model's scale (unless ``config.stellar_scale_free``) and ``fixed``."""
    if start is not None:
        for i, n in enumerate(layout.names):
            if n in start.layout.names:
                layout.init[i] = np.clip(start.theta[start.layout.index(n)], layout.lower[i], layout.upper[i])
    for n in ("balmer_v", "balmer_sigma"):
        if n in layout.names:
            layout.vary[layout.index(n)] = False
    if layout.tidx >= 0 and not config.stellar_scale_free:
        layout.vary[layout.tidx] = False
    for n, val in (fixed or {}).items():
        if n in layout.names:
            i = layout.index(n)
            layout.init[i] = np.clip(val, layout.lower[i], layout.upper[i])
            layout.vary[i] = False


def to_params(layout: Layout, override=None):
    """The layout's parameters as ``lmfit.Parameters`` (starting values, bounds, vary flags).

    Parameters
    ----------
    layout : Layout
    override : lmfit.Parameters or dict or None
        Values to start from instead (clipped into the bounds); for ``Parameters`` also their ``vary`` flags, and
        their bounds where they vary.
    """
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
