"""A small vector-quantised autoencoder (VQ-VAE; van den Oord et al. 2017) trained on a project's own cut-outs:
features for the dendrogram learned without labels, the path of Cheng et al. (2021).

Architecture (for 32x32 inputs): encoder conv 4x4/2 -> ReLU -> conv 4x4/2 -> ReLU -> conv 1x1 to ``latent_dim``
channels on an 8x8 grid; each latent vector is replaced by its nearest of ``n_codes`` codebook vectors
(straight-through gradient, codebook + ``beta`` commitment loss); the decoder mirrors the encoder with transposed
convolutions. Loss: mean squared reconstruction error + the quantisation losses. Codebook vectors that no latent
chose during an epoch are moved onto random latents of the last batch (dead-code restart), so the codebook stays
in use on small projects.

Features for clustering (:meth:`VQVAE.embed`): the mean and standard deviation over the grid of the quantised
latents, ``2 * latent_dim`` numbers per galaxy — a summary of which codes appear, largely independent of where
(and, with the random rotations/flips used in training, of how the galaxy is turned).

Files: ``NAME.safetensors`` + ``NAME.json`` (card: ``architecture`` with ``kind: "VQVAE"``, ``preprocessing``,
``history``, ``sha256``), loaded by :func:`load_vqvae` as a :class:`galdesk.ml.weights.LoadedModel`, so
:func:`galdesk.cluster.features.extract_features` and :func:`galdesk.cluster.cluster_project` take its path like a
CNN's.

This module imports torch at the top; nothing imported at start-up imports it.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from galdesk.tasks import NullContext, TaskContext

__all__ = ["VQVAE", "train_vqvae", "save_vqvae", "load_vqvae", "train_project_vqvae", "is_vqvae_file"]


class _Quantizer(nn.Module):
    def __init__(self, n_codes: int, dim: int, beta: float) -> None:
        super().__init__()
        self.codebook = nn.Embedding(n_codes, dim)
        self.codebook.weight.data.uniform_(-1.0 / n_codes, 1.0 / n_codes)
        self.beta = beta

    def forward(self, z: torch.Tensor):
        """``z`` (N, D, H, W) -> quantised z (straight-through), loss, code indices (N, H, W)."""
        n, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        cb = self.codebook.weight
        dist = (flat * flat).sum(1, keepdim=True) - 2 * flat @ cb.T + (cb * cb).sum(1)[None]
        codes = dist.argmin(1)
        q = cb[codes].view(n, h, w, d).permute(0, 3, 1, 2)
        loss = F.mse_loss(q, z.detach()) + self.beta * F.mse_loss(z, q.detach())
        q = z + (q - z).detach()
        return q, loss, codes.view(n, h, w)


class VQVAE(nn.Module):
    """Small VQ-VAE for galaxy cut-outs (see the module docstring).

    Parameters
    ----------
    in_channels : int
    input_size : int
        Side of the (preprocessed) input; a multiple of 4.
    hidden : int
        Channels of the first convolution (the second has twice as many).
    latent_dim : int
        Size of each latent / codebook vector.
    n_codes : int
        Codebook size.
    beta : float
        Commitment loss weight.
    """

    kind = "VQVAE"

    def __init__(self, in_channels: int = 3, input_size: int = 32, hidden: int = 32, latent_dim: int = 16,
                 n_codes: int = 64, beta: float = 0.25) -> None:
        super().__init__()
        if input_size % 4:
            raise ValueError("input_size must be a multiple of 4")
        self.config = dict(kind=self.kind, in_channels=int(in_channels), input_size=int(input_size),
                           hidden=int(hidden), latent_dim=int(latent_dim), n_codes=int(n_codes), beta=float(beta))
        h = hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, h, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(h, 2 * h, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * h, latent_dim, 1))
        self.quantizer = _Quantizer(n_codes, latent_dim, beta)
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_dim, 2 * h, 3, 1, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * h, h, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(h, in_channels, 4, 2, 1))

    def forward(self, x: torch.Tensor):
        """Returns reconstruction, quantisation loss, code indices."""
        z = self.encoder(x)
        q, vq_loss, codes = self.quantizer(z)
        return self.decoder(q), vq_loss, codes

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, 2 latent_dim): mean and standard deviation of the quantised latents over the grid."""
        q, _, _ = self.quantizer(self.encoder(x))
        flat = q.flatten(2)
        return torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], dim=1)


def _default_spec(stack_size: int, input_size: int) -> dict:
    from galdesk.ml.preprocess import default_spec  # noqa: PLC0415

    # per-image asinh scaling needs no statistics from a training split, and works for JPEG and FITS alike
    return default_spec(stack_size, input_size, crop_fraction=0.75, scaling="asinh")


