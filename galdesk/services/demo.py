"""The built-in sample: synthetic galaxies and spectra, made on the spot (no data ships, nothing is downloaded).

``make_demo_project(path)`` writes a small set of files in the formats galdesk reads and ingests them through the
same readers a user's data goes through:

* 48 three-band (g, r, i) FITS cubes of 64×64 pixels with a TAN WCS: de Vaucouleurs ellipticals (red) and
  exponential disks with two-armed logarithmic spirals and a bulge (blue), random orientation, sky noise;
* 8 SDSS-format ``spec-*.fits`` spectra (COADD loglam/flux/ivar/wdisp, SPECOBJ Z/CLASS/SUBCLASS): star-forming,
  Seyfert 2, LINER-like and broad-line (Seyfert 1) emission on a stellar-population continuum (two of the
  bundled SSPs, random sigma*) with noise;
* a CSV catalogue with the true class of each object (``label``) and its redshift.

The galaxies are toys for exploring the program, not for science.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from galdesk.units import C_KMS

__all__ = ["make_demo_project", "synthetic_galaxy", "synthetic_spectrum", "write_sdss_spec", "DEMO_LINES"]


# vacuum wavelengths (Angstrom) used by the toy spectra
DEMO_LINES = {"OII_3727": 3728.48, "Hb": 4862.68, "OIII_4959": 4960.30, "OIII_5007": 5008.24,
              "OI_6300": 6302.05, "NII_6548": 6549.86, "Ha": 6564.61, "NII_6584": 6585.27,
              "SII_6717": 6718.29, "SII_6731": 6732.67}


def synthetic_galaxy(kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A (3, size, size) g, r, i toy galaxy: ``kind`` is "elliptical" or "spiral" (flux units: nanomaggies)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = size / 2 + rng.normal(0, 1, 2)
    pa = rng.uniform(0, np.pi)
    q = rng.uniform(0.6, 1.0) if kind == "elliptical" else rng.uniform(0.35, 1.0)
    dx, dy = x - cx, y - cy
    xr = dx * np.cos(pa) + dy * np.sin(pa)
    yr = (-dx * np.sin(pa) + dy * np.cos(pa)) / q
    r = np.hypot(xr, yr) + 1e-3
    if kind == "elliptical":
        re = rng.uniform(4, 8)
        prof = np.exp(-7.669 * ((r / re) ** 0.25 - 1))
        colours = np.array([0.55, 1.0, 1.35])      # red: faint in g
        planes = [c * prof for c in colours]
    else:
        rd = rng.uniform(5, 9)
        theta = np.arctan2(yr, xr)
        pitch = rng.uniform(0.25, 0.45) * rng.choice([-1, 1])
        arms = 1 + 0.8 * np.cos(2 * (theta - np.log(r) / np.tan(np.pi / 2 - pitch)))
        disk = np.exp(-r / rd) * arms
        bulge = 0.8 * np.exp(-7.669 * ((r / 2.0) ** 0.25 - 1)) * rng.uniform(0.02, 0.08)
        planes = [1.1 * disk + 0.5 * bulge, 1.0 * disk + 0.9 * bulge, 0.85 * disk + 1.2 * bulge]
    from scipy.ndimage import gaussian_filter

    # seeing: without it a de Vaucouleurs cusp is a single bright pixel
    planes = [gaussian_filter(p, 1.3) for p in planes]
    peak = rng.uniform(20, 60)
    out = np.stack(planes) / max(np.max(planes[1]), 1e-9) * peak
    out += rng.normal(0, 1.0, out.shape)
    return out.astype(np.float32)


def _stellar_continuum(kind: str, rest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stellar-population continuum from the bundled SSPs (young + old, broadened by a random sigma*, ~5 flux
    units at 5000 A), continued as a smooth power law beyond the templates' 3540-7400 A; the toy continuum if the
    templates are missing."""
    from scipy.ndimage import gaussian_filter1d

    try:
        from galdesk.lines.stellar import load_templates

        tpl = load_templates()
    except ValueError:
        return 5.0 * (rest / 5000.0) ** -0.5 + 1.5 * np.exp(-0.5 * ((rest - 4000) / 300) ** 2)
    young_share = {"star-forming": 0.6, "seyfert2": 0.15, "liner": 0.05, "seyfert1": 0.1}[kind]
    solar = np.isclose(tpl.z_zsun, 1.0)
    ages = tpl.ages_gyr
    k_young = int(np.flatnonzero(solar)[np.argmin(np.abs(np.log(ages[solar]) - np.log(0.3)))])
    k_old = int(np.flatnonzero(solar)[np.argmin(np.abs(np.log(ages[solar]) - np.log(8.0)))])
    mix = young_share * tpl.flux[k_young] + (1 - young_share) * tpl.flux[k_old]
    sigma = rng.uniform(90.0, 180.0)
    mix = gaussian_filter1d(mix, sigma / (C_KMS * tpl.dln), mode="nearest")
    lam_t = tpl.lam
    out = np.interp(rest, lam_t, mix)
    # beyond the templates: the power law through their last 200 A at each end
    for edge, sel in ((lam_t[0], rest < lam_t[0]), (lam_t[-1], rest > lam_t[-1])):
        if sel.any():
            near = np.abs(lam_t - edge) < 200
            level = float(np.median(mix[near]))
            out[sel] = level * (rest[sel] / edge) ** (-1.0 if edge == lam_t[0] else -0.5)
    return 5.0 * out / float(np.interp(5000.0, lam_t, mix))


