"""Build the bundled optical Fe II line list ``resources/templates/feii_kovacevic2010.fits``.

Source: the optical Fe II model of Kovačević, Popović & Dimitrijević (2010, ApJS 189, 15), extended by Shapovalova
et al. (2012, ApJS 202, 10): Fe II lines 3700-10900 A grouped by the lower term of their transition, with the
relative intensities within each group computed from atomic data (the groups' strengths are free in a fit). The
numbers are the ones tabulated in the FANTASY code (Ilić, Rakić & Popović 2023, ApJS 267, 19) as
``fantasy_agn/input/feII_model.csv`` in its PyPI wheel ``fantasy-agn`` 1.0.0. Nothing is downloaded at run time:
this script is run once by a developer, its output is committed.

    pip download fantasy-agn==1.0.0 --no-deps -d /tmp/fa
    unzip -o /tmp/fa/fantasy_agn-1.0.0-*.whl 'fantasy_agn/input/feII_model.csv' -d /tmp/fa
    python scripts/build_feii_template.py /tmp/fa/fantasy_agn/input/feII_model.csv

Processing: air wavelengths converted to vacuum (SDSS convention); intensities kept as given (relative peak
heights of lines of equal velocity width, normalised to 1 for the strongest line of each group, as in the source).
Output: a binary table ``FEII`` with GROUP (lower term), WAVE_VAC (Angstrom), REL_INT.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table


def main(argv=None):
    from galdesk.lines.linelist import air_to_vac

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", type=Path, help="feII_model.csv from fantasy-agn 1.0.0")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parent.parent / "resources" /
                    "templates" / "feii_kovacevic2010.fits")
    args = ap.parse_args(argv)
    with open(args.csv, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    head = [h.strip().lower() for h in rows[0]]
    if head[:3] != ["ime", "wav", "int"]:
        raise SystemExit(f"{args.csv}: expected columns ime,wav,Int, got {rows[0]}")
    group = np.array([r[0].strip() for r in rows[1:]])
    wave_air = np.array([float(r[1]) for r in rows[1:]])
    rel = np.array([float(r[2]) for r in rows[1:]])
    order = np.lexsort((wave_air, group))
    t = Table({"GROUP": group[order], "WAVE_VAC": np.round(air_to_vac(wave_air[order]), 3),
               "REL_INT": rel[order].astype(np.float32)})
    t["WAVE_VAC"].unit = "Angstrom"
    hdu = fits.table_to_hdu(t)
    hdu.name = "FEII"
    hdu.header["SOURCE"] = "Kovacevic+2010 ApJS 189 15; Shapovalova+2012 ApJS 202 10"
    hdu.header["VIA"] = "fantasy-agn 1.0.0 feII_model.csv (Ilic+2023 ApJS 267 19)"
    hdu.header["VACUUM"] = True
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(args.output, overwrite=True)
    print(f"{args.output}: {len(t)} lines in {len(set(group))} groups")


if __name__ == "__main__":
    main()
