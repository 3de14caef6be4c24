"""Export the curated catalogue: build it (:mod:`galdesk.catalog.assemble`) and write it atomically
(:mod:`galdesk.catalog.writers`); read an exported catalogue back with its units.

See ``docs/vetting_and_export.md`` for the columns and the decisions taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from galdesk.catalog.assemble import DEFAULT_FLUX_UNIT, TEXT_COLUMNS, build_catalog
from galdesk.catalog.schema import column_unit, text_columns
from galdesk.catalog.writers import format_for, read_table, stale_temp_files, write_table
from galdesk.project import as_project

__all__ = ["ExportResult", "export_catalog", "read_catalog"]


@dataclass
class ExportResult:
    """What :func:`export_catalog` wrote.

    Attributes
    ----------
    path : str
    format : str
        ``"csv"``, ``"fits"``, ``"ecsv"`` or ``"votable"``.
    n_rows : int
    columns : list of str
    only : str
    overwritten : bool
        True if an existing file was replaced.
    size_bytes : int
    provenance : dict
    stale_temp_files : list of str
        Temporary files of earlier, interrupted exports to the same path (left alone; safe to delete).
    """

    path: str
    format: str
    n_rows: int
    columns: list[str]
    only: str
    overwritten: bool
    size_bytes: int
    provenance: dict = field(default_factory=dict)
    stale_temp_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def export_catalog(project, path: str | Path, only: str = "all", columns: list[str] | None = None,
                   overwrite: bool = False, format: str | None = None, vetter: str | None = None,
                   ctx=None) -> ExportResult:
    """Build the catalogue and write it atomically to ``path``.

    Parameters
    ----------
    project : Project or path
    path : str or Path
        ``.csv``, ``.fits``/``.fit``/``.fts``, ``.ecsv``, ``.xml``/``.vot`` (VOTable).
    only, columns, vetter
        See :func:`build_catalog`.
    overwrite : bool
        Replace an existing file; without it an existing file raises FileExistsError before any work.
    format : str, optional
        Override the format from the suffix.
    ctx : TaskContext, optional
        Progress and cancel (a cancel before the write leaves everything as it was).

    Returns
    -------
    ExportResult
    """
    path = Path(path)
    fmt = format or format_for(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: file exists; use --overwrite to replace it")
    project = as_project(project)
    if ctx is not None:
        ctx.progress(0.05, "building the catalogue")
    table = build_catalog(project, only=only, columns=columns, vetter=vetter)
    if ctx is not None:
        ctx.check_cancelled()
        ctx.progress(0.5, f"writing {path.name}")
    existed = path.exists()
    write_table(table, path, format=fmt, overwrite=overwrite)
    if ctx is not None:
        ctx.progress(1.0, f"wrote {len(table)} rows")
    return ExportResult(path=str(path), format=fmt, n_rows=len(table), columns=list(table.colnames), only=only,
                        overwritten=existed, size_bytes=path.stat().st_size, provenance=dict(table.meta),
                        stale_temp_files=stale_temp_files(path))


def read_catalog(path: str | Path, format: str | None = None, project=None):
    """Read an exported catalogue back into an astropy Table.

    FITS, ECSV and VOTable carry their units (FITS keeps logarithmic ``dex(...)`` units as text, which astropy does
    not parse: the schema's unit is put back); FITS text, which is ASCII, gets its ``\\uXXXX`` escapes decoded back
    into the original characters. For CSV the text columns are kept as text and units are put back: from
    ``project`` (the units :func:`build_catalog` gives its columns) when given, else from the column schema
    (:func:`galdesk.catalog.schema.column_unit`, line fluxes in :data:`DEFAULT_FLUX_UNIT`).
    """
    import astropy.units as u

    path = Path(path)
    fmt = format or format_for(path)
    t = read_table(path, fmt, text_columns=TEXT_COLUMNS + text_columns())
    if fmt != "csv":
        for c in t.colnames:
            if isinstance(t[c].unit, u.UnrecognizedUnit) and column_unit(c) is not None:
                t[c].unit = column_unit(c)
        return t
    units = {}
    if project is not None:
        ref = build_catalog(as_project(project))
        units = {c: ref[c].unit for c in ref.colnames}
        descr = {c: ref[c].description for c in ref.colnames}
    else:
        descr = {}
    for c in t.colnames:
        unit = units[c] if c in units else column_unit(c, DEFAULT_FLUX_UNIT)
        if unit is not None:
            t[c].unit = unit
        if descr.get(c):
            t[c].description = descr[c]
    return t
