"""Model files: safetensors weights + a model card JSON beside them; bundled models in ``resources/models/``.

A model is two files, ``NAME.safetensors`` and ``NAME.json`` (the card). The card holds everything needed to use
the weights: ``architecture`` (the arguments that rebuild the network, see :func:`galdesk.ml.models.build_model`),
``class_names``, ``preprocessing``, optionally ``decision_threshold``, plus provenance (data, split, metrics) and the
``sha256`` of the weights file. The architecture, classes and preprocessing are also written into the safetensors
metadata so that a lone ``.safetensors`` file still loads.

Importing this module does not import torch (:func:`list_bundled` is cheap enough for start-up); loading and
saving do. Loading never runs code from the file: safetensors holds tensors only, and ``.pt``/``.pth`` files are
read with ``torch.load(..., weights_only=True)`` (a pickled module is refused). Weights are loaded on the CPU and
then moved to the requested device (``map_location`` pattern), so a model saved on a GPU loads on a laptop.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galdesk.ml.cards import ModelCardError, check_architecture, check_card, check_weights

if TYPE_CHECKING:  # torch is imported inside the functions that need it: list_bundled() stays cheap
    from torch import nn

__all__ = ["LoadedModel", "save_model", "load_model", "list_bundled", "bundled_dir", "file_sha256", "CARD_SCHEMA",
           "ModelCardError"]

CARD_SCHEMA = 1
_log = logging.getLogger(__name__)
_META_KEYS = ("id", "task", "class_names", "architecture", "preprocessing", "decision_threshold", "positive_class")


def bundled_dir() -> Path:
    """``resources/models/`` next to the ``galdesk`` package."""
    import galdesk  # noqa: PLC0415

    return Path(galdesk.__file__).resolve().parent.parent / "resources" / "models"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A model ready for inference (eval mode) with its card.

    Attributes
    ----------
    model : torch.nn.Module
    card : dict
    id : str
        The card's ``id`` (bundled name or file stem).
    hash : str
        sha256 of the weights file as read (record it with every prediction).
    path : str
    device : str
        Where the weights were put by :func:`load_model`.
    """

    model: "nn.Module"
    card: dict
    id: str
    hash: str
    path: str = ""
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.card["class_names"])

    @property
    def preprocessing(self) -> dict:
        return dict(self.card.get("preprocessing") or {})

    @property
    def task(self) -> str:
        return self.card.get("task", "image")

    @property
    def decision_threshold(self) -> float | None:
        t = self.card.get("decision_threshold")
        return None if t is None else float(t)


