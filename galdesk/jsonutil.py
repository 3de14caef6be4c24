"""JSON for galdesk's records and command-line output: numpy scalars and arrays, paths and sets included."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["json_default", "strict"]


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


def strict(obj):
    """A copy of ``obj`` that strict JSON can hold: NaN and infinities (Python or numpy floats, also inside numpy
    arrays, lists, tuples and dicts) become None; numpy scalars and arrays become Python numbers and lists."""
    import numpy as np

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return strict(obj.item())
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj
