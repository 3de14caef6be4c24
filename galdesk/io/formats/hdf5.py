"""HDF5 image stacks (``N x H x W [x C]``), read whole, one image at a time or a slice at a time.

Every reader returns :class:`~galdesk.io.model.ImageData` with float32 pixels of shape ``(n_bands, ny, nx)``.

``hdf5-stack`` (priority 10) -- HDF5 files (``.h5``/``.hdf5`` or the HDF5 signature)
    The dataset ``images`` (any case) or else the only 3-D/4-D dataset. Layouts: ``N x H x W``;
    ``N x H x W x C`` (channels last: last axis 1..4 and H, W > 4); ``N x C x H x W`` (axis 1 is 1..4). Optional
    1-D datasets ``labels``/``label``/``ans``/``y`` -> ``meta["label"]`` and ``ids``/``id``/``objid``/``names`` ->
    ``id`` (else ``"{stem}:{i}"``). uint8 stacks with 3 channels are colour cut-outs (``rgb=True``, bands r g b),
    stored top row first like the JPEGs they come from, so they are flipped vertically too, unless the dataset has
    an attribute ``origin = "lower"``. A stack whose float32 copy would exceed
    :data:`~galdesk.io.fitshead.MAX_DATA_BYTES` is refused by ``read()``; ``galdesk ingest`` streams stacks above
    :data:`galdesk.services.ingest.STREAM_BYTES` slice by slice (:func:`iter_hdf5_stack`), whatever their size. HDF5
    files without such a stack are refused with the list of their datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galdesk.io import fitshead
from galdesk.io.model import ImageData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["HDF5_SUFFIXES", "is_hdf5_path", "hdf5_stack_size", "read_hdf5_stack", "read_hdf5_image",
           "refuse_outside_data", "iter_hdf5_stack", "stack_shape"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LABEL_NAMES = ("labels", "label", "ans", "y", "targets", "classes")
_ID_NAMES = ("ids", "id", "objid", "names", "name")


HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def _is_hdf5(probe: Probe) -> bool:
    return probe.head.startswith(_HDF5_MAGIC) or probe.suffix in HDF5_SUFFIXES


def is_hdf5_path(path) -> bool:
    """An HDF5 file by its name or its signature (without parsing it)."""
    p = Path(path)
    if p.suffix.lower() in HDF5_SUFFIXES:
        return True
    if not p.is_file():  # never open a named pipe (it would wait for a writer) or a device
        return False
    try:
        with open(p, "rb") as fh:
            return fh.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC
    except OSError:
        return False


def _find_ci(group, names) -> object | None:
    lower = {k.lower(): k for k in group.keys()}
    for n in names:
        if n in lower:
            return group[lower[n]]
    return None


def _layout(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return "NHW"
    n, a, b, c = shape
    if 1 <= c <= 4 and a > 4 and b > 4:
        return "NHWC"
    if 1 <= a <= 4 and b > 4 and c > 4:
        return "NCHW"
    raise ValueError(f"cannot tell the channel axis of a {shape} stack (expected N x H x W x C or N x C x H x W "
                     f"with C <= 4)")


def refuse_outside_data(f) -> None:
    """ValueError if the open HDF5 file reaches outside itself: an external link to another file, a dataset whose
    raw data is stored in external files (it could be ``/etc/passwd``) or a virtual dataset mapping other files.
    Only self-contained files are read."""
    import h5py

    stack = [(f, "")]
    seen: set = set()
    while stack:
        group, prefix = stack.pop()
        for name in group.keys():
            link = group.get(name, getlink=True)
            path = f"{prefix}/{name}"
            if isinstance(link, h5py.ExternalLink):
                raise ValueError(f"'{path}' is an external link to another file ({link.filename}); only "
                                 "self-contained HDF5 files are read")
            if isinstance(link, h5py.SoftLink):
                continue  # within the file: its target is visited where it lies
            obj = group[name]
            if isinstance(obj, h5py.Dataset):
                if obj.external:
                    raise ValueError(f"dataset '{path}' keeps its data in external files; only self-contained HDF5 "
                                     "files are read")
                if obj.is_virtual:
                    raise ValueError(f"dataset '{path}' is a virtual dataset mapping other files; only "
                                     "self-contained HDF5 files are read")
            elif isinstance(obj, h5py.Group) and obj.id not in seen:  # hard-link loops are visited once
                seen.add(obj.id)
                stack.append((obj, path))


def _open_stack(f):
    """The image dataset of an open HDF5 file, its layout and its per-image labels/ids datasets (or None)."""
    import h5py

    refuse_outside_data(f)
    ds = _find_ci(f, ("images", "image", "imgs"))
    if ds is not None and not isinstance(ds, h5py.Dataset):
        ds = None
    if ds is None:
        found: list = []
        listing: list[str] = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                listing.append(f"{name} {obj.shape}")
                if obj.ndim in (3, 4):
                    found.append(obj)

        f.visititems(visit)
        if len(found) != 1:
            shown = ", ".join(listing[:8]) or "none"
            why = "several 3-D/4-D datasets and none named 'images'" if found else "no 3-D/4-D dataset"
            raise ValueError(f"not an image stack: {why} (datasets: {shown})")
        ds = found[0]
    if ds.ndim not in (3, 4):
        raise ValueError(f"dataset '{ds.name}' has shape {ds.shape}; an image stack is N x H x W (x C)")
    layout = _layout(tuple(ds.shape))
    n = int(ds.shape[0])
    if n == 0:
        raise ValueError(f"image stack '{ds.name}' is empty (shape {ds.shape})")
    labels = _find_ci(f, _LABEL_NAMES)
    labels = labels if isinstance(labels, h5py.Dataset) and labels.shape[:1] == (n,) else None
    ids = _find_ci(f, _ID_NAMES)
    ids = ids if isinstance(ids, h5py.Dataset) and ids.shape[:1] == (n,) else None
    return ds, layout, labels, ids


def stack_shape(path) -> tuple[int, int, int, int]:
    """``(n_images, n_bands, ny, nx)`` of an HDF5 image stack, from its shape only; ValueError if it is none."""
    import h5py

    with h5py.File(path, "r") as f:
        ds, layout, _, _ = _open_stack(f)
        shape = tuple(int(v) for v in ds.shape)
    if layout == "NHW":
        return shape[0], 1, shape[1], shape[2]
    if layout == "NHWC":
        return shape[0], shape[3], shape[1], shape[2]
    return shape[0], shape[1], shape[2], shape[3]


def hdf5_stack_size(path) -> tuple[int, int]:
    """``(number of images, bytes of their float32 copy)`` of an HDF5 image stack; ValueError if it is none."""
    import h5py

    with h5py.File(path, "r") as f:
        ds, _, _, _ = _open_stack(f)
        return int(ds.shape[0]), 4 * int(np.prod(ds.shape, dtype=np.float64))


def _stack_slice(path, opened, start: int, stop: int) -> list[ImageData]:
    """Images ``start:stop`` of a stack; ``opened`` is :func:`_open_stack`'s result (found once per file)."""
    ds, layout, labels_ds, ids_ds = opened
    origin = ds.attrs.get("origin", None)
    if isinstance(origin, bytes):
        origin = origin.decode()
    raw = ds[start:stop]
    labels = labels_ds[start:stop] if labels_ds is not None else None
    ids = ids_ds[start:stop] if ids_ds is not None else None
    if layout == "NHWC":
        raw = np.moveaxis(raw, -1, 1)
    elif layout == "NHW":
        raw = raw[:, None]
    nchan = raw.shape[1]
    rgb = raw.dtype == np.uint8 and nchan == 3
    flip = rgb and origin != "lower"
    bands = ["r", "g", "b"] if nchan == 3 and rgb else [f"b{i}" for i in range(nchan)]
    out = []
    stem = Path(path).stem
    for k in range(raw.shape[0]):
        i = start + k
        planes = raw[k, :, ::-1, :] if flip else raw[k]
        if ids is not None:
            v = ids[k]
            ident = v.decode(errors="replace") if isinstance(v, bytes) else str(v.item() if hasattr(v, "item") else v)
        else:
            ident = f"{stem}:{i}"
        meta = {"index": i, "dataset": ds.name}
        if labels is not None:
            v = labels[k]
            meta["label"] = v.decode(errors="replace") if isinstance(v, bytes) else (
                v.item() if hasattr(v, "item") and np.ndim(v) == 0 else np.asarray(v).tolist())
        out.append(ImageData(pixels=np.ascontiguousarray(planes, dtype=np.float32), bands=list(bands),
                             source=str(path), id=ident, hdu=None, rgb=rgb, meta=meta))
    return out


