"""The ``fit-lines`` result table: one row per spectrum with the line-fit columns of :mod:`galdesk.catalog.schema`."""

from __future__ import annotations

import numpy as np

from galdesk.catalog.schema import DEFAULT_FLUX_UNIT, fit_columns

__all__ = ["results_table"]


def results_table(results: list[dict], flux_unit=DEFAULT_FLUX_UNIT):
    """One row per spectrum: ``source``, ``id``, ``z``, ``error`` (why a spectrum could not be fitted, else empty),
    then the line-fit columns of :func:`galdesk.catalog.schema.fit_columns` with their units (line fluxes in
    ``flux_unit``, by default the SDSS flux density unit times Angstrom, 1e-17 erg/s/cm2).

    Parameters
    ----------
    results : list of dict
        :meth:`galdesk.lines.results.SpectrumFit.to_dict` records (failed fits carry ``error``).
    """
    from astropy.table import MaskedColumn, Table

    t = Table()
    t["source"] = [str(r.get("source", "")) for r in results]
    t["id"] = [str(r.get("id", "")) for r in results]
    z = np.array([np.nan if r.get("z") is None else float(r["z"]) for r in results])
    t["z"] = MaskedColumn(z, mask=~np.isfinite(z), description="redshift the lines were fitted at")
    t["error"] = [str(r.get("error") or "") for r in results]
    for name, col in fit_columns([None if r.get("error") else r for r in results], flux_unit):
        t[name] = col
    return t
