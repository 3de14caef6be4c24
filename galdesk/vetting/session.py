"""A vetter's session: decisions, skips, flags, notes, undo and redo, each committed to the journal before the
call returns."""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np

from galdesk.project.journal import Journal, Record
from galdesk.project.results import as_project, load_clusters, load_predictions
from galdesk.vetting.queue import build_queue
from galdesk.vetting.replay import Replay
from galdesk.vetting.schema import (
    DECISION_ACTIONS,
    QUEUE_KIND,
    REJECTED,
    VET_KINDS,
    LabelSchema,
    default_context,
    default_vetter,
)

__all__ = ["VetSession"]


class VetSession:
    """One vetter's session on a project: decisions, undo/redo, resume.

    Every method that records something returns the :class:`~galdesk.project.journal.Record` *after* it is committed
    to disk; the window advances the card only then.

    Parameters
    ----------
    project : Project or path
    vetter : str, optional
        Default :func:`default_vetter`.
    schema : LabelSchema, optional
        Default: the project's stored schema (:meth:`LabelSchema.load`).
    """

    def __init__(self, project, vetter: str | None = None, schema: LabelSchema | None = None) -> None:
        self.project = as_project(project)
        self.vetter = (vetter or default_vetter()).strip()
        if not self.vetter:
            raise ValueError("the vetter's name must not be empty")
        self.schema = schema or LabelSchema.load(self.project)
        self._replay = Replay()
        self.refresh()

    # -- state ----------------------------------------------------------------------------------------------------
    @property
    def journal(self) -> Journal:
        return self.project.journal

    def refresh(self) -> None:
        """Re-read predictions, clusters and the object ids (after a new classification or clustering)."""
        self.predictions = load_predictions(self.project)
        self.clusters = load_clusters(self.project)
        self._context = default_context(self.project, self.predictions, self.clusters)
        objs = self.project.objects
        self._ids = set(np.asarray(objs["id"]).astype(str)) if len(objs) else set()
        self._pred_by_id: dict[str, tuple[str, float]] = {}
        if self.predictions is not None and len(objs):
            ids = np.asarray(objs["id"]).astype(str)
            conf = self.predictions.confidence
            for i, r in enumerate(self.predictions.rows):
                if 0 <= r < len(ids):
                    self._pred_by_id.setdefault(ids[r], (self.predictions.label(i), float(conf[i])))
        self._sync()

    def _sync(self) -> None:
        # pick up records appended since we last looked, by us or by another process
        self._replay.feed(self.journal.records(VET_KINDS, since=self._replay.last_seq))

    def prediction(self, object_id: str) -> tuple[str, float] | None:
        """(predicted class, its probability) for an object, or None."""
        return self._pred_by_id.get(str(object_id))

    def _check_id(self, object_id) -> str:
        oid = str(object_id)
        if oid not in self._ids:
            raise KeyError(f"{self.project.path}: no object {oid!r}")
        return oid

    def _append(self, kind: str, key: str, payload: dict, context: dict | None) -> Record:
        payload["context"] = {**self._context, **(context or {})}
        rec = self.journal.append(kind, key, payload, author=self.vetter)  # durable when it returns
        self._sync()
        return rec

    # -- actions ----------------------------------------------------------------------------------------------------
    def decide(self, object_id: str, label: str, note: str = "", flags: Iterable[str] = (),
               context: dict | None = None, action: str = "label") -> Record:
        """Label an object (a class of the schema, or ``"rejected"``).

        Parameters
        ----------
        object_id : str
        label : str
        note : str
            Replaces the object's note when not empty.
        flags : iterable of str
            Flags of the schema to set.
        context : dict, optional
            What was on screen: ``stretch``, ``limits``, ``model_id``, ``model_hash``, ``cut_version`` (anything
            else is kept too); missing keys default to :func:`default_context`.
        action : {"label", "accept", "reject"}

        Returns
        -------
        Record
            The committed journal record.
        """
        oid = self._check_id(object_id)
        if action not in DECISION_ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {DECISION_ACTIONS}")
        label = self.schema.check_label(label)
        if (label == REJECTED) != (action == "reject"):
            action = "reject" if label == REJECTED else ("label" if action == "reject" else action)
        flags = sorted({self.schema.check_flag(f) for f in flags})
        pred = self.prediction(oid)
        payload = {"action": action, "label": label, "note": str(note or ""), "flags": flags,
                   "pred_label": pred[0] if pred else None, "pred_prob": pred[1] if pred else None,
                   "schema_seq": self.schema.seq}
        return self._append("decision", oid, payload, context)

    def accept(self, object_id: str, note: str = "", flags: Iterable[str] = (),
               context: dict | None = None) -> Record:
        """Confirm the classifier's prediction; ValueError if the object has none or it is not in the schema."""
        oid = self._check_id(object_id)
        pred = self.prediction(oid)
        if pred is None:
            raise ValueError(f"{self.project.path}: object {oid!r} has no prediction to accept")
        if pred[0] not in self.schema.classes:
            raise ValueError(f"prediction {pred[0]!r} of {oid!r} is not a class of the label schema "
                             f"({', '.join(self.schema.classes)})")
        return self.decide(oid, pred[0], note=note, flags=flags, context=context, action="accept")

    def reject(self, object_id: str, note: str = "", flags: Iterable[str] = (),
               context: dict | None = None) -> Record:
        """Reject the object (bad data, not a galaxy, no class fits): label ``"rejected"``."""
        return self.decide(object_id, REJECTED, note=note, flags=flags, context=context, action="reject")

    def skip(self, object_id: str, context: dict | None = None) -> Record:
        """Pass over the object without deciding; it moves to the end of this vetter's queue."""
        return self._append("skip", self._check_id(object_id), {}, context)

    def flag(self, object_id: str, flag: str, on: bool = True, context: dict | None = None) -> Record:
        """Set (``on=True``) or clear one flag of the schema on the object."""
        oid = self._check_id(object_id)
        return self._append("flag", oid, {"flag": self.schema.check_flag(flag), "on": bool(on)}, context)

    def toggle_flag(self, object_id: str, flag: str, context: dict | None = None) -> Record:
        """Flip one flag (what a key press does)."""
        e = self.state(object_id)
        on = not (e is not None and flag in e["flags"])
        return self.flag(object_id, flag, on=on, context=context)

    def note(self, object_id: str, text: str, context: dict | None = None) -> Record:
        """Replace the object's note."""
        return self._append("note", self._check_id(object_id), {"note": str(text)}, context)

    def undo(self, context: dict | None = None) -> Record | None:
        """Revert this vetter's last action still in effect; returns the undo record (None if nothing to undo).

        The record's ``key`` is the object the window should go back to; ``payload["target"]`` the seq reverted.
        """
        self._sync()
        target = self._replay.undo_target(self.vetter)
        if target is None:
            return None
        return self._append("undo", target.key, {"target": target.seq, "target_kind": target.kind}, context)

    def redo(self, context: dict | None = None) -> Record | None:
        """Re-apply the last undone action; returns the redo record (None if nothing to redo)."""
        self._sync()
        target = self._replay.redo_target(self.vetter)
        if target is None:
            return None
        return self._append("redo", target.key, {"target": target.seq, "target_kind": target.kind}, context)

    @property
    def can_undo(self) -> bool:
        self._sync()
        return self._replay.undo_target(self.vetter) is not None

    @property
    def can_redo(self) -> bool:
        self._sync()
        return self._replay.redo_target(self.vetter) is not None

    # -- reading ----------------------------------------------------------------------------------------------------
    def current(self, include_undecided: bool = False) -> dict[str, dict]:
        """Object id -> this vetter's effective decision (see :meth:`Replay.effective`)."""
        self._sync()
        eff = self._replay.effective(self.vetter)
        if include_undecided:
            return dict(eff)
        return {k: v for k, v in eff.items() if v["label"] is not None}

    def state(self, object_id: str) -> dict | None:
        """This vetter's state of one object (label may be None), or None if untouched."""
        self._sync()
        return self._replay.effective(self.vetter).get(str(object_id))

    def history(self) -> list[Record]:
        """This vetter's vetting records, oldest first."""
        return self.journal.records(VET_KINDS, author=self.vetter)

    # -- queue and resume -------------------------------------------------------------------------------------------
    def queue(self, order: str | None = None, save: bool = True, **filters) -> list[str]:
        """This vetter's queue: objects not yet decided by them, skipped ones last.

        With ``order`` None the order and filters last saved by this vetter are used (``"ambiguous"`` when
        predictions exist, else ``"random"``, if none was saved). With ``save`` the choice is recorded so that
        reopening the project rebuilds the same queue.
        """
        saved = self.saved_queue_settings()
        if order is None:
            if saved is not None:
                order, filters = saved["order"], {**saved.get("filters", {}), **filters}
            else:
                order = "ambiguous" if self.predictions is not None else "random"
        settings = {"order": order, "filters": _jsonable_filters(filters)}
        if save and settings != saved:
            self.journal.append(QUEUE_KIND, self.vetter, settings, author=self.vetter)
        return build_queue(self.project, order, vetter=self.vetter, **filters)

    def saved_queue_settings(self) -> dict | None:
        """The queue order and filters this vetter chose last, or None."""
        recs = self.journal.records(QUEUE_KIND, key=self.vetter)
        return recs[-1].payload if recs else None

    def resume_position(self) -> dict:
        """Where to continue after reopening the project.

        Returns
        -------
        dict
            ``order``, ``filters`` (the saved queue settings), ``queue`` (ids still to do, rebuilt from them),
            ``next_id`` (first of the queue or None), ``last_id``/``last_seq`` (this vetter's last record),
            ``n_decided`` (objects with a label by this vetter).
        """
        saved = self.saved_queue_settings() or {}
        q = self.queue(save=False)
        last = self._replay.last_record(self.vetter)
        return {
            "order": saved.get("order", "ambiguous" if self.predictions is not None else "random"),
            "filters": saved.get("filters", {}),
            "queue": q,
            "next_id": q[0] if q else None,
            "last_id": last.key if last else None,
            "last_seq": last.seq if last else None,
            "n_decided": len(self.current()),
        }


def _jsonable_filters(filters: dict) -> dict:
    out = {}
    for k, v in filters.items():
        if isinstance(v, (set, tuple, np.ndarray)):
            v = sorted(v) if isinstance(v, set) else list(np.asarray(v).tolist())
        out[k] = v
    return json.loads(json.dumps(out, default=str))
