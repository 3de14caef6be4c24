"""The ``galdesk`` command: no sub-command opens the GUI; sub-commands run the headless pipeline.

Only the ``gui`` branch imports Qt; every sub-command imports what it needs when it runs, so that ``galdesk
--help`` and the window both start fast.
"""

from __future__ import annotations

import argparse
import sys

from galdesk import __version__
from galdesk.jsonutil import print_json as _print_json

__all__ = ["main", "gui_main", "build_parser"]


def _fail(message: str, code: int = 2) -> int:
    print(f"galdesk: {message}", file=sys.stderr)
    return code


# -- sub-commands -----------------------------------------------------------------------------------------------------
def cmd_gui(args) -> int:
    from galdesk.gui.app import run_gui

    return run_gui(list(getattr(args, "paths", []) or []))


def cmd_ingest(args) -> int:
    from galdesk.ingest import ingest
    from galdesk.project import ProjectError
    from galdesk.tasks import Cancelled, ConsoleContext

    ctx = ConsoleContext(quiet=args.json)
    try:
        res = ingest(args.sources, args.output, catalog=args.catalog, size=args.size, ctx=ctx, workers=args.workers)
    except ProjectError as exc:
        return _fail(str(exc))
    except Cancelled:
        return _fail("cancelled", 130)
    if args.json:
        _print_json(res.to_dict())
    else:
        print(f"{res.project}: added {res.images} images and {res.spectra} spectra"
              + (f"; {res.catalog_matched} objects matched the catalogue" if args.catalog else ""))
        if res.problems:
            print(f"{len(res.problems)} problem(s):", file=sys.stderr)
            for p in res.problems:
                print(f"  {p.path}: {p.error}", file=sys.stderr)
    return 0 if (res.images or res.spectra) else 2


def cmd_info(args) -> int:
    from galdesk.project import Project, ProjectError

    try:
        proj = Project.open(args.project)
    except ProjectError as exc:
        return _fail(str(exc))
    info = proj.info()
    proj.close()
    if args.json:
        _print_json(info)
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


def cmd_demo(args) -> int:
    from galdesk.sample import make_demo_project

    path = make_demo_project(args.output, overwrite=args.overwrite)
    if args.json:
        from galdesk.project import Project

        _print_json(Project.open(path).info())
    else:
        print(f"demo project: {path}")
    if args.open:
        from galdesk.gui.app import run_gui

        return run_gui([str(path)])
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="galdesk", description="galdesk: galaxy cut-outs, spectra, classification, "
                                "clustering, line fitting and vetting. Without a sub-command, opens the window.")
    p.add_argument("--version", action="version", version=f"galdesk {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the window (optionally with files, folders or a project)")
    g.add_argument("paths", nargs="*")
    g.set_defaults(func=cmd_gui)

    i = sub.add_parser("ingest", help="read cut-outs/spectra (and a catalogue) into a project")
    i.add_argument("sources", nargs="*", help="files or folders")
    i.add_argument("-o", "--output", required=True, help="project folder (created if absent)")
    i.add_argument("--catalog", help="CSV/FITS/ECSV/VOTable catalogue naming objects and their files")
    i.add_argument("--size", type=int, default=None, help="working size in pixels for a new project (default 64)")
    i.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    i.add_argument("--json", action="store_true", help="print a JSON summary")
    i.set_defaults(func=cmd_ingest)

    n = sub.add_parser("info", help="what a project holds")
    n.add_argument("project")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_info)

    d = sub.add_parser("demo", help="create the built-in sample project (synthetic galaxies and spectra)")
    d.add_argument("-o", "--output", default=None, help="where (default: galdesk-demo.galdesk in the data folder)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing demo project")
    d.add_argument("--open", action="store_true", help="open it in the window")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_demo)

    from galdesk import batch, classify, fitlines, vetting
    from galdesk.cluster import cli as cluster_cli
    from galdesk.io import export

    classify.add_parsers(sub)      # train, classify
    fitlines.add_parsers(sub)      # fit-lines
    export.add_export_parser(sub)  # export
    vetting.add_vet_parsers(sub)   # vet, vet-log
    batch.add_parsers(sub)         # batch
    cluster_cli.add_parsers(sub)   # cluster
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        return cmd_gui(argparse.Namespace(paths=[]))
    return int(args.func(args) or 0)


def gui_main() -> int:
    """Entry point of the ``galdesk-gui`` gui-script (double-click launch)."""
    args = sys.argv[1:]
    return main(["gui", *args])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