def _feii_emission(lam: np.ndarray, z: float, fwhm_kms: float, band_flux: float, rng) -> np.ndarray:
    """Broad optical Fe II from the bundled line list (random group strengths), scaled so that its flux in rest
    4434-4684 A is ``band_flux``; zeros if the list is missing."""
    try:
        from galdesk.lines.agn import FEII_BAND, load_feii

        fe = load_feii()
    except ValueError:
        return np.zeros(lam.size)
    weight = {g: rng.uniform(0.5, 1.5) for g in fe.groups}
    out = np.zeros(lam.size)
    s_v = fwhm_kms / 2.3548 / C_KMS
    for g, w_, r in zip(fe.group, fe.wave_vac, fe.rel_int):
        mu = w_ * (1 + z)
        out += weight[g] * r * np.exp(-0.5 * ((lam - mu) / (mu * s_v)) ** 2)
    band = (lam / (1 + z) >= FEII_BAND[0]) & (lam / (1 + z) <= FEII_BAND[1])
    from scipy.integrate import trapezoid

    norm = float(trapezoid(out[band], lam[band])) if band.sum() > 1 else 0.0
    return out * (band_flux / norm) if norm > 0 else out


def synthetic_spectrum(kind: str, z: float, rng: np.random.Generator):
    """(loglam, flux, ivar, wdisp) of a toy SDSS-like spectrum; ``kind`` in star-forming, seyfert2, liner, seyfert1.

    Flux in 1e-17 erg/s/cm²/Å, vacuum wavelengths, SDSS log-linear grid (Δlog10 λ = 1e-4).
    """
    loglam = np.arange(np.log10(3800.0), np.log10(9200.0), 1e-4)
    lam = 10 ** loglam
    rest = lam / (1 + z)
    cont = _stellar_continuum(kind, rest, rng)
    # (Ha, [NII]6584/Ha, [OIII]5007/Hb) per kind; Hb = Ha / 2.86 (case B)
    params = {"star-forming": (60.0, 0.35, 0.6), "seyfert2": (40.0, 1.1, 8.0), "liner": (20.0, 1.4, 1.5),
              "seyfert1": (40.0, 0.9, 6.0)}[kind]
    ha, n2, o3 = params
    hb = ha / 2.86
    fluxes = {"Ha": ha, "NII_6584": n2 * ha, "NII_6548": n2 * ha / 3.05, "Hb": hb, "OIII_5007": o3 * hb,
              "OIII_4959": o3 * hb / 2.98, "SII_6717": 0.25 * ha, "SII_6731": 0.19 * ha,
              "OI_6300": (0.03 if kind == "star-forming" else 0.2) * ha, "OII_3727": 1.5 * hb}
    sigma_kms = rng.uniform(60, 120)
    flux = cont.copy()
    for name, f in fluxes.items():
        mu = DEMO_LINES[name] * (1 + z)
        s = mu * sigma_kms / C_KMS
        flux += f / (np.sqrt(2 * np.pi) * s) * np.exp(-0.5 * ((lam - mu) / s) ** 2)
    if kind == "seyfert1":
        for name, f in (("Ha", 6 * ha), ("Hb", 6 * hb)):
            mu = DEMO_LINES[name] * (1 + z)
            s = mu * 2000.0 / C_KMS
            flux += f / (np.sqrt(2 * np.pi) * s) * np.exp(-0.5 * ((lam - mu) / s) ** 2)
        # the nucleus: a blue power law and broad Fe II with R_Fe = F(Fe II 4434-4684 A) / F(broad Hβ) = 1.0
        flux += 6.0 * (rest / 5000.0) ** -1.5
        flux += _feii_emission(lam, z, 3000.0, 1.0 * 6 * hb, rng)
    err = 0.25 + 0.03 * np.sqrt(np.abs(flux))
    flux = flux + rng.normal(0, err)
    wdisp = np.full(lam.size, 1.0)   # ~69 km/s instrumental sigma, as SDSS
    return loglam, flux, 1.0 / err**2, wdisp


