"""What a project holds, for ``galdesk info`` and ``galdesk demo --json``."""

from __future__ import annotations

from galdesk.project import Project
from galdesk.vetting import decisions

__all__ = ["project_info"]


def project_info(project: Project) -> dict:
    """The store's summary (:meth:`Project.info`) with the number of objects that carry a vetting decision in
    effect (undone decisions do not count) after ``journal_records``."""
    out = {}
    for key, value in project.info().items():
        out[key] = value
        if key == "journal_records":
            out["decisions"] = len(decisions(project))
    return out
