"""Network architectures: a small VGG-style image CNN and a 1-D spectrum CNN.

Both record the arguments that rebuild them in ``model.config`` (stored in the model card by
:func:`galdesk.ml.weights.save_model`) and are built again from it by :func:`build_model`.
This module imports torch at the top; nothing in the start-up path imports it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ImageCNN", "SpectrumCNN", "build_model", "ARCHITECTURES"]


def _block2d(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ImageCNN(nn.Module):
    """Image classifier for galaxy cut-outs.

    ``depth`` blocks of two 3x3 conv + BatchNorm + ReLU and a 2x2 max-pool, channel width doubling per block
    (``width``, 2 ``width``, ...), then global average pooling, dropout and a linear layer to ``n_classes`` logits.
    Global pooling makes the network accept any input size; ``input_size`` is the size it was trained on and is
    what the preprocessing resizes to.

    Parameters
    ----------
    n_classes : int
    in_channels : int
        1 (single band) or 3 (colour / three bands).
    input_size : int
        Side of the square input in pixels, after the preprocessing crop/resize.
    width : int
        Channels of the first block.
    depth : int
        Number of blocks (each halves the spatial size); ``input_size / 2**depth`` should stay >= 2.
    dropout : float
    """

    kind = "ImageCNN"

    def __init__(self, n_classes: int, in_channels: int = 3, input_size: int = 48, width: int = 16, depth: int = 4,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError("need at least two classes")
        if input_size < 2 ** depth:
            raise ValueError(f"input_size {input_size} too small for depth {depth}")
        self.config = dict(kind=self.kind, n_classes=int(n_classes), in_channels=int(in_channels),
                           input_size=int(input_size), width=int(width), depth=int(depth), dropout=float(dropout))
        chans = [in_channels] + [width * 2 ** i for i in range(depth)]
        self.features = nn.Sequential(*[_block2d(chans[i], chans[i + 1]) for i in range(depth)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(chans[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, in_channels, H, W) float, preprocessed. Returns (N, n_classes) logits."""
        return self.head(self.features(x))


class SpectrumCNN(nn.Module):
    """1-D CNN for spectra on a fixed rest-frame log-lambda grid.

    ``depth`` blocks of Conv1d (kernel ``kernel``) + GroupNorm (``norm="group"``, default: labelled spectra are
    few and batches small, where BatchNorm's running statistics made validation losses jump) or BatchNorm + ReLU +
    max-pool 2, then global average and max pooling (concatenated: lines are narrow, a mean alone dilutes them),
    dropout, linear.

    Parameters
    ----------
    n_classes : int
    n_pix : int
        Length of the wavelength grid.
    in_channels : int
        1: normalised flux; 2: flux and a coverage mask (see :func:`galdesk.ml.spectra.prepare_spectra`).
    """

    kind = "SpectrumCNN"

    def __init__(self, n_classes: int, n_pix: int, in_channels: int = 1, width: int = 16, depth: int = 4,
                 kernel: int = 7, dropout: float = 0.3, norm: str = "group") -> None:
        super().__init__()
        self.config = dict(kind=self.kind, n_classes=int(n_classes), n_pix=int(n_pix), in_channels=int(in_channels),
                           width=int(width), depth=int(depth), kernel=int(kernel), dropout=float(dropout),
                           norm=str(norm))
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(depth):
            c_out = width * 2 ** min(i, 3)
            nrm = nn.BatchNorm1d(c_out) if norm == "batch" else nn.GroupNorm(min(4, c_out), c_out)
            layers += [nn.Conv1d(c, c_out, kernel, padding=kernel // 2, bias=False), nrm,
                       nn.ReLU(inplace=True), nn.MaxPool1d(2)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, n_pix) or (N, in_channels, n_pix). Returns (N, n_classes) logits."""
        if x.ndim == 2:
            x = x[:, None]
        h = self.features(x)
        h = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.fc(self.dropout(h))


ARCHITECTURES = {"ImageCNN": ImageCNN, "SpectrumCNN": SpectrumCNN}


def build_model(config: dict) -> nn.Module:
    """Rebuild an architecture from ``model.config`` (as stored in a model card)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {kind!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[kind](**config)
