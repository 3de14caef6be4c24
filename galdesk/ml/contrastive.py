"""Self-supervised features (SimCLR; Chen et al. 2020) learned from a project's own cut-outs, without labels.

Two randomly augmented views of every galaxy in a batch go through an encoder and a small projection head; the
NT-Xent loss (normalised temperature-scaled cross entropy) pulls each pair together and pushes the other 2N - 2
views of the batch away. What survives every augmentation — rotation by any angle, flip, a crop of 80-100 % of the
stamp with a small shift, a flux (contrast) scale of 0.8-1.25, Gaussian noise and a light blur — is what the
features describe: the galaxy's shape and colour, not how it is turned or how noisy the image is.

Encoder: the convolutional blocks of :class:`galdesk.ml.models.ImageCNN` (``features``) and its global average
pooling; the pooled vector (``width * 2**(depth-1)`` numbers) is the feature for clustering
(:meth:`ContrastiveNet.embed`), the same place :func:`galdesk.cluster.features.view_features` reads an ImageCNN's
penultimate layer. The projection head (Linear-ReLU-Linear) is used only in training; it is saved with the weights
(so the file reloads strictly) and ignored for features, as in the paper.

Files: ``NAME.safetensors`` + ``NAME.json`` (card: ``architecture`` with ``kind: "SimCLR"``, ``preprocessing``,
``history`` of the loss, ``"labels_used": false``, ``sha256``), loaded by :func:`load_contrastive` as a
:class:`galdesk.ml.weights.LoadedModel`; :func:`galdesk.cluster.features.load_feature_model` recognises them, so
:func:`galdesk.cluster.cluster_project` takes the path like a CNN's or a VQ-VAE's.

This module imports torch at the top; nothing imported at start-up imports it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from galdesk.ml.models import ImageCNN
from galdesk.tasks import NullContext, TaskContext

__all__ = ["ContrastiveNet", "nt_xent", "augment_views", "train_contrastive", "save_contrastive",
           "load_contrastive", "is_contrastive_file", "train_project_contrastive"]


class ContrastiveNet(nn.Module):
    """ImageCNN encoder + projection head for SimCLR (see the module docstring).

    Parameters
    ----------
    in_channels, input_size, width, depth
        As :class:`galdesk.ml.models.ImageCNN`.
    proj_dim : int
        Output size of the projection head (the space the loss is computed in).
    """

    kind = "SimCLR"
    feature_layer = "simclr-encoder"

    def __init__(self, in_channels: int = 3, input_size: int = 48, width: int = 16, depth: int = 4,
                 proj_dim: int = 64) -> None:
        super().__init__()
        self.config = dict(kind=self.kind, in_channels=int(in_channels), input_size=int(input_size),
                           width=int(width), depth=int(depth), proj_dim=int(proj_dim))
        cnn = ImageCNN(2, in_channels=in_channels, input_size=input_size, width=width, depth=depth)
        self.features = cnn.features
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        dim = width * 2 ** (depth - 1)
        self.projector = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, proj_dim))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features for clustering: the pooled encoder output (N, width * 2**(depth-1))."""
        return self.pool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projections (N, proj_dim), the input of the loss."""
        return self.projector(self.embed(x))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss of two views (N, D) of the same N objects: cross entropy of each view's cosine similarities
    (over ``temperature``) to the other 2N - 1 views, the right answer being its partner."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (3x3 kernel, ``sigma`` (N,) in pixels; 0 leaves the image alone)."""
    n, c, h, w = x.shape
    d = torch.tensor([-1.0, 0.0, 1.0], device=x.device)
    g = torch.exp(-d[None] ** 2 / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))      # (N, 3)
    g = g / g.sum(1, keepdim=True)
    k = (g[:, :, None] * g[:, None, :]).repeat_interleave(c, 0)[:, None]        # (N*C, 1, 3, 3)
    y = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (1, 1, 1, 1), mode="reflect"), k, groups=n * c)
    return y.view(n, c, h, w)


