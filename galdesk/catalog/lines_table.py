"""The ``fit-lines`` result table: one row per spectrum with the line-fit columns of :mod:`galdesk.catalog.schema`."""

from __future__ import annotations

import numpy as np

from galdesk.catalog.schema import fit_columns, line_flux_unit, status_columns

__all__ = ["results_table"]


def results_table(results: list[dict], flux_unit=None):
    """One row per spectrum (every target of every file): ``source``, ``id``, ``z``, ``error`` (why a spectrum could
    not be read or fitted, else empty), the :data:`~galdesk.catalog.schema.STATUS_COLUMNS` (``fit_status``
    fitted/skipped/error, ``skip_reason``, ``z_source``, ``zwarn``), then the line-fit columns of
    :func:`galdesk.catalog.schema.fit_columns` (fitted rows only) with their units: line fluxes in ``flux_unit``, by
    default the fitted spectra's own flux-density unit times Angstrom (1e-17 erg/s/cm2 for SDSS, count Å for
    uncalibrated 6dFGS); with mixed units the flux columns have none and the ``flux_unit`` column gives each row's.

    Parameters
    ----------
    results : list of dict
        :meth:`galdesk.lines.results.SpectrumFit.to_dict` records (failed fits carry ``error``, skipped ones
        ``skip_reason``; neither has line-fit values).
    """
    from astropy.table import MaskedColumn, Table

    t = Table()
    t["source"] = [str(r.get("source", "")) for r in results]
    t["id"] = [str(r.get("id", "")) for r in results]
    z = np.array([np.nan if r.get("z") is None else float(r["z"]) for r in results])
    t["z"] = MaskedColumn(z, mask=~np.isfinite(z), description="redshift the lines were fitted at")
    t["error"] = [str(r.get("error") or "") for r in results]
    for name, col in status_columns(results):
        t[name] = col
    fitted = [r if t["fit_status"][k] == "fitted" else None for k, r in enumerate(results)]
    note = ""
    if flux_unit is None:
        flux_unit, note = line_flux_unit(r.get("flux_unit") for r in fitted if r is not None)
    for name, col in fit_columns(fitted, flux_unit, note):
        t[name] = col
    return t
