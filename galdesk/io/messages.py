"""One-line messages for read failures (shared by the FITS scanner, the probe, :func:`~galdesk.io.reading.read` and
the readers)."""

from __future__ import annotations

import re

__all__ = ["one_line"]

_ADDRESS_RE = re.compile(r"\s*<[^<>]* object at 0x[0-9a-fA-F]+>")


def one_line(exc: BaseException, n: int = 160) -> str:
    """One line, at most ``n`` characters, naming the exception type when the message is empty."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ADDRESS_RE.sub("", text)  # "<_io.BytesIO object at 0x7f...>" means nothing to a user
    if len(text) > n:
        text = text[: n - 1] + "…"
    return text
