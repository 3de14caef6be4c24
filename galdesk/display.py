"""Stretches, limits, colour composites and thumbnails for cut-outs (astropy.visualization underneath), and the
smoothing of a spectrum for display (astropy.convolution kernels, as Specviz offers).

Everything returns plain numpy arrays in [0, 1] (or uint8 RGB, or a smoothed flux and error), so the GUI only hands
them to pyqtgraph / QImage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["DisplaySettings", "STRETCHES", "LIMITS", "CMAPS", "limits_for", "stretch_for", "normalise",
           "to_rgb8", "lupton_rgb", "render", "composite_order", "thumbnail_rgb8", "colormap_lut", "SMOOTHINGS",
           "smooth_spectrum", "colourbar_ticks"]

STRETCHES = ("linear", "sqrt", "log", "asinh", "power", "histeq")
LIMITS = ("minmax", "zscale", "99", "99.5", "99.9", "manual")
CMAPS = ("gray", "viridis", "inferno", "magma", "cividis", "heat", "cool")


@dataclass
class DisplaySettings:
    """What the user chose for one view (kept in the project manifest and in vetting records)."""

    stretch: str = "asinh"
    limits: str = "99.5"
    vmin: float | None = None
    vmax: float | None = None
    cmap: str = "gray"
    band: int | None = None      # None = colour composite (when 3+ bands) or the only band
    power: float = 2.0           # exponent for the "power" stretch
    asinh_a: float = 0.1         # softening for the "asinh" stretch
    log_a: float = 1000.0        # for the "log" stretch
    composite: str = "lupton"    # "lupton" (Lupton et al. 2004) or "stretch" (same stretch per band)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "DisplaySettings":
        d = dict(d or {})
        if "percentile" in d and "limits" not in d:
            d["limits"] = str(d.pop("percentile"))
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def limits_for(data: np.ndarray, settings: DisplaySettings) -> tuple[float, float]:
    """(vmin, vmax) for ``data`` (NaNs ignored) using the settings' limits rule (DS9 names)."""
    from astropy.visualization import MinMaxInterval, PercentileInterval, ZScaleInterval

    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    rule = settings.limits
    if rule == "manual" and settings.vmin is not None and settings.vmax is not None:
        lo, hi = float(settings.vmin), float(settings.vmax)
    elif rule == "zscale":
        lo, hi = ZScaleInterval().get_limits(finite)
    elif rule == "minmax":
        lo, hi = MinMaxInterval().get_limits(finite)
    else:
        try:
            pct = float(rule)
        except ValueError:
            pct = 99.5
        lo, hi = PercentileInterval(pct).get_limits(finite)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
        if hi <= lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def stretch_for(settings: DisplaySettings):
    """The astropy stretch object for the settings (histeq is handled in :func:`normalise`)."""
    from astropy.visualization import AsinhStretch, LinearStretch, LogStretch, PowerStretch, SqrtStretch

    name = settings.stretch
    if name == "sqrt":
        return SqrtStretch()
    if name == "log":
        return LogStretch(a=settings.log_a)
    if name == "asinh":
        return AsinhStretch(a=settings.asinh_a)
    if name == "power":
        return PowerStretch(settings.power)
    return LinearStretch()


def normalise(data: np.ndarray, settings: DisplaySettings, limits: tuple[float, float] | None = None) -> np.ndarray:
    """Map ``data`` to [0, 1] with the chosen limits and stretch (float32; NaN stays NaN)."""
    data = np.asarray(data, dtype=np.float64)
    lo, hi = limits if limits is not None else limits_for(data, settings)
    scaled = np.clip((data - lo) / (hi - lo), 0.0, 1.0)
    if settings.stretch == "histeq":
        from astropy.visualization import HistEqStretch

        finite = scaled[np.isfinite(scaled)]
        if finite.size:
            out = HistEqStretch(finite)(np.where(np.isfinite(scaled), scaled, 0.0), clip=True)
            out = np.where(np.isfinite(scaled), out, np.nan)
        else:
            out = scaled
    else:
        nan = ~np.isfinite(scaled)
        out = stretch_for(settings)(np.where(nan, 0.0, scaled), clip=True)
        out[nan] = np.nan
    return out.astype(np.float32)


