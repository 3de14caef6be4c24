"""The project store: a ``NAME.galdesk/`` folder with its manifest, object table, arrays, results and journal.

Modules: :mod:`~galdesk.project.store` (the :class:`Project` folder), :mod:`~galdesk.project.objects` (the object
table and catalogue joins), :mod:`~galdesk.project.journal` (the append-only SQLite journal),
:mod:`~galdesk.project.results` (stored results read back). Imports no Qt and no torch.
"""

from galdesk.project.store import DEFAULT_SIZE, SCHEMA_VERSION, SUFFIX, Project, ProjectError, as_project, is_project

__all__ = ["Project", "ProjectError", "SCHEMA_VERSION", "SUFFIX", "DEFAULT_SIZE", "is_project", "as_project"]
