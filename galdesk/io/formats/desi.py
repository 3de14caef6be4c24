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

Redshifts beside the spectra
    DESI writes a target's redshift to a separate file: ``redrock-<name>.fits`` (``zbest-<name>.fits`` before
    Everest) for ``coadd-<name>.fits`` / ``spectra-<name>.fits``, in the same folder. When the file has no
    ``REDSHIFTS`` HDU of its own, that file (:func:`redshift_file_for`) is read too and matched by TARGETID:
    ``Z`` -> ``redshift``, ``ZERR`` -> ``redshift_err``, ``SPECTYPE``/``SUBTYPE`` -> ``spec_class``/``subclass``,
    and ``meta["zwarn"]``, ``meta["spectype"]``, ``meta["z_source"]`` (the redshift file's name). A target with
    ``ZWARN != 0`` keeps its redshift (it is fitted, and flagged by the line fit). A redshift file that cannot be
    read costs the redshifts only (a note in ``meta["warnings"]``), never the spectra.

Targets that are not galaxies
    A FIBERMAP ``OBJTYPE`` other than ``TGT`` (``SKY``, ``BAD``...) sets ``meta["skip_reason"]`` ("sky fibre
    (FIBERMAP OBJTYPE SKY)"): :func:`galdesk.io.reading.read` keeps such targets out of projects and line fits,
    naming them as problems. Dead or fully masked fibres are caught by the central checks the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galdesk.io.fitshead import FitsGuardError, scan_fits
from galdesk.io.formats.common import fits_open, float_or_none, text_or_none
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader
from galdesk.units import SDSS_FLUX_UNIT

__all__ = ["read_desi_coadd", "redshift_file_for", "is_redshift_file", "read_redshift_table", "REDSHIFT_HDUS",
           "SPECTRA_PREFIXES", "REDSHIFT_PREFIXES"]

_DESI_ARMS = ("B", "R", "Z")
#: Names of the files that hold spectra, and of those that hold their redshifts (same name part after the prefix).
SPECTRA_PREFIXES = ("coadd-", "spectra-")
REDSHIFT_PREFIXES = ("redrock-", "zbest-")
#: The table HDUs of redshift files (redrock: REDSHIFTS; zbest: ZBEST).
REDSHIFT_HDUS = ("REDSHIFTS", "ZBEST")
_Z_KEYS = ("Z", "ZERR", "ZWARN", "SPECTYPE", "SUBTYPE")


def redshift_file_for(path) -> Path | None:
    """The DESI redshift file beside a ``coadd-*``/``spectra-*`` file (``redrock-`` first, then ``zbest-``, same
    name part), or None."""
    p = Path(path)
    for prefix in SPECTRA_PREFIXES:
        if p.name.startswith(prefix):
            rest = p.name[len(prefix):]
            for zp in REDSHIFT_PREFIXES:
                cand = p.with_name(zp + rest)
                if cand.is_file():
                    return cand
    return None


def is_redshift_file(path) -> bool:
    """True for a DESI redrock/zbest file: a FITS file with a ``REDSHIFTS`` or ``ZBEST`` table and no spectra
    (looks at the headers only; never raises)."""
    try:
        layout = scan_fits(path)
    except (OSError, FitsGuardError, ValueError):
        return False
    names = {h.name: h for h in layout.hdus}
    if any(f"{a}_FLUX" in names for a in _DESI_ARMS):
        return False
    return any(n in names and names[n].kind == "table" for n in REDSHIFT_HDUS)


def read_redshift_table(path) -> dict[int, dict]:
    """TARGETID -> ``{"Z", "ZERR", "ZWARN", "SPECTYPE", "SUBTYPE"}`` (those present) of a redrock/zbest file.

    Raises ValueError (one line) when the file has no usable redshift table.
    """
    layout = scan_fits(path)  # the header guard first: nothing is allocated from a header's claim
    names = [h.name for h in layout.hdus]
    hdu = next((n for n in REDSHIFT_HDUS if n in names), None)
    if hdu is None:
        raise ValueError("no REDSHIFTS or ZBEST table")
    with fits_open(path) as hdul:
        return _redshift_rows(hdul[hdu].data)


def _redshift_rows(z) -> dict[int, dict]:
    zc = {c.upper(): c for c in z.columns.names}
    if "TARGETID" not in zc or "Z" not in zc:
        raise ValueError("the redshift table has no TARGETID or Z column")
    cols = {key: np.array(z[zc[key]]) for key in _Z_KEYS if key in zc}
    tids = np.array(z[zc["TARGETID"]]).astype(np.int64)
    return {int(t): {key: v[k] for key, v in cols.items()} for k, t in enumerate(tids)}


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
        objtype = ([text_or_none(v) for v in np.array(fibermap[fm_cols["OBJTYPE"]])]
                   if "OBJTYPE" in fm_cols else [None] * ntarget)
        redshifts: dict[int, dict] = {}
        z_source = None
        if "REDSHIFTS" in names:
            redshifts, z_source = _redshift_rows(hdul[names["REDSHIFTS"]].data), "REDSHIFTS HDU"
        primary = hdul[0].header.copy()
    notes: list[str] = []
    if not redshifts:
        redshifts, z_source = _paired_redshifts(path, notes)
    out = []
    for t in range(ntarget):
        wave, flux, ivar, aligned = _combine_arms([(w, f[t], iv[t]) for w, f, iv in arms.values()])
        tid = int(targetids[t])
        zinfo = redshifts.get(tid, {})
        meta = {"targetid": tid, "arms": list(arms), "arms_aligned": aligned}
        if notes:
            meta["warnings"] = list(notes)
        if ra is not None:
            meta["ra"], meta["dec"] = float(ra[t]), float(dec[t])
        if objtype[t] is not None:
            meta["objtype"] = objtype[t]
            if objtype[t].upper() != "TGT":
                kind = {"SKY": "sky fibre", "BAD": "bad fibre"}.get(objtype[t].upper(), "not a science target")
                meta["skip_reason"] = f"{kind} (FIBERMAP OBJTYPE {objtype[t]})"
        if "ZWARN" in zinfo:
            meta["zwarn"] = int(zinfo["ZWARN"])
        if zinfo.get("Z") is not None and z_source:
            meta["z_source"] = z_source
            if zinfo.get("SPECTYPE") is not None:
                meta["spectype"] = text_or_none(zinfo["SPECTYPE"])
        out.append(SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=~(ivar > 0), source=str(path),
                                id=str(tid), vacuum=True, flux_unit=SDSS_FLUX_UNIT,
                                redshift=float_or_none(zinfo.get("Z")),
                                redshift_err=float_or_none(zinfo.get("ZERR")),
                                spec_class=text_or_none(zinfo.get("SPECTYPE")),
                                subclass=text_or_none(zinfo.get("SUBTYPE")),
                                header=primary, meta=meta))
    return out


def _paired_redshifts(path, notes: list[str]) -> tuple[dict[int, dict], str | None]:
    """The redshifts of the redrock/zbest file beside ``path`` and its name; nothing (and a note) when it is
    missing or unreadable."""
    zpath = redshift_file_for(path)
    if zpath is None:
        return {}, None
    try:
        return read_redshift_table(zpath), zpath.name
    except Exception as exc:  # noqa: BLE001 - a bad redshift file costs the redshifts, never the spectra
        text = " ".join(str(exc).split())[:160] or type(exc).__name__
        notes.append(f"{zpath.name}: cannot be read ({text}); no redshifts from it")
        return {}, None


register_reader("desi-coadd", "spectrum", _is_desi, read_desi_coadd, priority=20)
