"""AGN pseudo-continuum (host + power law + Fe II): galdesk's fitter against pPXF with an Fe II kinematic component.

The obvious alternative to ``galdesk.lines.agn.fit_agn_continuum`` is pPXF (Cappellari 2017/2023) run with two
kinematic components, as pPXF users fit broad Fe II: the stellar templates (and the power laws, which a LOSVD does
not change) in component 0, the Fe II groups in component 1 with their own velocity and dispersion. Both codes get
the same inputs on the SDSS quasars of ../shared/data: the bundled BC03 MILES SSPs broadened to the SDSS
instrumental resolution, the same power-law slopes, the Kovačević et al. (2010) Fe II groups at the instrumental
width, the same pixels (galdesk's broad-line and emission masks), no polynomials, no clipping. Compared: the Fe II
width, its flux in rest 4434-4684 Å, the continuum at the Hβ centre and under the Fe II 5018 blend, chi^2 at each
code's optimum, and wall time per spectrum (ratio reported).

pPXF is not a galdesk dependency (non-commercial licence); ``pip install ppxf`` to run this.

Run:  python benchmarks/bench_agn.py          (not run by the tests)
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from galdesk.lines import agn as A  # noqa: E402
from galdesk.lines import spectral as SP  # noqa: E402
from galdesk.lines import stellar as S  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
C = 299792.458
FWHM = 2 * math.sqrt(2 * math.log(2))


def sdss_quasars():
    from astropy.io import fits

    out = []
    for p in sorted((SHARED / "spectra" / "sdss").glob("*.fits")):
        with fits.open(p) as h:
            if str(h[2].data["CLASS"][0]).strip() == "QSO":
                out.append(p)
    return out


def ppxf_fit(spec, tpl, fe, fitpix, fe_fwhm_start):
    """pPXF, two components; returns (Fe II FWHM, total model, Fe II model on the spectrum's pixels, chi2, the
    pixels of that chi2, seconds). pPXF needs the spectrum inside the templates' range, so it fits slightly fewer
    pixels than galdesk; both chi2 values are reported on pPXF's pixels."""
    from ppxf import ppxf_util
    from ppxf.ppxf import ppxf

    z = float(spec.redshift)
    wave = np.asarray(spec.wavelength, float)
    flux, ivar = np.asarray(spec.flux, float), np.asarray(spec.ivar, float)
    velscale = C * float(np.mean(np.diff(np.log(wave))))
    lam_gal = wave / (1 + z)
    lam_t = tpl.lam
    # the inputs galdesk prepares: templates broadened to the instrument (this is not what is compared)
    sig_tpl, res, _ = SP.instrument_sigma(spec, wave, lam_t, z, tpl.fwhm_a, None)
    host = SP.gauss_convolve_variable(tpl.flux, np.sqrt(np.clip(res ** 2 - sig_tpl ** 2, 0, None)) / (C * tpl.dln))
    power = np.array([(lam_t / 5100.0) ** a for a in A.AGN_POWERLAW_SLOPES])
    # Fe II groups: Gaussians of the (median) instrumental width on the template grid, peaks ~ REL_INT
    s_inst = float(np.median(res)) / C
    ln_t = np.log(lam_t)
    groups = []
    for g in fe.groups:
        sel = fe.group == g
        row = np.zeros(lam_t.size)
        for lam, rel in zip(fe.wave_vac[sel], fe.rel_int[sel]):
            row += rel * np.exp(-0.5 * ((ln_t - math.log(lam)) / s_inst) ** 2)
        if row.any():
            groups.append(row)
    fe_t = np.array(groups)
    temps, comp = [], []
    for block, c in ((host, 0), (power, 0), (fe_t, 1)):
        for row in block:
            t, ln_r, _ = ppxf_util.log_rebin(lam_t, row, velscale=velscale / 2)
            temps.append(t)
            comp.append(c)
    temps = np.array(temps).T
    lam_temp = np.exp(ln_r)
    inside = (lam_gal > lam_temp[0] * 1.02) & (lam_gal < lam_temp[-1] * 0.98)
    idx = np.flatnonzero(inside)
    good = fitpix[idx]
    noise = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), 1e6)[idx]
    gal = np.where(np.isfinite(flux), flux, 0.0)[idx]
    t0 = time.perf_counter()
    # the same bounds as galdesk's defaults (pPXF's own default caps sigma at 1000 km/s)
    lo_s, hi_s = 800.0 / FWHM, 15000.0 / FWHM
    bounds = [[[-600.0, 600.0], [1.0, 500.0]], [[-3000.0, 3000.0], [lo_s, hi_s]]]
    start = [[0.0, 150.0], [0.0, float(np.clip(fe_fwhm_start / FWHM, lo_s * 1.01, hi_s * 0.99))]]
    p = ppxf(temps, gal, noise, velscale, start, component=comp, moments=[2, 2], bounds=bounds,
             goodpixels=np.flatnonzero(good), degree=-1, mdegree=0, lam=lam_gal[idx], lam_temp=lam_temp,
             velscale_ratio=2, quiet=True)
    dt = time.perf_counter() - t0
    model = np.full(wave.size, np.nan)
    model[idx] = p.bestfit
    fe_cols = np.flatnonzero(np.array(comp) == 1)
    feii = np.full(wave.size, np.nan)
    feii[idx] = p.matrix[:, fe_cols] @ p.weights[fe_cols]
    r_ = (gal - p.bestfit)[good] / noise[good]
    used = np.zeros(wave.size, bool)
    used[idx[good]] = True
    return float(p.sol[1][1]) * FWHM, model, feii, float(r_ @ r_), used, dt


