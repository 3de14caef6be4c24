"""JSON for galdesk's records and command-line output: numpy scalars and arrays, paths and sets included."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["json_default", "print_json"]


def json_default(obj):
    """``default=`` for :func:`json.dumps`: numpy scalars -> Python numbers, arrays/sets/tuples -> lists, anything
    else -> its ``str`` (a record is never lost because one value had an unusual type)."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def print_json(obj) -> None:
    """Pretty JSON on stdout (the ``--json`` output of the CLI; NaN allowed, as astropy writes it)."""
    print(json.dumps(obj, indent=2, default=json_default, allow_nan=True))
