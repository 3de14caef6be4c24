"""A galdesk project on disk.

Layout (a folder whose name ends in ``.galdesk``)::

    NAME.galdesk/
      manifest.json     schema_version, name, dates, working size, display settings, sources, history
      objects.ecsv      one row per object (image or spectrum), catalogue columns joined (astropy ECSV: units kept)
      arrays.json       the index of the arrays segments (:mod:`galdesk.project.segments`)
      arrays-NNNNNN.h5  image stacks  /stacks/c{C}  (N, C, S, S) float32 or uint8 — each cut-out padded to square and
                        area-averaged to the working size S; spectra  /spectra/{wavelength,flux,ivar,mask,resolution}
                        concatenated with /spectra/offsets (n+1); one file per append, merged as they accumulate
                        (``arrays.h5``: the single arrays file of a project made before segments)
      results/NAME.h5   one file per result set (predictions, features, linkage), each written atomically
      journal.sqlite    append-only journal (vetting decisions, cuts, line fits) — see :mod:`galdesk.project.journal`

Every file except the journal is written to a temporary file in the same folder and renamed over the old one
(``os.replace`` is atomic on POSIX and Windows), so a crash leaves either the old or the new version, never a torn
one. Arrays are never rewritten to add objects: a new segment file is written and listed in the index (the commit
point), then the object table. The journal is SQLite in WAL mode with synchronous commits.

A folder was chosen over a single file so that the journal can be an SQLite database (crash-safe appends) beside
HDF5 segments that are each written whole, and so that a user can look inside with h5ls, TOPCAT or sqlite3.
"""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np

from galdesk import __version__
from galdesk.fsutil import atomic_write
from galdesk.io.model import ImageData, SpectrumData
from galdesk.jsonutil import json_default
from galdesk.project.journal import Journal
from galdesk.project.lock import LOCK_NAME, ProjectBusy, ProjectLock
from galdesk.project.objects import BASE_COLUMNS, appended_rows, cell_str, full_image, join_catalog, stack_group
from galdesk.project.pending import PendingSegment
from galdesk.project.segments import ArrayStore, StackRows
from galdesk.project.table_file import (
    append_rows,
    can_append,
    commit_of,
    committed_length,
    read_table,
    truncate_to_commit,
    write_table,
)

__all__ = ["Project", "ProjectError", "SCHEMA_VERSION", "SUFFIX", "DEFAULT_SIZE", "is_project", "as_project",
           "migrate_manifest", "stack_group", "project_path", "check_new_project"]

#: 2: arrays in segments listed by arrays.json, object rows appended (galdesk.project.segments); 1: one arrays.h5
SCHEMA_VERSION = 2
SUFFIX = ".galdesk"
DEFAULT_SIZE = 64