def read_hdf5_stack(probe: Probe) -> list[ImageData]:
    """Read an HDF5 image stack (rules in the module docstring)."""
    import h5py

    with h5py.File(probe.path, "r") as f:
        opened = _open_stack(f)
        ds = opened[0]
        out_bytes = 4 * int(np.prod(ds.shape, dtype=np.float64))
        if out_bytes > fitshead.MAX_DATA_BYTES:
            raise ValueError(f"image stack '{ds.name}' {tuple(ds.shape)} would need {out_bytes / 1024**3:.1f} GiB "
                             f"as float32, above the {fitshead.MAX_DATA_BYTES / 1024**3:.0f} GiB limit of one "
                             f"read (galdesk ingest streams such stacks slice by slice)")
        return _stack_slice(probe.path, opened, 0, int(ds.shape[0]))


def read_hdf5_image(path, object_id: str) -> ImageData:
    """One image of an HDF5 stack, found by its id (the ``ids`` dataset, else ``"{stem}:{index}"``), reading only
    that image."""
    import h5py

    with h5py.File(path, "r") as f:
        opened = _open_stack(f)
        ds, _, _, ids = opened
        index = None
        if ids is not None:
            vals = ids[()]
            for i, v in enumerate(vals):
                text = v.decode(errors="replace") if isinstance(v, bytes) else str(v.item() if hasattr(v, "item")
                                                                                      else v)
                if text == str(object_id):
                    index = i
                    break
        else:
            stem, _, tail = str(object_id).rpartition(":")
            if stem == Path(path).stem and tail.isdigit() and int(tail) < ds.shape[0]:
                index = int(tail)
        if index is None:
            raise ValueError(f"{path}: no image with id {object_id!r} in stack '{ds.name}'")
        return _stack_slice(path, opened, index, index + 1)[0]


def iter_hdf5_stack(path, slice_bytes: int = 256 * 1024**2):
    """Yield the images of an HDF5 stack a slice at a time (at most ``slice_bytes`` of float32 pixels each), so
    that stacks larger than memory or :data:`~galdesk.io.fitshead.MAX_DATA_BYTES` can be ingested."""
    import h5py

    with h5py.File(path, "r") as f:
        opened = _open_stack(f)  # once: a file without an 'images' dataset is searched dataset by dataset
        ds = opened[0]
        n = int(ds.shape[0])
        per = max(1, int(slice_bytes // max(4 * int(np.prod(ds.shape[1:], dtype=np.float64)), 1)))
        for start in range(0, n, per):
            yield _stack_slice(path, opened, start, min(n, start + per))


register_reader("hdf5-stack", "image", _is_hdf5, read_hdf5_stack, priority=10)
