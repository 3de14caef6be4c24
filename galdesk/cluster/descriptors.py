"""Rotation-invariant shape descriptors of galaxy cut-outs: a label-free feature set that needs no training.

Every number here is invariant to how a galaxy lies on the sky (any rotation, and flips), up to the pixel grid,
so Ward clusters of these vectors group galaxies by light profile, colour, flattening and arm structure rather
than by orientation. The measurements are the classical ones of galaxy morphology, taken on a polar grid around
the light-weighted centre:

* **light profile**: the azimuthally averaged surface brightness of the summed bands in rings whose radii are
  multiples of the galaxy's own half-light radius (so big and small galaxies of the same type look alike), as
  log of the ring mean over the mean inside the half-light radius;
* **concentration** ``5 log10(r80 / r20)`` (Bershady et al. 2000; Conselice 2003) and the log of the half-light
  radius in pixels (the apparent size is kept, as one number);
* **colour**: per band, the band's share of the light inside r50, between r50 and 2 r50 and beyond (colours
  and colour gradients: a JPEG's blue, green and red planes, or FITS bands);
* **azimuthal structure**: in each ring the amplitude of the Fourier modes m = 1..4 of the light around the ring
  relative to m = 0 (lopsidedness, bars and flattening, arms), and for m = 2 the **twist** between neighbouring
  rings (the cosine and the absolute sine of the phase change: a bar or an inclined disc has none, a spiral winds;
  the absolute value makes it flip-invariant);
* **shape**: axis ratio and the 180-degree rotational **asymmetry** (Conselice 2003) inside twice the half-light
  radius.

Inputs are working-size stacks ``(N, C, S, S)`` as a project stores them (JPEG: 0..255 per plane; FITS:
physical units); the sky is taken as the median of the outer border and subtracted per band. Pure NumPy/SciPy,
vectorised over a batch of cut-outs (a few ms per 64-px cut-out; ``benchmarks/bench_features.py``). Invalid
cut-outs (no light, NaN) give NaN rows, which :func:`descriptor_features` replaces by the column medians so
clustering can go on (their rows are reported in ``info["bad_rows"]``).
"""

from __future__ import annotations

import warnings

import numpy as np

from galdesk.tasks import NullContext, TaskContext

__all__ = ["DESCRIPTOR_VERSION", "COPY_ANGLES", "descriptor_names", "describe_batch", "describe_views",
           "descriptor_features", "turned"]

DESCRIPTOR_VERSION = "shape-v1"
_RINGS = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])   # ring centres, in half-light radii
_N_ANGLES = 32
_MODES = (1, 2, 3, 4)
COPY_ANGLES = (30.0, 100.0, 200.0, 250.0, 320.0, 145.0, 65.0)   # degrees of copies 1..7; even copies also flipped


def turned(stack, k: int) -> np.ndarray:
    """Copy ``k`` (1..7) of a stack ``(N, C, S, S)``: turned by ``COPY_ANGLES[k - 1]`` degrees about the stamp
    centre (bilinear, edges extended) and, for even ``k``, flipped left-right."""
    from scipy import ndimage  # noqa: PLC0415

    if not 1 <= int(k) <= len(COPY_ANGLES):
        raise ValueError(f"copy number must be 1..{len(COPY_ANGLES)}, got {k}")
    out = ndimage.rotate(np.asarray(stack, np.float32), COPY_ANGLES[int(k) - 1], axes=(-2, -1), reshape=False,
                         order=1, mode="nearest")
    return np.ascontiguousarray(out[..., ::-1]) if int(k) % 2 == 0 else out


def descriptor_names(n_bands: int) -> list[str]:
    """Column names of :func:`describe_batch`'s output for cut-outs with ``n_bands`` bands."""
    rings = [f"{r:g}re" for r in _RINGS]
    names = [f"profile_{r}" for r in rings] + ["concentration", "log_r50_px", "axis_ratio", "asymmetry"]
    if n_bands > 1:
        names += [f"band{b}_share_{z}" for b in range(n_bands) for z in ("inner", "middle", "outer")]
    names += [f"fourier_m{m}_{r}" for m in _MODES for r in rings]
    names += [f"twist_m2_{kind}_{r}" for kind in ("cos", "abs_sin") for r in rings[:-1]]
    return names


