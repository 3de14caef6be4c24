"""``galdesk export``: the curated catalogue of a project to CSV, FITS, ECSV or VOTable."""

from __future__ import annotations

import sys
from pathlib import Path

from galdesk.catalog import ONLY_CHOICES
from galdesk.cli.common import EXIT_OK, fail, print_json

__all__ = ["add_parsers", "cmd_export"]



def cmd_export(args) -> int:
    """``galdesk export PROJECT -o FILE.{csv,fits,ecsv,xml} [--only all|vetted|accepted] [--columns A,B]
    [--vetter NAME] [--overwrite] [--json]``."""
    from galdesk.catalog.export import export_catalog
    from galdesk.catalog.writers import format_for
    from galdesk.project import Project, ProjectError

    out = Path(args.output)
    try:
        fmt = format_for(out)
    except ValueError as exc:
        return fail("export", str(exc))
    if out.exists() and not getattr(args, "overwrite", False):
        return fail("export", f"{out}: file exists; use --overwrite to replace it")
    try:
        proj = Project.open(args.project)
    except ProjectError as exc:
        return fail("export", str(exc))
    cols = getattr(args, "columns", None)
    if isinstance(cols, str):
        cols = [c for c in cols.split(",") if c.strip()]
    try:
        res = export_catalog(proj, out, only=getattr(args, "only", "all") or "all", columns=cols or None,
                             overwrite=bool(getattr(args, "overwrite", False)), format=fmt,
                             vetter=getattr(args, "vetter", None))
    except (FileExistsError, IsADirectoryError, ValueError) as exc:
        return fail("export", str(exc) if str(out) in str(exc) else f"{out}: {exc}")
    except OSError as exc:
        return fail("export", f"{out}: cannot write ({exc.strerror or exc})")
    finally:
        proj.close()
    if getattr(args, "json", False):
        print_json(res.to_dict())
    else:
        print(f"{res.path}: {res.n_rows} rows x {len(res.columns)} columns ({res.format}, only={res.only})")
    for tmp in res.stale_temp_files:
        print(f"galdesk: note: {tmp} is left over from an interrupted export; it can be deleted", file=sys.stderr)
    return EXIT_OK


def add_parsers(subparsers) -> None:
    """Register ``export`` (``func`` set to :func:`cmd_export`)."""
    p = subparsers.add_parser("export", help="write the curated catalogue (CSV, FITS, ECSV, VOTable)")
    p.add_argument("project")
    p.add_argument("-o", "--output", required=True, help="FILE.csv, .fits, .ecsv or .xml/.vot (VOTable)")
    p.add_argument("--only", choices=ONLY_CHOICES, default="all",
                   help="all objects, vetted ones (incl. rejected), or accepted ones (default all)")
    p.add_argument("--columns", default=None, help="comma-separated columns or patterns (e.g. id,ra,dec,prob_*)")
    p.add_argument("--vetter", default=None, help="one vetter's decisions (default: the latest of anyone)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_export)
