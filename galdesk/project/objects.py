"""The object table: one row per image or spectrum, with the catalogue columns joined by id.

Helpers used by the store (:mod:`galdesk.project.store`) and by whoever reads its cells.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BASE_COLUMNS", "join_catalog", "cell_str", "as_float", "with_columns_of", "unique_id",
           "main_image_group", "appended_rows", "stack_group", "full_image"]

# Columns every object table has, in this order; catalogue columns follow.
BASE_COLUMNS = ("id", "kind", "source", "hdu", "bands", "group", "row", "ra", "dec", "z", "spec_class", "subclass")

_POSITION_ALIASES = {"ra": "ra", "dec": "dec", "z": "z", "redshift": "z"}


def join_catalog(objects, catalog):
    """Add ``catalog``'s columns to ``objects`` where ``objects['id'] == catalog['id']``.

    Numeric ``ra``/``dec``/``z``/``redshift`` columns fill the object's own position and redshift where the file
    gave none (a redshift read from a spectrum file wins). Other columns whose names clash with the object table's
    own get a ``cat_`` prefix. Objects without a catalogue row get masked values. Units and descriptions of
    catalogue columns are kept.
    """
    from astropy.table import MaskedColumn

    objects = objects.copy(copy_data=True)
    cat_ids = np.asarray(catalog["id"]).astype(str)
    index = {cid: i for i, cid in enumerate(cat_ids)}
    obj_ids = np.asarray(objects["id"]).astype(str)
    hit = np.array([index.get(i, -1) for i in obj_ids], dtype=int)
    for name in catalog.colnames:
        if name == "id":
            continue
        col = catalog[name]
        base = _POSITION_ALIASES.get(name.lower())
        if base is not None and np.asarray(col).dtype.kind in "fiu":
            # catalogue RA/Dec/redshift fill the object's own where the file had none
            values = np.asarray(np.ma.filled(np.ma.asarray(col, dtype=float), np.nan))
            taken = np.where(hit >= 0, values[np.clip(hit, 0, None)] if len(values) else np.nan, np.nan)
            own = np.asarray(objects[base], dtype=float)
            objects[base] = np.where(np.isfinite(own), own, taken)
            continue
        out_name = f"cat_{name}" if name in BASE_COLUMNS else name
        values = np.asarray(col)
        if values.ndim != 1:
            continue  # multi-dimensional catalogue columns are not joined
        taken = values[np.clip(hit, 0, None)] if len(values) else np.zeros(len(hit), dtype=values.dtype)
        mask = hit < 0
        if out_name in objects.colnames:
            old = objects[out_name]
            old_mask = np.ma.getmaskarray(old)
            keep = mask  # rows without a new catalogue value keep their old one
            merged = np.where(keep, np.asarray(old).astype(taken.dtype, copy=False), taken)
            mask = keep & old_mask
            taken = merged
        objects[out_name] = MaskedColumn(taken, mask=mask, unit=getattr(col, "unit", None),
                                         description=getattr(col, "description", None))
    return objects




def cell_str(value) -> str:
    """A table cell as text: '' for masked, NaN or missing values (ECSV reads empty strings back as masked)."""
    if value is None or value is np.ma.masked or np.ma.is_masked(value):
        return ""
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return ""
    return str(value)


def as_float(v) -> float:
    """``float(v)``, or NaN for None and for values that are not numbers."""
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def with_columns_of(added, template):
    """``added`` with the (empty) extra columns of ``template`` as masked columns."""
    from astropy.table import MaskedColumn

    for name in template.colnames:
        if name not in added.colnames:
            added[name] = MaskedColumn(np.zeros(len(added), dtype=template[name].dtype), mask=True,
                                       unit=template[name].unit)
    return added


def unique_id(oid: str, kind: str, existing: set) -> str:
    """``oid``, or ``oid#2``, ``oid#3``... if (kind, oid) is taken; the chosen one is added to ``existing``."""
    oid = str(oid)
    candidate, n = oid, 1
    while (kind, candidate) in existing:
        n += 1
        candidate = f"{oid}#{n}"
    existing.add((kind, candidate))
    return candidate


