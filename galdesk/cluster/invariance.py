"""A label-free linear model on the shape descriptors: the directions that tell galaxies apart and that what
morphology is *not* (orientation, a small shift or change of scale, the seeing, the noise) leaves alone.

The shape descriptors (:mod:`galdesk.cluster.descriptors`) are invariant to rotations by construction, but many of
their 74 numbers also follow things that are not morphology: how well the pixel grid samples a small galaxy, the
seeing, the depth. Standardised and weighed equally before Ward (standardisation + PCA), those directions dilute the
ones that carry morphology. This module learns, without labels, which directions to keep:

1. every galaxy of a training set is copied ``n_views`` times with random augmentations (:func:`augment_batch`:
   any rotation and a flip, zoom 0.85-1.15, a shift of about a pixel, a Gaussian blur up to 1 pixel, added noise up
   to 1.5 times the image's own sky noise) and its descriptors measured on each copy;
2. the *within* covariance S_w (how a galaxy's descriptors scatter over its copies) and the *between* covariance
   S_b (how the galaxies' mean descriptors scatter) are estimated in standardised units, S_w regularised towards
   its mean eigenvalue (``reg``, ridge);
3. the projection keeps the ``n_components`` generalised eigenvectors of ``S_b v = lambda S_w v`` with the largest
   ratio (Fisher's discriminant with each galaxy as its own class; the augmentation counterpart of the
   "invariance" term of contrastive learning, linear and solved in closed form). Distances in the projected space
   are in units of each direction's augmentation noise.

No labels are read at any step. :data:`BUNDLED` is fitted this way on the Galaxy Zoo 1 cut-outs of ``gz1-binary``'s
training and validation split (``scripts/fit_shape_invariance.py``; its card says what it saw); ``learn_invariance``
fits one on a project's own cut-outs in seconds. Measured effect: ``docs/clustering.md``.

Files: ``NAME.safetensors`` (arrays ``mean``, ``scale``, ``vectors``, ``eigenvalues``; numpy, no code) and a card
``NAME.json`` beside it (descriptor version and column names, augmentations, training set, ``sha256`` of the file
and ``fingerprint`` of the arrays, the one to compare when a fit is reproduced).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galdesk.cluster.descriptors import DESCRIPTOR_VERSION, describe_batch, descriptor_names
from galdesk.tasks import NullContext, TaskContext

__all__ = ["InvariantProjection", "augment_batch", "fit_invariance", "learn_invariance", "save_invariance",
           "load_invariance", "bundled_invariance", "bundled_path", "BUNDLED", "AUGMENTATIONS", "MIN_GALAXIES"]

BUNDLED = "gz1-shape-invariance"
#: fewer galaxies than this are too few to learn an invariance from (the between-galaxy covariance of 74 numbers)
MIN_GALAXIES = 200
#: what the copies vary (written into every card)
AUGMENTATIONS = {"rotation_deg": [0, 360], "flip": 0.5, "zoom": [0.85, 1.15], "shift_px_sigma": 1.0,
                 "blur_px_sigma": [0.0, 1.0], "noise_x_sky_sigma": [0.0, 1.5]}


@dataclass
class InvariantProjection:
    """Standardisation then projection on the kept directions: ``transform(x) = ((x - mean) / scale) @ vectors``.

    Used in place of :class:`galdesk.cluster.features.PCA` before Ward (same ``transform``, ``n_components`` and
    ``explained_variance_ratio``, here each direction's share of the summed eigenvalues kept).
    """

    mean: np.ndarray
    scale: np.ndarray
    vectors: np.ndarray          # (D, k)
    eigenvalues: np.ndarray      # (k,) between / within variance of each direction
    card: dict = field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return self.eigenvalues / max(float(self.card.get("eigenvalue_sum") or self.eigenvalues.sum()), 1e-30)

    @property
    def names(self) -> list[str]:
        return list(self.card.get("names") or [])

    @property
    def id(self) -> str:
        return str(self.card.get("id") or "shape-invariance")

    @property
    def fingerprint(self) -> str:
        """A short hash of the arrays (the same model gives the same fingerprint wherever it was loaded from)."""
        h = hashlib.sha256()
        for a in (self.mean, self.scale, self.vectors):
            h.update(np.ascontiguousarray(a, np.float64).tobytes())
        return h.hexdigest()[:16]

    def transform(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return (((x - self.mean) / self.scale) @ self.vectors).astype(np.float32)

    def fits(self, n_bands: int) -> bool:
        """True if this projection takes the descriptors of ``n_bands``-band cut-outs of this galdesk version."""
        return (self.card.get("descriptor_version") == DESCRIPTOR_VERSION
                and self.names == descriptor_names(int(n_bands)))


def augment_batch(stack, rng: np.random.Generator) -> np.ndarray:
    """A randomly augmented copy of each cut-out of ``stack (N, C, S, S)`` (:data:`AUGMENTATIONS`): one affine
    resampling (rotation, flip, zoom, shift; bilinear, edges extended), then blur and noise scaled to each band's
    sky noise (median absolute deviation of the outer border)."""
    from scipy import ndimage  # noqa: PLC0415

    x = np.nan_to_num(np.asarray(stack, np.float32), nan=0.0)
    n, c, s, _ = x.shape
    out = np.empty_like(x)
    centre = np.array([(s - 1) / 2.0] * 2)
    a = AUGMENTATIONS
    for i in range(n):
        th = np.deg2rad(rng.uniform(*a["rotation_deg"]))
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        if rng.random() < a["flip"]:
            rot = rot @ np.diag([1.0, -1.0])
        m2 = rot / rng.uniform(*a["zoom"])
        off2 = centre - m2 @ centre + rng.normal(0.0, a["shift_px_sigma"], 2)
        matrix = np.eye(3)
        matrix[1:, 1:] = m2
        img = ndimage.affine_transform(x[i], matrix, offset=np.r_[0.0, off2], order=1, mode="nearest")
        blur = rng.uniform(*a["blur_px_sigma"])
        if blur > 0.2:
            img = ndimage.gaussian_filter(img, (0.0, blur, blur))
        out[i] = img
    border = np.concatenate([x[:, :, :2].reshape(n, c, -1), x[:, :, -2:].reshape(n, c, -1)], axis=2)
    sigma = 1.4826 * np.median(np.abs(border - np.median(border, axis=2, keepdims=True)), axis=2)     # (N, C)
    sigma = np.maximum(sigma, 1e-3 * np.abs(x).reshape(n, c, -1).max(axis=2))
    amp = rng.uniform(*a["noise_x_sky_sigma"], size=(n, 1)) * sigma
    out += (rng.standard_normal(out.shape) * amp[:, :, None, None]).astype(np.float32)
    return out


def fit_invariance(base, views, n_components: int = 16, reg: float = 0.1) -> InvariantProjection:
    """Fit the projection to descriptors ``base (N, D)`` of the galaxies and ``views (N, V, D)`` of their
    augmented copies (V >= 2; rows with any non-finite value are left out). ``reg``: ridge on S_w, as a fraction of
    its mean eigenvalue. Raises ValueError with fewer than 3 usable galaxies."""
    from scipy.linalg import eigh  # noqa: PLC0415

    base = np.asarray(base, np.float64)
    views = np.asarray(views, np.float64)
    if views.ndim != 3 or views.shape[1] < 2 or views.shape[0] != base.shape[0]:
        raise ValueError(f"need views (N, V >= 2, D) for the N = {base.shape[0]} galaxies, got {views.shape}")
    ok = np.isfinite(base).all(axis=1) & np.isfinite(views).all(axis=(1, 2))
    base, views = base[ok], views[ok]
    n, d = base.shape
    if n < 3:
        raise ValueError(f"need at least 3 galaxies with measurable descriptors to learn the invariance, got {n}")
    mean = base.mean(axis=0)
    scale = base.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (views - mean) / scale
    w = z - z.mean(axis=1, keepdims=True)
    s_w = np.einsum("nvi,nvj->ij", w, w) / (n * (views.shape[1] - 1))
    s_b = np.cov(z.mean(axis=1).T).reshape(d, d)
    s_w += reg * max(float(np.trace(s_w)) / d, 1e-12) * np.eye(d)
    lam, vec = eigh(s_b, s_w)
    order = np.argsort(lam)[::-1]
    k = max(1, min(int(n_components), d))
    lam, vec = np.clip(lam[order], 0.0, None), vec[:, order]
    vec = vec[:, :k]
    signs = np.sign(vec[np.abs(vec).argmax(axis=0), np.arange(k)])    # the same data always give the same axes
    vec = vec * np.where(signs == 0, 1.0, signs)[None, :]
    card = {"n_galaxies": int(n), "n_views": int(views.shape[1]), "reg": float(reg), "n_components": k,
            "eigenvalue_sum": float(lam.sum())}
    return InvariantProjection(mean, scale, vec, lam[:k], card)


def learn_invariance(stack, n_views: int = 8, sample: int = 2000, n_components: int = 16, reg: float = 0.1,
                     seed: int = 0, batch: int = 256, ctx: TaskContext | None = None) -> InvariantProjection:
    """Learn a projection from the cut-outs of ``stack (N, C, S, S)`` (any array or a project's lazy stack): at most
    ``sample`` of them drawn at random (``seed``), each with ``n_views`` augmented copies (:func:`augment_batch`),
    then :func:`fit_invariance`. About 1 ms per copy of a 64-px cut-out; progress and cancel through ``ctx``."""
    ctx = ctx or NullContext()
    shape = np.shape(stack)
    n, c = int(shape[0]), int(shape[1])
    rng = np.random.default_rng(seed)
    pick = np.arange(n) if n <= sample else np.sort(rng.choice(n, int(sample), replace=False))
    d = len(descriptor_names(c))
    base = np.empty((pick.size, d))
    views = np.empty((pick.size, int(n_views), d))
    for i in range(0, pick.size, batch):
        ctx.check_cancelled()
        part = np.asarray(stack[pick[i:i + batch]], np.float32)
        with np.errstate(all="ignore"):
            base[i:i + batch] = describe_batch(part)
            for v in range(int(n_views)):
                views[i:i + batch, v] = describe_batch(augment_batch(part, rng))
        ctx.progress(min(1.0, (i + batch) / max(pick.size, 1)), "Learning what morphology is not")
    proj = fit_invariance(base, views, n_components=n_components, reg=reg)
    proj.card.update({"id": "shape-invariance", "descriptor_version": DESCRIPTOR_VERSION,
                      "names": descriptor_names(c), "augmentations": AUGMENTATIONS, "seed": int(seed),
                      "labels_read": False})
    return proj


def save_invariance(path, proj: InvariantProjection, extra: dict | None = None) -> dict:
    """Write ``path`` (.safetensors) and its card (.json, with ``extra`` merged in and the file's sha256)."""
    from safetensors.numpy import save_file  # noqa: PLC0415

    from galdesk.fsutil import atomic_write  # noqa: PLC0415

    path = Path(path).with_suffix(".safetensors")
    arrays = {"mean": proj.mean, "scale": proj.scale, "vectors": proj.vectors, "eigenvalues": proj.eigenvalues}
    # one metadata key: safetensors writes several in no fixed order, and the file's sha256 should reproduce
    meta = {"galdesk": f"shape-invariance; descriptors {proj.card.get('descriptor_version', DESCRIPTOR_VERSION)}"}
    atomic_write(path, lambda tmp: save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, tmp,
                                             metadata=meta))
    import galdesk  # noqa: PLC0415

    card = {**proj.card, **(extra or {}), "kind": "shape-invariance", "format": "safetensors",
            "weights_file": path.name, "fingerprint": proj.fingerprint, "galdesk_version": galdesk.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    card["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    text = json.dumps(card, indent=1) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    proj.card = card
    return card


def load_invariance(path) -> InvariantProjection:
    """Read a projection written by :func:`save_invariance` (numpy arrays only; the card must sit beside it and
    match the file's sha256). Raises ValueError naming the file on any problem."""
    from safetensors.numpy import load_file  # noqa: PLC0415

    path = Path(path)
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if card.get("sha256") and card["sha256"] != digest:
            raise ValueError(f"its sha256 {digest[:12]}... differs from the card's {card['sha256'][:12]}...")
        arrays = load_file(str(path))
        proj = InvariantProjection(np.asarray(arrays["mean"], np.float64), np.asarray(arrays["scale"], np.float64),
                                   np.asarray(arrays["vectors"], np.float64),
                                   np.asarray(arrays["eigenvalues"], np.float64), card)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable shape-invariance model ({exc})") from exc
    d = proj.mean.shape[0]
    if proj.scale.shape != (d,) or proj.vectors.ndim != 2 or proj.vectors.shape[0] != d \
            or proj.eigenvalues.shape != (proj.vectors.shape[1],) or len(proj.names) != d:
        raise ValueError(f"{path}: inconsistent shapes (mean {proj.mean.shape}, vectors {proj.vectors.shape}, "
                         f"{len(proj.names)} names)")
    return proj


def bundled_path() -> Path:
    """Where the bundled projection :data:`BUNDLED` lives: ``resources/label_free/`` next to the package."""
    import galdesk  # noqa: PLC0415

    return Path(galdesk.__file__).resolve().parent.parent / "resources" / "label_free" / f"{BUNDLED}.safetensors"


def bundled_invariance() -> InvariantProjection | None:
    """The bundled projection (:func:`bundled_path`), or None where it is missing."""
    path = bundled_path()
    return load_invariance(path) if path.is_file() else None
