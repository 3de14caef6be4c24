"""``galdesk batch TASK``: batch work over many files on local processes or a Dask cluster."""

from __future__ import annotations

import sys

from galdesk.cli.common import EXIT_FAILED, EXIT_OK, fail, print_json
from galdesk.cli.lines import add_fit_options, config_from_args

__all__ = ["add_parsers", "cmd_batch_fit_lines"]


def cmd_batch_fit_lines(args) -> int:
    from galdesk.catalog.lines_table import results_table
    from galdesk.catalog.writers import write_table
    from galdesk.io.reading import expand_paths
    from galdesk.services.batch import fit_lines_batch
    from galdesk.tasks import ConsoleContext

    try:
        config = config_from_args(args)
    except ValueError as exc:
        return fail("batch", str(exc))
    paths = [str(p) for p in expand_paths(args.sources)]
    if not paths:
        return fail("batch", "no files found")
    try:
        results = fit_lines_batch(paths, config, scheduler=args.scheduler, ctx=ConsoleContext(quiet=args.json),
                                  n_workers=args.workers)
    except OSError as exc:
        return fail("batch", f"cannot reach the Dask scheduler {args.scheduler!r}: {exc}")
    if args.output:
        try:
            write_table(results_table(results), args.output, overwrite=args.overwrite)
        except (FileExistsError, ValueError) as exc:
            return fail("batch", str(exc))
    if args.json:
        print_json(results)
    else:
        bad = [r for r in results if r.get("error")]
        print(f"fitted {len(results) - len(bad)}/{len(results)} spectra"
              + (f" on {args.scheduler}" if args.scheduler else " with local processes"))
        for r in bad:
            print(f"  {r['source']}: {r['error']}", file=sys.stderr)
    return EXIT_OK if any(not r.get("error") for r in results) else EXIT_FAILED


def add_parsers(sub) -> None:
    b = sub.add_parser("batch", help="batch work over many files, locally or on a Dask cluster")
    bsub = b.add_subparsers(dest="batch_command", metavar="TASK", required=True)
    f = bsub.add_parser("fit-lines", help="fit emission lines of many spectrum files")
    f.add_argument("sources", nargs="+", help="spectrum files or folders")
    f.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), scheduler file, or 'local'; "
                                       "default: processes on this machine")
    f.add_argument("--workers", type=int, default=None, help="local processes / LocalCluster workers")
    add_fit_options(f)
    f.add_argument("-o", "--output", help="result table (.fits, .csv, .ecsv, .xml)")
    f.add_argument("--overwrite", action="store_true")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_batch_fit_lines)