def write_sdss_spec(path: Path, loglam, flux, ivar, wdisp, z: float, cls: str, subclass: str,
                    ra: float, dec: float) -> None:
    """Write a minimal SDSS DR8+-format ``spec-*.fits`` (COADD + SPECOBJ)."""
    from astropy.io import fits

    n = loglam.size
    primary = fits.PrimaryHDU()
    primary.header["PLUG_RA"] = ra
    primary.header["PLUG_DEC"] = dec
    primary.header["TELESCOP"] = "SDSS 2.5-M"
    primary.header["COMMENT"] = "galdesk synthetic demo spectrum (not real data)"
    coadd = fits.BinTableHDU.from_columns([
        fits.Column("flux", "E", array=flux.astype(np.float32)),
        fits.Column("loglam", "E", array=loglam.astype(np.float32)),
        fits.Column("ivar", "E", array=ivar.astype(np.float32)),
        fits.Column("and_mask", "J", array=np.zeros(n, np.int32)),
        fits.Column("or_mask", "J", array=np.zeros(n, np.int32)),
        fits.Column("wdisp", "E", array=wdisp.astype(np.float32)),
        fits.Column("sky", "E", array=np.zeros(n, np.float32)),
        fits.Column("model", "E", array=flux.astype(np.float32)),
    ], name="COADD")
    specobj = fits.BinTableHDU.from_columns([
        fits.Column("CLASS", "6A", array=[cls]), fits.Column("SUBCLASS", "21A", array=[subclass]),
        fits.Column("Z", "E", array=[z]), fits.Column("Z_ERR", "E", array=[1e-5]),
        fits.Column("PLUG_RA", "D", array=[ra]), fits.Column("PLUG_DEC", "D", array=[dec]),
    ], name="SPECOBJ")
    fits.HDUList([primary, coadd, specobj]).writeto(path, overwrite=True)


def _write_cube(path: Path, cube: np.ndarray, ra: float, dec: float) -> None:
    from astropy.io import fits

    hdu = fits.PrimaryHDU(cube)
    h = hdu.header
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRPIX1"], h["CRPIX2"] = cube.shape[2] / 2 + 0.5, cube.shape[1] / 2 + 0.5
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CDELT1"], h["CDELT2"] = -0.396 / 3600, 0.396 / 3600
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    for i, band in enumerate("gri", 1):
        h[f"BAND{i}"] = band
    h["BUNIT"] = "nanomaggy"
    h["COMMENT"] = "galdesk synthetic demo galaxy (not real data)"
    hdu.writeto(path, overwrite=True)