def colourbar_ticks(settings: DisplaySettings, limits: tuple[float, float], data=None, n: int = 5
                    ) -> list[tuple[float, float]]:
    """``(position in [0, 1] along the colour bar, data value)`` for ``n`` ticks evenly spaced along the bar, as DS9
    labels its colour bar: each value is the one the stretch maps to that position (unevenly spaced in value for
    log, sqrt, asinh ...; the inverse stretch, or the data's quantiles for histogram equalisation)."""
    lo, hi = float(limits[0]), float(limits[1])
    pos = np.linspace(0.0, 1.0, n)
    if settings.stretch == "histeq":
        finite = np.asarray(data, float)[np.isfinite(np.asarray(data, float))] if data is not None else np.zeros(0)
        finite = finite[(finite >= lo) & (finite <= hi)]
        vals = np.quantile(finite, pos) if finite.size else lo + pos * (hi - lo)
        vals[0], vals[-1] = lo, hi     # the bar's ends are the limits, as for the other stretches
    else:
        vals = lo + np.clip(stretch_for(settings).inverse(pos), 0.0, 1.0) * (hi - lo)
    return [(float(p), float(v)) for p, v in zip(pos, vals)]


# -- colour maps ------------------------------------------------------------------------------------------------------
_CMAP_CACHE: dict[str, np.ndarray] = {}

# Key colours for maps we define without matplotlib (matplotlib is not a dependency).
_KEYS = {
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "inferno": [(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)],
    "magma": [(0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)],
    "cividis": [(0, 34, 78), (61, 77, 110), (124, 123, 120), (187, 175, 113), (255, 234, 70)],
    "heat": [(0, 0, 0), (128, 0, 0), (255, 64, 0), (255, 192, 0), (255, 255, 255)],   # DS9 "heat"-like
    "cool": [(0, 0, 0), (0, 64, 128), (0, 160, 200), (128, 224, 255), (255, 255, 255)],
}


