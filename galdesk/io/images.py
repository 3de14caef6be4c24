"""Image (cut-out) readers, registered with :mod:`galdesk.io.registry`.

(Being filled in: FITS images, stamp collections and cubes; JPEG/PNG; HDF5 stacks.)
"""

from __future__ import annotations

__all__: list[str] = []