def augment_views(scaled: torch.Tensor, spec: dict, generator: torch.Generator | None = None,
                  noise: float = 0.05, blur_p: float = 0.5) -> torch.Tensor:
    """One random view of each intensity-scaled stamp (N, C, S, S) -> (N, C, input_size, input_size).

    Rotation by any angle, flip, crop of 80-100 % of the card's crop with a shift of up to 2 stack pixels
    (:func:`galdesk.ml.preprocess.augment_crop`), then on the scaled values a flux factor of 0.8-1.25 (log-uniform;
    the per-image asinh scaling already removes an overall flux factor of the raw image, so the factor is applied
    to its output, a contrast change), a light blur (sigma 0-1 px, half the images) and Gaussian noise of
    ``noise`` times a random 0-1 factor.
    """
    from galdesk.ml.preprocess import augment_crop  # noqa: PLC0415

    x = augment_crop(scaled, spec, generator=generator, max_shift_px=2.0, scale_jitter=0.0)
    n = x.shape[0]
    r = torch.rand((n, 4), generator=generator).to(x.device)
    # crop-scale: zoom in to 80-100 % of the crop (augment_crop's jitter is symmetric; this one only zooms in)
    side = x.shape[-1]
    frac = 0.8 + 0.2 * r[:, 0]
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = frac
    theta[:, 1, 1] = frac
    grid = F.affine_grid(theta, [n, x.shape[1], side, side], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = x * torch.exp((2 * r[:, 1] - 1) * np.log(1.25))[:, None, None, None]
    x = _blur(x, torch.where(r[:, 2] < blur_p, r[:, 2] / blur_p, torch.zeros_like(r[:, 2])))
    eps = torch.randn(x.shape, generator=generator).to(x.device)
    return x + eps * (noise * r[:, 3])[:, None, None, None]


def _default_spec(stack_size: int, input_size: int) -> dict:
    from galdesk.ml.preprocess import default_spec  # noqa: PLC0415

    # per-image asinh scaling: no statistics from a training split needed (as the VQ-VAE)
    return default_spec(stack_size, input_size, crop_fraction=0.75, scaling="asinh")


def _scaled_stack(stack: np.ndarray, spec: dict, batch: int = 1024) -> torch.Tensor:
    """The intensity-scaled stamps at the card's stack size (what augment_crop samples from), on the CPU."""
    from galdesk.ml.preprocess import resize_stack, scale  # noqa: PLC0415

    parts = [scale(resize_stack(torch.as_tensor(np.asarray(stack[i:i + batch], np.float32)),
                                int(spec["stack_size"])), spec) for i in range(0, len(stack), batch)]
    return torch.cat(parts)


def train_contrastive(stack, spec: dict | None = None, epochs: int = 20, batch_size: int = 128, lr: float = 1e-3,
                      temperature: float = 0.2, seed: int = 0, ctx: TaskContext | None = None, on_epoch=None,
                      device: str | None = None, input_size: int = 48, **arch) -> tuple[ContrastiveNet, dict,
                                                                                         list[dict]]:
    """Train a :class:`ContrastiveNet` (SimCLR) on working-size cut-outs, without labels.

    Parameters
    ----------
    stack : array (N, C, S, S)
        Cut-outs as the project stores them.
    spec : dict, optional
        Preprocessing (:mod:`galdesk.ml.preprocess`); default: asinh scaling, 75 % centre crop, ``input_size`` px.
    epochs, batch_size, lr, temperature, seed
        Training settings (Adam with weight decay 1e-6; cosine learning-rate decay; NT-Xent at ``temperature``).
        A last batch smaller than 2 is skipped.
    ctx : TaskContext, optional
        Progress (and so the ETA) after each batch, cancel before each batch.
    on_epoch : callable, optional
        Called with each history row (``epoch``, ``loss``, ``seconds``).
    device : str, optional
        "cuda"/"mps"/"cpu" (default: the GPU when there is one).
    **arch
        :class:`ContrastiveNet` arguments (``width``, ``depth``, ``proj_dim``).

    Returns
    -------
    model, spec, history
    """
    from galdesk.ml.device import choose_device  # noqa: PLC0415

    ctx = ctx or NullContext()
    n = int(stack.shape[0])
    if n < 4:
        raise ValueError("need at least four cut-outs to train contrastive features")
    c, s = int(stack.shape[1]), int(stack.shape[-1])
    spec = dict(spec) if spec else _default_spec(s, int(input_size))
    dev = choose_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    model = ContrastiveNet(in_channels=c, input_size=int(spec["input_size"]), **arch).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-6)
    batch_size = max(2, min(int(batch_size), n))
    steps = n // batch_size + (1 if n % batch_size >= 2 else 0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps))
    scaled = _scaled_stack(stack, spec)
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        t0 = time.monotonic()
        model.train()
        order = order_rng.permutation(n)
        tot, seen = 0.0, 0
        for b in range(steps):
            ctx.check_cancelled()
            idx = torch.as_tensor(np.sort(order[b * batch_size:(b + 1) * batch_size]))
            x = scaled[idx].to(dev)
            z1 = model(augment_views(x, spec, generator=gen))
            z2 = model(augment_views(x, spec, generator=gen))
            loss = nt_xent(z1, z2, temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            seen += len(idx)
            ctx.progress(((epoch - 1) * steps + b + 1) / (epochs * steps),
                         f"SimCLR epoch {epoch}/{epochs}, loss {loss.item():.3f}")
        row = {"epoch": epoch, "loss": tot / max(1, seen), "seconds": time.monotonic() - t0}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    model.eval()
    return model, spec, history


def save_contrastive(path: str | Path, model: ContrastiveNet, spec: dict, history: list | None = None,
                     **card_extra) -> dict:
    """Write ``path`` (.safetensors) and its card (.json, ``labels_used: false``); returns the card."""
    from galdesk.ml.vqvae import save_vqvae  # noqa: PLC0415 - the same file format: weights + card from model.config

    extra = {"labels_used": False, "method": "SimCLR (Chen et al. 2020), NT-Xent loss", **card_extra}
    return save_vqvae(path, model, spec, history, **extra)


def is_contrastive_file(path: str | Path) -> bool:
    """True if ``path`` is a SimCLR network written by :func:`save_contrastive` (its card says so)."""
    p = Path(path)
    card = p.with_suffix(".json")
    if p.suffix != ".safetensors" or not card.is_file():
        return False
    try:
        arch = json.loads(card.read_text(encoding="utf-8")).get("architecture", {})
    except (OSError, ValueError):
        return False
    return isinstance(arch, dict) and arch.get("kind") == ContrastiveNet.kind


def load_contrastive(path: str | Path, device: str = "cpu"):
    """Load a SimCLR file as a :class:`galdesk.ml.weights.LoadedModel` (eval mode; ``hash`` = file sha256).
    safetensors only: no pickle is read."""
    from safetensors.torch import load_file  # noqa: PLC0415

    from galdesk.ml.weights import LoadedModel, file_sha256  # noqa: PLC0415

    path = Path(path)
    card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    arch = dict(card["architecture"])
    if arch.pop("kind", None) != ContrastiveNet.kind:
        raise ValueError(f"{path}: not a SimCLR network")
    model = ContrastiveNet(**arch)
    model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    model.eval().to(device)
    card.setdefault("class_names", [])
    return LoadedModel(model=model, card=card, id=str(card.get("id", path.stem)), hash=file_sha256(path),
                       path=str(path), device=str(device))


def train_project_contrastive(project, output: str | Path | None = None, epochs: int = 20,
                              ctx: TaskContext | None = None, seed: int = 0, device: str | None = None,
                              **kwargs) -> str:
    """Train SimCLR features on a project's cut-outs (the band count with most objects) and save them (default
    ``PROJECT/models/contrastive.safetensors``); returns the file path. ``kwargs`` go to
    :func:`train_contrastive`."""
    from galdesk.project import as_project  # noqa: PLC0415
    from galdesk.project.objects import main_image_group  # noqa: PLC0415

    project = as_project(project)
    group = main_image_group(project.objects)
    if group is None:
        raise ValueError(f"{project.path}: no cut-outs to train on")
    objs = np.asarray(project.objects["group"])
    rows = project.image_rows()
    rows = rows[objs[rows] == group]
    stack = project.stack(group)[np.asarray(project.objects["row"])[rows].astype(np.int64)]
    model, spec, history = train_contrastive(stack, epochs=epochs, ctx=ctx, seed=seed, device=device, **kwargs)
    out = Path(output) if output else project.path / "models" / "contrastive.safetensors"
    save_contrastive(out, model, spec, history, trained_on=str(project.path), n_train=int(rows.size))
    return str(out)
