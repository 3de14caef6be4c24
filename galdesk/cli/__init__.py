"""The ``galdesk`` command: without a sub-command it opens the window; sub-commands run the headless pipeline.

One module per command group, each with ``add_parsers(subparsers)`` and its ``cmd_*`` handlers:
:mod:`~galdesk.cli.app` (``gui``), :mod:`~galdesk.cli.project` (``ingest``, ``info``, ``demo``),
:mod:`~galdesk.cli.classify` (``train``, ``classify``), :mod:`~galdesk.cli.cluster` (``cluster``,
``features``), :mod:`~galdesk.cli.morphology` (``morphology``),
:mod:`~galdesk.cli.lines` (``fit-lines``), :mod:`~galdesk.cli.vetting` (``vet``, ``vet-log``),
:mod:`~galdesk.cli.export` (``export``), :mod:`~galdesk.cli.batch` (``batch``). Errors, exit codes and JSON
follow :mod:`galdesk.cli.common`. Handlers import the engines when they run, so ``galdesk --help`` and the window
start fast; only the ``gui`` branch imports Qt.
"""

from __future__ import annotations

import argparse
import sys

from galdesk import __version__
from galdesk.cli import app, batch, classify, cluster, export, lines, morphology, project, vetting
from galdesk.cli.common import cancelled, fail, user_error
from galdesk.tasks import Cancelled

__all__ = ["main", "gui_main", "build_parser"]

_GROUPS = (app, project, classify, cluster, morphology, lines, export, vetting, batch)


def build_parser() -> argparse.ArgumentParser:
    """The ``galdesk`` argument parser with every command group's sub-commands."""
    p = argparse.ArgumentParser(prog="galdesk", description="galdesk: galaxy cut-outs, spectra, classification, "
                                "clustering, line fitting and vetting. Without a sub-command, opens the window.")
    p.add_argument("--version", action="version", version=f"galdesk {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``galdesk ARGV``; returns the exit code (:mod:`galdesk.cli.common`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if not getattr(args, "command", None):
        return app.cmd_gui(argparse.Namespace(paths=[]))
    try:
        return int(args.func(args) or 0)
    except (Cancelled, KeyboardInterrupt):
        return cancelled(args.command)
    except Exception as exc:  # one line for what a user can cause; a bug keeps its traceback
        text = user_error(exc)
        if text is None:
            raise
        return fail(args.command, text)


def gui_main() -> int:
    """Entry point of the ``galdesk-gui`` gui-script (double-click launch)."""
    return main(["gui", *sys.argv[1:]])
