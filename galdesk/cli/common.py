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
           "DEVICES"]

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