def _jsonable(obj: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain JSON types."""
    import numpy as np  # noqa: PLC0415

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_model(path: str | Path, model: "nn.Module", card: dict) -> dict:
    """Write ``path`` (.safetensors) and the card beside it (same stem, .json). Returns the card as written.

    The card gets ``architecture`` (from ``model.config``), ``schema_version``, ``created``, ``id`` (default: the
    file stem) and ``sha256`` (of the weights file just written) filled in.
    """
    from safetensors.torch import save_file  # noqa: PLC0415

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    card = _jsonable(dict(card))
    card.setdefault("id", path.stem)
    card["architecture"] = _jsonable(dict(getattr(model, "config", card.get("architecture") or {})))
    if not card["architecture"]:
        raise ValueError("model has no .config and the card no 'architecture': it could not be rebuilt")
    card["schema_version"] = CARD_SCHEMA
    card.setdefault("format", "galdesk model card")
    card.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    try:
        import galdesk  # noqa: PLC0415

        card.setdefault("galdesk_version", galdesk.__version__)
    except Exception:  # pragma: no cover
        pass
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"galdesk_card": json.dumps({k: card[k] for k in _META_KEYS if k in card})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    card["sha256"] = file_sha256(path)
    card["weights_file"] = path.name
    card_path = path.with_suffix(".json")
    tmpc = card_path.with_name(card_path.name + ".tmp")
    tmpc.write_text(json.dumps(card, indent=1) + "\n")
    tmpc.replace(card_path)
    return card


def list_bundled() -> list[dict]:
    """The bundled models: ``[{"name", "path", "task", "class_names", "description", "metrics"}, ...]``."""
    out = []
    d = bundled_dir()
    if not d.is_dir():
        return out
    for w in sorted(d.glob("*.safetensors")):
        cp = w.with_suffix(".json")
        try:
            card = json.loads(cp.read_text()) if cp.exists() else {}
        except (OSError, ValueError):
            card = {}
        out.append({"name": w.stem, "path": str(w), "task": card.get("task", "image"),
                    "class_names": card.get("class_names"), "description": card.get("description", ""),
                    "metrics": (card.get("metrics") or {}).get("test")})
    return out


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    s = str(name_or_path)
    if "/" not in s and "\\" not in s:
        for cand in (bundled_dir() / f"{s}.safetensors", bundled_dir() / s):
            if cand.exists():
                return cand
        known = ", ".join(m["name"] for m in list_bundled()) or "none"
        raise FileNotFoundError(f"no model file {s!r} and no bundled model of that name (bundled: {known})")
    raise FileNotFoundError(f"model file not found: {s}")


def _read_card(weights: Path, embedded: dict | None) -> dict:
    cp = weights.with_suffix(".json")
    if cp.exists():
        try:
            card = json.loads(cp.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ModelCardError(f"{cp}: unreadable model card ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(card, dict):
            raise ModelCardError(f"{cp}: a model card must be a JSON object, not {type(card).__name__}")
        return card
    if embedded:
        return dict(embedded)
    raise ValueError(f"{weights}: no model card ({cp.name}) beside the weights and none inside the file; "
                     "the architecture, classes and preprocessing cannot be known")


def _build_checked(path: Path, card: dict, state: dict):
    """The network of ``card`` with ``state`` loaded, after :mod:`galdesk.ml.cards` checked both."""
    from galdesk.ml.models import build_model  # noqa: PLC0415

    arch = check_architecture(path, card["architecture"])
    try:
        model = build_model(arch)
    except (TypeError, ValueError) as exc:
        raise ModelCardError(f"{path}: the card's architecture cannot be built: {exc}") from None
    check_card(path, card, n_outputs=int(model.config.get("n_classes", 0)) or None)
    check_weights(path, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelCardError(f"{path}: weights do not fit the architecture in the card: {exc}") from None
    return model


def load_model(name_or_path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a bundled model by name (e.g. ``"gz1-binary"``) or a user's model file.

    Parameters
    ----------
    name_or_path : str or Path
        A bundled name, a ``.safetensors`` file (card JSON beside it, or in its metadata), or a ``.pt``/``.pth``
        holding either ``{"state_dict": ..., "card": {...}}`` or a bare state dict with a card JSON beside it.
    device : str
        Where to put the weights (they are read on the CPU first).

    Returns
    -------
    LoadedModel
        The model in eval mode; ``hash`` is the sha256 of the file read.

    Raises
    ------
    FileNotFoundError, ValueError
        Unknown name/file; a ``.pt`` file that needs arbitrary code to unpickle (refused, not run); a card that
        does not describe the architecture; weights that do not fit the architecture.
    """
    import torch  # noqa: PLC0415

    path = _resolve(name_or_path)
    digest = file_sha256(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open  # noqa: PLC0415
        from safetensors.torch import load_file  # noqa: PLC0415

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            embedded = json.loads(meta["galdesk_card"]) if "galdesk_card" in meta else None
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - empty, truncated, huge-header or garbage files all end here
            raise ModelCardError(f"{path}: not a readable safetensors file ({type(exc).__name__}: "
                                 f"{str(exc)[:160]})") from None
        card = _read_card(path, embedded if isinstance(embedded, dict) else None)
    elif path.suffix in (".pt", ".pth", ".ckpt"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError and friends: the file wants to run code
            raise ValueError(f"{path}: refused: not loadable with torch.load(weights_only=True) "
                             f"(it holds pickled code or objects, not just tensors): {exc}") from None
        if isinstance(obj, dict) and "state_dict" in obj:
            state = obj["state_dict"]
            card = dict(obj.get("card") or {}) or _read_card(path, None)
        elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            state = obj
            card = _read_card(path, None)
        else:
            raise ValueError(f"{path}: expected a state dict or {{'state_dict', 'card'}}, got {type(obj).__name__}")
    else:
        raise ValueError(f"{path}: unknown model file type {path.suffix!r} (use .safetensors, .pt or .pth)")

    if "architecture" not in card or "class_names" not in card:
        raise ModelCardError(f"{path}: the model card lacks 'architecture' or 'class_names'")
    expected = card.get("sha256")
    if expected and path.suffix == ".safetensors" and expected != digest:
        _log.warning("%s: sha256 %s differs from the card's %s (weights changed since the card was written)",
                     path, digest[:12], expected[:12])
    model = _build_checked(path, card, state)
    model.eval()
    model.to(device)
    return LoadedModel(model=model, card=card, id=str(card.get("id", path.stem)), hash=digest, path=str(path),
                       device=str(device))
