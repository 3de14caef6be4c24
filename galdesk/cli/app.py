"""``galdesk gui [PATHS...]``: the window (the only command that imports Qt); ``galdesk shortcut``: a desktop and
start-menu launcher for it (pyshortcuts), so that the app starts with a double-click."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from galdesk.cli.common import EXIT_OK, fail

__all__ = ["add_parsers", "cmd_gui", "cmd_shortcut"]


def cmd_gui(args) -> int:
    from galdesk.gui.app import run_gui

    return run_gui(list(getattr(args, "paths", []) or []))


def _gui_script() -> Path | None:
    """The ``galdesk-gui`` launcher of this installation (beside the Python that runs galdesk)."""
    here = Path(sys.executable).parent
    for name in ("galdesk-gui", "galdesk-gui.exe", "galdesk", "galdesk.exe"):
        if (here / name).exists():
            return here / name
    found = shutil.which("galdesk-gui") or shutil.which("galdesk")
    return Path(found) if found else None


def cmd_shortcut(args) -> int:
    """Make the desktop and start-menu shortcuts (Linux .desktop files, Windows .lnk, a macOS app)."""
    try:
        from pyshortcuts import make_shortcut
    except ImportError:
        return fail("shortcut", "pyshortcuts is not installed: pip install pyshortcuts")
    exe = _gui_script()
    if exe is None:
        return fail("shortcut", "no galdesk-gui launcher found beside this Python; install galdesk with pip first")
    icon = Path(__file__).resolve().parents[2] / "resources" / "icons" / "galdesk.svg"
    sc = make_shortcut(str(exe), name="galdesk", description="galdesk: look at, classify and vet galaxies",
                       icon=str(icon) if icon.exists() else None, terminal=False, desktop=not args.no_desktop,
                       startmenu=True, noexe=True)
    where = [str(Path(sc.desktop_dir) / sc.target)] if not args.no_desktop else []
    where.append(str(Path(sc.startmenu_dir) / sc.target))
    print("galdesk shortcut: made " + " and ".join(where) + f" (starts {exe})")
    return EXIT_OK


def add_parsers(sub) -> None:
    g = sub.add_parser("gui", help="open the window (optionally with files, folders or a project)")
    g.add_argument("paths", nargs="*")
    g.set_defaults(func=cmd_gui)
    s = sub.add_parser("shortcut", help="make desktop and start-menu shortcuts that open galdesk with a double-click")
    s.add_argument("--no-desktop", action="store_true", help="only the start menu (applications list)")
    s.set_defaults(func=cmd_shortcut)
