"""``galdesk ingest``, ``galdesk info`` and ``galdesk demo``: making projects and saying what they hold."""

from __future__ import annotations

import sys
from pathlib import Path

from galdesk.cli.common import EXIT_OK, fail, message, print_json

__all__ = ["add_parsers", "cmd_ingest", "cmd_info", "cmd_demo"]


def cmd_ingest(args) -> int:
    from galdesk.project import ProjectError
    from galdesk.services.ingest import ingest
    from galdesk.tasks import ConsoleContext

    ctx = ConsoleContext(quiet=args.json)
    try:
        res = ingest(args.sources, args.output, catalog=args.catalog, size=args.size, ctx=ctx, workers=args.workers,
                     scheduler=getattr(args, "scheduler", None), on_resume=_print_resuming,
                     again=getattr(args, "again", False))
    except ProjectError as exc:
        return fail("ingest", str(exc))
    if args.json:
        print_json(res.to_dict())
    else:
        print(f"{res.project}: added {res.images} images and {res.spectra} spectra"
              + (f"; {res.catalog_matched} objects matched the catalogue" if args.catalog else "")
              + (f"; {res.known_files} file(s) already in the project left out (--again adds them again)"
                 if res.known_files else ""))
        if res.problems:
            print(f"{len(res.problems)} problem(s):", file=sys.stderr)
            for p in res.problems:
                print(f"  {p.path}: {p.error}", file=sys.stderr)
    if res.images or res.spectra or (res.known_files and not res.problems):
        return EXIT_OK
    made = "the project is unchanged" if Path(res.project).exists() else "no project was made"
    return fail("ingest", f"nothing could be read from the sources ({len(res.problems)} problem(s)); {made}")


def _print_resuming(done: int, total: int) -> None:
    """What ``galdesk ingest`` says when it continues a killed run of the same ingest."""
    print(f"resuming: {done} of {total} files already ingested", file=sys.stderr, flush=True)


def cmd_info(args) -> int:
    from galdesk.project import Project, ProjectError
    from galdesk.project.verify import check_project
    from galdesk.services.info import project_info

    try:
        proj = Project.open(args.project)
    except ProjectError as exc:
        return fail("info", str(exc))
    try:
        check_project(proj)          # a damaged file: one message naming it, not a traceback
        info = project_info(proj)
    except ProjectError as exc:
        return fail("info", str(exc))
    finally:
        proj.close()
    if args.json:
        print_json(info)
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return EXIT_OK


def cmd_demo(args) -> int:
    from galdesk.project import Project, ProjectError
    from galdesk.services.demo import make_demo_project
    from galdesk.services.info import project_info

    try:
        path = make_demo_project(args.output, overwrite=args.overwrite)
    except (ProjectError, OSError) as exc:
        return fail("demo", message(exc))
    if args.json:
        proj = Project.open(path)
        try:
            print_json(project_info(proj))
        finally:
            proj.close()
    else:
        print(f"demo project: {path}")
    if args.open:
        from galdesk.cli.app import cmd_gui

        return cmd_gui(type("Args", (), {"paths": [str(path)]})())
    return EXIT_OK


def add_parsers(sub) -> None:
    i = sub.add_parser("ingest", help="read cut-outs/spectra (and a catalogue) into a project")
    i.add_argument("sources", nargs="*", help="files or folders")
    i.add_argument("-o", "--output", required=True, help="project folder (created if absent)")
    i.add_argument("--catalog", help="CSV/FITS/ECSV/VOTable catalogue naming objects and their files")
    i.add_argument("--size", type=int, default=None, help="working size in pixels for a new project (default 64)")
    i.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    i.add_argument("--again", action="store_true", help="also read files the project already holds objects from "
                                                        "(by default they are left out, so a repeated ingest adds "
                                                        "nothing twice)")
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
