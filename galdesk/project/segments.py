"""A project's arrays as a list of segment files that grows in place.

Layout::

    arrays.json          the index: [{"file": "arrays-000001.h5", "stacks": {"c3": 4988}, "spectra": 0}, ...]
    arrays-000001.h5     one segment per append (or per merge), written whole and renamed into place
    arrays.h5            a project made before segments: one segment, without an index until the first append

A project's row ``r`` of stack ``g`` is row ``r - (rows of g in the segments before)`` of the segment that holds
it; spectra likewise. Adding objects writes one new segment (:func:`galdesk.fsutil.atomic_write`), then the index
(atomically): so an append costs what it adds, not a rewrite of every cut-out, and the index is the commit point. A
crash before the index is written leaves a segment nothing lists (removed when the project is next opened, by
:meth:`ArrayStore.leftovers`); after it, rows nothing in the object table points to yet (reported by ``info``).

Segments are merged so that there are few of them: after an append, the newest segments are merged while the one
before them is at most twice their size together (a binary counter: each cut-out is copied O(log N) times over the
life of a project, and adding 1,000 cut-outs to 20,000 touches about 1,000), and never more than
:data:`MAX_SEGMENTS` remain. A merge streams (one block of rows in memory), keeps every row's number, writes the new
segment and the index, then deletes the merged files. A reader that read the index just before a merge retries
once with the new index when a file it expected is gone.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from galdesk.fsutil import atomic_write
from galdesk.io.model import SpectrumData
from galdesk.project.arrays import SegmentWriter, file_counts, read_spectrum, spectrum_attrs, write_arrays
from galdesk.project.pending import PendingSegment, stale_pending

__all__ = ["ArrayStore", "Segment", "StackRows", "INDEX_NAME", "LEGACY_NAME", "MAX_SEGMENTS"]

INDEX_NAME = "arrays.json"
LEGACY_NAME = "arrays.h5"
#: never more segment files than this (the tail is merged)
MAX_SEGMENTS = 12
_SEGMENT_RE = re.compile(r"^arrays-(\d{6})\.h5$")


@dataclass
class Segment:
    file: str
    stacks: dict[str, int] = field(default_factory=dict)
    spectra: int = 0

    def size(self) -> int:
        return sum(self.stacks.values()) + self.spectra


class ArrayStore:
    """The segment files of the project folder ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | Path, working_size: int, schema_version: int = 1) -> None:
        self.folder = Path(folder)
        self.working_size = int(working_size)
        self.schema_version = schema_version

    # -- the index ----------------------------------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    def _index(self) -> dict | None:
        if not self.index_path.exists():
            return None
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
            data["segments"] = [Segment(str(s["file"]), {str(g): int(n) for g, n in s.get("stacks", {}).items()},
                                        int(s.get("spectra", 0))) for s in data["segments"]]
            return data
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{self.index_path}: not a galdesk arrays index ({exc})") from exc

    def segments(self) -> list[Segment]:
        """The segments in row order (ValueError naming the index when it cannot be read)."""
        data = self._index()
        if data is not None:
            return data["segments"]
        legacy = self.folder / LEGACY_NAME
        if legacy.exists():
            c = file_counts(legacy)
            return [Segment(LEGACY_NAME, c["stacks"], c["spectra"])]
        return []

    def objects_commit(self) -> dict | None:
        """The object table's commit recorded with the segments (:mod:`galdesk.project.table_file`), or None."""
        try:
            data = self._index()
        except ValueError:
            return None
        return data.get("objects") if data else None

    def paths(self) -> list[Path]:
        return [self.folder / s.file for s in self.segments()]

    def commit(self, segments: list[Segment], objects: dict | None) -> None:
        """Write the index: these segments and the object table's commit, in one atomic write (the commit point
        of an append)."""
        text = json.dumps({"segments": [asdict(s) for s in segments], "objects": objects}, indent=1)
        atomic_write(self.index_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def _write_index(self, segments: list[Segment]) -> None:
        self.commit(segments, self.objects_commit())

    def group_counts(self) -> dict[str, int]:
        """Cut-outs per image stack over all segments (``{"c3": 4988}``)."""
        out: dict[str, int] = {}
        for s in self.segments():
            for g, n in s.stacks.items():
                out[g] = out.get(g, 0) + n
        return out

    def n_spectra(self) -> int:
        return sum(s.spectra for s in self.segments())

    def leftovers(self) -> list[Path]:
        """Segment files the index does not list: an append or merge interrupted before its index was written,
        merged files a crash kept from being deleted, and pending segments of writers that died
        (:func:`galdesk.project.pending.stale_pending`)."""
        if not self.index_path.exists():
            # no index (an older project, or a lost index): no segment is judged a leftover without one
            return stale_pending(self.folder)
        try:
            listed = {s.file for s in self.segments()}
        except ValueError:
            return stale_pending(self.folder)   # a damaged index: no segment is judged a leftover by it
        # never arrays.h5: the file of an older project (or an older galdesk) is not judged by a newer index
        unlisted = [p for p in self.folder.glob("arrays-*.h5") if _SEGMENT_RE.match(p.name) and p.name not in listed]
        return unlisted + stale_pending(self.folder)

    # -- reading ------------------------------------------------------------------------------------------------------
    def _retry(self, read):
        """``read(segments)``, once more with a fresh index if a file vanished (a merge by another process)."""
        try:
            return read(self.segments())
        except FileNotFoundError:
            return read(self.segments())

    def read_stack(self, group: str) -> np.ndarray:
        """The whole stack ``group`` (N, C, S, S) float32 (from uint8 or float32 segments alike)."""
        import h5py

        def read(segments):
            parts = []
            for s in segments:
                if s.stacks.get(group):
                    with h5py.File(self.folder / s.file, "r") as f:
                        parts.append(f[f"stacks/{group}"].astype(np.float32)[...])  # uint8 read as float32
            if not parts:
                raise KeyError(f"no image stack {group!r} in {self.folder}")
            return np.concatenate(parts) if len(parts) > 1 else parts[0]

        return self._retry(read)

    def read_rows(self, group: str, rows) -> np.ndarray:
        """Cut-outs ``rows`` (project row numbers, any order, repeats allowed) of stack ``group``, (n, C, S, S)."""
        import h5py

        rows = np.asarray(rows, dtype=np.int64).ravel()

        def read(segments):
            out = None
            start = 0
            for s in segments:
                n = s.stacks.get(group, 0)
                sel = np.flatnonzero((rows >= start) & (rows < start + n))
                if sel.size:
                    local, inverse = np.unique(rows[sel] - start, return_inverse=True)
                    with h5py.File(self.folder / s.file, "r") as f:
                        block = f[f"stacks/{group}"][local]
                    if out is None:
                        out = np.empty((rows.size, *block.shape[1:]), np.float32)
                    out[sel] = block[inverse]
                start += n
            if rows.size and (rows.min() < 0 or rows.max() >= start):
                raise IndexError(f"{self.folder}: stack {group!r} has {start} rows, asked for row "
                                 f"{int(rows.max() if rows.max() >= start else rows.min())}")
            return out if out is not None else np.zeros((0,), np.float32)

        return self._retry(read)

    def _spectrum_place(self, segments, k: int) -> tuple[Path, int]:
        start = 0
        for s in segments:
            if k < start + s.spectra:
                return self.folder / s.file, k - start
            start += s.spectra
        raise IndexError(f"{self.folder}: {start} spectra stored, asked for spectrum {k}")

    def read_spectrum(self, k: int, **fields) -> SpectrumData:
        """Spectrum ``k`` of the project (``fields``: :func:`galdesk.project.arrays.read_spectrum`'s)."""
        return self._retry(lambda segs: read_spectrum(*self._spectrum_place(segs, int(k)), **fields))

    def spectrum_attrs(self, ks: list[int]) -> list[dict]:
        """The JSON attributes of spectra ``ks`` without their arrays (one read per segment file)."""
        def read(segments):
            places = [self._spectrum_place(segments, int(k)) for k in ks]
            out: list = [None] * len(places)
            for path in {p for p, _ in places}:
                mine = [j for j, (p, _) in enumerate(places) if p == path]
                for j, attrs in zip(mine, spectrum_attrs(path, [places[j][1] for j in mine])):
                    out[j] = attrs
            return out

        return self._retry(read)

    # -- writing (the caller holds the project's write lock) ------------------------------------------------------
    def next_segment_name(self, segments: list[Segment]) -> str:
        """The file name of the next segment after ``segments`` (and after any unlisted segment file)."""
        numbers = [int(m.group(1)) for p in [*(s.file for s in segments), *(q.name for q in
                   self.folder.glob("arrays-*.h5"))] if (m := _SEGMENT_RE.match(Path(p).name))]
        return f"arrays-{max(numbers, default=0) + 1:06d}.h5"

    def write_segment(self, new_planes: dict[str, list[np.ndarray]], spectra: list[SpectrumData]) -> Segment | None:
        """Write ``new_planes`` (group -> list of (C, S, S)) and ``spectra`` as a new segment file, not yet listed
        (:meth:`commit` lists it, with the object table's commit: ``Project.add``); None when there is nothing
        to write."""
        if not any(len(v) for v in new_planes.values()) and not spectra:
            return None
        name = self.next_segment_name(self.segments())
        counts = write_arrays(self.folder / name, self.working_size, new_planes, spectra, self.schema_version)
        return Segment(name, counts["stacks"], counts["spectra"])

    def pending(self, resume_key: str | None = None) -> PendingSegment:
        """A new pending segment of this store, or with ``resume_key`` the one a killed writer of the same key left
        (:mod:`galdesk.project.pending`)."""
        return PendingSegment(self.folder, self.working_size, self.schema_version, resume_key=resume_key)

    def adopt(self, pending: PendingSegment) -> Segment | None:
        """``pending`` moved into place as the next segment, not yet listed (the caller holds the write lock and
        commits it, as :meth:`write_segment`'s); None, and the file deleted, when it holds nothing."""
        if pending.empty:
            pending.discard()
            return None
        name = self.next_segment_name(self.segments())
        counts, n_spectra = dict(pending.counts), pending.n_spectra
        pending.finish(name)
        return Segment(name, counts, n_spectra)

    def compact(self, segments: list[Segment] | None = None) -> None:
        """Merge the newest segments per the policy of the module docstring."""
        segments = self.segments() if segments is None else segments
        k, total = 1, segments[-1].size() if segments else 0
        while k < len(segments) and segments[-k - 1].size() <= 2 * total:
            total += segments[-k - 1].size()
            k += 1
        k = max(k, len(segments) - MAX_SEGMENTS + 1)
        if k >= 2:
            self.merge(segments, k)

    def merge(self, segments: list[Segment], k: int) -> None:
        """Merge the last ``k`` of ``segments`` into one new segment file (streamed), then drop the old files."""
        old = segments[-k:]
        name = self.next_segment_name(segments)
        counts: dict = {}

        def write(tmp):
            with SegmentWriter(tmp, self.working_size, self.schema_version) as w:
                w.add_files([self.folder / s.file for s in old])
                counts.update(stacks=dict(w.counts), spectra=w.n_spectra)

        atomic_write(self.folder / name, write)
        self._write_index([*segments[:-k], Segment(name, counts["stacks"], counts["spectra"])])
        for s in old:
            try:
                os.unlink(self.folder / s.file)
            except OSError:
                pass   # e.g. open elsewhere on Windows: a leftover, removed at the next open


class StackRows:
    """Cut-outs ``index`` (stack rows) of one image stack as an array-like that reads from the files a slice at a
    time: ``shape``, ``len()``, ``view[i:j]`` (an ndarray of those rows), ``view[k]``, ``np.asarray(view)`` (all).
    Batched consumers (classification, features, descriptors) so hold one batch in memory, not the stack."""

    def __init__(self, read, index, plane_shape: tuple[int, ...]) -> None:
        self._read = read
        self.index = np.asarray(index, dtype=np.int64)
        self.shape = (int(self.index.size), *plane_shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._read(self.index[[int(key)]])[0]
        rows = self.index[key]
        if not rows.size:
            return np.zeros((0, *self.shape[1:]), np.float32)
        return self._read(rows)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)
