"""The one convention every ``galdesk`` command follows (documented in ``docs/architecture.md``).

* **Errors**: one line on stderr, ``galdesk COMMAND: message``, naming the file or project and the problem; no
  traceback for anything a user can cause (a traceback means a bug: please report it).
* **Exit codes**: :data:`EXIT_OK` (0) when the command did what was asked (for batch work: when at least one item
  succeeded; the others are listed as problems); :data:`EXIT_FAILED` (2) for bad arguments, input that cannot be
  used, or nothing done at all (argparse uses 2 for usage errors too); :data:`EXIT_CANCELLED` (130, as a shell
  reports SIGINT) after Ctrl+C or a cancel, with the line ``galdesk COMMAND: cancelled``.
* **JSON** (``--json``): one JSON document on stdout, indented by 2, strictly valid (NaN and infinities become
  ``null``; numpy values become numbers and lists); progress and messages go to stderr only.
"""

from __future__ import annotations

import json
import sys

from galdesk.jsonutil import json_default, strict

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_CANCELLED", "fail", "cancelled", "print_json", "device_option",
           "DEVICES", "message", "user_error"]

EXIT_OK = 0
EXIT_FAILED = 2
EXIT_CANCELLED = 130
#: ``--device`` choices; "auto" means galdesk's choice (CUDA, then MPS, then CPU)
DEVICES = ["auto", "cpu", "cuda", "mps"]


def fail(command: str, message: str, code: int = EXIT_FAILED) -> int:
    """Print ``galdesk COMMAND: message`` on stderr and return ``code`` (for ``return fail(...)``)."""
    print(f"galdesk {command}: {message}" if command else f"galdesk: {message}", file=sys.stderr)
    return code


def cancelled(command: str) -> int:
    """The cancel line and :data:`EXIT_CANCELLED`."""
    return fail(command, "cancelled", EXIT_CANCELLED)


def print_json(obj) -> None:
    """``obj`` as strict, indented JSON on stdout (see the module docstring)."""
    print(json.dumps(strict(obj), indent=2, default=json_default, allow_nan=False))


def device_option(value: str | None) -> str | None:
    """``--device`` value -> the ``device=`` argument of the engines (None for "auto")."""
    return None if value in (None, "", "auto") else value


def message(exc: BaseException) -> str:
    """The text of an exception for one error line (a KeyError's message without the quotes ``str()`` adds; an
    OSError as ``file: reason``)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def user_error(exc: BaseException) -> str | None:
    """The one-line message of a failure a user can cause (a project that cannot be opened or is busy, a file that
    cannot be read, a model that does not fit its card, a missing or unwritable file, a full or read-only disk), or
    None for anything else: that is a bug, and its traceback is the report."""
    import errno

    from galdesk.io.model import ReadError
    from galdesk.ml.cards import ModelCardError
    from galdesk.project import ProjectError
    from galdesk.project.lock import ProjectBusy

    if isinstance(exc, (ProjectError, ProjectBusy, ReadError, ModelCardError)):
        return message(exc)
    if isinstance(exc, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return message(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EIO):
        known = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted"}
        reason = known.get(exc.errno) or " ".join(str(exc.strerror or "cannot be written").split())
        where = f"{exc.filename}: " if exc.filename and "\n" not in str(exc.filename) else ""
        return f"{where}{reason}; what was saved before is intact"
    return None