def train_vqvae(stack, spec: dict | None = None, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                seed: int = 0, ctx: TaskContext | None = None, on_epoch=None, device: str | None = None,
                **arch) -> tuple[VQVAE, dict, list[dict]]:
    """Train a :class:`VQVAE` on working-size cut-outs.

    Parameters
    ----------
    stack : array (N, C, S, S)
        Cut-outs as the project stores them.
    spec : dict, optional
        Preprocessing (:mod:`galdesk.ml.preprocess`); default: asinh scaling, 75 % centre crop, 32 px.
    epochs, batch_size, lr, seed : training settings (Adam; a random rotation/flip per batch).
    ctx : TaskContext, optional
        Progress per batch, cancel between batches.
    on_epoch : callable, optional
        Called with each history row (``epoch``, ``loss``, ``recon``, ``codes_used``, ``seconds``).
    **arch
        :class:`VQVAE` arguments (``hidden``, ``latent_dim``, ``n_codes``, ``beta``).

    Returns
    -------
    model, spec, history
    """
    from galdesk.ml.device import choose_device  # noqa: PLC0415
    from galdesk.ml.preprocess import dihedral, preprocess  # noqa: PLC0415

    ctx = ctx or NullContext()
    stack = np.asarray(stack, dtype=np.float32)
    n, c, s, _ = stack.shape
    if n < 2:
        raise ValueError("need at least two cut-outs to train a VQ-VAE")
    spec = dict(spec) if spec else _default_spec(s, int(arch.pop("input_size", 32)))
    dev = choose_device(device)
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    model = VQVAE(in_channels=c, input_size=int(spec["input_size"]), **arch).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # the whole (small) project preprocessed once; larger ones batch by batch
    pre = preprocess(stack, spec) if n <= 20_000 else None
    history: list[dict] = []
    steps = int(np.ceil(n / batch_size))
    for epoch in range(1, epochs + 1):
        t0 = time.monotonic()
        model.train()
        order = gen.permutation(n)
        tot = rec_tot = 0.0
        used = torch.zeros(model.config["n_codes"], dtype=torch.bool)
        last_z = None
        for b in range(steps):
            ctx.check_cancelled()
            idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
            x = pre[idx] if pre is not None else preprocess(stack[idx], spec)
            x = dihedral(x.to(dev), int(gen.integers(8))).contiguous()
            z = model.encoder(x)
            q, vq_loss, codes = model.quantizer(z)
            recon = model.decoder(q)
            rec = F.mse_loss(recon, x)
            loss = rec + vq_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            used[codes.unique().cpu()] = True
            last_z = z.detach()
            tot += loss.item() * len(idx)
            rec_tot += rec.item() * len(idx)
            ctx.progress(((epoch - 1) * steps + b + 1) / (epochs * steps), f"VQ-VAE epoch {epoch}/{epochs}")
        dead = torch.nonzero(~used).flatten()
        if dead.numel() and last_z is not None:          # dead-code restart on random latents
            pool = last_z.permute(0, 2, 3, 1).reshape(-1, last_z.shape[1])
            pick = torch.as_tensor(gen.integers(0, pool.shape[0], dead.numel()), device=pool.device)
            with torch.no_grad():
                model.quantizer.codebook.weight[dead.to(pool.device)] = pool[pick]
        row = {"epoch": epoch, "loss": tot / n, "recon": rec_tot / n, "codes_used": int(used.sum()),
               "seconds": time.monotonic() - t0}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    model.eval()
    return model, spec, history


def save_vqvae(path: str | Path, model: VQVAE, spec: dict, history: list | None = None, **card_extra) -> dict:
    """Write ``path`` (.safetensors) and its card (.json). Returns the card."""
    from safetensors.torch import save_file  # noqa: PLC0415

    from galdesk.ml.weights import file_sha256  # noqa: PLC0415

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    card = {"id": path.stem, "task": "features", "architecture": dict(model.config), "preprocessing": dict(spec),
            "history": list(history or []), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
                timespec="seconds"), "format": "galdesk model card", "schema_version": 1, **card_extra}
    save_file(state, str(tmp), metadata={"galdesk_card": json.dumps({k: card[k] for k in ("id", "task",
                                                                                           "architecture",
                                                                                           "preprocessing")})})
    tmp.replace(path)
    card["sha256"] = file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    return card


def is_vqvae_file(path: str | Path) -> bool:
    """True if ``path`` is a VQ-VAE written by :func:`save_vqvae` (its card says so)."""
    p = Path(path)
    card = p.with_suffix(".json")
    if p.suffix != ".safetensors" or not card.is_file():
        return False
    try:
        return json.loads(card.read_text(encoding="utf-8")).get("architecture", {}).get("kind") == VQVAE.kind
    except (OSError, ValueError):
        return False


def load_vqvae(path: str | Path, device: str = "cpu"):
    """Load a VQ-VAE file as a :class:`galdesk.ml.weights.LoadedModel` (eval mode; ``hash`` = file sha256)."""
    from safetensors.torch import load_file  # noqa: PLC0415

    from galdesk.ml.weights import LoadedModel, file_sha256  # noqa: PLC0415

    path = Path(path)
    card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    arch = dict(card["architecture"])
    arch.pop("kind", None)
    model = VQVAE(**arch)
    model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    model.eval().to(device)
    card.setdefault("class_names", [])
    return LoadedModel(model=model, card=card, id=str(card.get("id", path.stem)), hash=file_sha256(path),
                       path=str(path), device=str(device))


def train_project_vqvae(project, output: str | Path | None = None, epochs: int = 10, ctx: TaskContext | None = None,
                        seed: int = 0, device: str | None = None, **arch) -> str:
    """Train a VQ-VAE on a project's cut-outs (the band count with most objects) and save it (default
    ``PROJECT/models/vqvae.safetensors``); returns the file path."""
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
    model, spec, history = train_vqvae(stack, epochs=epochs, ctx=ctx, seed=seed, device=device, **arch)
    out = Path(output) if output else project.path / "models" / "vqvae.safetensors"
    save_vqvae(out, model, spec, history, trained_on=str(project.path), n_train=int(rows.size))
    return str(out)