def _border(img: np.ndarray) -> np.ndarray:
    """The 2-pixel outer border of each image of ``img (..., S, S)``, flattened: ``(..., P)``."""
    s = img.shape[-1]
    b = max(1, min(2, s // 16))
    lead = img.shape[:-2]
    return np.concatenate([img[..., :b, :].reshape(*lead, -1), img[..., -b:, :].reshape(*lead, -1),
                           img[..., b:-b, :b].reshape(*lead, -1), img[..., b:-b, -b:].reshape(*lead, -1)], axis=-1)


def _sky_subtracted(x: np.ndarray) -> np.ndarray:
    """``(N, C, S, S)`` float64 minus the per-band median of its outer border; NaN pixels become 0."""
    s = x.shape[-1]
    if s < 8:
        raise ValueError(f"cut-outs of {s} px are too small to describe (at least 8 px)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN band: its row is reported as bad
        sky = np.nanmedian(_border(x), axis=-1)
    return np.nan_to_num(x - sky[..., None, None], nan=0.0, posinf=0.0, neginf=0.0)   # masked pixels count 0


def _sky_sigma(img: np.ndarray) -> np.ndarray:
    """Robust noise (1.4826 MAD) of the outer border of each ``(N, S, S)`` image."""
    border = _border(img)
    med = np.median(border, axis=1)
    return 1.4826 * np.median(np.abs(border - med[:, None]), axis=1)


def _bilinear(img: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img (N, C, S, S)`` at per-image coordinates ``yy, xx (N, P)``; outside = 0."""
    n, c, s, _ = img.shape
    y0 = np.floor(yy).astype(np.int64)
    x0 = np.floor(xx).astype(np.int64)
    fy, fx = yy - y0, xx - x0
    out = np.zeros((n, c, yy.shape[1]))
    flat = img.reshape(n, c, s * s)
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        yi, xi = y0 + dy, x0 + dx
        ok = (yi >= 0) & (yi < s) & (xi >= 0) & (xi < s)
        idx = np.where(ok, yi * s + xi, 0)
        vals = np.take_along_axis(flat, np.broadcast_to(idx[:, None, :], (n, c, idx.shape[1])), axis=2)
        out += vals * (w * ok)[:, None, :]
    return out


def _centre(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Light-weighted centre ``(cy, cx)`` inside the central half of each ``(N, S, S)`` image (a neighbour at the
    edge does not pull it away); the stamp centre where there is no light."""
    s = total.shape[-1]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    w = total * (np.hypot(yy - (s - 1) / 2, xx - (s - 1) / 2) <= s / 4)
    wsum = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (w * yy).sum(axis=(1, 2)) / wsum
        cx = (w * xx).sum(axis=(1, 2)) / wsum
    return np.where(np.isfinite(cy), cy, (s - 1) / 2), np.where(np.isfinite(cx), cx, (s - 1) / 2)


def _radii(total: np.ndarray, rr: np.ndarray, rmax: float) -> tuple[np.ndarray, ...]:
    """``(r20, r50, r80, total flux)`` of each image from its growth curve inside ``rmax`` (NaN without light)."""
    n = total.shape[0]
    flux = total * (rr <= rmax)
    grid = np.linspace(0.5, rmax, 64)
    growth = np.stack([(flux * (rr <= r)).sum(axis=(1, 2)) for r in grid], axis=1)   # (N, 64)
    ftot = growth[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = growth / ftot[:, None]
    out = np.full((3, n), np.nan)
    for i in range(n):
        g = np.maximum.accumulate(np.nan_to_num(frac[i], nan=0.0))
        if g[-1] > 0:
            out[:, i] = np.interp([0.2, 0.5, 0.8], g, grid)
    return out[0], out[1], out[2], ftot


def _axis_ratio(total: np.ndarray, dy: np.ndarray, dx: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Minor/major axis ratio from the second moments of the light inside ``radius`` (per image)."""
    m = total * (np.hypot(dy, dx) <= radius[:, None, None])
    msum = m.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ixx = (m * dx * dx).sum(axis=(1, 2)) / msum
        iyy = (m * dy * dy).sum(axis=(1, 2)) / msum
        ixy = (m * dx * dy).sum(axis=(1, 2)) / msum
        tr, det = ixx + iyy, ixx * iyy - ixy ** 2
        disc = np.sqrt(np.maximum(tr * tr / 4 - det, 0.0))
        return np.sqrt(np.maximum(tr / 2 - disc, 0.0) / np.maximum(tr / 2 + disc, 1e-30))


def _ring_samples(x: np.ndarray, cy: np.ndarray, cx: np.ndarray, r50: np.ndarray) -> np.ndarray:
    """Polar samples ``(N, C, K, A)``: each ring at a multiple of r50 is the mean of 3 radii across its width (half
    the spacing to its neighbours), at ``_N_ANGLES`` angles."""
    n, c = x.shape[:2]
    ang = np.arange(_N_ANGLES) * (2 * np.pi / _N_ANGLES)
    sub = np.array([-0.25, 0.0, 0.25])
    ring_r = _RINGS[:, None] + sub[None, :] * np.gradient(_RINGS)[:, None]        # (K, 3) in r50
    rad = ring_r.reshape(-1)[None, :, None] * r50[:, None, None]                  # (N, K*3, 1) pixels
    py = cy[:, None, None] + rad * np.sin(ang)[None, None, :]
    px = cx[:, None, None] + rad * np.cos(ang)[None, None, :]
    samp = _bilinear(x, py.reshape(n, -1), px.reshape(n, -1))
    return samp.reshape(n, c, len(_RINGS), 3, _N_ANGLES).mean(axis=3)


def _azimuthal(ring_tot: np.ndarray, sky_sigma: np.ndarray) -> list[np.ndarray]:
    """Fourier amplitudes m = 1..4 per ring relative to m = 0, and the m = 2 twist between neighbouring rings.

    Amplitudes are relative to the ring's light floored at 3 sigma of the sky's own m = 0 amplitude, so in rings
    at the noise the ratios go to zero instead of exploding."""
    spec = np.fft.rfft(ring_tot, axis=2)                                           # (N, K, A//2+1)
    floor = 3.0 * sky_sigma * np.sqrt(_N_ANGLES / 3.0)
    a0 = np.maximum(np.abs(spec[..., 0]), np.maximum(floor, 1e-12)[:, None])
    cols = [np.abs(spec[..., mm]) / a0 for mm in _MODES]
    z2 = spec[..., 2]
    pair = z2[:, 1:] * np.conj(z2[:, :-1])
    unit = pair / np.clip(np.abs(pair), 1e-30, None)
    weight = np.sqrt(np.abs(z2[:, 1:]) * np.abs(z2[:, :-1])) / np.sqrt(a0[:, 1:] * a0[:, :-1])
    return cols + [unit.real * weight, np.abs(unit.imag) * weight]


def _colour_shares(samp: np.ndarray) -> np.ndarray:
    """Each band's share of the light inside r50, between r50 and 2 r50, and beyond: ``(N, C * 3)``."""
    area = 2 * np.pi * _RINGS * np.gradient(_RINGS)                               # ring areas, in r50^2
    band_light = np.clip(samp.mean(axis=3), 0.0, None) * area                      # (N, C, K)
    zones = [_RINGS <= 1.0, (_RINGS > 1.0) & (_RINGS <= 2.0), _RINGS > 2.0]
    zl = np.stack([band_light[:, :, z].sum(axis=2) for z in zones], axis=2)         # (N, C, 3)
    share = zl / np.clip(zl.sum(axis=1, keepdims=True), 1e-12, None)
    return share.reshape(len(samp), -1)


def describe_batch(stack) -> np.ndarray:
    """Descriptors ``(N, len(descriptor_names(C)))`` of a stack ``(N, C, S, S)`` (module docstring)."""
    raw = np.asarray(stack, np.float64)
    x = _sky_subtracted(raw)
    n, c, s, _ = x.shape
    total = np.clip(x.sum(axis=1), 0.0, None)                                 # (N, S, S), negative sky noise cut
    cy, cx = _centre(total)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    rmax = s / 2 - 1                                                          # the stamp's inscribed circle
    r20, r50, r80, ftot = _radii(total, np.hypot(dy, dx), rmax)
    # rings stay inside the inscribed circle (a big galaxy's outer rings are then nearer than 4 r50)
    r50 = np.clip(np.where(np.isfinite(r50), r50, s / 8), 0.75, rmax / _RINGS[-1])   # no light: a NaN row below
    with np.errstate(invalid="ignore", divide="ignore"):
        conc = 5.0 * np.log10(r80 / np.maximum(r20, 0.5))
        q = _axis_ratio(total, dy, dx, 2.0 * r50)
        samp = _ring_samples(x, cy, cx, r50)                                   # (N, C, K, A)
        ring_tot = samp.sum(axis=1)                                            # (N, K, A)
        mean_ring = ring_tot.mean(axis=2)
        inner = np.clip(mean_ring[:, _RINGS <= 1.0].mean(axis=1), 1e-12, None)
        profile = np.log10(np.clip(mean_ring, 1e-4 * inner[:, None], None) / inner[:, None])
        # 180-degree asymmetry inside 2 r50 on the polar samples (a half turn = half the angle axis)
        in2 = _RINGS <= 2.0
        rot = np.roll(ring_tot, _N_ANGLES // 2, axis=2)
        asym = np.abs(ring_tot - rot)[:, in2].sum(axis=(1, 2)) / np.abs(ring_tot[:, in2]).sum(axis=(1, 2)) / 2
        cols = [profile, conc[:, None], np.log10(r50)[:, None], q[:, None], asym[:, None]]
        if c > 1:
            cols.append(_colour_shares(samp))
        cols += _azimuthal(ring_tot, _sky_sigma(x.sum(axis=1)))
    out = np.concatenate([np.asarray(col, np.float64).reshape(n, -1) for col in cols], axis=1)
    finite = np.isfinite(raw).reshape(n, -1).mean(axis=1)
    bad = ~(ftot > 0) | ~np.isfinite(ftot) | (finite < 0.5)      # no light, or half the pixels missing
    out[bad] = np.nan
    return out


def describe_views(stack, views: int = 1, batch: int = 256,
                   ctx: TaskContext | None = None) -> tuple[np.ndarray, dict]:
    """Descriptors of every cut-out of ``stack`` and of ``views - 1`` copies turned off the pixel grid
    (:func:`turned`), in batches: ``(features (N, views, D) float32, info)``.

    The descriptors do not change under the 90-degree turns and flips of the square, so those copies would test
    nothing; copies turned by 30, 100, 200... degrees (interpolated, every other one flipped) show how stable each
    galaxy's descriptors are against the pixel grid, which is what rotation consistency then measures.

    Cut-outs without measurable light (and their copies) get the column medians of the unturned cut-outs.
    ``info``: ``model_id`` (``"descriptors"``), ``layer`` (:data:`DESCRIPTOR_VERSION`), ``dim``, ``names``,
    ``n_bad`` and ``bad_rows`` (the first 1,000 of them), ``views`` (``"turned"``).
    """
    ctx = ctx or NullContext()
    shape = np.shape(stack)
    n, views = int(shape[0]), max(1, int(views))
    names = descriptor_names(int(shape[1]) if len(shape) > 1 else 1)
    out = np.empty((n, views, len(names)), np.float32)
    for k in range(views):
        for i in range(0, n, batch):
            ctx.check_cancelled()
            part = np.asarray(stack[i:i + batch], np.float32)
            out[i:i + batch, k] = describe_batch(turned(part, k) if k else part)
            ctx.progress((k + min(1.0, (i + batch) / max(n, 1))) / views,
                         "Measuring shapes" if k == 0 else f"Turned copies {k}/{views - 1}")
    ok = np.isfinite(out)
    bad = ~np.all(ok[:, 0], axis=1)
    if not ok.all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # a column without any finite value: 0 below
            med = np.nanmedian(np.where(ok[:, 0], out[:, 0], np.nan), axis=0)
        out = np.where(ok, out, np.where(np.isfinite(med), med, 0.0)).astype(np.float32)
    info = {"model_id": "descriptors", "model_hash": DESCRIPTOR_VERSION, "layer": DESCRIPTOR_VERSION,
            "dim": len(names), "names": names, "n_bad": int(bad.sum()),
            "bad_rows": np.flatnonzero(bad)[:1000].tolist(), "device": "cpu", "views": "turned"}
    return out, info


def descriptor_features(stack, batch: int = 256, ctx: TaskContext | None = None) -> tuple[np.ndarray, dict]:
    """Descriptors of a whole stack, without copies: ``(features (N, D) float32, info)`` (:func:`describe_views`)."""
    feats, info = describe_views(stack, 1, batch=batch, ctx=ctx)
    return feats[:, 0], info