def colormap_lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for a colour map name in :data:`CMAPS` (unknown names: gray)."""
    if name in _CMAP_CACHE:
        return _CMAP_CACHE[name]
    x = np.linspace(0, 1, 256)
    if name in _KEYS:
        keys = np.asarray(_KEYS[name], dtype=float)
        kx = np.linspace(0, 1, len(keys))
        lut = np.stack([np.interp(x, kx, keys[:, i]) for i in range(3)], axis=1)
    else:
        lut = np.stack([x * 255] * 3, axis=1)
    lut = np.clip(np.round(lut), 0, 255).astype(np.uint8)
    _CMAP_CACHE[name] = lut
    return lut


def to_rgb8(plane01: np.ndarray, cmap: str = "gray") -> np.ndarray:
    """(ny, nx) values in [0, 1] -> (ny, nx, 3) uint8 through the colour map (NaN -> black)."""
    idx = np.nan_to_num(plane01, nan=0.0)
    idx = np.clip((idx * 255).round(), 0, 255).astype(np.uint8)
    return colormap_lut(cmap)[idx]


def lupton_rgb(planes: np.ndarray, settings: DisplaySettings) -> np.ndarray:
    """Lupton et al. (2004) asinh colour composite of 3 planes (r, g, b order) -> (ny, nx, 3) uint8.

    The common ``minimum`` (the sky: the median of the band-averaged image, unless the limits are manual) and
    ``stretch`` (the upper limit minus the minimum) are taken from the band-averaged image, so that colours are
    preserved (astropy.visualization.make_lupton_rgb).
    """
    from astropy.visualization import make_lupton_rgb

    planes = np.nan_to_num(np.asarray(planes, dtype=np.float64))
    total = planes.mean(axis=0)
    lo, hi = limits_for(total, settings)
    if settings.limits != "manual":
        lo = max(lo, float(np.median(total)))   # the sky level: below it is noise (Lupton et al. 2004)
    stretch = max(hi - lo, 1e-12)
    return make_lupton_rgb(planes[0], planes[1], planes[2], minimum=lo, stretch=stretch, Q=8)


# effective wavelengths (Angstrom) of common broad bands, to put the reddest band in the red channel
_BAND_WAVE = {"u": 3551, "g": 4686, "r": 6166, "i": 7480, "z": 8932, "y": 10040, "Y": 10200, "J": 12500,
              "H": 16500, "K": 21900, "Ks": 21500, "B": 4450, "V": 5510, "R": 6580, "I": 8060}


def _band_key(name: str) -> float | None:
    name = str(name).strip()
    if name in _BAND_WAVE:
        return float(_BAND_WAVE[name])
    if name.lower() in _BAND_WAVE and len(name) == 1:
        return float(_BAND_WAVE[name.lower()])
    digits = "".join(ch for ch in name[1:] if ch.isdigit())
    if name[:1].upper() == "F" and digits:   # HST/JWST filters: the number grows with wavelength per instrument
        return float(digits)
    return None


def composite_order(bands, rgb8: bool = False) -> list[int]:
    """Indices of the planes for the red, green and blue channels of a colour composite.

    8-bit colour cut-outs are already (R, G, B). Otherwise the astronomical convention: the longest wavelength in
    red. Known band names (ugriz, UBVRI, YJHK, Fnnn filters) are sorted by wavelength; unknown ones are assumed to
    be stored in increasing wavelength (as band cubes usually are), so the last plane is red.
    """
    n = len(bands) if bands is not None else 3
    if rgb8 or n < 3:
        return [0, 1, 2]
    keys = [_band_key(b) for b in bands] if bands is not None else [None] * n
    if all(k is not None for k in keys):
        order = sorted(range(n), key=lambda i: keys[i])
    else:
        order = list(range(n))
    order = order[-3:] if n > 3 else order   # the three reddest of more
    return order[::-1]


def render(image_pixels: np.ndarray, settings: DisplaySettings, rgb8: bool = False, bands=None) -> np.ndarray:
    """Render a cut-out (C, ny, nx) to (ny, nx, 3) uint8 as the settings say.

    * 8-bit colour survey cut-outs (``rgb8``): shown as they are unless a single band is chosen.
    * 3+ bands with ``settings.band is None``: Lupton composite (or the same stretch per band), reddest band in
      red (:func:`composite_order`, using the band names when given).
    * otherwise one band through limits, stretch and colour map.
    """
    pixels = np.asarray(image_pixels)
    if pixels.ndim == 2:
        pixels = pixels[None]
    n = pixels.shape[0]
    if settings.band is None and n >= 3:
        if rgb8:
            return np.clip(pixels[:3], 0, 255).astype(np.uint8).transpose(1, 2, 0)
        rgb_planes = pixels[composite_order(bands if bands is not None else [None] * n)]
        if settings.composite == "lupton":
            return lupton_rgb(rgb_planes, settings)
        chans = [normalise(rgb_planes[i], settings) for i in range(3)]
        return np.clip(np.nan_to_num(np.stack(chans, axis=-1)) * 255, 0, 255).astype(np.uint8)
    band = 0 if settings.band is None else min(max(int(settings.band), 0), n - 1)
    return to_rgb8(normalise(pixels[band], settings), settings.cmap)


def thumbnail_rgb8(planes: np.ndarray, settings: DisplaySettings, rgb8: bool = False, bands=None) -> np.ndarray:
    """Thumbnail of working-size planes (C, S, S) -> (S, S, 3) uint8, flipped so that row 0 is the *top*.

    FITS row 0 is the bottom of the image (DS9 convention); QImage row 0 is the top.
    """
    return np.ascontiguousarray(render(planes, settings, rgb8=rgb8, bands=bands)[::-1])


#: Display smoothings of a spectrum: name -> (kernel, width in pixels: boxcar width or Gaussian sigma)
SMOOTHINGS = {"none": None, "boxcar 3 px": ("box", 3), "boxcar 5 px": ("box", 5), "boxcar 9 px": ("box", 9),
              "Gaussian σ 1 px": ("gauss", 1.0), "Gaussian σ 2 px": ("gauss", 2.0), "Gaussian σ 4 px": ("gauss", 4.0)}


def smooth_spectrum(flux, error, bad, smoothing: str) -> tuple[np.ndarray, np.ndarray]:
    """``(flux, error)`` smoothed for display by one of :data:`SMOOTHINGS`: the flux convolved with a normalised
    kernel (astropy.convolution; bad pixels, ``bad`` True or non-finite, are interpolated over by the kernel and
    stay gaps), and the error of that weighted mean, sqrt(sum w_i^2 sigma_i^2) (independent pixels: a 5-pixel
    boxcar divides the noise by sqrt 5)."""
    flux = np.asarray(flux, float)
    error = np.asarray(error, float)
    spec = SMOOTHINGS.get(smoothing)
    if spec is None:
        return flux, error
    from astropy.convolution import Box1DKernel, Gaussian1DKernel, convolve

    kind, width = spec
    kernel = Box1DKernel(width) if kind == "box" else Gaussian1DKernel(width)
    gap = np.asarray(bad, bool) | ~np.isfinite(flux)
    f = np.where(gap, np.nan, flux)
    smooth = convolve(f, kernel, boundary="extend", nan_treatment="interpolate", preserve_nan=True)
    var = np.where(gap | ~np.isfinite(error), np.nan, error**2)
    w2 = kernel.array**2
    # the weights renormalised over the good pixels, as the interpolating convolution does
    num = convolve(var, w2, boundary="extend", nan_treatment="fill", fill_value=0.0, normalize_kernel=False)
    norm = convolve((~np.isnan(var)).astype(float), kernel.array, boundary="extend", normalize_kernel=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.sqrt(num) / norm
    return smooth, np.where(gap, np.nan, err)

