"""Emission-line fitting of many spectra: the glue between files / projects and :mod:`galdesk.lines`.

``fit_sources`` is the function behind ``galdesk fit-lines`` and the Lines tab's "Fit all": spectra come from
files or from projects; results of a project's spectra are appended to its journal (record kind ``line_fit``,
key = object id, payload = :meth:`galdesk.lines.results.SpectrumFit.to_dict`), where the Vet tab, the BPT plot and
the export read them. Every writer of ``line_fit`` records goes through :func:`save_fits`.
"""

from __future__ import annotations

import numpy as np

from galdesk.tasks import NullContext, TaskContext

__all__ = ["fit_sources", "fit_project", "complexes_for", "model_curves", "save_fits", "line_fit_payload",
           "plan_redshifts", "count_targets"]


def complexes_for(names: str | list[str] | None) -> tuple[str, ...] | None:
    """``"halpha,hbeta"`` (complex or line names) -> the complexes to fit, in the given order; None = default."""
    from galdesk.lines.linelist import COMPLEXES

    if not names:
        return None
    if isinstance(names, str):
        names = [n.strip().lower() for n in names.split(",") if n.strip()]
    out: list[str] = []
    for n in names:
        key = n.replace("[", "").replace("]", "").replace(" ", "")
        if key in COMPLEXES:
            found = key
        else:
            found = next((c for c, cx in COMPLEXES.items() if key in cx.lines), None)
            if found is None:
                raise ValueError(f"unknown line or complex {n!r}; known complexes: {', '.join(COMPLEXES)}")
        if found not in out:
            out.append(found)
    return tuple(out)


def line_fit_payload(spec, sf) -> dict:
    """The ``line_fit`` journal payload of a spectrum's fit: :meth:`SpectrumFit.to_dict
    <galdesk.lines.results.SpectrumFit.to_dict>` with the spectrum's ``source`` and ``id``."""
    from galdesk.lines.batch import fit_record

    d = fit_record(sf)
    d["source"] = spec.source
    d["id"] = spec.id
    return d


def save_fits(project, items, author: str) -> list[dict]:
    """Append ``line_fit`` records (key = object id) to a project's journal, in one transaction.

    Parameters
    ----------
    project : galdesk.project.Project
    items : iterable of (SpectrumData, SpectrumFit)
        Spectra of the project and their fits; only fitted ones are journaled (a failed or skipped one, e.g. for
        want of a redshift, must not replace an earlier fit of the object).
    author : str
        Who appends them (``"galdesk fit-lines"`` for batch fits, the vetter's name in the Lines tab).

    Returns
    -------
    list of dict
        The payload of every item (:func:`line_fit_payload`), in order, journaled or not.
    """
    out, records = [], []
    for spec, sf in items:
        d = line_fit_payload(spec, sf)
        out.append(d)
        if sf.error is None and sf.skip_reason is None:
            records.append(("line_fit", spec.id, d))
    project.journal.append_many(records, author=author)
    return out


def fit_project(project, config=None, ctx: TaskContext | None = None, n_jobs: int | None = None,
                rows=None, redshifts=None) -> list[dict]:
    """Fit the project's spectra (all, or object-table ``rows``) and append the results to its journal.

    ``redshifts`` (:class:`galdesk.io.redshifts.Redshifts`) overrides the object table's redshifts; spectra left
    without one are skipped (``skip_reason`` "no redshift") and not journaled."""
    from galdesk.lines.batch import fit_many
    from galdesk.project import as_project

    ctx = ctx or NullContext()
    project = as_project(project)
    project.check_writable("line fits")
    rows = project.spectrum_rows() if rows is None else np.asarray(rows, int)
    spectra = [project.spectrum(int(r)) for r in rows]
    for spec in spectra:
        if spec.redshift is not None:
            spec.meta.setdefault("z_source", "project")  # the object table's (file or ingest catalogue)
        if redshifts is not None:
            redshifts.apply(spec)
    fits = fit_many(spectra, config, ctx=ctx, n_jobs=n_jobs)
    return save_fits(project, zip(spectra, fits), author="galdesk fit-lines")


