"""Model cards are checked against their weights before a model is used.

Model files come from colleagues and the internet: untrusted. Loading never runs code from them
(:mod:`galdesk.ml.weights`), and this module makes sure that what loads is also *usable*: a card whose class list
does not match the network, preprocessing constants that are missing, zero or not finite, sizes that are not
positive, or weights with NaN/infinite values would otherwise surface later as an IndexError in an export, or as
all-NaN probabilities stored in a project. Each problem becomes one :class:`ModelCardError` (a ValueError) naming
the file and what is wrong.
"""

from __future__ import annotations

import math

__all__ = ["ModelCardError", "check_architecture", "check_card", "check_weights", "MAX_SIZE"]

#: Largest image/input side and spectrum length a card may claim (anything bigger is a broken or hostile card).
MAX_SIZE = 8192


class ModelCardError(ValueError):
    """A model file whose card or weights cannot be used (the message names the file and the problem)."""


def _fail(path, message: str) -> None:
    raise ModelCardError(f"{path}: {message}")


def _positive_int(path, where: str, value, upper: int = MAX_SIZE) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() \
            or not 1 <= int(value) <= upper:
        _fail(path, f"{where} must be a whole number from 1 to {upper}, not {value!r}")
    return int(value)


def check_architecture(path, arch) -> dict:
    """The card's ``architecture`` if its fields are of the right kind (before any network is built from it)."""
    from galdesk.ml.models import ARCHITECTURES

    if not isinstance(arch, dict):
        _fail(path, f"the card's 'architecture' must be a mapping, not {type(arch).__name__}")
    kind = arch.get("kind")
    if kind not in ARCHITECTURES:
        _fail(path, f"unknown architecture {kind!r} in the card (known: {', '.join(sorted(ARCHITECTURES))})")
    for key in ("n_classes", "in_channels", "width", "depth", "input_size", "n_pix", "kernel"):
        if key in arch:
            upper = {"depth": 16, "in_channels": 64, "width": 1024, "n_classes": 10_000, "kernel": 255}.get(key,
                                                                                                        MAX_SIZE)
            _positive_int(path, f"architecture {key}", arch[key], upper)
    if "dropout" in arch and not (isinstance(arch["dropout"], (int, float)) and 0 <= float(arch["dropout"]) < 1):
        _fail(path, f"architecture dropout must be in [0, 1), not {arch['dropout']!r}")
    return arch


def check_card(path, card: dict, n_outputs: int | None = None) -> dict:
    """``card`` if it describes a usable model; ModelCardError otherwise.

    Parameters
    ----------
    path : the model file (for messages)
    card : dict
    n_outputs : int, optional
        Number of logits of the network built from the card (its last layer): the class list must match it.
    """
    names = card.get("class_names")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(c, str) and c.strip() for c in names):
        _fail(path, f"the card's 'class_names' must be a list of at least two names, not {names!r}")
    if len(set(names)) != len(names):
        _fail(path, f"the card's class names repeat: {names}")
    if n_outputs is not None and n_outputs != len(names):
        _fail(path, f"the card names {len(names)} classes but the network has {n_outputs} outputs")
    thr = card.get("decision_threshold")
    if thr is not None and not (isinstance(thr, (int, float)) and 0 < float(thr) < 1):
        _fail(path, f"decision_threshold must lie between 0 and 1, not {thr!r}")
    prep = card.get("preprocessing")
    if card.get("task", "image") == "image" and prep is not None:
        _check_image_preprocessing(path, prep)
    return card


def _check_image_preprocessing(path, prep) -> None:
    if not isinstance(prep, dict):
        _fail(path, f"the card's 'preprocessing' must be a mapping, not {type(prep).__name__}")
    for key in ("stack_size", "input_size"):
        if key in prep:
            _positive_int(path, f"preprocessing {key}", prep[key])
    crop = prep.get("crop_fraction", 1.0)
    if not (isinstance(crop, (int, float)) and 0 < float(crop) <= 1):
        _fail(path, f"preprocessing crop_fraction must lie in (0, 1], not {crop!r}")
    if prep.get("scaling") == "standardize":
        mean, std = prep.get("mean"), prep.get("std")
        if not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std) or not mean:
            _fail(path, "preprocessing 'standardize' needs per-channel 'mean' and 'std' lists of one length")
        bad = [v for v in mean + std if not isinstance(v, (int, float)) or not math.isfinite(float(v))]
        if bad:
            _fail(path, f"preprocessing mean/std are not finite numbers: {bad[:3]}")
        if any(float(v) <= 0 for v in std):
            _fail(path, f"preprocessing std must be positive, not {std}")
    elif prep.get("scaling") not in (None, "asinh", "standardize"):
        _fail(path, f"unknown preprocessing scaling {prep.get('scaling')!r} (known: standardize, asinh)")


def check_weights(path, state: dict) -> None:
    """ModelCardError if a weight tensor holds NaN or infinite values (the model would predict NaN)."""
    import torch

    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            _fail(path, f"weight {name!r} holds NaN or infinite values")
