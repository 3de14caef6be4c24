"""The arrays file of a project, ``arrays.h5``: image stacks ``/stacks/c{C}`` (N, C, S, S) float32, one per band
count, and spectra ``/spectra/{wavelength,flux,ivar,mask,resolution}`` concatenated with ``/spectra/offsets``
(n + 1) and one JSON ``/spectra/attrs`` string per spectrum. :class:`galdesk.project.store.Project` reads and writes
it only through these functions.

A spectrum's plain ``meta`` values (str, int, float, bool, None) are kept in its attrs, so
``meta["errors_estimated"]`` (errors estimated from the flux at read time, :mod:`galdesk.io.noise`) survives the
store. A spectrum stored without errors by an older galdesk (``meta["no_errors"]``, every ivar 0) gets them
estimated when it is read back, the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from galdesk.fsutil import atomic_write
from galdesk.io.model import SpectrumData
from galdesk.io.noise import add_estimated_errors
from galdesk.jsonutil import json_default

__all__ = ["group_counts", "n_spectra_stored", "write_arrays", "write_spectra", "read_spectrum", "spectrum_attrs"]


def group_counts(path: Path) -> dict[str, int]:
    """Objects per image stack (``{"c3": 4988}``); {} without an arrays file."""
    import h5py

    if not path.exists():
        return {}
    with h5py.File(path, "r") as f:
        return {name: int(ds.shape[0]) for name, ds in f.get("stacks", {}).items()}


def n_spectra_stored(path: Path) -> int:
    import h5py

    if not path.exists():
        return 0
    with h5py.File(path, "r") as f:
        return int(f["spectra/offsets"].shape[0] - 1) if "spectra/offsets" in f else 0


def write_arrays(path: Path, working_size: int, new_planes: dict[str, list[np.ndarray]],
                 spectra: list[SpectrumData], schema_version: int = 1) -> None:
    """Rewrite ``path`` atomically with the old stacks and spectra plus ``new_planes`` (group -> list of (C, S, S))
    and ``spectra``."""
    import h5py

    old = path if path.exists() else None

    def write(tmp):
        with h5py.File(tmp, "w") as out:
            out.attrs["schema_version"] = schema_version
            out.attrs["working_size"] = working_size
            src = h5py.File(old, "r") if old else None
            try:
                groups = set(new_planes) | (set(src["stacks"]) if src and "stacks" in src else set())
                for g in sorted(groups):
                    parts = []
                    if src is not None and f"stacks/{g}" in src:
                        parts.append(src[f"stacks/{g}"][...])
                    if g in new_planes:
                        parts.append(np.stack(new_planes[g]).astype(np.float32))
                    out.create_dataset(f"stacks/{g}", data=np.concatenate(parts))
                write_spectra(out, src, spectra)
            finally:
                if src is not None:
                    src.close()

    atomic_write(path, write)


def _attrs(raw) -> dict:
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def read_spectrum(path: Path, k: int, *, source: str, oid: str, z: float, spec_class: str | None,
                  subclass: str | None) -> SpectrumData:
    """Spectrum ``k`` of the arrays file, with the object-table fields given."""
    import h5py

    with h5py.File(path, "r") as f:
        g = f["spectra"]
        a, b = int(g["offsets"][k]), int(g["offsets"][k + 1])
        res = g["resolution"][a:b]
        attrs = _attrs(g["attrs"][k])
        spec = SpectrumData(
            wavelength=g["wavelength"][a:b], flux=g["flux"][a:b], ivar=g["ivar"][a:b],
            mask=g["mask"][a:b].astype(bool), source=source, id=oid,
            vacuum=bool(attrs.get("vacuum", True)), flux_unit=attrs.get("flux_unit", ""),
            redshift=None if not np.isfinite(z) else float(z), redshift_err=attrs.get("redshift_err"),
            spec_class=spec_class, subclass=subclass,
            resolution_kms=None if np.all(np.isnan(res)) else res, meta=attrs.get("meta", {}),
        )
    if spec.meta.get("no_errors") and not (spec.ivar > 0).any():
        add_estimated_errors(spec)  # stored before errors were estimated at read time
    return spec


def spectrum_attrs(path: Path, ks: list[int]) -> list[dict]:
    """The JSON attributes of spectra ``ks`` without their arrays."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = f["spectra/attrs"]
        return [_attrs(attrs[k]) for k in ks]


def write_spectra(out, src, spectra: list[SpectrumData]) -> None:
    """Write ``/spectra`` of the open file ``out``: the spectra of ``src`` (an open file or None), then ``spectra``."""
    import h5py

    keys = ("wavelength", "flux", "ivar", "mask", "resolution")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    offsets = [0]
    attrs: list[str] = []
    if src is not None and "spectra/offsets" in src:
        g = src["spectra"]
        for k in keys:
            parts[k].append(g[k][...])
        offsets = list(g["offsets"][...])
        attrs = [a.decode() if isinstance(a, bytes) else str(a) for a in g["attrs"][...]]
    for s in spectra:
        n = len(s)
        parts["wavelength"].append(np.asarray(s.wavelength, np.float64))
        parts["flux"].append(np.asarray(s.flux, np.float64))
        parts["ivar"].append(np.asarray(s.ivar, np.float64))
        parts["mask"].append(np.asarray(s.mask, np.uint8))
        res = s.resolution_kms if s.resolution_kms is not None else np.full(n, np.nan)
        parts["resolution"].append(np.asarray(res, np.float64))
        offsets.append(offsets[-1] + n)
        meta = {k: v for k, v in s.meta.items() if _is_plain(v)}
        attrs.append(json.dumps({"vacuum": bool(s.vacuum), "flux_unit": s.flux_unit,
                                 "redshift_err": s.redshift_err, "meta": meta}, default=json_default))
    if len(offsets) == 1:
        return
    g = out.create_group("spectra")
    for k in keys:
        g.create_dataset(k, data=np.concatenate(parts[k]))
    g.create_dataset("offsets", data=np.asarray(offsets, np.int64))
    g.create_dataset("attrs", data=np.array(attrs, dtype=object), dtype=h5py.string_dtype())


def _is_plain(v) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None