def band_flux(wave, z, y):
    rest = wave / (1 + z)
    b = (rest >= A.FEII_BAND[0]) & (rest <= A.FEII_BAND[1]) & np.isfinite(y)
    return float(trapezoid(y[b], wave[b])) if b.sum() > 1 else float("nan")


def main():
    import importlib.util

    if importlib.util.find_spec("ppxf") is None:
        sys.exit("pPXF is not installed (pip install ppxf): nothing to compare with")
    from lines_helpers import read_sdss

    tpl, fe = S.load_templates(), A.load_feii()
    rows = []
    print(f"{'spectrum':22s} {'FeII FWHM g/p':>15s} {'FeII flux g/p':>15s} {'cont Hβ g/p':>11s} "
          f"{'cont 5018 g/p':>13s} {'χ² g/p':>13s} {'t galdesk':>9s} {'t pPXF':>7s}")
    for path in sdss_quasars():
        spec = read_sdss(path)
        t0 = time.perf_counter()
        try:
            a = A.fit_agn_continuum(spec, tpl, fe, clip=0)
        except ValueError as exc:
            print(f"{path.stem:22s} skipped: {exc}")
            continue
        t_g = time.perf_counter() - t0
        fw_p, model_p, fe_p, chi_p, used_p, t_p = ppxf_fit(spec, tpl, fe, a.used, a.feii_fwhm_kms)
        z = float(spec.redshift)
        w = np.asarray(spec.wavelength, float)
        rr = (spec.flux - a.model)[used_p] * np.sqrt(spec.ivar[used_p])
        chi_g = float(rr @ rr)
        at = [int(np.argmin(np.abs(w - lam * (1 + z)))) for lam in (4862.68, 5020.0)]
        ratio = [a.model[i] / model_p[i] for i in at]
        f_g, f_p = band_flux(w, z, a.feii), band_flux(w, z, fe_p)
        rows.append((a.feii_fwhm_kms / fw_p, f_g / f_p, ratio[0], ratio[1], chi_g / chi_p, t_g, t_p))
        print(f"{path.stem:22s} {a.feii_fwhm_kms:6.0f} / {fw_p:6.0f} {f_g:6.1f} / {f_p:6.1f} {ratio[0]:11.3f} "
              f"{ratio[1]:13.3f} {chi_g:6.0f}/{chi_p:6.0f} {t_g:8.2f}s {t_p:6.2f}s")
    if rows:
        r = np.array(rows)
        print(f"\nmedian galdesk/pPXF: Fe II FWHM {np.median(r[:, 0]):.3f}, Fe II flux {np.median(r[:, 1]):.3f}, "
              f"continuum at Hβ {np.median(r[:, 2]):.3f} (range {r[:, 2].min():.3f}-{r[:, 2].max():.3f}), "
              f"under Fe II 5018 {np.median(r[:, 3]):.3f}, chi2 {np.median(r[:, 4]):.4f}")
        print(f"time per spectrum: galdesk {np.median(r[:, 5]):.2f} s, pPXF {np.median(r[:, 6]):.2f} s "
              f"(ratio pPXF/galdesk {np.median(r[:, 6]) / np.median(r[:, 5]):.2f}x)")


if __name__ == "__main__":
    main()
