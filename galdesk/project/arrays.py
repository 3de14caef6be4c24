"""One arrays file of a project (a *segment*, :mod:`galdesk.project.segments`): image stacks ``/stacks/c{C}``
(N, C, S, S), one per band count, and spectra ``/spectra/{wavelength,flux,ivar,mask,resolution}``
concatenated with ``/spectra/offsets`` (n + 1) and one JSON ``/spectra/attrs`` string per spectrum. Rows and
spectra are numbered from 0 within the file; the segment index maps a project's rows onto its files.

Files are written by :class:`SegmentWriter` into resizable, chunked datasets, so that a writer can add cut-outs
batch by batch (peak memory one batch) or copy other segments block by block (a merge never holds a whole stack).

A stack is uint8 while every cut-out in it is (8-bit JPEG/PNG sources, shrunk in 8 bits on ingest:
:func:`galdesk.io.resample.working_planes`), a quarter of the float32 size; the first float cut-out added to it
(a FITS image) turns the dataset into float32 in place, values unchanged. Readers
(:meth:`galdesk.project.segments.ArrayStore.read_stack`, ``read_rows``) always return float32, the same values
either way; stacks of projects made before this are float32 and read as they always did. Every stack carries
``origin = "lower"``: row 0 of a cut-out is the bottom of the sky image (the FITS convention; an image viewer
shows a uint8 stack upside down).

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

__all__ = ["SegmentWriter", "write_arrays", "file_counts", "read_spectrum", "spectrum_attrs", "COPY_ROWS", "ORIGIN"]

SPECTRUM_KEYS = ("wavelength", "flux", "ivar", "mask", "resolution")
_DTYPES = {"wavelength": np.float64, "flux": np.float64, "ivar": np.float64, "mask": np.uint8,
           "resolution": np.float64}
#: rows (cut-outs) or spectra copied at a time when segments are merged: memory stays one block
COPY_ROWS = 1024
#: about this many bytes per HDF5 chunk of a stack (whole cut-outs per chunk; a thumbnail reads one chunk)
CHUNK_BYTES = 256 * 1024
#: the orientation of every stored cut-out: row 0 is the bottom (the FITS convention)
ORIGIN = "lower"


class SegmentWriter:
    """Write one arrays file: ``add_planes`` and ``add_spectra`` append, ``add_file`` copies another file's
    contents after what is there; use as a context manager (the file is closed, not renamed: pair it with
    :func:`galdesk.fsutil.atomic_write`)."""

    def __init__(self, path: str | Path, working_size: int, schema_version: int = 1) -> None:
        import h5py

        self.file = h5py.File(path, "w")
        self.file.attrs["schema_version"] = schema_version
        self.file.attrs["working_size"] = working_size
        self.counts: dict[str, int] = {}
        self.n_spectra = 0

    @classmethod
    def reopen(cls, path: str | Path, counts: dict[str, int], n_spectra: int) -> "SegmentWriter":
        """Open ``path`` to append again, its datasets cut back to ``counts`` cut-outs per stack group and
        ``n_spectra`` spectra (what was written after those is discarded); ValueError when it holds fewer."""
        import h5py

        self = cls.__new__(cls)
        self.file = h5py.File(path, "a")
        try:
            stacks = self.file.get("stacks", {})
            for group in set(stacks) | set(counts):
                n = int(counts.get(group, 0))
                if group not in stacks or stacks[group].shape[0] < n:
                    raise ValueError(f"{path}: stack {group} holds fewer than {n} cut-outs")
                stacks[group].resize(n, axis=0)
            if n_spectra or "spectra" in self.file:
                g = self.file["spectra"]
                if g["offsets"].shape[0] < n_spectra + 1:
                    raise ValueError(f"{path}: holds fewer than {n_spectra} spectra")
                total = int(g["offsets"][n_spectra])
                for k in SPECTRUM_KEYS:
                    g[k].resize(total, axis=0)
                g["offsets"].resize(n_spectra + 1, axis=0)
                g["attrs"].resize(n_spectra, axis=0)
        except BaseException:
            self.file.close()
            raise
        self.counts = {k: int(v) for k, v in counts.items() if v}
        self.n_spectra = int(n_spectra)
        return self

    def __enter__(self) -> "SegmentWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.file:
            self.file.close()

    def add_planes(self, group: str, planes) -> None:
        """Append cut-outs (n, C, S, S) (or a list of (C, S, S)) to stack ``group``: uint8 stays uint8 in a new or
        uint8 stack; anything else is float32, and turns a uint8 stack into float32 (module docstring)."""
        planes = _stack_dtype(planes)
        if not len(planes):
            return
        name = f"stacks/{group}"
        if name not in self.file:
            self._new_stack(group, planes.shape[1:], planes.dtype, len(planes))
        elif self.file[name].dtype == np.uint8 and planes.dtype != np.uint8:
            self._to_float32(group)
        ds = self.file[name]
        n = ds.shape[0]
        ds.resize(n + len(planes), axis=0)
        ds[n:] = planes
        self.counts[group] = n + len(planes)

    def _new_stack(self, group: str, shape: tuple, dtype, first: int, name: str | None = None):
        """An empty stack dataset of cut-outs ``shape`` (C, S, S): whole cut-outs per chunk, no more than the
        ``first`` batch has (a chunk is allocated whole)."""
        per = min(first, max(1, CHUNK_BYTES // max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)))
        ds = self.file.create_dataset(name or f"stacks/{group}", shape=(0, *shape), maxshape=(None, *shape),
                                      dtype=dtype, chunks=(per, *shape))
        ds.attrs["origin"] = ORIGIN
        return ds

    def _to_float32(self, group: str) -> None:
        """Turn the uint8 stack ``group`` into float32 in place (copied a block at a time; values unchanged)."""
        name = f"stacks/{group}"
        old = self.file[name]
        new = self._new_stack(group, old.shape[1:], np.float32, max(old.shape[0], 1), name + ".float32")
        new.resize(old.shape[0], axis=0)
        for a in range(0, old.shape[0], COPY_ROWS):
            new[a:a + COPY_ROWS] = old[a:a + COPY_ROWS].astype(np.float32)
        del self.file[name]
        self.file.move(name + ".float32", name)

    def add_files(self, paths) -> None:
        """:meth:`add_file` of each of ``paths`` in turn, each stack made at once with the dtype the copy ends
        with (float32 if any file's is; uint8 if all are), so that no stack is copied twice."""
        import h5py

        shapes, u8, rows = {}, {}, {}
        for path in paths:
            with h5py.File(path, "r") as src:
                for group, ds in src.get("stacks", {}).items():
                    shapes[group] = ds.shape[1:]
                    u8[group] = u8.get(group, True) and ds.dtype == np.uint8
                    rows[group] = rows.get(group, 0) + ds.shape[0]
        for group, n in rows.items():
            if n and f"stacks/{group}" not in self.file:
                self._new_stack(group, shapes[group], np.uint8 if u8[group] else np.float32, n)
        for path in paths:
            self.add_file(path)

    def _spectra_group(self, first: int):
        """The spectra group, made with chunks sized by the ``first`` batch's pixel count when new."""
        import h5py

        if "spectra" in self.file:
            return self.file["spectra"]
        g = self.file.create_group("spectra")
        for k in SPECTRUM_KEYS:
            g.create_dataset(k, shape=(0,), maxshape=(None,), dtype=_DTYPES[k],
                             chunks=(int(np.clip(first, 1024, 65536)),))
        g.create_dataset("offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        g.create_dataset("attrs", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
        return g

    def _append_spectra(self, arrays: dict[str, np.ndarray], lengths: np.ndarray, attrs: list[str]) -> None:
        g = self._spectra_group(arrays["flux"].size)
        total = int(g["offsets"][-1])
        for k in SPECTRUM_KEYS:
            ds = g[k]
            ds.resize(total + arrays[k].size, axis=0)
            ds[total:] = arrays[k]
        off = g["offsets"]
        n = off.shape[0]
        off.resize(n + lengths.size, axis=0)
        off[n:] = total + np.cumsum(lengths)
        at = g["attrs"]
        at.resize(at.shape[0] + len(attrs), axis=0)
        at[at.shape[0] - len(attrs):] = np.array(attrs, dtype=object)
        self.n_spectra += len(attrs)

    def add_spectra(self, spectra: list[SpectrumData]) -> None:
        if not spectra:
            return
        parts: dict[str, list[np.ndarray]] = {k: [] for k in SPECTRUM_KEYS}
        attrs = []
        for s in spectra:
            n = len(s)
            parts["wavelength"].append(np.asarray(s.wavelength, np.float64))
            parts["flux"].append(np.asarray(s.flux, np.float64))
            parts["ivar"].append(np.asarray(s.ivar, np.float64))
            parts["mask"].append(np.asarray(s.mask, np.uint8))
            res = s.resolution_kms if s.resolution_kms is not None else np.full(n, np.nan)
            parts["resolution"].append(np.asarray(res, np.float64))
            meta = {k: v for k, v in s.meta.items() if _is_plain(v)}
            attrs.append(json.dumps({"vacuum": bool(s.vacuum), "flux_unit": s.flux_unit,
                                     "redshift_err": s.redshift_err, "meta": meta}, default=json_default))
        self._append_spectra({k: np.concatenate(v) for k, v in parts.items()},
                             np.array([len(s) for s in spectra], np.int64), attrs)

    def add_file(self, path: str | Path) -> None:
        """Copy every stack and the spectra of the arrays file ``path`` after what this writer holds, a block of
        :data:`COPY_ROWS` cut-outs or spectra at a time."""
        import h5py

        with h5py.File(path, "r") as src:
            for group, ds in sorted(src.get("stacks", {}).items()):
                for a in range(0, ds.shape[0], COPY_ROWS):
                    self.add_planes(group, ds[a:a + COPY_ROWS])
            if "spectra/offsets" not in src:
                return
            g = src["spectra"]
            off = g["offsets"][...]
            for a in range(0, off.size - 1, COPY_ROWS):
                b = min(a + COPY_ROWS, off.size - 1)
                lo, hi = int(off[a]), int(off[b])
                self._append_spectra({k: g[k][lo:hi] for k in SPECTRUM_KEYS}, np.diff(off[a:b + 1]),
                                     [_text(t) for t in g["attrs"][a:b]])


def _stack_dtype(planes) -> np.ndarray:
    """``planes`` as one array: uint8 if it (every one of a list) is uint8, else float32."""
    planes = np.asarray(planes)
    return planes if planes.dtype == np.uint8 else planes.astype(np.float32, copy=False)


def write_arrays(path: Path, working_size: int, new_planes: dict[str, list[np.ndarray]],
                 spectra: list[SpectrumData], schema_version: int = 1) -> dict:
    """Write one arrays file atomically with ``new_planes`` (group -> list of (C, S, S)) and ``spectra``; returns
    its counts ``{"stacks": {group: n}, "spectra": n}``."""
    out: dict = {}

    def write(tmp):
        with SegmentWriter(tmp, working_size, schema_version) as w:
            for g in sorted(new_planes):
                w.add_planes(g, np.stack(new_planes[g]) if len(new_planes[g]) else [])
            w.add_spectra(list(spectra))
            out.update(stacks=dict(w.counts), spectra=w.n_spectra)

    atomic_write(path, write)
    return out


def file_counts(path: Path) -> dict:
    """``{"stacks": {group: n}, "spectra": n}`` of one arrays file."""
    import h5py

    with h5py.File(path, "r") as f:
        stacks = {name: int(ds.shape[0]) for name, ds in f.get("stacks", {}).items()}
        n = int(f["spectra/offsets"].shape[0] - 1) if "spectra/offsets" in f else 0
    return {"stacks": stacks, "spectra": n}


def _text(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _attrs(raw) -> dict:
    return json.loads(_text(raw))


def read_spectrum(path: Path, k: int, *, source: str, oid: str, z: float, spec_class: str | None,
                  subclass: str | None) -> SpectrumData:
    """Spectrum ``k`` of the arrays file ``path``, with the object-table fields given."""
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
    """The JSON attributes of spectra ``ks`` of the arrays file ``path``, without their arrays."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = f["spectra/attrs"]
        return [_attrs(attrs[k]) for k in ks]


def _is_plain(v) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None
