"""Agreement between two vetters: Cohen's kappa on the objects both labelled, and their conflicts."""

from __future__ import annotations

import math

from galdesk.project.results import as_project
from galdesk.vetting.replay import Replay

__all__ = ["agreement"]


def agreement(project, vetter_a: str, vetter_b: str) -> dict:
    """Cohen's kappa between two vetters on the objects both have labelled.

    Returns
    -------
    dict
        ``vetter_a``, ``vetter_b``, ``n_common``, ``p_observed`` (fraction of identical labels),
        ``kappa`` (:func:`sklearn.metrics.cohen_kappa_score`; None when undefined: no common objects, or both
        used one and the same label throughout, so chance agreement is 1), ``labels`` (those used),
        ``conflicts``: ``[{"id", "label_a", "label_b"}]`` sorted by id.
    """
    project = as_project(project)
    rep = Replay.from_journal(project.journal)
    a = {k: v["label"] for k, v in rep.effective(vetter_a).items() if v["label"] is not None}
    b = {k: v["label"] for k, v in rep.effective(vetter_b).items() if v["label"] is not None}
    common = sorted(set(a) & set(b))
    la = [a[k] for k in common]
    lb = [b[k] for k in common]
    labels = sorted(set(la) | set(lb))
    kappa = None
    if common and len(labels) > 1:
        from sklearn.metrics import cohen_kappa_score

        from galdesk.warncap import suppress

        with suppress(RuntimeWarning):
            k = float(cohen_kappa_score(la, lb, labels=labels))
        kappa = k if math.isfinite(k) else None
    return {
        "vetter_a": vetter_a,
        "vetter_b": vetter_b,
        "n_common": len(common),
        "p_observed": (sum(x == y for x, y in zip(la, lb)) / len(common)) if common else None,
        "kappa": kappa,
        "labels": labels,
        "conflicts": [{"id": k, "label_a": a[k], "label_b": b[k]} for k in common if a[k] != b[k]],
    }
