"""What an interactive line fit (the Lines tab) needs from the science: a peak dragged to new starting values, and
the AGN pseudo-continuum drawn without its Fe II part. Plain functions on fitted results, without Qt, so that the
tab only turns mouse positions into numbers it passes here.
"""

from __future__ import annotations

import numpy as np

from galdesk.units import C_KMS

__all__ = ["drag_start_values", "continuum_without_feii"]


def drag_start_values(params, layout, g: int, x_ratio: float, height_ratio: float | None):
    """Starting values after the peak of Gaussian ``g`` was dragged: its velocity moves by ``C_KMS * (x_ratio -
    1)`` (``x_ratio`` = new / old observed wavelength of the peak) and its flux scales by ``height_ratio`` (new /
    old height above the continuum; None leaves it), each clipped to its bounds; fixed parameters stay. ``params``
    (lmfit.Parameters) is changed in place and returned."""
    vname, fname = layout.names[layout.vidx[g]], layout.names[layout.fidx[g]]
    v = params[vname]
    if v.vary:
        v.value = float(np.clip(v.value + C_KMS * (x_ratio - 1.0), v.min, v.max))
    f = params[fname]
    if f.vary and height_ratio is not None:
        f.value = float(min(f.value * max(height_ratio, 0.01), f.max))
    return params


def continuum_without_feii(cf, spec, x, continuum) -> np.ndarray | None:
    """The continuum at ``x`` (observed Angstrom) less its Fe II part, where the fit of complex ``cf`` of ``spec``
    used the AGN pseudo-continuum with an Fe II template (None otherwise): the gap to the full continuum is the
    Fe II emission."""
    from galdesk.lines.linelist import air_to_vac

    meta = spec.meta if isinstance(spec.meta, dict) else {}
    fe = getattr(meta.get("stellar_fit"), "feii", None)
    if fe is None or meta.get("continuum_kind") != "agn" or cf.layout.tidx < 0:
        return None
    w = np.asarray(spec.wavelength, float)
    if not spec.vacuum:
        w = air_to_vac(w)
    ok = np.isfinite(fe)
    scale = float(cf.theta[cf.layout.tidx])
    return np.asarray(continuum) - scale * np.interp(x, w[ok], np.asarray(fe)[ok])