def main_image_group(objects) -> str | None:
    """The stack group (``"c3"``...: the band count) that most image objects of the table ``objects`` are in, or
    None without images. What a tool that takes one band count (a VQ-VAE, the shape descriptors) works on."""
    if not len(objects):
        return None
    kind = np.asarray(objects["kind"]).astype(str)
    groups = np.asarray(objects["group"]).astype(str)[kind == "image"]
    if not groups.size:
        return None
    names, counts = np.unique(groups, return_counts=True)
    return str(names[np.argmax(counts)])


def stack_group(n_bands: int) -> str:
    """The image stack a cut-out with ``n_bands`` bands goes to (``"c3"``)."""
    return f"c{int(n_bands)}"


def appended_rows(table, images, spectra, counts: dict[str, int], spec_start: int):
    """``table`` (the object table) with one row per new image and spectrum after it: unique ids, the stack group
    and row each cut-out will have (after ``counts`` rows per group), spectra numbered from ``spec_start``, the
    position and redshift the files gave, and a ``label`` column where the pixels came with labels."""
    from astropy.table import Table, vstack

    existing = {(k, i) for k, i in zip(np.asarray(table["kind"]), np.asarray(table["id"]).astype(str))}
    counts = dict(counts)
    new_rows = []
    for img in images:
        group = stack_group(img.n_bands)
        row = counts.get(group, 0)
        counts[group] = row + 1
        new_rows.append(dict(
            id=unique_id(img.id, "image", existing), kind="image", source=str(img.source),
            hdu=-1 if img.hdu is None else int(img.hdu), bands=",".join(img.bands), group=group, row=row,
            ra=as_float(img.meta.get("ra")), dec=as_float(img.meta.get("dec")), z=as_float(img.meta.get("z")),
            spec_class="", subclass="", label=img.meta.get("label"),
        ))
    for k, spec in enumerate(spectra):
        new_rows.append(dict(
            id=unique_id(spec.id, "spectrum", existing), kind="spectrum", source=str(spec.source), hdu=-1, bands="",
            group="spectra", row=spec_start + k, ra=as_float(spec.meta.get("ra")),
            dec=as_float(spec.meta.get("dec")), z=as_float(spec.redshift), spec_class=spec.spec_class or "",
            subclass=spec.subclass or "",
        ))
    if not new_rows:
        return table.copy(copy_data=True)
    # one vstack, not add_row per object (add_row costs ~1 ms a row on a wide table)
    added = Table(rows=[[r[c] for c in BASE_COLUMNS] for r in new_rows], names=BASE_COLUMNS)
    labels = [r.get("label") for r in new_rows]
    if any(v is not None and str(v) != "" for v in labels):
        # labels stored with the pixels (an HDF5 stack's "labels"/"ans" dataset): a catalogue column
        added["label"] = [("" if v is None else str(v)) for v in labels]
    if not len(table):
        return with_columns_of(added, table)
    return vstack([table, added], join_type="outer", metadata_conflicts="silent")


def full_image(obj, stored_planes):
    """The full-resolution cut-out of the image object ``obj`` (a row of the object table), re-read from its source
    file; ``stored_planes()`` (the working-size planes, ``meta["from_stack"] = True``) when it cannot be."""
    from pathlib import Path

    from galdesk.io.model import ImageData

    src = Path(str(obj["source"]))
    try:
        from galdesk.io.formats.hdf5 import is_hdf5_path, read_hdf5_image
        from galdesk.io.reading import read

        if is_hdf5_path(src):
            return read_hdf5_image(src, str(obj["id"]))  # one image, not the whole stack
        items = read(src, kind="image")
        hdu = int(obj["hdu"])
        for it in items:
            if (hdu < 0 and len(items) == 1) or it.hdu == hdu or it.id == obj["id"]:
                return it
        if items:
            return items[0]
    except Exception:  # noqa: BLE001 - any failure falls back to the stored planes
        pass
    bands = [b for b in str(obj["bands"]).split(",")]
    return ImageData(pixels=stored_planes(), bands=bands, source=str(src), id=str(obj["id"]),
                     rgb=bands == ["r", "g", "b"], meta={"from_stack": True})