def model_curves(spec, payload: dict | None = None, config=None, ctx: TaskContext | None = None, n: int = 600
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The total model of each fitted complex on its window, for drawing over a spectrum.

    Parameters
    ----------
    spec : galdesk.io.model.SpectrumData
        The fitted spectrum.
    payload : dict or None
        A saved ``line_fit`` record. Records that store the fitted parameters (key ``"model"``, see
        :mod:`galdesk.lines.saved`) are evaluated as they are, without fitting; for older records the complexes
        they name (their ``"fit"`` keys) are fitted again (the fit is deterministic) on the caller's worker thread.
    config : FitConfig or None
        Refit with this configuration instead of using the stored parameters.
    ctx : TaskContext or None
        Progress and cancellation of a refit.
    n : int
        Points per curve, evenly spaced over the window.

    Returns
    -------
    list of (x, y)
        Per complex: wavelengths over its fit window (Angstrom) and the total model (spectrum flux unit).
    """
    from galdesk.lines.saved import saved_models

    models = saved_models(payload) if config is None else None
    if models is None:
        from galdesk.lines.config import FitConfig
        from galdesk.lines.spectrum import fit_spectrum

        names = tuple((payload or {}).get("fit", {}).keys()) or None
        cfg = config or (FitConfig(complexes=names) if names else FitConfig())
        models = fit_spectrum(spec, cfg, ctx=ctx).complexes
    out = []
    for cf in models.values():
        x = np.linspace(cf.window[0], cf.window[1], n)
        out.append((x, cf.model_curves(x)["total"]))
    return out


def count_targets(path) -> int:
    """How many spectra of a file could be fitted (skipped targets not counted); 1 when it cannot be read (the fit
    reports why)."""
    from galdesk.io.model import ReadError
    from galdesk.io.reading import read

    try:
        return sum(1 for s in read(path, kind="spectrum", keep_skipped=True) if not s.meta.get("skip_reason"))
    except ReadError:
        return 1


def plan_redshifts(files, n_project_spectra: int = 0, z=None, catalogs=()):
    """The spectrum files and the :class:`~galdesk.io.redshifts.Redshifts` of a ``fit-lines`` run.

    DESI redrock/zbest files among ``files`` are catalogues (after ``catalogs``), not spectra. ``z`` is one redshift
    for one target: ValueError when the sources hold more (or it is implausible); ReadError for a catalogue that
    cannot be used. Runs before any fitting.
    """
    from galdesk.io.redshifts import Redshifts, is_redshift_file

    files = list(files)
    zfiles = [f for f in files if is_redshift_file(f)]
    files = [f for f in files if f not in zfiles]
    redshifts = Redshifts.build(z, list(catalogs) + zfiles)
    if z is not None:
        n = n_project_spectra + len(files)
        if n == 1 and files:
            n = count_targets(files[0])
        if n != 1:
            where = f"{files[0]} holds {n} targets" if len(files) == 1 and not n_project_spectra else \
                f"the sources hold {n} spectra"
            raise ValueError(f"--z gives one redshift for one target, but {where}; give each its redshift with "
                             "--catalog (id or file, z)")
    return files, redshifts


def fit_sources(sources, config=None, ctx: TaskContext | None = None, n_jobs: int | None = None, z=None,
                catalogs=()) -> list[dict]:
    """Fit every target of spectrum files and the spectra of projects; one dict per target (``status`` fitted,
    skipped or error). ``z``/``catalogs``: see :func:`plan_redshifts` (its errors come before any fitting)."""
    from galdesk.io.reading import expand_paths
    from galdesk.lines.batch import fit_many, fit_record
    from galdesk.project import as_project, is_project

    ctx = ctx or NullContext()
    projects = [s for s in sources if is_project(s)]
    files = expand_paths([s for s in sources if not is_project(s)])
    n_proj = 0
    if z is not None and projects:
        n_proj = sum(len(as_project(p).spectrum_rows()) for p in projects)
    files, redshifts = plan_redshifts(files, n_proj, z, catalogs)
    out: list[dict] = []
    for p in projects:
        out.extend(fit_project(p, config, ctx=ctx, n_jobs=n_jobs, redshifts=redshifts or None))
    if files:
        for sf in fit_many([str(f) for f in files], config, ctx=ctx, n_jobs=n_jobs, redshifts=redshifts or None):
            out.append(fit_record(sf))
    return out
