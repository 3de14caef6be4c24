"""Reading files: :func:`read` (one file), :func:`read_paths` (files and folders) and the checks every result passes.

:func:`read` is the one entry point for a single file and turns *every* failure (missing file, empty file, a
``.fits`` that is not FITS, a truncated file, a header that claims an enormous array, wrong dimensionality, all-NaN
data, a reader's own exception...) into a one-line ``ReadError``. :func:`read_paths` reads many files and folders,
collecting one :class:`~galdesk.io.model.Problem` per failed file while the rest load.

The reader is chosen by :func:`galdesk.io.registry.identify` among the registered formats; importing this module
imports :mod:`galdesk.io.formats`, which registers the built-in ones.

FITS safety
-----------
Before any reader sees a FITS file, the :class:`~galdesk.io.probe.Probe` scans its HDU headers
(:func:`galdesk.io.fitshead.scan_fits`): a header that claims more than :data:`galdesk.io.fitshead.MAX_DATA_BYTES`
or data beyond the end of the file is refused here, before astropy allocates anything.

Targets that cannot be used
---------------------------
In a file of several spectra (a DESI coadd) each spectrum is checked on its own: one that fails
:func:`check_spectrum` (a dead fibre: no positive inverse variance), has no usable pixel or only zeros
(:func:`target_problem`), or that its reader marked (``meta["skip_reason"]``: a DESI sky fibre) is a *skipped
target*, not the end of the file. :func:`read` leaves them out unless asked to keep them (the others get a warning
that says so; a file whose every target is skipped is a ReadError naming them); :func:`read_paths` lists each as a
Problem naming the file and the target. A file of one spectrum that fails the checks is a ReadError.

Folder walking (:func:`expand_paths`)
-------------------------------------
Files named explicitly are always kept. Folders are walked recursively in sorted order, skipping hidden files and
folders (name starting with ``.``) and files that are certainly not data: :data:`SKIP_SUFFIXES` (documentation,
code, configuration, notebooks, archives' listings...) and :data:`SKIP_NAMES`. ``.csv`` and ``.txt`` are *not*
skipped because text spectra use them; a catalogue met while walking becomes a Problem that says it looks like a
catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

import galdesk.io.formats  # noqa: F401 - registers the built-in readers
from galdesk.io.messages import one_line
from galdesk.io.model import ImageData, Problem, ReadError, SpectrumData
from galdesk.io.noise import add_estimated_errors
from galdesk.io.probe import Probe
from galdesk.io.registry import identify
from galdesk.io.shapes import DEFAULT_MAX_ASPECT_RATIO, check_cutout_shape, max_aspect_ratio
from galdesk.warncap import capture

__all__ = [
    "SKIP_SUFFIXES",
    "SKIP_NAMES",
    "FITS_SUFFIXES",
    "ReadResult",
    "read",
    "read_paths",
    "expand_paths",
    "check_image",
    "check_spectrum",
    "target_problem",
    "check_cutout_shape",
    "max_aspect_ratio",
    "DEFAULT_MAX_ASPECT_RATIO",
    "MIN_SPECTRUM_PIXELS",
    "REDSHIFT_RANGE",
]

#: Fewest pixels a spectrum may have.
MIN_SPECTRUM_PIXELS = 16
#: Plausible redshifts (a star at -0.1 would move at -30,000 km/s; nothing spectroscopic lies beyond z = 15).
REDSHIFT_RANGE = (-0.1, 15.0)

#: Suffixes (lower case) of files that a folder walk skips: never images or spectra.
SKIP_SUFFIXES: frozenset[str] = frozenset(
    {
        ".md", ".rst", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".py", ".pyc", ".ipynb", ".sh",
        ".html", ".htm", ".log", ".pdf", ".db", ".sqlite", ".lock", ".gitignore",
    }
)
#: File names that a folder walk skips.
SKIP_NAMES: frozenset[str] = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "README", "LICENSE"})

#: Suffixes that promise a FITS file.
FITS_SUFFIXES: frozenset[str] = frozenset({".fits", ".fit", ".fts", ".fits.fz"})

# suffixes whose content must start with a known signature: (format name, magic bytes)
_SUFFIX_MAGIC = {".jpg": ("JPEG", b"\xff\xd8"), ".jpeg": ("JPEG", b"\xff\xd8"), ".png": ("PNG", b"\x89PNG")}


# ------------------------------------------------------------------------------------------------------------------
# Validation shared by every reader
# ------------------------------------------------------------------------------------------------------------------
def check_image(img: ImageData, keep_uint8: bool = False) -> ImageData:
    """Enforce the ImageData conventions (float32 ``(n_bands, ny, nx)``, some finite pixel, the shape of a cut-out:
    :func:`check_cutout_shape`); ValueError if broken. With ``keep_uint8`` (an ingest's light read) uint8 pixels
    stay uint8: the store keeps 8-bit cut-outs in 8 bits."""
    px = np.asarray(img.pixels)
    if px.ndim == 2:
        px = px[None]
    if px.ndim != 3:
        raise ValueError(f"wrong dimensionality: image array has shape {px.shape}, expected (bands, ny, nx)")
    if px.size == 0 or 0 in px.shape:
        raise ValueError(f"zero-size image (shape {px.shape})")
    check_cutout_shape(px.shape)
    if px.dtype != np.float32 and not (keep_uint8 and px.dtype == np.uint8):
        px = px.astype(np.float32)
    if px.dtype == np.float32 and not np.isfinite(px).any():
        raise ValueError(f"image has no finite pixel (all NaN/inf, shape {px.shape})")
    img.pixels = px
    if len(img.bands) != px.shape[0]:
        raise ValueError(f"{len(img.bands)} band names for {px.shape[0]} planes")
    return img


def _check_scaling(p: Path, probe: Probe) -> None:
    """A FITS data HDU with ``BSCALE = 0`` would read as all zeros: refuse it instead of ingesting a blank."""
    for i, info in enumerate(probe.fits_layout.hdus if probe.is_fits else []):
        bscale = info.kw.get("BSCALE")
        if info.kind == "image" and isinstance(bscale, (int, float)) and float(bscale) == 0.0:
            raise ReadError(p, f"HDU {i} has BSCALE = 0: every value would read as zero (a broken header)")


def check_spectrum(spec: SpectrumData) -> SpectrumData:
    """Enforce the SpectrumData conventions; ValueError when the spectrum is unusable.

    Wavelength becomes float64 and increasing (a strictly decreasing one is reversed with all per-pixel arrays);
    ivar is set to 0 where it is negative or non-finite; ``mask`` gains non-finite flux and ``ivar == 0``.
    A spectrum whose reader found no usable errors (``meta["no_errors"]``) gets errors estimated from its flux
    (:func:`galdesk.io.noise.add_estimated_errors`: a sliding DER_SNR; ``meta["errors_estimated"]`` says how and
    ``"no_errors"`` is dropped); only when no estimate is possible (a noise-free flux) does it keep ``no_errors``, a
    zero ivar and an unmasked flux. Refused: fewer than :data:`MIN_SPECTRUM_PIXELS` pixels, a redshift outside
    :data:`REDSHIFT_RANGE`, and (for a spectrum that has errors) no pixel with a positive inverse variance, e.g. a
    dead or sky fibre.
    """
    wave = np.asarray(spec.wavelength, dtype=np.float64).ravel()
    flux = np.asarray(spec.flux, dtype=np.float64).ravel()
    n = wave.size
    if n == 0 or flux.size == 0:
        raise ValueError("zero-length spectrum")
    if n < MIN_SPECTRUM_PIXELS:
        raise ValueError(f"only {n} pixel(s): too few for a spectrum (at least {MIN_SPECTRUM_PIXELS})")
    z = spec.redshift
    if z is not None and not (np.isfinite(z) and REDSHIFT_RANGE[0] <= z <= REDSHIFT_RANGE[1]):
        raise ValueError(f"redshift z = {z:g} is impossible (outside {REDSHIFT_RANGE[0]:g} .. {REDSHIFT_RANGE[1]:g}): "
                         "fix the file, or give the redshift in a catalogue")
    ivar = np.asarray(spec.ivar, dtype=np.float64).ravel() if spec.ivar is not None else np.zeros(n)
    mask = np.asarray(spec.mask, dtype=bool).ravel() if spec.mask is not None else np.zeros(n, bool)
    if not (flux.size == n and ivar.size == n and mask.size == n):
        raise ValueError(f"array lengths differ: wavelength {n}, flux {flux.size}, ivar {ivar.size}, "
                         f"mask {mask.size}")
    res = spec.resolution_kms
    if res is not None:
        res = np.asarray(res, dtype=np.float64).ravel()
        if res.size != n:
            res = None
    finite_flux = np.isfinite(flux)
    if not finite_flux.any():
        raise ValueError(f"spectrum flux is all NaN/inf ({n} pixels)")
    if not np.isfinite(wave).all():
        raise ValueError("wavelength array has NaN/inf values")
    if n > 1:
        d = np.diff(wave)
        if np.all(d < 0):
            wave, flux, ivar, mask = wave[::-1], flux[::-1], ivar[::-1], mask[::-1]
            finite_flux = finite_flux[::-1]
            if res is not None:
                res = res[::-1]
        elif not np.all(d > 0):
            raise ValueError("wavelength is not monotonic")
    if not (wave > 0).all():
        raise ValueError(f"non-positive wavelengths (first {wave[0]:g} Angstrom)")
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    mask = mask | ~finite_flux
    spec.wavelength, spec.flux, spec.ivar, spec.mask, spec.resolution_kms = (
        np.ascontiguousarray(wave), np.ascontiguousarray(flux), np.ascontiguousarray(ivar),
        np.ascontiguousarray(mask), res)
    add_estimated_errors(spec)  # only for a spectrum whose file has no usable errors
    if not spec.meta.get("no_errors"):
        if not (spec.ivar > 0).any():
            raise ValueError(f"no pixel has a positive inverse variance ({n} pixels): a dead, sky or fully masked "
                             "fibre, or errors the reader cannot use")
        spec.mask = spec.mask | (spec.ivar <= 0)
    mask = spec.mask
    if mask.all():
        spec.meta.setdefault("warnings", []).append("no usable pixel (every pixel masked or ivar == 0)")
    return spec


def _check_probe(p: Path, probe: Probe) -> None:
    """ReadError for a file that is empty, gzipped FITS, not what its name says, or FITS the guard refused."""
    if probe.size == 0:
        raise ReadError(p, "empty file (0 bytes)")
    if probe.suffix in (".fits.gz", ".fit.gz", ".fts.gz"):
        raise ReadError(p, "gzip-compressed FITS is not supported: decompress it first (gunzip)")
    if probe.suffix in FITS_SUFFIXES and not probe.is_fits:
        raise ReadError(p, f"not a FITS file despite its {probe.suffix} name (starts with {_describe_head(probe)})")
    magic = _SUFFIX_MAGIC.get(probe.suffix)
    if magic is not None and not probe.head.startswith(magic[1]):
        raise ReadError(p, f"not a {magic[0]} file despite its {probe.suffix} name "
                           f"(starts with {_describe_head(probe)})")
    if probe.is_fits and probe.fits_layout is None:
        raise ReadError(p, probe.fits_error or "unreadable FITS file")
    _check_scaling(p, probe)


# ------------------------------------------------------------------------------------------------------------------
# read / read_paths / expand_paths
# ------------------------------------------------------------------------------------------------------------------
def read(path: str | os.PathLike, kind: str | None = None, keep_skipped: bool = False, light: bool = False,
         size: int | None = None) -> list[ImageData | SpectrumData]:
    """Read one file with the registered reader that claims it.

    Parameters
    ----------
    path : path-like
    kind : {"image", "spectrum"} or None
        Consider only readers of this kind.
    keep_skipped : bool
        Also return the skipped targets of the file (module docstring), each with ``meta["skip_reason"]``;
        callers that report per target (ingest, line fits) ask for them.
    light, size : bool, int
        For an ingest, which keeps pixels and plain metadata: FITS images come without Header and WCS objects,
        with the centre's ``ra``/``dec`` and ``pixel_scale_arcsec`` in ``meta`` (:mod:`galdesk.io.wcscore`), and
        8-bit JPEG/PNG cut-outs already shrunk to ``size``, as uint8 (:mod:`galdesk.io.formats.pil_image`).

    Returns
    -------
    list of ImageData or SpectrumData
        One file may hold several objects (stamp collections, DESI coadds, HDF5 stacks).

    Raises
    ------
    ReadError
        For every failure, with a one-line message (``str(err)`` starts with the path).
    """
    p = Path(path)
    try:
        if not p.exists():
            raise ReadError(p, "file not found")
        if p.is_dir():
            raise ReadError(p, "is a folder, not a file (use read_paths to read folders)")
        if not p.is_file():  # opening a named pipe would wait for a writer forever
            raise ReadError(p, "not a regular file (a named pipe, socket or device); only regular files are read")
        probe = Probe(p)
        probe.light, probe.working_size = light, (size if light else None)
        _check_probe(p, probe)
        entry = identify(probe, kind)
        try:
            with capture() as caught:
                out = list(entry.reader(probe) or [])
        except (ReadError, MemoryError):
            raise
        except ValueError as exc:  # readers raise ValueError for problems they diagnosed themselves
            raise ReadError(p, f"{entry.name}: {one_line(exc, 200)}") from exc
        except Exception as exc:  # noqa: BLE001 - name the format and the exception type
            raise ReadError(p, f"{entry.name} reader failed: {type(exc).__name__}: {one_line(exc, 200)}") from exc
        if not out:
            raise ReadError(p, f"{entry.name} reader found nothing to load")
        notes = _warning_texts(caught)
        if probe.fits_layout is not None:
            notes = probe.fits_layout.warnings + notes
        for obj in out:
            if isinstance(obj, ImageData):
                check_image(obj, keep_uint8=light)
            elif isinstance(obj, SpectrumData):
                _check_target(obj, several=len(out) > 1)
            else:
                raise ReadError(p, f"reader {entry.name} returned a {type(obj).__name__}")
            obj.meta.setdefault("format", entry.name)
            if notes:
                obj.meta.setdefault("warnings", [])
                obj.meta["warnings"].extend(n for n in notes if n not in obj.meta["warnings"])
        return out if keep_skipped else _usable(p, out)
    except ReadError:
        raise
    except MemoryError:
        raise ReadError(p, "out of memory while reading") from None
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line ReadError
        raise ReadError(p, one_line(exc, 240)) from exc


def target_problem(spec: SpectrumData) -> str | None:
    """Why a checked spectrum of a multi-target file is no target to keep, or None: no usable pixel (masked, NaN,
    or ivar 0 when the file has errors), or a flux of exactly zero on every usable pixel (an empty fibre)."""
    usable = (~spec.mask) & np.isfinite(spec.flux)
    if not spec.meta.get("no_errors"):
        usable &= spec.ivar > 0
    if not usable.any():
        return f"fully masked: no usable pixel of {len(spec)}"
    if not np.any(spec.flux[usable] != 0):
        return f"empty: the flux is zero on all {int(usable.sum())} usable pixels"
    return None


def _check_target(spec: SpectrumData, several: bool) -> None:
    """:func:`check_spectrum`; in a file of several spectra a failure marks this one skipped instead of raising."""
    if not several:
        check_spectrum(spec)
        return
    try:
        check_spectrum(spec)
        reason = target_problem(spec)
    except ValueError as exc:
        reason = one_line(exc, 200)
    if reason and not spec.meta.get("skip_reason"):
        spec.meta["skip_reason"] = reason


def _usable(p: Path, out: list) -> list:
    """The objects without ``meta["skip_reason"]``; ReadError naming the skipped ones when none is left."""
    skipped = [o for o in out if o.meta.get("skip_reason")]
    if not skipped:
        return out
    kept = [o for o in out if not o.meta.get("skip_reason")]
    named = "; ".join(f"target {o.id}: {o.meta['skip_reason']}" for o in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    if not kept:
        raise ReadError(p, f"no usable target ({named}{more})")
    for o in kept:
        o.meta.setdefault("warnings", []).append(f"{len(skipped)} other target(s) of this file skipped ({named}{more})")
    return kept


def _warning_texts(caught) -> list[str]:
    out: list[str] = []
    for w in caught or []:
        text = one_line(w.message, 200)
        if text not in out:
            out.append(text)
        if len(out) >= 10:
            break
    return out


def _describe_head(probe: Probe) -> str:
    head = probe.head
    if head.startswith(b"\x1f\x8b"):
        return "gzip magic bytes - a compressed file"
    if head.startswith(b"\x89PNG"):
        return "PNG magic bytes"
    if head.startswith(b"\xff\xd8"):
        return "JPEG magic bytes"
    if head.startswith(b"\x89HDF"):
        return "HDF5 magic bytes"
    if probe.text_head() is not None:
        return "text"  # never quote a file's contents in a message
    return "binary data of no known kind"


@dataclass
class ReadResult:
    """What :func:`read_paths` loaded and what it could not.

    Attributes
    ----------
    images : list of ImageData
    spectra : list of SpectrumData
    problems : list of Problem
        One per file that failed, and one per skipped target of a multi-target file, with its one-line reason.
    """

    images: list[ImageData] = field(default_factory=list)
    spectra: list[SpectrumData] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images) + len(self.spectra)


def expand_paths(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Files as given; folders walked recursively (sorted), skipping hidden and non-data files.

    Parameters
    ----------
    paths : path-like or iterable of path-like

    Returns
    -------
    list of Path
        In the order given, each folder's files sorted by relative path. A path that does not exist is kept (it
        becomes a "file not found" Problem in :func:`read_paths`). Duplicates are dropped.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.absolute()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in paths:
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if _skip_in_walk(name):
                        continue
                    add(Path(root) / name)
        else:
            add(p)
    return out


def _skip_in_walk(name: str) -> bool:
    if name.startswith(".") or name in SKIP_NAMES or name.endswith("~"):
        return True
    return Path(name).suffix.lower() in SKIP_SUFFIXES


def read_paths(paths, ctx=None, kind: str | None = None) -> ReadResult:
    """Read many files and folders; failures become Problems, the rest load.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Files and folders (see :func:`expand_paths`).
    ctx : galdesk.tasks.TaskContext, optional
        Receives ``progress(i / n, message)`` per file; ``check_cancelled()`` is called between files, so
        :class:`galdesk.tasks.Cancelled` propagates.
    kind : {"image", "spectrum"} or None

    Returns
    -------
    ReadResult
    """
    files = expand_paths(paths)
    result = ReadResult()
    n = len(files)
    for i, path in enumerate(files):
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(i / n, f"reading {path.name}")
        try:
            objs = read(path, kind=kind, keep_skipped=True)
        except ReadError as exc:
            result.problems.append(Problem(str(path), str(exc)))
            continue
        for obj in objs:
            if obj.meta.get("skip_reason"):  # one target of a multi-target file: a problem of its own
                result.problems.append(Problem(str(path), f"{path}: target {obj.id} skipped: "
                                                          f"{obj.meta['skip_reason']}"))
                continue
            (result.images if isinstance(obj, ImageData) else result.spectra).append(obj)
    if ctx is not None:
        ctx.progress(1.0, f"read {n - len(result.problems)} of {n} files")
    return result
