"""What a galaxy cut-out may be: not thinner than a limit, and small enough to pad to a square in memory.

Shared by :mod:`galdesk.io.reading` (on every image read) and the readers that check a file's claimed shape before
decoding it (:mod:`galdesk.io.formats.pil_image`); no other galdesk imports at module level.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_ASPECT_RATIO", "check_cutout_shape", "max_aspect_ratio"]

#: Longest/shortest side of a cut-out unless the limit is set (:func:`max_aspect_ratio`).
DEFAULT_MAX_ASPECT_RATIO = 20.0


def max_aspect_ratio() -> float:
    """Longest/shortest side a cut-out may have (``GALDESK_MAX_ASPECT_RATIO`` or the setting ``max_aspect_ratio``,
    default 20; :func:`galdesk.config.limit`)."""
    from galdesk.config import limit

    return max(1.0, limit("max_aspect_ratio", DEFAULT_MAX_ASPECT_RATIO))


def check_cutout_shape(shape, limit_bytes: int | None = None) -> None:
    """ValueError unless a ``(bands, ny, nx)`` cut-out is one galaxy's stamp: not thinner than
    :func:`max_aspect_ratio` (a 1 x 2,000,000 "image" is a spectrum or a table, and padding it to a square would need
    terabytes), and its square padding (bands x n x n float32, n the longer side) within the data limit."""
    from galdesk.io import fitshead

    c, ny, nx = (int(v) for v in shape)
    lo, hi = min(ny, nx), max(ny, nx)
    limit = max_aspect_ratio()
    if hi > limit * lo:
        raise ValueError(f"a {ny} x {nx} image is not a galaxy cut-out: sides in ratio {hi / lo:,.0f}:1, more than "
                         f"{limit:g}:1 (set GALDESK_MAX_ASPECT_RATIO to allow thinner stamps)")
    need = c * hi * hi * 4
    limit_bytes = fitshead.MAX_DATA_BYTES if limit_bytes is None else limit_bytes
    if need > limit_bytes:
        raise ValueError(f"a {c} x {ny} x {nx} cut-out needs {fitshead.human_bytes(need)} as a padded float32 "
                         f"square, over the {fitshead.human_bytes(limit_bytes)} limit")