#: Marks a data folder written by :func:`make_demo_project` (the only kind it may replace).
DEMO_MARKER = "GALDESK-DEMO"


def _made_by_demo(path: Path, src: Path) -> bool:
    """A demo project: its data folder carries the marker and its catalogue is the one there."""
    import json

    try:
        catalogs = json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("catalogs") or []
    except (OSError, ValueError):
        return False
    return _is_demo_data(src) and str(src / "catalog.csv") in catalogs


def _is_demo_data(src: Path) -> bool:
    """A data folder the demo wrote: marked, or (older demos) holding nothing but the demo's own files."""
    try:
        names = {p.name for p in src.iterdir()}
    except OSError:
        return False
    return DEMO_MARKER in names or names <= {"images", "spectra", "catalog.csv"}


def default_demo_path() -> Path:
    from galdesk.config import data_dir

    return data_dir() / "galdesk-demo.galdesk"


def make_demo_project(path: str | Path | None = None, overwrite: bool = False, n_galaxies: int = 48,
                      seed: int = 20040101) -> Path:
    """Create the sample project and return its path (an existing one is reused unless ``overwrite``).

    The sample's files go to ``NAME-data`` beside the project, marked as galdesk's; ``overwrite`` replaces only a
    project and a data folder that the demo made (ProjectError for anything else: nothing of the user's is deleted).
    """
    from galdesk.project import ProjectError, is_project
    from galdesk.project.store import check_new_project, project_path
    from galdesk.services.ingest import ingest

    path = project_path(path if path else default_demo_path())
    src = path.parent / (path.stem + "-data")
    if is_project(path):
        if not overwrite:
            return path
        if not _made_by_demo(path, src):
            raise ProjectError(f"{path}: not a galdesk demo project; --overwrite replaces only the built-in sample")
        shutil.rmtree(path)
    check_new_project(path)
    if src.exists():
        if not _is_demo_data(src):
            raise ProjectError(f"{src}: folder exists and was not made by galdesk demo; choose another name")
        shutil.rmtree(src)
    rng = np.random.default_rng(seed)
    (src / "images").mkdir(parents=True)
    (src / DEMO_MARKER).write_text("Files of the galdesk demo project (synthetic); safe to delete.\n")
    (src / "spectra").mkdir()
    rows = ["id,file,label,z,ra,dec"]
    for i in range(n_galaxies):
        kind = "elliptical" if i % 2 == 0 else "spiral"
        ra, dec = 150.0 + rng.uniform(-1, 1), 2.0 + rng.uniform(-1, 1)
        z = float(rng.uniform(0.02, 0.12))
        name = f"demo-gal-{i:03d}"
        _write_cube(src / "images" / f"{name}.fits", synthetic_galaxy(kind, rng), ra, dec)
        rows.append(f"{name},images/{name}.fits,{kind},{z:.5f},{ra:.6f},{dec:.6f}")
    kinds = ["star-forming", "seyfert2", "liner", "seyfert1"] * 2
    sub = {"star-forming": "STARFORMING", "seyfert2": "AGN", "liner": "AGN", "seyfert1": "AGN BROADLINE"}
    for j, kind in enumerate(kinds):
        z = float(rng.uniform(0.03, 0.1))
        ra, dec = 150.0 + rng.uniform(-1, 1), 2.0 + rng.uniform(-1, 1)
        name = f"spec-9999-60000-{j + 1:04d}"
        cls = "QSO" if kind == "seyfert1" else "GALAXY"
        write_sdss_spec(src / "spectra" / f"{name}.fits", *synthetic_spectrum(kind, z, rng), z=z, cls=cls,
                        subclass=sub[kind], ra=ra, dec=dec)
        rows.append(f"{name},spectra/{name}.fits,{kind},{z:.5f},{ra:.6f},{dec:.6f}")
    (src / "catalog.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = ingest([], path, catalog=src / "catalog.csv", workers=1)
    if res.problems:
        raise RuntimeError("demo sample did not ingest cleanly: " + "; ".join(f"{p.path}: {p.error}"
                                                                              for p in res.problems))
    return path
