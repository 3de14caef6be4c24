"""``galdesk gui [PATHS...]``: the window (the only command that imports Qt)."""

from __future__ import annotations

__all__ = ["add_parsers", "cmd_gui"]


def cmd_gui(args) -> int:
    from galdesk.gui.app import run_gui

    return run_gui(list(getattr(args, "paths", []) or []))


def add_parsers(sub) -> None:
    g = sub.add_parser("gui", help="open the window (optionally with files, folders or a project)")
    g.add_argument("paths", nargs="*")
    g.set_defaults(func=cmd_gui)
