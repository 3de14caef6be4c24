"""The curated catalogue: one column schema, catalogue assembly from a project, and export writers.

Modules: :mod:`~galdesk.catalog.schema` (name, unit and description of every quantity a line fit produces, used by
``fit-lines`` tables, exports and the docs), :mod:`~galdesk.catalog.assemble` (the project's catalogue as an astropy
Table), :mod:`~galdesk.catalog.writers` (CSV/FITS/ECSV/VOTable, atomic), :mod:`~galdesk.catalog.export`
(build + write, read back). Imports no Qt.
"""

__all__: list[str] = []
