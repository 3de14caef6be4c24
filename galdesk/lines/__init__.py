"""Emission-line engine: line list, Gaussian fitting with lmfit, broad-component test, BPT classification, batch.

Science core without Qt or torch. Submodules, by concern:

* the lines and the model: :mod:`~galdesk.lines.linelist` (wavelengths, complexes, doublet ratios),
  :mod:`~galdesk.lines.model` (the Gaussian model of a complex and its Jacobian);
* one fit: :mod:`~galdesk.lines.config` (:class:`~galdesk.lines.config.FitConfig`), :mod:`~galdesk.lines.window`
  (fit window and pixels), :mod:`~galdesk.lines.continuum` (continuum choice, whole-spectrum fit, local guess),
  :mod:`~galdesk.lines.layout` (parameters), :mod:`~galdesk.lines.engine` (lmfit fits, model selection, whole
  spectra), :mod:`~galdesk.lines.measure` (statistics, line quantities), :mod:`~galdesk.lines.results` (result
  objects and their JSON form), :mod:`~galdesk.lines.saved` (the fitted model in a journal record),
  :mod:`~galdesk.lines.summary` (BPT ratios, densities, masses, kinematics of a spectrum);
* continuum models: :mod:`~galdesk.lines.stellar` (stellar populations), :mod:`~galdesk.lines.agn` and
  :mod:`~galdesk.lines.agn_basis` (AGN host + power law + Fe II), :mod:`~galdesk.lines.spectral` (shared tools);
* derived science: :mod:`~galdesk.lines.bpt`, :mod:`~galdesk.lines.bhmass`, :mod:`~galdesk.lines.profile`;
* many spectra: :mod:`~galdesk.lines.batch` (process pool), :mod:`~galdesk.lines.vectorized` (batched LM),
  :mod:`~galdesk.lines.service` (files and projects, journal records).

They are not imported here, so ``import galdesk.lines`` stays cheap (lmfit alone costs ~1 s).
"""

__all__ = ["linelist", "model", "config", "window", "continuum", "layout", "engine", "measure", "results", "saved",
           "summary", "stellar", "agn", "agn_basis", "spectral", "bpt", "bhmass", "profile", "batch", "vectorized",
           "service"]
