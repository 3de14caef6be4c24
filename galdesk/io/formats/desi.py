"""DESI coadd and spectra files (one spectrum per target, arms combined).

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``desi-coadd`` (priority 20) -- DESI ``coadd-*.fits``/``spectra-*.fits`` (``B_/R_/Z_WAVELENGTH``, ``_FLUX``,
    ``_IVAR``, ``_MASK``, ``FIBERMAP``, optional ``REDSHIFTS``)
    One spectrum per FIBERMAP row (``id = str(TARGETID)``). The arms are combined on the union of their wavelength
    grids: DESI arms share one 0.8 Angstrom grid, so overlapping pixels coincide (matched to 1e-3 Angstrom) and
    are combined as the inverse-variance weighted mean (ivar summed); pixels with ``MASK != 0`` get ivar 0 before
    combining. If the grids do not coincide, each overlap is cut at its midpoint instead. Vacuum, flux in
    ``1e-17 erg / (s cm2 Angstrom)``. ``Z``/``ZERR``/``SPECTYPE``/``SUBTYPE`` from ``REDSHIFTS`` (matched by
    TARGETID); ``TARGET_RA``/``TARGET_DEC`` -> meta.
"""

from __future__ import annotations

import numpy as np

from galdesk.io.formats.common import fits_open, float_or_none, text_or_none
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.units import SDSS_FLUX_UNIT

__all__ = ["read_desi_coadd"]

_DESI_ARMS = ("B", "R", "Z")


def _is_desi(probe: Probe) -> bool:
    if not probe.is_fits:
        return False
    names = {info.name for info in probe.fits_summary}
    return "FIBERMAP" in names and any({f"{a}_WAVELENGTH", f"{a}_FLUX"} <= names for a in _DESI_ARMS)


def _combine_arms(arms: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tol: float = 1e-3):
    """Combine ``(wave, flux, ivar)`` arms onto one increasing grid.

    Coinciding pixels (within ``tol`` Angstrom) are ivar-weighted means (ivar summed); where every contribution
    has ivar 0 the plain mean is kept with ivar 0. Returns ``(wave, flux, ivar, aligned)``; when the arms' grids
    do not coincide in their overlaps, each overlap is cut at its midpoint instead (``aligned = False``).
    """
    arms = sorted(arms, key=lambda a: a[0][0])
    aligned = True
    for (w1, _, _), (w2, _, _) in zip(arms, arms[1:]):
        lo, hi = w2[0], w1[-1]
        if hi < lo:
            continue
        a = w1[(w1 >= lo - tol) & (w1 <= hi + tol)]
        b = w2[(w2 >= lo - tol) & (w2 <= hi + tol)]
        if a.size != b.size or (a.size and np.max(np.abs(a - b)) > tol):
            aligned = False
    if aligned:
        allw = np.concatenate([a[0] for a in arms])
        keys = np.round(allw / tol).astype(np.int64)
        uniq, first = np.unique(keys, return_index=True)
        grid = allw[first]
        num = np.zeros(grid.size)
        den = np.zeros(grid.size)
        plain = np.zeros(grid.size)
        count = np.zeros(grid.size)
        for w, f, iv in arms:
            idx = np.searchsorted(uniq, np.round(w / tol).astype(np.int64))
            good = iv > 0
            np.add.at(num, idx[good], f[good] * iv[good])
            np.add.at(den, idx[good], iv[good])
            fin = np.isfinite(f)
            np.add.at(plain, idx[fin], f[fin])
            np.add.at(count, idx[fin], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            flux = np.where(den > 0, num / np.where(den > 0, den, 1), np.where(count > 0, plain / np.maximum(count, 1),
                                                                                 np.nan))
        return grid, flux, den, True
    pieces = []
    for k, (w, f, iv) in enumerate(arms):
        keep = np.ones(w.size, bool)
        if k > 0 and arms[k - 1][0][-1] >= w[0]:
            keep &= w > 0.5 * (w[0] + arms[k - 1][0][-1])
        if k + 1 < len(arms) and arms[k + 1][0][0] <= w[-1]:
            keep &= w <= 0.5 * (arms[k + 1][0][0] + w[-1])
        pieces.append((w[keep], f[keep], iv[keep]))
    return (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]),
            np.concatenate([p[2] for p in pieces]), False)


