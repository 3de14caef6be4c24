"""Which torch device to run on: explicit argument > $GALDESK_DEVICE > user setting > auto (cuda -> mps -> cpu).

torch is imported lazily inside the functions, so importing this module at start-up costs nothing.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["choose_device", "describe_device", "device_available", "ENV_VAR"]

ENV_VAR = "GALDESK_DEVICE"
_AUTO = {"", "auto", "none", "default"}
_log = logging.getLogger(__name__)


def _torch():
    import torch  # noqa: PLC0415 - lazy on purpose

    return torch


def device_available(kind: str) -> bool:
    """True if the device kind ("cuda", "mps", "cpu") can be used in this process."""
    kind = kind.split(":")[0].lower()
    if kind == "cpu":
        return True
    if kind not in ("cuda", "mps"):
        return False
    try:
        torch = _torch()
    except Exception:  # pragma: no cover - torch is a hard dependency
        return False
    if kind == "cuda":
        return bool(torch.cuda.is_available())
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _auto() -> str:
    for kind in ("cuda", "mps"):
        if device_available(kind):
            return kind
    return "cpu"


def choose_device(requested: str | None = None, setting: str | None = None) -> str:
    """Return "cuda", "mps" or "cpu".

    Parameters
    ----------
    requested : str, optional
        Explicit choice (function argument, CLI ``--device``). "auto" or None means no choice.
    setting : str, optional
        The user's setting from the preferences ("auto", "cpu", "cuda", "mps").

    Order: ``requested`` > ``$GALDESK_DEVICE`` > ``setting`` > auto (cuda, then mps, then cpu). A choice that names a
    device this machine does not have falls back to the automatic choice with a warning instead of failing:
    a settings file copied from a GPU workstation must not stop a laptop from classifying.
    An index (``"cuda:1"``) is kept when that device exists.
    """
    for source, value in (("argument", requested), (ENV_VAR, os.environ.get(ENV_VAR)), ("setting", setting)):
        if value is None or str(value).strip().lower() in _AUTO:
            continue
        value = str(value).strip().lower()
        kind = value.split(":")[0]
        if kind not in ("cuda", "mps", "cpu"):
            _log.warning("unknown device %r from %s; choosing automatically", value, source)
            break
        if device_available(kind):
            if kind == "cuda" and ":" in value:
                try:
                    idx = int(value.split(":", 1)[1])
                    if idx < _torch().cuda.device_count():
                        return value
                except ValueError:
                    pass
                _log.warning("no device %r; using cuda:0", value)
            return kind
        _log.warning("device %r (from %s) is not available here; choosing automatically", value, source)
        break
    return _auto()


def describe_device(device: str | None = None) -> str:
    """One line for the status bar, e.g. ``"CUDA: NVIDIA A100 (40 GB)"`` or ``"CPU (8 threads)"``.

    Imports torch (about 2 s the first time): call it after the window is shown.
    """
    torch = _torch()
    device = device or choose_device()
    kind = device.split(":")[0]
    if kind == "cuda" and torch.cuda.is_available():
        idx = int(device.split(":")[1]) if ":" in device else 0
        props = torch.cuda.get_device_properties(idx)
        return f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GB)"
    if kind == "mps":
        return "Apple MPS (Metal)"
    return f"CPU ({torch.get_num_threads()} threads, torch {torch.__version__.split('+')[0]})"


if __name__ == "__main__":  # pragma: no cover
    print(choose_device(sys.argv[1] if len(sys.argv) > 1 else None), "-", describe_device())
