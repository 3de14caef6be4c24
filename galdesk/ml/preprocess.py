"""Preprocessing of working-size stacks for the image CNN, as recorded in a model card.

Input contract: the project stores every cut-out as ``(N, C, S, S)`` float32 raw pixel values made by
:func:`galdesk.io.resample.resample_planes` (JPEG: 0..255, row 0 = bottom; FITS: physical units). The card's
``"preprocessing"`` entry says what the model expects::

    {"stack_size": 64,          # S the model was trained on; other sizes are resized with torch interpolate
     "crop_fraction": 0.75,     # centre crop (galaxies fill the centre of survey cut-outs)
     "input_size": 48,          # network input side after the crop
     "scaling": "standardize",  # "standardize": (x - mean) / std per channel, statistics from the training split
     "mean": [...], "std": [...],
     # or "scaling": "asinh": per image and band, (x - median) / (1.4826 MAD), then asinh(x / softening)
     "softening": 3.0}

Order: resize to ``stack_size`` -> scale -> (training only: random rotation/flip/shift) -> centre crop -> resize to
``input_size``. Scaling is done on the whole stamp so that the per-image statistics of "asinh" see the sky.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["default_spec", "fit_scaling", "resize_stack", "scale", "crop_resize", "preprocess", "augment_crop",
           "looks_8bit", "dihedral"]


def looks_8bit(stack: np.ndarray, sample: int = 256) -> bool:
    """True if the stack looks like 8-bit colour cut-outs (all values within 0..255): those get "standardize"."""
    s = np.asarray(stack[:sample])
    finite = s[np.isfinite(s)]
    return bool(finite.size and finite.min() >= 0.0 and finite.max() <= 255.0 and finite.max() > 1.5)


def default_spec(stack_size: int, input_size: int, crop_fraction: float = 0.75, scaling: str = "standardize") -> dict:
    if scaling not in ("standardize", "asinh"):
        raise ValueError(f"unknown scaling {scaling!r}")
    return {"stack_size": int(stack_size), "crop_fraction": float(crop_fraction), "input_size": int(input_size),
            "scaling": scaling, "softening": 3.0}


def resize_stack(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(N, C, S, S)`` to ``(N, C, size, size)``: area-averaging when shrinking (as the project's working
    size is made), bilinear when enlarging."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _asinh(x: torch.Tensor, softening: float) -> torch.Tensor:
    flat = x.flatten(2)
    med = flat.median(dim=-1).values[..., None, None]
    mad = (x - med).abs().flatten(2).median(dim=-1).values[..., None, None]
    sigma = (1.4826 * mad).clamp_min(1e-12)
    # a constant image (mad 0): fall back to its absolute level so the result stays finite
    sigma = torch.where(mad > 0, sigma, (med.abs() + 1e-12))
    return torch.asinh((x - med) / (sigma * softening))


def fit_scaling(stack: np.ndarray, spec: dict, batch: int = 512) -> dict:
    """Fill in ``mean``/``std`` for "standardize" from ``stack`` (pass the TRAINING split only). Returns the spec."""
    spec = dict(spec)
    if spec["scaling"] != "standardize":
        return spec
    c = stack.shape[1]
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    n = 0
    for i in range(0, len(stack), batch):
        x = resize_stack(torch.as_tensor(np.asarray(stack[i:i + batch], dtype=np.float32)), spec["stack_size"])
        x = x.double()
        s1 += x.sum(dim=(0, 2, 3)).numpy()
        s2 += (x * x).sum(dim=(0, 2, 3)).numpy()
        n += x.shape[0] * x.shape[2] * x.shape[3]
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0.0))
    spec["mean"] = [float(v) for v in mean]
    spec["std"] = [float(max(v, 1e-6)) for v in std]
    return spec


def scale(x: torch.Tensor, spec: dict) -> torch.Tensor:
    """Apply the card's intensity scaling to a ``(N, C, S, S)`` float tensor."""
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if spec["scaling"] == "standardize":
        mean = torch.tensor(spec["mean"], dtype=x.dtype, device=x.device)[None, :, None, None]
        std = torch.tensor(spec["std"], dtype=x.dtype, device=x.device)[None, :, None, None]
        return (x - mean) / std
    if spec["scaling"] == "asinh":
        return _asinh(x, float(spec.get("softening", 3.0)))
    raise ValueError(f"unknown scaling {spec['scaling']!r}")


def crop_resize(x: torch.Tensor, spec: dict) -> torch.Tensor:
    """Centre crop ``crop_fraction`` of the stamp, then resize to ``input_size``."""
    s = x.shape[-1]
    n = max(1, int(round(s * float(spec.get("crop_fraction", 1.0)))))
    if n < s:
        o = (s - n) // 2
        x = x[..., o:o + n, o:o + n]
    return resize_stack(x, int(spec["input_size"]))


def preprocess(stack, spec: dict, device: str | torch.device = "cpu") -> torch.Tensor:
    """Working-size stack (numpy or tensor, ``(N, C, S, S)``) -> network input ``(N, C, input_size, input_size)``."""
    x = torch.as_tensor(np.asarray(stack, dtype=np.float32) if not isinstance(stack, torch.Tensor) else stack)
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    x = resize_stack(x, int(spec["stack_size"]))
    return crop_resize(scale(x, spec), spec)


def augment_crop(x: torch.Tensor, spec: dict, generator: torch.Generator | None = None,
                 max_shift_px: float = 2.0, scale_jitter: float = 0.05) -> torch.Tensor:
    """Training augmentation fused with the centre crop: a random rotation (any angle), random flip, a shift of up
    to ``max_shift_px`` stack pixels and a scale jitter, sampled bilinearly from the scaled ``(N, C, S, S)`` stamp
    into ``(N, C, input_size, input_size)``. With no rotation/shift it reproduces :func:`crop_resize` exactly when
    ``crop_fraction * S == input_size``. Borders are reflected (a rotated crop reaches the stamp corners).
    """
    out = int(spec["input_size"])
    f = float(spec.get("crop_fraction", 1.0))
    s0 = x.shape[-1]
    if s0 * f > out * 1.05:
        # the crop is shrunk: area-average the stamp first, as crop_resize does, so that training sees the same
        # smoothing (noise level) as inference; bilinear sampling alone would alias and keep more noise
        x = F.interpolate(x, size=(max(out, int(round(out / f))),) * 2, mode="area")
    n, c, s, _ = x.shape
    dev = x.device
    r = torch.rand((n, 5), generator=generator).to(dev)
    ang = r[:, 0] * 2 * math.pi
    flip = torch.where(r[:, 1] < 0.5, -1.0, 1.0).to(dev)
    zoom = f * (1.0 + scale_jitter * (2 * r[:, 2] - 1))
    shift = (2 * r[:, 3:5] - 1) * (2.0 * max_shift_px / s)
    cos, sin = torch.cos(ang) * zoom, torch.sin(ang) * zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), [n, c, out, out], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 symmetries of the square (k = 0..7): rotation by 90 deg * (k % 4), transposed if k >= 4."""
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, k % 4, dims=(-2, -1))