def read_desi_coadd(probe: Probe) -> list[SpectrumData]:
    """Read a DESI coadd/spectra file: one spectrum per target (rules in the module docstring)."""
    path = probe.path
    with fits_open(path) as hdul:
        names = {hdu.name.upper(): i for i, hdu in enumerate(hdul)}
        fibermap = hdul[names["FIBERMAP"]].data
        fm_cols = {c.upper(): c for c in fibermap.columns.names}
        targetids = np.array(fibermap[fm_cols["TARGETID"]]).astype(np.int64)
        ntarget = targetids.size
        ra = np.array(fibermap[fm_cols["TARGET_RA"]], dtype=float) if "TARGET_RA" in fm_cols else None
        dec = np.array(fibermap[fm_cols["TARGET_DEC"]], dtype=float) if "TARGET_DEC" in fm_cols else None
        arms = {}
        for a in _DESI_ARMS:
            if f"{a}_WAVELENGTH" not in names or f"{a}_FLUX" not in names:
                continue
            w = np.array(hdul[names[f"{a}_WAVELENGTH"]].data, dtype=np.float64).ravel()
            f = np.array(hdul[names[f"{a}_FLUX"]].data, dtype=np.float64).reshape(ntarget, -1)
            iv = (np.array(hdul[names[f"{a}_IVAR"]].data, dtype=np.float64).reshape(ntarget, -1)
                  if f"{a}_IVAR" in names else np.zeros_like(f))
            m = (np.array(hdul[names[f"{a}_MASK"]].data).reshape(ntarget, -1) != 0
                 if f"{a}_MASK" in names else np.zeros(f.shape, bool))
            if f.shape[1] != w.size:
                raise ValueError(f"{a}_FLUX has {f.shape[1]} pixels but {a}_WAVELENGTH has {w.size}")
            arms[a] = (w, f, np.where(m, 0.0, iv))
        if not arms:
            raise ValueError("no DESI arm has both WAVELENGTH and FLUX")
        redshifts: dict[int, dict] = {}
        if "REDSHIFTS" in names:
            z = hdul[names["REDSHIFTS"]].data
            zc = {c.upper(): c for c in z.columns.names}
            for k in range(len(z)):
                tid = int(z[zc["TARGETID"]][k])
                redshifts[tid] = {key: z[zc[key]][k] for key in ("Z", "ZERR", "ZWARN", "SPECTYPE", "SUBTYPE")
                                  if key in zc}
        primary = hdul[0].header.copy()
    out = []
    for t in range(ntarget):
        wave, flux, ivar, aligned = _combine_arms([(w, f[t], iv[t]) for w, f, iv in arms.values()])
        tid = int(targetids[t])
        zinfo = redshifts.get(tid, {})
        meta = {"targetid": tid, "arms": list(arms), "arms_aligned": aligned}
        if ra is not None:
            meta["ra"], meta["dec"] = float(ra[t]), float(dec[t])
        if "ZWARN" in zinfo:
            meta["zwarn"] = int(zinfo["ZWARN"])
        out.append(SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path),
                                id=str(tid), vacuum=True, flux_unit=SDSS_FLUX_UNIT,
                                redshift=float_or_none(zinfo.get("Z")),
                                redshift_err=float_or_none(zinfo.get("ZERR")),
                                spec_class=text_or_none(zinfo.get("SPECTYPE")),
                                subclass=text_or_none(zinfo.get("SUBTYPE")),
                                header=primary, meta=meta))
    return out


register_reader("desi-coadd", "spectrum", _is_desi, read_desi_coadd, priority=20)
