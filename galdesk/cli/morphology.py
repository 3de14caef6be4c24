"""``galdesk morphology``: statmorph's non-parametric morphology of every cut-out, stored in the project."""

from __future__ import annotations

import sys

from galdesk.cli.common import EXIT_OK, fail, message, print_json

__all__ = ["add_parsers", "cmd_morphology"]


def cmd_morphology(args) -> int:
    from galdesk.cluster.morphology import measure_morphology  # noqa: PLC0415
    from galdesk.project import Project, ProjectError  # noqa: PLC0415
    from galdesk.tasks import ConsoleContext  # noqa: PLC0415

    if args.workers is not None and args.workers < 1:
        return fail("morphology", f"--workers must be at least 1, got {args.workers}")
    try:
        project = Project.open(args.project)
    except ProjectError as exc:
        return fail("morphology", message(exc))
    try:
        out = measure_morphology(project, workers=args.workers or _default_workers(), ctx=ConsoleContext(
            quiet=args.json))
    except (KeyError, ValueError) as exc:
        return fail("morphology", message(exc))
    finally:
        project.close()
    if not out["measured"]:
        for p in out["problems"][:20]:
            print(f"  {p['id']}: {p['error']}", file=sys.stderr)
        return fail("morphology", f"{project.path}: no cut-out could be measured ({out['failed']} failed)")
    if args.json:
        print_json(out)
        return EXIT_OK
    print(f"morphology of {out['objects']} cut-outs: {out['measured']} measured, {out['failed']} failed, in "
          f"{out['seconds']:.1f} s ({out['seconds_per_cutout']:.2f} s a cut-out on {out['workers']} worker(s)); "
          f"stored in {project.path / 'results/morphology.h5'}")
    for p in out["problems"][:20]:
        print(f"  {p['id']}: {p['error']}")
    if len(out["problems"]) > 20:
        print(f"  ... and {len(out['problems']) - 20} more (--json lists them all)")
    return EXIT_OK


def _default_workers() -> int:
    from galdesk.services.ingest import default_workers  # noqa: PLC0415

    return default_workers()


def add_parsers(sub) -> None:
    """Add ``morphology`` to the ``galdesk`` sub-command parsers."""
    m = sub.add_parser("morphology", help="non-parametric morphology of every cut-out with statmorph (Gini, M20, "
                                          "concentration, asymmetry, smoothness, Sersic index, half-light radius, "
                                          "axis ratio, colour), stored in the project (results/morphology.h5) for "
                                          "export and for 'galdesk cluster --model morphology'")
    m.add_argument("project")
    m.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: the 'workers' setting, else one per CPU core)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_morphology)
