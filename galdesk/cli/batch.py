"""``galdesk batch TASK``: batch work over many files on local processes or a Dask cluster."""

from __future__ import annotations

from galdesk.cli.classify import add_classify_options, cmd_classify
from galdesk.cli.cluster import add_feature_options, cmd_features
from galdesk.cli.common import fail, print_json
from galdesk.cli.lines import add_fit_options, config_from_args, report_problems

__all__ = ["add_parsers", "cmd_batch_fit_lines"]


def cmd_batch_fit_lines(args) -> int:
    from galdesk.catalog.lines_table import results_table
    from galdesk.catalog.writers import check_output, write_table
    from galdesk.io.reading import expand_paths
    from galdesk.services.batch import fit_lines_batch, lines_checkpoint
    from galdesk.tasks import ConsoleContext

    try:
        config = config_from_args(args)
        if args.output:  # before any fitting
            check_output(args.output, overwrite=args.overwrite)
    except ValueError as exc:
        return fail("batch", str(exc))
    paths = [str(p) for p in expand_paths(args.sources)]
    if not paths:
        return fail("batch", "no files found")
    # with a table to write, finished chunks are kept beside it until it is written: a killed run resumes
    checkpoint = lines_checkpoint(paths, config, args.output, args.z, args.catalog) if args.output else None
    try:
        results = fit_lines_batch(paths, config, scheduler=args.scheduler, ctx=ConsoleContext(quiet=args.json),
                                  n_workers=args.workers, z=args.z, catalogs=args.catalog, checkpoint=checkpoint)
    except ValueError as exc:  # --z for several targets, an implausible --z: before any work
        return fail("batch", str(exc))
    except OSError as exc:
        if not args.scheduler:
            raise
        return fail("batch", f"cannot reach the Dask scheduler {args.scheduler!r}: {exc}")
    if args.output:
        write_table(results_table(results), args.output, overwrite=args.overwrite)
        checkpoint.clear()
    if args.json:
        print_json(results)
    else:
        from galdesk.lines.batch import batch_summary

        print(batch_summary(results) + (f" on {args.scheduler}" if args.scheduler else " with local processes"))
    return report_problems("batch", results)


def cmd_batch_ingest(args) -> int:
    """``galdesk batch ingest``: ``galdesk ingest`` with the files decoded on a Dask cluster."""
    from galdesk.cli.project import cmd_ingest

    return cmd_ingest(args)


def _add_cluster_options(p) -> None:
    """Where a project's cut-outs are run through a network: the scheduler, LocalCluster workers, chunk size."""
    p.add_argument("--scheduler", default="local", help="Dask scheduler address (tcp://host:8786), scheduler file, "
                                                         "or 'local' (default: a LocalCluster here)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    p.add_argument("--chunk", type=int, default=2048, help="cut-outs per task (default 2048)")


def add_parsers(sub) -> None:
    b = sub.add_parser("batch", help="batch work over many files, locally or on a Dask cluster")
    bsub = b.add_subparsers(dest="batch_command", metavar="TASK", required=True)
    c = bsub.add_parser("classify", help="classify a project's cut-outs on a Dask cluster (the workers read the "
                                         "project's files at the same path)")
    add_classify_options(c)
    _add_cluster_options(c)
    c.set_defaults(func=cmd_classify)
    e = bsub.add_parser("features", help="CNN features of a project's cut-outs on a Dask cluster (the workers read "
                                         "the project's files at the same path); the same as `galdesk features`")
    add_feature_options(e)
    _add_cluster_options(e)
    e.set_defaults(func=cmd_features)
    i = bsub.add_parser("ingest", help="read many files into a project, decoding them on a Dask cluster")
    i.add_argument("sources", nargs="*", help="files or folders")
    i.add_argument("-o", "--output", required=True, help="project folder (NAME or NAME.galdesk)")
    i.add_argument("--catalog", help="catalogue of files and columns to join")
    i.add_argument("--size", type=int, default=None, help="working size of a new project (px)")
    i.add_argument("--scheduler", default="local", help="Dask scheduler address (tcp://host:8786), scheduler file, "
                                                         "or 'local' (default: a LocalCluster here)")
    i.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    i.add_argument("--again", action="store_true", help="also read files the project already holds objects from")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_batch_ingest)
    f = bsub.add_parser("fit-lines", help="fit emission lines of many spectrum files",
                        description="Fit the emission lines of every target of many spectrum files, on local "
                                    "processes or a Dask cluster. With -o TABLE the run is resumable: each finished "
                                    "chunk is kept in .galdesk-batch/ beside the table until the table is written, "
                                    "so a killed run started again with the same files and options fits only what "
                                    "it had not finished. Without -o nothing is kept.")
    f.add_argument("sources", nargs="+", help="spectrum files or folders")
    f.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), scheduler file, or 'local'; "
                                       "default: processes on this machine")
    f.add_argument("--workers", type=int, default=None, help="local processes / LocalCluster workers")
    add_fit_options(f)
    f.add_argument("-o", "--output", help="result table (.fits, .csv, .ecsv, .xml); makes the run resumable "
                                          "(finished chunks kept in .galdesk-batch/ beside it); without -o a "
                                          "killed run starts again from the beginning")
    f.add_argument("--overwrite", action="store_true")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_batch_fit_lines)
