"""The curated catalogue: one column schema, catalogue assembly from a project, and export writers.

Modules: :mod:`~galdesk.catalog.schema` (name, unit and description of every quantity a line fit produces, used by
``fit-lines`` tables, exports and the docs), :mod:`~galdesk.catalog.assemble` (the project's catalogue as an astropy
Table), :mod:`~galdesk.catalog.writers` (CSV/FITS/ECSV/VOTable, atomic), :mod:`~galdesk.catalog.export`
(build + write, read back). Imports no Qt.
"""

__all__ = ["ONLY_CHOICES"]

#: Row selections of an export: every object, the vetted ones (rejected included) or the accepted ones.
ONLY_CHOICES = ("all", "vetted", "accepted")
