"""Learned features of a project's cut-outs, for clustering.

The first, honest path: the penultimate layer of the image CNN (:class:`galdesk.ml.models.ImageCNN`: the globally
average-pooled output of the last convolutional block, just before the classifier's linear layer), optionally
averaged over the 4 rotations or all 8 rotations/flips of the square. A classifier's features are shaped by the
classes it was trained on; the unsupervised alternatives (Cheng et al. 2021: a vector-quantised autoencoder,
:mod:`galdesk.ml.vqvae`; SimCLR, :mod:`galdesk.ml.contrastive`) learn features from the pixels alone — pass
their file as ``model``.

Results stored in the project:

``"features"``
    arrays ``row`` (object-table rows), ``features`` (N, D) float32; attrs ``model_id``, ``model_hash``,
    ``layer``, ``rotations`` (views averaged: 1, 4 or 8), ``device``, ``dim``.

Before Ward clustering the features are standardised and reduced by PCA (:class:`PCA`), so that Euclidean
distances weigh every direction of variation and not the scale of individual channels.

Torch is imported inside the functions that need it; importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galdesk.project import as_project
from galdesk.project.store import stack_group
from galdesk.tasks import NullContext, TaskContext

__all__ = ["feature_targets", "features_chunk", "extract_features", "rotated_features", "view_features",
           "load_features", "image_rows_for", "PCA", "fit_pca", "VIEWS", "LAYER", "n_views", "load_feature_model",
           "stack_and_rows", "DESCRIPTORS", "DESCRIPTORS_PROJECT", "DESCRIPTORS_PCA", "is_descriptors",
           "descriptor_projection", "main_band_count"]

LAYER = "penultimate"
VIEWS = {1: [0], 4: [0, 1, 2, 3], 8: list(range(8))}   # indices for galdesk.ml.preprocess.dihedral


DESCRIPTORS = "descriptors"   # the label-free shape descriptors of galdesk.cluster.descriptors, in place of a model
#: the descriptors with the invariance learned on the project itself / with plain standardisation + PCA
DESCRIPTORS_PROJECT = "descriptors:project"
DESCRIPTORS_PCA = "descriptors:pca"
_DESCRIPTOR_MODES = {DESCRIPTORS: "auto", DESCRIPTORS_PROJECT: "project", DESCRIPTORS_PCA: "pca"}


def is_descriptors(model) -> bool:
    """True if ``model`` names the shape descriptors rather than a network: ``"descriptors"`` (projected with the
    bundled invariance of :mod:`galdesk.cluster.invariance`, or one learned on the project where the bundled one
    does not take its band count), ``"descriptors:project"`` (learned on the project) or ``"descriptors:pca"``
    (standardisation + PCA, as other features)."""
    return isinstance(model, str) and model.strip().lower() in _DESCRIPTOR_MODES


def descriptor_projection(model) -> str:
    """``"auto"``, ``"project"`` or ``"pca"``: how :func:`is_descriptors` ``model`` projects before Ward."""
    return _DESCRIPTOR_MODES[model.strip().lower()]


def main_band_count(project) -> int:
    """The band count of most of a project's image cut-outs (3 for colour JPEGs); ValueError without any."""
    from galdesk.project.objects import main_image_group  # noqa: PLC0415

    group = main_image_group(project.objects)
    if group is None or not group[1:].isdigit():
        raise ValueError(f"{project.path}: no image cut-outs")
    return int(group[1:])


def n_views(rotations) -> int:
    """Number of views for ``rotations`` (False/None/0/1 -> 1, True -> 8, 4, 8); ValueError otherwise."""
    n = 1 if rotations in (False, None, 0, 1) else (8 if rotations is True else int(rotations))
    if n not in VIEWS:
        raise ValueError(f"rotations must be False, 4 or 8, got {rotations!r}")
    return n


def load_feature_model(model):
    """A LoadedModel from a loaded model, a bundled name or a file (a VQ-VAE file of :mod:`galdesk.ml.vqvae`,
    a SimCLR file of :mod:`galdesk.ml.contrastive`, or a classifier for :func:`galdesk.ml.weights.load_model`)."""
    from galdesk.ml.weights import LoadedModel, load_model  # noqa: PLC0415

    if isinstance(model, LoadedModel):
        return model
    from galdesk.ml.contrastive import is_contrastive_file, load_contrastive  # noqa: PLC0415
    from galdesk.ml.vqvae import is_vqvae_file, load_vqvae  # noqa: PLC0415

    if is_contrastive_file(model):
        return load_contrastive(model)
    return load_vqvae(model) if is_vqvae_file(model) else load_model(model)


def image_rows_for(project, in_channels: int) -> tuple[str, np.ndarray]:
    """The stack group (``"c3"``...) and object rows of the image objects with ``in_channels`` bands."""
    return stack_group(in_channels), project.image_rows(in_channels)