class ProjectError(Exception):
    """A project cannot be created or opened (the message names the folder and the problem)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_project(path: str | Path) -> bool:
    """True if ``path`` is a galdesk project folder."""
    return (Path(path) / "manifest.json").is_file()


def project_path(path: str | Path) -> Path:
    """The folder a project name refers to: ``NAME`` and ``NAME.galdesk`` name the same project. An existing project
    folder is taken as it is (even without the suffix); otherwise ``.galdesk`` is appended."""
    p = Path(path)
    if p.suffix == SUFFIX or is_project(p):
        return p
    return p.with_name(p.name + SUFFIX)


def check_new_project(path: str | Path, working_size: int = DEFAULT_SIZE) -> Path:
    """The folder :meth:`Project.create` would make for ``path``; ProjectError naming it if it cannot (a project or
    other files are there already, or the working size is outside 8..512 px)."""
    path = project_path(path)
    if is_project(path):
        raise ProjectError(f"{path}: a project already exists here")
    if path.exists() and (not path.is_dir() or any(not p.name.startswith(LOCK_NAME) for p in path.iterdir())):
        raise ProjectError(f"{path}: folder exists and is not an empty galdesk project")
    if not 8 <= int(working_size) <= 512:
        raise ProjectError(f"{path}: working size {working_size} px is outside 8..512")
    return path


def as_project(project: "Project | str | Path") -> "Project":
    """``project`` itself, or the project opened at that path."""
    return project if isinstance(project, Project) else Project.open(project)


class Project:
    """A project folder: manifest, object table, arrays, results and journal.

    Create with :meth:`create`, open with :meth:`open`. Methods that change arrays write them atomically.
    """

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self._objects = None
        self._objects_commit: dict | None = None    # the commit the cached object table was read at
        self._journal: Journal | None = None
        self._stack_cache: dict[str, np.ndarray] = {}
        self._lock: ProjectLock | None = None
        #: temporary files of interrupted writes that :meth:`open` removed
        self.cleaned: list[str] = []

    # -- creation / opening -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, working_size: int = DEFAULT_SIZE, exist_ok: bool = False) -> "Project":
        """Create an empty project at ``path`` (``.galdesk`` is appended if missing)."""
        path = project_path(path)
        if exist_ok and is_project(path):
            return cls.open(path)
        if not path.is_dir():
            check_new_project(path, working_size)   # every check before a folder is made
        path.mkdir(parents=True, exist_ok=True)
        proj = cls(path, {})
        with proj.writing("create"):
            if is_project(path):  # another process made it while this one waited for the lock
                if exist_ok:
                    return cls.open(path)
                raise ProjectError(f"{path}: a project already exists here")
            # under the lock: a folder another ingest is filling right now is not taken for someone else's files
            check_new_project(path, working_size)
            proj.manifest = cls._new_manifest(path, working_size)
            proj._write_objects(proj._empty_objects())
            proj.save_manifest()  # last: the manifest is what makes the folder a project
        return proj

    @staticmethod
    def _new_manifest(path: Path, working_size: int) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": path.stem,
            "created": _now(),
            "modified": _now(),
            "galdesk_version": __version__,
            "working_size": int(working_size),
            "display": {"stretch": "asinh", "limits": "99.5", "cmap": "gray"},
            "sources": [],
            "catalogs": [],
            "history": [],
        }

    @classmethod
    def open(cls, path: str | Path) -> "Project":
        """Open an existing project, migrating an older manifest if needed."""
        given = Path(path)
        path = project_path(given)
        mf = path / "manifest.json"
        if not mf.is_file():
            raise ProjectError(f"{given}: not a galdesk project (no manifest.json)")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProjectError(f"{mf}: unreadable manifest ({exc})") from exc
        version = int(manifest.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"{path}: project schema {version} is newer than this galdesk ({SCHEMA_VERSION}); update galdesk"
            )
        manifest = migrate_manifest(manifest)
        proj = cls(path, manifest)
        proj.cleaned = proj.clean_leftovers()
        return proj

    def clean_leftovers(self) -> list[str]:
        """Remove what interrupted writes left, when no writer is at work and the folder is writable: temporary
        files beside project files (``.NAME.*.tmp``) and arrays segments the index does not list
        (:meth:`galdesk.project.segments.ArrayStore.leftovers`); returns the paths removed. Nothing else is ever
        deleted: a crash leaves the old or the new version of each file (:func:`galdesk.fsutil.atomic_write`)."""
        def stale():
            tmp = [p for d in (self.path, self.path / "results") if d.is_dir() for p in d.glob(".*.tmp")]
            return tmp + self.arrays.leftovers()

        table, commit = self.path / "objects.ecsv", self.arrays.objects_commit()
        torn = table.exists() and committed_length(table, commit) not in (None, table.stat().st_size)
        if not (stale() or torn) or not os.access(self.path, os.W_OK):
            return []
        removed = []
        try:
            with ProjectLock(self.path, timeout=0).hold("cleaning"):
                if truncate_to_commit(table, self.arrays.objects_commit()):
                    removed.append(f"{table} (rows after its last commit)")
                for p in stale():    # again under the lock: a writer may have finished meanwhile
                    try:
                        p.unlink()
                        removed.append(str(p))
                    except OSError:
                        pass
        except (ProjectBusy, OSError):
            return []  # a writer is at work: its temporary files are not leftovers
        return removed

    def reload_manifest(self) -> None:
        """Re-read the manifest only (another Project instance saved it, e.g. on a worker)."""
        self.manifest = migrate_manifest(json.loads((self.path / "manifest.json").read_text(encoding="utf-8")))

    def reload(self) -> None:
        """Forget cached tables and arrays (another Project instance, e.g. a worker's, changed the files)."""
        self.reload_manifest()
        self._objects = None
        self._stack_cache.clear()

    def refresh(self) -> None:
        """Re-read the manifest, and the object table only if another writer committed a change since it was read
        (reading a 20,000-row table costs ~0.7 s; an append to a project already open need not pay it)."""
        self.reload_manifest()
        self._stack_cache.clear()
        if self._objects is not None and (self._objects_commit is None or
                                          self.arrays.objects_commit() != self._objects_commit):
            self._objects = None

    # -- manifest ---------------------------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        self.manifest["modified"] = _now()
        text = json.dumps(self.manifest, indent=2, sort_keys=False)
        with self.writing("manifest"):
            atomic_write(self.path / "manifest.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.stem)

    @property
    def working_size(self) -> int:
        return int(self.manifest["working_size"])

    @property
    def display(self) -> dict:
        return self.manifest.setdefault("display", {})

    def set_display(self, **settings) -> bool:
        """Remember display settings (stretch, limits, cmap, ...) and save the manifest if that can be done at once.

        Called on the GUI thread: it never waits for another writer (an ingest on a worker holding the lock) and
        never fails on a read-only project. The settings stay in memory then and are saved with this instance's next
        manifest write; returns whether they were saved now.
        """
        self.display.update(settings)
        if self.read_only:
            return False
        try:
            with ProjectLock(self.path, timeout=0).hold("display settings"):
                self.save_manifest()
        except ProjectBusy:
            return False
        return True

    def add_history(self, action: str, **details) -> None:
        self.manifest.setdefault("history", []).append({"time": _now(), "action": action, **details})

    # -- writing ----------------------------------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """The folder cannot be written (a colleague's project, a DVD, a read-only share): it opens for viewing,
        ``info``, ``vet-log`` and export elsewhere; anything that would save raises PermissionError."""
        return not os.access(self.path, os.W_OK)

    def check_writable(self, what: str = "this") -> None:
        """PermissionError (EROFS) naming the project when it is read-only, before ``what`` starts."""
        if self.read_only:
            raise PermissionError(errno.EROFS, f"the project is read-only: {what} cannot be saved; copy it somewhere "
                                  "writable (File > Save Project As)", str(self.path))

    def writing(self, what: str = "write"):
        """Context manager: hold the project's write lock (:mod:`galdesk.project.lock`) while the block runs; another
        process's writer waits, then fails with ProjectBusy naming this one. Re-entrant within a thread.
        PermissionError at once when the project is read-only."""
        self.check_writable(what)
        if self._lock is None:
            self._lock = ProjectLock(self.path)
        return self._lock.hold(what)

    # -- journal ----------------------------------------------------------------------------------------------------
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.path / "journal.sqlite")
        return self._journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- objects ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _empty_objects():
        from astropy.table import Table

        return Table(
            names=BASE_COLUMNS,
            dtype=(str, str, str, int, str, str, int, float, float, float, str, str),
        )

    @property
    def objects(self):
        """The object table (astropy Table; one row per image or spectrum)."""
        if self._objects is None:
            path = self.path / "objects.ecsv"
            self._objects_commit = self.arrays.objects_commit()
            self._objects = read_table(path, self._objects_commit) if path.exists() else self._empty_objects()
        return self._objects

    def _write_objects(self, table) -> None:
        """Rewrite the object table whole (atomically) and record its commit with the array segments."""
        commit = write_table(self.path / "objects.ecsv", table)
        self.arrays.commit(self.arrays.segments(), commit)
        self._objects, self._objects_commit = table, commit

    @property
    def n_images(self) -> int:
        return int(np.count_nonzero(np.asarray(self.objects["kind"]) == "image")) if len(self.objects) else 0

    @property
    def n_spectra(self) -> int:
        return int(np.count_nonzero(np.asarray(self.objects["kind"]) == "spectrum")) if len(self.objects) else 0

    def image_rows(self, n_bands: int | None = None) -> np.ndarray:
        """Indices (into :attr:`objects`) of the image objects (with ``n_bands`` bands, if given)."""
        if not len(self.objects):
            return np.zeros(0, int)
        hit = np.asarray(self.objects["kind"]) == "image"
        if n_bands is not None:
            hit &= np.asarray(self.objects["group"]) == stack_group(n_bands)
        return np.flatnonzero(hit)

    def spectrum_rows(self) -> np.ndarray:
        """Indices (into :attr:`objects`) of the spectrum objects."""
        if not len(self.objects):
            return np.zeros(0, int)
        return np.flatnonzero(np.asarray(self.objects["kind"]) == "spectrum")

    def find(self, object_id: str, kind: str | None = None) -> int:
        """Row index of the object with this id (and kind); KeyError if absent."""
        ids = np.asarray(self.objects["id"]).astype(str)
        hit = ids == str(object_id)
        if kind is not None:
            hit &= np.asarray(self.objects["kind"]) == kind
        idx = np.flatnonzero(hit)
        if not idx.size:
            raise KeyError(f"no object {object_id!r} in {self.path}")
        return int(idx[0])

    # -- adding data --------------------------------------------------------------------------------------------------
    def add(self, images: Iterable[ImageData] = (), spectra: Iterable[SpectrumData] = (),
            stacks: dict | None = None, catalog=None, sources: Iterable[str] = (),
            pending: PendingSegment | None = None) -> tuple[int, int]:
        """Add objects and write the project atomically; returns (n_images_added, n_spectra_added).

        Parameters
        ----------
        images : ImageData
            Full-resolution cut-outs; they are resampled to the working size here unless ``stacks`` already
            gives the resampled planes (``stacks[id(image)]`` → (C, S, S)), as the parallel ingest does.
        spectra : SpectrumData
        catalog : astropy Table or None
            Extra per-object columns joined by ``id`` (already matched by the caller).
        pending : PendingSegment, optional
            A segment (:meth:`pending_segment`) that already holds the planes of ``images`` and the arrays of
            ``spectra``, in that order (an ingest writes them while it reads); ``images`` and ``spectra`` then only
            give the object rows, and their arrays may have been dropped.
        """

        images = list(images)
        spectra = list(spectra)
        if not images and not spectra:
            return 0, 0
        with self.writing("add"):
            self.refresh()  # under the lock: what another writer added is the base of this write, never lost
            return self._add(images, spectra, stacks, catalog, sources, pending)

    def pending_segment(self, resume_key: str | None = None) -> PendingSegment:
        """A new segment file to fill before taking the write lock, then pass to :meth:`add`
        (:mod:`galdesk.project.pending`); use it as a context manager so that it is deleted if never added."""
        self.check_writable("new objects")
        return self.arrays.pending(resume_key)

    def _add(self, images, spectra, stacks, catalog, sources, pending=None) -> tuple[int, int]:
        from galdesk.io.resample import working_planes

        new_planes: dict[str, list[np.ndarray]] = {}
        for img in images if pending is None else ():
            planes = stacks.get(id(img)) if stacks else None
            new_planes.setdefault(stack_group(img.n_bands), []).append(
                planes if planes is not None else working_planes(img.pixels, self.working_size))
        table = appended_rows(self.objects, images, spectra, self._group_counts(), self._n_spectra_stored())
        self._commit_add(table, new_planes, spectra, catalog, pending)
        self.manifest.setdefault("sources", []).extend(str(s) for s in sources)
        self.add_history("add", images=len(images), spectra=len(spectra))
        self.save_manifest()
        return len(images), len(spectra)

    def _commit_add(self, table, new_planes, spectra, catalog, pending=None) -> None:
        """Write the new segment and the new object rows, then commit both in one index write; where the rows
        cannot be appended to the table's file (new columns, a catalogue join), the segment is committed first and
        the table rewritten whole after it. Either way a crash leaves the previous state or rows nothing points to.
        """
        store, path = self.arrays, self.path / "objects.ecsv"
        old = self.objects
        segment = store.write_segment(new_planes, spectra) if pending is None else store.adopt(pending)
        segments = store.segments() + ([segment] if segment is not None else [])
        commit = store.objects_commit()
        if catalog is None and path.exists() and can_append(old, table):
            base = commit if committed_length(path, commit) is not None else commit_of(path)
            try:
                new = append_rows(path, table, len(old), base)
                store.commit(segments, new)
            except BaseException:
                truncate_to_commit(path, base)   # a full disk, Ctrl+C: the file as it was, not only as read
                raise
            self._objects, self._objects_commit = table, new
        else:
            store.commit(segments, commit)
            self._write_objects(join_catalog(table, catalog) if catalog is not None else table)
        self._stack_cache.clear()
        store.compact()

    def join_catalog(self, catalog) -> int:
        """Join catalogue columns onto the objects by id; returns how many objects matched."""
        with self.writing("catalogue join"):
            self._objects = None  # the table on disk, as another writer may have left it
            table = join_catalog(self.objects, catalog)
            self._write_objects(table)
        ids = set(np.asarray(catalog["id"]).astype(str))
        return int(sum(1 for i in np.asarray(table["id"]).astype(str) if i in ids))

    # -- arrays -------------------------------------------------------------------------------------------------------
    @property
    def arrays(self) -> ArrayStore:
        """The segment files of image stacks and spectra (:mod:`galdesk.project.segments`)."""
        return ArrayStore(self.path, self.working_size, SCHEMA_VERSION)

    def _group_counts(self) -> dict[str, int]:
        return self.arrays.group_counts()

    def _n_spectra_stored(self) -> int:
        return self.arrays.n_spectra()

    def stack(self, group: str) -> np.ndarray:
        """The whole image stack of one band-count group, (N, C, S, S) float32 (cached in memory)."""
        if group not in self._stack_cache:
            self._stack_cache[group] = self.arrays.read_stack(group)
        return self._stack_cache[group]

    def stack_rows(self, group: str, rows) -> np.ndarray:
        """Cut-outs ``rows`` (stack row numbers, as in the object table's ``row``) of one group, (n, C, S, S), read
        from the files without loading the whole stack (unless it is already in memory)."""
        if group in self._stack_cache:
            return self._stack_cache[group][np.asarray(rows, dtype=np.int64)]
        return self.arrays.read_rows(group, rows)

    def stack_view(self, group: str, index) -> StackRows:
        """Cut-outs ``index`` (stack rows) of one group as a lazy array-like read a slice at a time
        (:class:`~galdesk.project.segments.StackRows`): batched work holds one batch, not the stack."""
        c = int(group[1:]) if group.startswith("c") and group[1:].isdigit() else 1
        s = self.working_size
        return StackRows(lambda rows: self.stack_rows(group, rows), index, (c, s, s))

    def stack_groups(self) -> list[str]:
        return sorted(self._group_counts())

    def thumbnail_planes(self, row: int) -> np.ndarray:
        """The working-size planes (C, S, S) of the object in row ``row`` of :attr:`objects`.

        Reads one row from the HDF5 file unless the whole stack is already in memory, so that showing a few
        thumbnails of a large project never loads the whole stack (on the GUI thread).
        """
        obj = self.objects[row]
        return self.stack_rows(str(obj["group"]), [int(obj["row"])])[0]

    def spectrum(self, row: int) -> SpectrumData:
        """The stored spectrum of the object in row ``row`` of :attr:`objects`."""
        obj = self.objects[row]
        if obj["kind"] != "spectrum":
            raise ValueError(f"object {obj['id']} is not a spectrum")
        return self.arrays.read_spectrum(int(obj["row"]), source=str(obj["source"]), oid=str(obj["id"]),
                                         z=float(obj["z"]), spec_class=cell_str(obj["spec_class"]) or None,
                                         subclass=cell_str(obj["subclass"]) or None)

    def spectrum_attrs(self, rows) -> list[dict]:
        """The stored attributes (``flux_unit``, ``vacuum``, ``redshift_err``, ``meta``) of the spectrum objects in
        object-table ``rows``, read in one pass without their arrays."""
        objs = self.objects
        return self.arrays.spectrum_attrs([int(objs["row"][int(r)]) for r in rows])

    def load_full_image(self, row: int) -> ImageData:
        """Re-read the full-resolution cut-out of an image object from its source file; the working-size planes
        (``meta["from_stack"] = True``) when the source is gone (:func:`galdesk.project.objects.full_image`)."""
        return full_image(self.objects[row], lambda: self.thumbnail_planes(row))

    # -- results ------------------------------------------------------------------------------------------------------
    def save_result(self, name: str, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> Path:
        """Write ``results/{name}.h5`` atomically: datasets from ``arrays``, JSON ``attrs`` in the root."""
        import h5py

        path = self.path / "results" / f"{name}.h5"

        def write(tmp):
            with h5py.File(tmp, "w") as f:
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["json"] = json.dumps(attrs or {}, default=json_default)
                for key, value in arrays.items():
                    value = np.asarray(value)
                    if value.dtype.kind == "U":
                        value = value.astype("S")
                    f.create_dataset(key, data=value)

        with self.writing(f"result {name}"):
            atomic_write(path, write)
            self.reload_manifest()
            self.add_history("result", name=name)
            self.save_manifest()
        return path

    def load_result(self, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """Arrays and attrs of ``results/{name}.h5``, or None if absent."""
        import h5py

        path = self.path / "results" / f"{name}.h5"
        if not path.exists():
            return None
        with h5py.File(path, "r") as f:
            arrays = {}
            for key in f:
                v = f[key][...]
                arrays[key] = v.astype(str) if v.dtype.kind == "S" else v
            attrs = json.loads(f.attrs.get("json", "{}"))
        return arrays, attrs

    def results(self) -> list[str]:
        d = self.path / "results"
        return sorted(p.stem for p in d.glob("*.h5")) if d.is_dir() else []

    # -- summary ------------------------------------------------------------------------------------------------------
    def info(self) -> dict:
        """What the project holds (for ``galdesk info``)."""
        j = self.journal
        return {
            "path": str(self.path),
            "name": self.name,
            "schema_version": self.manifest["schema_version"],
            "created": self.manifest.get("created"),
            "modified": self.manifest.get("modified"),
            "working_size": self.working_size,
            "objects": self.n_images,
            "spectra": self.n_spectra,
            "stack_groups": {g: int(n) for g, n in self._group_counts().items()},
            "array_segments": len(self.arrays.segments()),
            "unreferenced_rows": self.unreferenced_rows(),
            "catalog_columns": [c for c in self.objects.colnames if c not in BASE_COLUMNS],
            "results": self.results(),
            "journal_records": j.count(),
            "line_fits": j.count("line_fit"),
        }

    def unreferenced_rows(self) -> int:
        """Stack rows no object points to: what a crash between writing ``arrays.h5`` and ``objects.ecsv`` leaves
        (harmless: new objects are appended after them; they cost only disk space)."""
        counts = self._group_counts()
        if not counts:
            return 0
        groups = np.asarray(self.objects["group"]) if len(self.objects) else np.zeros(0, str)
        return int(sum(max(0, n - int(np.count_nonzero(groups == g))) for g, n in counts.items()))

    def __repr__(self) -> str:
        return f"<Project {self.path} images={self.n_images} spectra={self.n_spectra}>"


# ------------------------------------------------------------------------------------------------------------------
def migrate_manifest(manifest: dict) -> dict:
    """Bring an older manifest up to :data:`SCHEMA_VERSION` (version 0 = before the field existed)."""
    version = int(manifest.get("schema_version", 0))
    if version < 1:
        manifest.setdefault("working_size", DEFAULT_SIZE)
        manifest.setdefault("display", {})
        manifest.setdefault("sources", [])
        manifest.setdefault("catalogs", [])
        manifest.setdefault("history", [])
        manifest["schema_version"] = 1
    if version < 2:
        # the single arrays.h5 of version 1 is read as one segment; the first append writes the index
        manifest["schema_version"] = 2
    return manifest
