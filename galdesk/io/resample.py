"""Resampling cut-outs to the project's working size (area-averaging, flux-preserving in the mean).

:func:`resample_planes` works in float32 (FITS and every other source); :func:`working_planes` is what an ingest
stores: 8-bit planes (JPEG/PNG cut-outs) stay uint8 and are resampled in 8 bits, as PIL does for 8-bit images, so
the store keeps them at a quarter of the float32 size (:mod:`galdesk.project.arrays`); anything else goes through
:func:`resample_planes`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["square_pad", "resample_planes", "working_planes"]


def square_pad(planes: np.ndarray) -> np.ndarray:
    """Pad ``(C, ny, nx)`` to a square ``(C, n, n)``, n = max(ny, nx), centred, with each plane's median.

    Galaxies sit in the centre of their cut-outs; padding with the background level keeps the whole galaxy,
    where cropping to the short side would cut elongated stamps.
    """
    c, ny, nx = planes.shape
    n = max(ny, nx)
    if ny == nx:
        return planes
    out = np.empty((c, n, n), dtype=np.float32)
    for i in range(c):
        finite = planes[i][np.isfinite(planes[i])]
        out[i] = np.median(finite) if finite.size else 0.0
    y0, x0 = (n - ny) // 2, (n - nx) // 2
    out[:, y0:y0 + ny, x0:x0 + nx] = planes
    return out


def resample_planes(planes: np.ndarray, size: int) -> np.ndarray:
    """Return ``(C, size, size)`` float32: the cut-out padded to a square, then area-averaged (box filter).

    NaNs are replaced by the plane median before resampling (a NaN would otherwise spread over a whole output
    pixel). Upsampling (a stamp smaller than ``size``) uses bilinear interpolation.
    """
    planes = np.asarray(planes, dtype=np.float32)
    if planes.ndim == 2:
        planes = planes[None]
    if planes.ndim != 3:
        raise ValueError(f"expected (bands, ny, nx), got shape {planes.shape}")
    planes = square_pad(planes)
    out = np.empty((planes.shape[0], size, size), dtype=np.float32)
    for i, plane in enumerate(planes):
        if not np.all(np.isfinite(plane)):
            finite = plane[np.isfinite(plane)]
            plane = np.where(np.isfinite(plane), plane, np.median(finite) if finite.size else 0.0).astype(np.float32)
        n = plane.shape[0]
        if n == size:
            out[i] = plane
            continue
        resample = Image.BOX if n > size else Image.BILINEAR
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(plane), mode="F").resize((size, size), resample))
    return out


def working_planes(planes: np.ndarray, size: int) -> np.ndarray:
    """``(C, size, size)`` planes to store: uint8 planes stay uint8 (padded to a square with each band's median
    and area-averaged in 8 bits, PIL ``BOX``; bilinear to grow), any other dtype is :func:`resample_planes`'s
    float32. A uint8 cut-out already at the working size (an ingest's JPEG read) is returned as it is."""
    planes = np.asarray(planes)
    if planes.dtype != np.uint8:
        return resample_planes(planes, size)
    if planes.ndim == 2:
        planes = planes[None]
    if planes.ndim != 3:
        raise ValueError(f"expected (bands, ny, nx), got shape {planes.shape}")
    c, ny, nx = planes.shape
    if ny == nx == size:
        return planes
    n = max(ny, nx)
    if ny != nx:
        square = np.empty((c, n, n), np.uint8)
        square[:] = np.median(planes.reshape(c, -1), axis=1).astype(np.uint8)[:, None, None]
        y0, x0 = (n - ny) // 2, (n - nx) // 2
        square[:, y0:y0 + ny, x0:x0 + nx] = planes
        planes = square
    resample = Image.BOX if n > size else Image.BILINEAR
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p), mode="L").resize((size, size), resample))
                     for p in planes])