def _embedder(module):
    """A function x -> features: the model's own ``embed`` (the VQ-VAE), the penultimate layer of an ImageCNN
    (``features`` then ``head`` minus its last layer), or for other networks the input of the last ``Linear``
    layer, caught by a forward hook."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    if callable(getattr(module, "embed", None)):
        return module.embed
    head = getattr(module, "head", None)
    if hasattr(module, "features") and isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        body = head[:-1]                 # pooling, flatten, dropout (identity in eval mode)
        return lambda x: body(module.features(x))
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no linear layer to take features before")
    last = linears[-1]

    def run(x):
        caught = []
        handle = last.register_forward_hook(lambda _m, inp, _out: caught.append(inp[0]))
        try:
            module(x)
        finally:
            handle.remove()
        return torch.flatten(caught[0], 1)

    return run


def view_features(stack, model, views=(0,), ctx: TaskContext | None = None, batch_size: int = 64,
                  device: str | None = None, label: str = "Features") -> tuple[np.ndarray, dict]:
    """Penultimate-layer features of every cut-out of ``stack`` under each of ``views``.

    Parameters
    ----------
    stack : array-like (N, C, S, S)
        Working-size cut-outs as the project stores them (read batch by batch: an h5py dataset works).
    model : LoadedModel or str
        Loaded model, bundled name or model file.
    views : sequence of int
        Symmetries of the square (:func:`galdesk.ml.preprocess.dihedral`: k = 0..7; 0 is the cut-out itself).
    ctx : TaskContext, optional
        Progress after each batch, cancel before each batch.

    Returns
    -------
    features : ndarray (N, len(views), D) float32
    info : dict
        ``model_id``, ``model_hash``, ``device``, ``dim``, ``layer``.
    """
    import torch  # noqa: PLC0415

    from galdesk.ml.device import choose_device  # noqa: PLC0415
    from galdesk.ml.preprocess import dihedral, preprocess  # noqa: PLC0415

    ctx = ctx or NullContext()
    loaded = load_feature_model(model)
    spec = loaded.preprocessing
    dev = choose_device(device)
    net = loaded.model.eval().to(dev)
    embed = _embedder(net)
    views = [int(v) for v in views]
    n = int(stack.shape[0])
    out = None
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            ctx.check_cancelled()
            j = min(n, i + batch_size)
            x = preprocess(np.asarray(stack[i:j], dtype=np.float32), spec, device=dev)
            f = torch.stack([embed(dihedral(x, k)).float() for k in views], dim=1).cpu().numpy()
            if out is None:
                out = np.empty((n, len(views), f.shape[-1]), np.float32)
            out[i:j] = f
            ctx.progress(j / n, f"{label} {j}/{n}")
    if out is None:
        with torch.inference_mode():
            size = int(spec.get("input_size", 32))
            c = int((loaded.card.get("architecture") or {}).get("in_channels") or 3)
            d = embed(torch.zeros(1, c, size, size, device=dev)).shape[-1]
        out = np.zeros((0, len(views), d), np.float32)
    info = {"model_id": loaded.id, "model_hash": loaded.hash, "device": dev, "dim": int(out.shape[-1]),
            "layer": getattr(net, "feature_layer", "vq-latent" if callable(getattr(net, "embed", None)) else LAYER)}
    return out, info


def stack_and_rows(project, loaded, rows=None):
    """Object rows and working-size stack (N, C, S, S; a lazy :class:`~galdesk.project.segments.StackRows` read a
    slice at a time) of the image objects ``loaded`` can take (its band count; an int is taken as the band count),
    all of them or ``rows``."""
    in_ch = int(loaded) if isinstance(loaded, (int, np.integer)) else int(
        (loaded.card.get("architecture") or {}).get("in_channels") or 3)
    group, all_rows = image_rows_for(project, in_ch)
    rows = all_rows if rows is None else np.asarray(rows, np.int64)
    if rows.size and not np.all(np.isin(rows, all_rows)):
        raise ValueError(f"some rows are not {in_ch}-band image objects")
    index = np.asarray(project.objects["row"])[rows].astype(np.int64) if rows.size else np.zeros(0, np.int64)
    return rows, project.stack_view(group, index)   # read a batch at a time: memory does not grow with the project


def extract_features(project, model="gz1-binary", rotations=False, ctx: TaskContext | None = None,
                     batch_size: int = 64, device: str | None = None, save: bool = True) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Penultimate-layer CNN features of every cut-out the model can take (its band count), stored as result
    ``"features"``.

    Parameters
    ----------
    project : Project or path
    model : str or LoadedModel
        Bundled name (default ``"gz1-binary"``) or model file.
    rotations : False, 4 or 8
        Average the features over the 4 rotations or the 8 rotations/flips (slower by that factor; makes the
        features nearly independent of orientation).
    ctx : TaskContext, optional
    save : bool
        Store the result in the project (default).

    Returns
    -------
    rows : ndarray (N,) int64
        Object-table rows.
    features : ndarray (N, D) float32
    """
    ctx = ctx or NullContext()
    project = as_project(project)
    nv = n_views(rotations)
    ctx.progress(0.0, "Loading model")
    loaded = load_feature_model(model)
    rows, stack = stack_and_rows(project, loaded)
    feats, info = view_features(stack, loaded, VIEWS[nv], ctx=ctx, batch_size=batch_size, device=device)
    features = feats.mean(axis=1).astype(np.float32)
    if save:
        project.save_result("features", {"row": rows, "features": features}, {**info, "rotations": nv})
    return rows, features


