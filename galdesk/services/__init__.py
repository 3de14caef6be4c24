"""Application services: whole-project workflows that the command line and the window both call.

:mod:`~galdesk.services.ingest` (files and catalogues into a project), :mod:`~galdesk.services.demo` (the built-in
sample), :mod:`~galdesk.services.batch` (batch work on local processes or a Dask cluster),
:mod:`~galdesk.services.info` (what a project holds). They sit above the science engines, the vetting and the
catalogue layers and below ``cli/`` and ``gui/``; they import no Qt.
"""

__all__: list[str] = []
