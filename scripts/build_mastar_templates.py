"""Build the second bundled stellar library ``resources/templates/mastar_ssp.fits`` (the broad-line robustness check).

Source: the MaStar stellar-population models v1.0 (Maraston et al. 2020, MNRAS 496, 2962), built on the empirical
MaStar stellar library (SDSS-IV; Yan et al. 2019, ApJ 883, 175) — stars, models and code independent of the
BC03 + MILES set that galdesk fits by default. Distributed on PyPI inside the MaNGA Data Analysis Pipeline
``sdss-mangadap`` 4.5.0 (Westfall et al. 2019, AJ 158, 231; BSD-3 licence), directory
``mangadap/data/spectral_templates/mastar_ssp_v1.0``. Nothing is downloaded at run time: this script is run once by a
developer, its output is committed.

    pip download sdss-mangadap==4.5.0 --no-deps -d /tmp/dap
    unzip -o /tmp/dap/sdss_mangadap-4.5.0-*.whl 'mangadap/data/spectral_templates/mastar_ssp_v1.0/*' -d /tmp/dap
    python scripts/build_mastar_templates.py /tmp/dap/mangadap/data/spectral_templates/mastar_ssp_v1.0

Processing: 9 ages (3 Myr - 14 Gyr) x 4 metallicities ([Z/H] = -0.70, -0.33, 0.00, +0.35, the range of the default
library's 0.2-2.5 Z☉), Salpeter IMF as distributed; vacuum wavelengths as distributed, log10 step 1e-4 converted to a
uniform ln(lambda) grid of step 1e-4 (linear interpolation); rest 3622-7400 A (the default library's red end); each
template divided by its median in rest 5400-5600 A (``NORM``). The resolution varies with wavelength (the ``SRES``
extension, R ~ 1400-2000): it is kept per pixel in the ``FWHM`` image extension (Angstrom), and
:mod:`galdesk.lines.stellar` broadens the templates to the instrument pixel by pixel from it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

ZH = ("-0.70", "-0.33", "+0.00", "+0.35")
LAM_MAX = 7400.0
DLN = 1e-4


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="mastar_ssp_v1.0 folder from sdss-mangadap 4.5.0")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parent.parent / "resources" / "templates" / "mastar_ssp.fits")
    args = ap.parse_args(argv)
    files = []
    for f in sorted(args.folder.glob("MaStar-SSP-A*-Z*.fits.gz")):
        m = re.match(r"MaStar-SSP-A([\d.]+)-Z([+-][\d.]+)\.fits\.gz", f.name)
        zh = m.group(2) if m else None
        if zh in ZH or (zh is not None and f"{float(zh):+.2f}" in ZH):
            files.append((float(m.group(1)), float(zh), f))
    files.sort(key=lambda t: (t[1], t[0]))
    if len(files) != 36:
        raise SystemExit(f"expected 36 MaStar SSP files (9 ages x 4 [Z/H]), found {len(files)}")
    rows, flux, fwhm = [], [], None
    for age, zh, f in files:
        with fits.open(f) as h:
            hd = h[0].header
            lam_in = 10 ** (hd["CRVAL1"] + hd["CDELT1"] * np.arange(hd["NAXIS1"]))
            data = np.asarray(h[0].data, float)
            sres = np.asarray(h["SRES"].data, float)
        if fwhm is None:
            ln0 = np.log(lam_in[0]) + 1e-9
            n = int(np.floor((np.log(LAM_MAX) - ln0) / DLN)) + 1
            lam = np.exp(ln0 + DLN * np.arange(n))
            fwhm = np.interp(lam, lam_in, lam_in / sres)
        f_new = np.interp(lam, lam_in, data)
        band = (lam > 5400) & (lam < 5600)
        norm = float(np.median(f_new[band]))
        flux.append((f_new / norm).astype(np.float32))
        rows.append((age, 10 ** zh, zh, norm))
    t = Table(rows=rows, names=("AGE_GYR", "Z_ZSUN", "ZH", "NORM"))
    t["AGE_GYR"].unit = "Gyr"
    prim = fits.PrimaryHDU(np.vstack(flux))
    hd = prim.header
    hd["CTYPE1"] = ("WAVE-LOG", "uniform in ln(lambda), vacuum")
    hd["CRPIX1"], hd["CRVAL1"], hd["CDELT1"] = 1.0, float(lam[0]), float(lam[0] * DLN)
    hd["LNLAM0"] = (float(np.log(lam[0])), "ln(vacuum wavelength / Angstrom) of pixel 1")
    hd["DLNLAM"] = (DLN, "ln(lambda) step")
    hd["FWHM_A"] = (round(float(np.median(fwhm)), 3), "median resolution, FWHM in Angstrom (see FWHM HDU)")
    hd["VACUUM"] = (True, "vacuum wavelengths")
    hd["BUNIT"] = "normalised flux density (median 1 at 5400-5600 A)"
    hd["ORIGIN"] = "galdesk scripts/build_mastar_templates.py"
    hd["MODELS"] = "Maraston et al. 2020 (MNRAS 496, 2962), MaStar SSP v1.0, Salpeter IMF"
    hd["LIBRARY"] = "MaStar, Yan et al. 2019 (ApJ 883, 175)"
    hd["SOURCE"] = "PyPI sdss-mangadap 4.5.0, data/spectral_templates/mastar_ssp_v1.0"
    fw = fits.ImageHDU(fwhm.astype(np.float32), name="FWHM")
    fw.header["BUNIT"] = "Angstrom"
    fw.header["COMMENT"] = "template resolution per pixel, FWHM (from the SRES extension: lambda / R)"
    tab = fits.BinTableHDU(t, name="TEMPLATES")
    fits.HDUList([prim, fw, tab]).writeto(args.output, overwrite=True)
    print(f"wrote {args.output}: {len(flux)} templates x {lam.size} pixels, rest {lam[0]:.1f}-{lam[-1]:.1f} A, "
          f"FWHM {fwhm.min():.2f}-{fwhm.max():.2f} A")


if __name__ == "__main__":
    main()