def rotated_features(project, model="gz1-binary", rotations=8, rows=None, ctx: TaskContext | None = None,
                     batch_size: int = 64, device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of the rotated/flipped copies of each cut-out (not stored: they serve rotation consistency).

    Parameters
    ----------
    rotations : 4 or 8
        4: rotations by 0, 90, 180, 270 degrees; 8: those and their mirror images.
    rows : array of int, optional
        Object rows (default: every cut-out the model takes).

    Returns
    -------
    rows : ndarray (N,) int64
    features : ndarray (N, R, D) float32
        ``features[:, k]`` is the copy ``dihedral(x, k)``; ``k = 0`` is the unrotated cut-out.
    """
    project = as_project(project)
    nv = n_views(rotations)
    if nv == 1:
        raise ValueError("rotated_features needs rotations=4 or 8")
    loaded = load_feature_model(model)
    rows, stack = stack_and_rows(project, loaded, rows)
    feats, _ = view_features(stack, loaded, VIEWS[nv], ctx=ctx, batch_size=batch_size, device=device,
                             label="Rotated copies")
    return rows, feats


def feature_targets(project, model="gz1-binary"):
    """``(loaded model, object rows, stack rows)`` of the cut-outs ``model`` can take (its band count)."""
    loaded = load_feature_model(model)
    group, rows = image_rows_for(project, int((loaded.card.get("architecture") or {}).get("in_channels") or 3))
    index = np.asarray(project.objects["row"])[rows].astype(np.int64) if rows.size else np.zeros(0, np.int64)
    return loaded, rows, index


def features_chunk(index, project, model="gz1-binary", views=(0,), device: str | None = None,
                   batch_size: int = 64) -> tuple[np.ndarray, dict]:
    """:func:`view_features` of the cut-outs at stack rows ``index`` of ``project`` (a path: this runs on a cluster
    worker, which reads them from the project's files); ``(features (n, views, D), info)``."""
    project = as_project(project)
    loaded = load_feature_model(model)
    group, _rows = image_rows_for(project, int((loaded.card.get("architecture") or {}).get("in_channels") or 3))
    return view_features(project.stack_view(group, np.asarray(index, np.int64)), loaded, views,
                         batch_size=batch_size, device=device)


def load_features(project) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Stored result ``"features"`` as ``(rows, features, attrs)``, or None."""
    res = project.load_result("features")
    if res is None:
        return None
    arrays, attrs = res
    return np.asarray(arrays["row"], np.int64), np.asarray(arrays["features"], np.float32), attrs


@dataclass
class PCA:
    """Standardisation followed by principal components (NumPy; fitted on the galaxies' own features).

    ``transform(x) = ((x - mean) / scale) @ components.T``; channels with no variance get scale 1 (they are
    constant and drop out).
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (((x - self.mean) / self.scale) @ self.components.T).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "scale": self.scale, "components": self.components,
                "explained_variance_ratio": self.explained_variance_ratio}


def fit_pca(features, n_components: int | None = 32, standardize: bool = True) -> PCA:
    """Fit :class:`PCA` to ``features`` (N, D): eigenvectors of the D x D covariance (cheap for any N).

    ``n_components`` is capped at min(N, D); None keeps all.
    """
    X = np.asarray(features, dtype=np.float64)
    n, d = X.shape
    mean = X.mean(axis=0) if n else np.zeros(d)
    scale = X.std(axis=0) if (standardize and n) else np.ones(d)
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    Xs = (X - mean) / scale
    cov = Xs.T @ Xs / max(1, n - 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    k = min(d, max(1, n)) if n_components is None else max(1, min(int(n_components), d, max(1, n)))
    # a deterministic sign per component (largest loading positive): the same data always give the same axes
    comps = vecs[:, :k].T
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    total = vals.sum()
    ratio = vals[:k] / total if total > 0 else np.zeros(k)
    return PCA(mean, scale, comps, ratio)
