"""Vetting: the queue of objects to look at, the decisions taken on them, undo/redo, and agreement between vetters.

Everything a vetter does is a record in the project journal (:mod:`galdesk.project.journal`), appended and committed
(SQLite WAL, ``synchronous=FULL``) *before* the call returns, so a decision that the window has acknowledged
survives a crash, a ``kill -9`` or a power cut. Nothing is ever updated or deleted: undo and redo are records
too, and the current decision on each object is derived by replaying the records in order (:class:`Replay`).

Record kinds (``author`` = the vetter; every payload carries ``context``: model id/hash, stretch, limits and cut
version on screen when the record was made)

========== ============ ==================================================================================
kind       key          payload
========== ============ ==================================================================================
decision   object id    ``action`` ("label" | "accept" | "reject"), ``label`` (a class of the schema, or
                        ``"rejected"``), ``note``, ``flags``, ``pred_label``, ``pred_prob``, ``schema_seq``
skip       object id    ``{}`` — looked at, no decision; the object goes to the end of this vetter's queue
flag       object id    ``flag``, ``on`` (bool) — set or clear one flag of the schema
note       object id    ``note`` — replace the note
undo       object id    ``target`` — the seq of the action record it reverts
redo       object id    ``target`` — the seq of the action record it re-applies
========== ============ ==================================================================================

Other kinds written here: ``label_schema`` (key ``"project"``; the :class:`LabelSchema`, latest wins) and
``vet_queue`` (key = vetter; the queue order and filters last chosen, so reopening rebuilds the same queue).

Undo/redo are per vetter and behave like an editor's: ``undo`` reverts this vetter's last action record that is
still in effect; ``redo`` re-applies the last undone one; any new action clears the redo stack. See
``docs/vetting_and_export.md`` for the decisions taken.
"""

from __future__ import annotations

import getpass
import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from galdesk.project.journal import Journal, Record
from galdesk.project.results import StoredPredictions, as_project, load_clusters, load_predictions

__all__ = [
    "LabelSchema",
    "Replay",
    "VetSession",
    "build_queue",
    "decisions",
    "agreement",
    "vetters",
    "default_vetter",
    "default_context",
    "QUEUE_ORDERS",
    "ACTION_KINDS",
    "VET_KINDS",
    "REJECTED",
    "DEFAULT_CLASSES",
    "DEFAULT_FLAGS",
]

#: Label of a rejected object (never a class name).
REJECTED = "rejected"
#: Classes of a project without predictions and without a saved schema.
DEFAULT_CLASSES = ["elliptical", "spiral", "other"]
#: Flags of a new schema.
DEFAULT_FLAGS = ["interesting", "artefact", "recheck"]
#: Record kinds that undo/redo act on.
ACTION_KINDS = ("decision", "skip", "flag", "note")
#: Every record kind a vetting replay reads.
VET_KINDS = ACTION_KINDS + ("undo", "redo")
SCHEMA_KIND = "label_schema"
QUEUE_KIND = "vet_queue"
#: Orders :func:`build_queue` knows.
QUEUE_ORDERS = ("ambiguous", "suspect", "disagreement", "broad", "random")
_DECISION_ACTIONS = ("label", "accept", "reject")


def default_vetter() -> str:
    """The vetter's name: ``$GALDESK_VETTER``, else the login name, else ``"unknown"``."""
    name = os.environ.get("GALDESK_VETTER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def default_context(project, predictions: StoredPredictions | None = None, clusters=None) -> dict:
    """What a decision is taken against, when the caller (the window) does not say: model id/hash of the
    stored predictions, the project's display stretch and limits, the cluster cut version."""
    display = project.manifest.get("display", {}) if hasattr(project, "manifest") else {}
    return {
        "model_id": predictions.model_id if predictions else None,
        "model_hash": predictions.model_hash if predictions else None,
        "stretch": display.get("stretch"),
        "limits": display.get("limits"),
        "cut_version": clusters[2] if clusters else None,
    }


# ------------------------------------------------------------------------------------------------------------------
# label schema
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class LabelSchema:
    """The classes and flags a project's vetters choose from.

    Classes get the number keys 1..9 in order (a tenth class and beyond have no key). ``"rejected"`` is reserved.
    The schema is stored in the journal (kind ``label_schema``): changes are kept with their history and each
    decision records the ``schema_seq`` it was taken under.

    Parameters
    ----------
    classes : list of str
    flags : list of str
    seq : int or None
        Journal seq of the stored version (None: not stored, i.e. a default).
    """

    classes: list[str]
    flags: list[str] = field(default_factory=lambda: list(DEFAULT_FLAGS))
    seq: int | None = None

    def __post_init__(self) -> None:
        self.classes = [str(c).strip() for c in self.classes]
        self.flags = [str(f).strip() for f in self.flags]
        if not self.classes:
            raise ValueError("a label schema needs at least one class")
        for kind, names in (("class", self.classes), ("flag", self.flags)):
            if any(not n for n in names):
                raise ValueError(f"empty {kind} name in label schema")
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} names in label schema: {names}")
        if REJECTED in self.classes:
            raise ValueError(f"{REJECTED!r} is reserved for rejected objects and cannot be a class")

    @property
    def keys(self) -> dict[str, str]:
        """Number key -> class (``{"1": classes[0], ...}``, at most 9)."""
        return {str(i + 1): c for i, c in enumerate(self.classes[:9])}

    def key_for(self, label: str) -> str | None:
        """The number key of a class, or None."""
        for k, c in self.keys.items():
            if c == label:
                return k
        return None

    def label_for_key(self, key: str) -> str:
        """The class on a number key; KeyError if the key has none."""
        try:
            return self.keys[str(key)]
        except KeyError:
            raise KeyError(f"no class on key {key!r} (keys: {', '.join(self.keys)})") from None

    def check_label(self, label: str) -> str:
        """Return ``label`` if it is a class (or ``"rejected"``); ValueError naming the classes otherwise."""
        label = str(label).strip()
        if label in self.classes or label == REJECTED:
            return label
        raise ValueError(f"unknown label {label!r}; the schema's classes are: {', '.join(self.classes)}")

    def check_flag(self, flag: str) -> str:
        flag = str(flag).strip()
        if flag not in self.flags:
            raise ValueError(f"unknown flag {flag!r}; the schema's flags are: {', '.join(self.flags) or '(none)'}")
        return flag

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "flags": list(self.flags), "keys": self.keys}

    @classmethod
    def from_dict(cls, d: dict, seq: int | None = None) -> "LabelSchema":
        return cls(list(d["classes"]), list(d.get("flags", DEFAULT_FLAGS)), seq)

    @classmethod
    def default(cls, project) -> "LabelSchema":
        """From the predictions' class names, else :data:`DEFAULT_CLASSES`."""
        preds = load_predictions(project)
        names = [c for c in preds.class_names if c != REJECTED] if preds else []
        return cls(names or list(DEFAULT_CLASSES))

    @classmethod
    def load(cls, project) -> "LabelSchema":
        """The latest stored schema of the project, else :meth:`default`."""
        recs = project.journal.records(SCHEMA_KIND)
        if recs:
            return cls.from_dict(recs[-1].payload, recs[-1].seq)
        return cls.default(project)

    def save(self, project, author: str = "") -> Record:
        """Store this schema as the project's current one (a journal record); sets :attr:`seq`."""
        rec = project.journal.append(SCHEMA_KIND, "project", self.to_dict(), author=author or default_vetter())
        self.seq = rec.seq
        return rec


# ------------------------------------------------------------------------------------------------------------------
# replay
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class _VetterState:
    active: dict[int, Record] = field(default_factory=dict)  # action records in effect, by seq
    undone: dict[int, Record] = field(default_factory=dict)  # action records reverted by undo
    done: list[int] = field(default_factory=list)  # undo stack (seqs of action records, oldest first)
    redo: list[int] = field(default_factory=list)  # redo stack (last undone last)
    last: Record | None = None  # the vetter's last record of any vetting kind
    cache: dict | None = None


class Replay:
    """Derives every vetter's current decisions from the vetting records, in journal order.

    Feed it records with :meth:`feed` (all of them, or incrementally as they are appended); ask
    :meth:`effective` for one vetter's state of each object. An undo/redo record whose target is not in the
    expected state (possible only if two processes undo for the same vetter at once) is ignored.
    """

    def __init__(self) -> None:
        self.state: dict[str, _VetterState] = {}
        self.last_seq = 0

    @classmethod
    def from_journal(cls, journal: Journal) -> "Replay":
        r = cls()
        r.feed(journal.records(VET_KINDS))
        return r

    def feed(self, records: Iterable[Record]) -> None:
        for rec in records:
            if rec.seq <= self.last_seq:
                continue  # already seen
            self.last_seq = rec.seq
            st = self.state.setdefault(rec.author, _VetterState())
            st.cache = None
            st.last = rec
            if rec.kind in ACTION_KINDS:
                st.active[rec.seq] = rec
                st.done.append(rec.seq)
                st.redo.clear()  # a new action ends the redo chain, as in an editor
            elif rec.kind == "undo":
                t = int(rec.payload.get("target", -1))
                if t in st.active:
                    st.undone[t] = st.active.pop(t)
                    st.done.remove(t)
                    st.redo.append(t)
            elif rec.kind == "redo":
                t = int(rec.payload.get("target", -1))
                if t in st.undone:
                    st.active[t] = st.undone.pop(t)
                    st.done.append(t)
                    st.redo.remove(t)

    def vetters(self) -> list[str]:
        return sorted(self.state)

    def undo_target(self, vetter: str) -> Record | None:
        """The record an undo by ``vetter`` would revert now."""
        st = self.state.get(vetter)
        return st.active[st.done[-1]] if st and st.done else None

    def redo_target(self, vetter: str) -> Record | None:
        """The record a redo by ``vetter`` would re-apply now."""
        st = self.state.get(vetter)
        return st.undone[st.redo[-1]] if st and st.redo else None

    def last_record(self, vetter: str) -> Record | None:
        st = self.state.get(vetter)
        return st.last if st else None

    def effective(self, vetter: str) -> dict[str, dict]:
        """Object id -> this vetter's state of the object, from the action records in effect.

        Each value: ``id``, ``vetter``, ``label`` (None if only skipped/flagged/noted), ``action``, ``note``,
        ``flags`` (sorted list), ``skipped``, ``seq``/``time`` (of the decision in effect, else of the last
        record), ``last_seq``, ``pred_label``, ``pred_prob``, ``context``.
        """
        st = self.state.get(vetter)
        if st is None:
            return {}
        if st.cache is not None:
            return st.cache
        out: dict[str, dict] = {}
        # redo only ever re-applies records newer than everything in effect, so seq order = order of application
        for seq in sorted(st.active):
            rec = st.active[seq]
            e = out.get(rec.key)
            if e is None:
                e = out[rec.key] = {"id": rec.key, "vetter": vetter, "label": None, "action": None, "note": "",
                                    "flags": set(), "skipped": False, "seq": rec.seq, "time": rec.time,
                                    "last_seq": rec.seq, "pred_label": None, "pred_prob": None, "context": {}}
            p = rec.payload
            e["last_seq"] = rec.seq
            if rec.kind == "decision":
                e.update(label=p.get("label"), action=p.get("action"), seq=rec.seq, time=rec.time,
                         pred_label=p.get("pred_label"), pred_prob=p.get("pred_prob"),
                         context=p.get("context", {}), skipped=False)
                if p.get("note"):
                    e["note"] = p["note"]
                e["flags"].update(p.get("flags", ()))
            elif rec.kind == "skip":
                e["skipped"] = True
                if e["label"] is None:
                    e.update(seq=rec.seq, time=rec.time)
            elif rec.kind == "flag":
                (e["flags"].add if p.get("on", True) else e["flags"].discard)(p.get("flag"))
            elif rec.kind == "note":
                e["note"] = p.get("note", "")
        for e in out.values():
            e["flags"] = sorted(e["flags"])
        st.cache = out
        return out

    def combined(self, vetter: str | None = None) -> dict[str, dict]:
        """Object id -> the decision to report for it.

        With ``vetter``: that vetter's. Otherwise the most recent decision (highest seq) among all vetters, with
        ``n_vetters`` (how many have a label on it), ``vetters`` and ``conflict`` (True if their labels differ).
        Objects only skipped/flagged/noted are included with ``label`` None.
        """
        names = [vetter] if vetter is not None else self.vetters()
        out: dict[str, dict] = {}
        labels: dict[str, dict[str, str]] = {}
        for v in names:
            for oid, e in self.effective(v).items():
                if e["label"] is not None:
                    labels.setdefault(oid, {})[v] = e["label"]
                cur = out.get(oid)
                if cur is None or _rank(e) > _rank(cur):
                    out[oid] = e
        result = {}
        for oid, e in out.items():
            lab = labels.get(oid, {})
            result[oid] = dict(e, n_vetters=len(lab), vetters=sorted(lab), conflict=len(set(lab.values())) > 1)
        return result


def _rank(e: dict) -> tuple:
    # a labelled state beats a flag/note-only one; among equals the most recent wins
    return (e["label"] is not None, e["seq"])


def decisions(project, vetter: str | None = None, include_undecided: bool = False) -> dict[str, dict]:
    """Current decision per object id (replay of the journal); see :meth:`Replay.combined`.

    Parameters
    ----------
    project : Project or path
    vetter : str, optional
        One vetter's decisions; default: the latest decision of any vetter on each object.
    include_undecided : bool
        Also objects that were only skipped, flagged or noted (``label`` None).
    """
    project = as_project(project)
    out = Replay.from_journal(project.journal).combined(vetter)
    if not include_undecided:
        out = {k: v for k, v in out.items() if v["label"] is not None}
    return out


def vetters(project) -> list[str]:
    """Names of everyone who has vetting records in the project."""
    return as_project(project).journal.authors(VET_KINDS)


# ------------------------------------------------------------------------------------------------------------------
# the session
# ------------------------------------------------------------------------------------------------------------------
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
        if action not in _DECISION_ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {_DECISION_ACTIONS}")
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


# ------------------------------------------------------------------------------------------------------------------
# the queue
# ------------------------------------------------------------------------------------------------------------------
def build_queue(project, order: str = "ambiguous", *, classes: Iterable[str] | None = None,
                clusters: Iterable[int] | None = None, min_confidence: float | None = None,
                max_confidence: float | None = None, kind: str | None = None, vetter: str | None = None,
                exclude_decided: bool = True, seed: int = 0, catalog_column: str | None = None,
                label_map: dict | None = None, limit: int | None = None) -> list[str]:
    """The object ids to vet, in the chosen order.

    Parameters
    ----------
    project : Project or path
    order : {"ambiguous", "suspect", "disagreement", "broad", "random"}
        ``ambiguous``: highest classifier entropy first (ties: smallest top-1 minus top-2 margin).
        ``suspect``: the catalogue label differs from a confident prediction; largest
        ``p(predicted) - p(catalogue label)`` first. ``disagreement``: the prediction differs from the majority
        prediction of the object's cluster; purest clusters first, then most confident predictions.
        ``broad``: line fits that need a broad component, largest ``delta_bic`` first. ``random``: a seeded
        permutation of everything (an unbiased audit sample).
    classes : iterable of str, optional
        Keep objects predicted as one of these classes.
    clusters : iterable of int, optional
        Keep objects in these clusters.
    min_confidence, max_confidence : float, optional
        Keep objects whose top probability is within these bounds.
    kind : {"image", "spectrum"}, optional
    vetter : str, optional
        With ``exclude_decided``: leave out what this vetter decided (default: what anyone decided). Objects the
        vetter (anyone) skipped go to the end.
    exclude_decided : bool
    seed : int
        For ``random``.
    catalog_column : str, optional
        For ``suspect``: the object-table column holding the catalogue label; default: the catalogue column
        whose values match the most class names.
    label_map : dict, optional
        For ``suspect``: catalogue value -> class name (e.g. ``{"clockwise spiral": "spiral"}``).
    limit : int, optional
        At most this many ids.

    Returns
    -------
    list of str
        Object ids, each once.
    """
    project = as_project(project)
    if order not in QUEUE_ORDERS:
        raise ValueError(f"unknown queue order {order!r}; expected one of {', '.join(QUEUE_ORDERS)}")
    objs = project.objects
    n = len(objs)
    if n == 0:
        return []
    ids = np.asarray(objs["id"]).astype(str)
    preds = load_predictions(project)
    pred_of_row = np.full(n, -1)
    conf = np.full(n, np.nan)
    if preds is not None:
        ok = (preds.rows >= 0) & (preds.rows < n)
        pred_of_row[preds.rows[ok]] = np.flatnonzero(ok)
        conf[preds.rows[ok]] = preds.confidence[ok]
    clus = load_clusters(project)
    cluster_of_row = np.full(n, np.iinfo(np.int64).min)
    if clus is not None:
        ok = (clus[0] >= 0) & (clus[0] < n)
        cluster_of_row[clus[0][ok]] = clus[1][ok]

    # filters (row level)
    keep = np.ones(n, bool)
    if kind is not None:
        keep &= np.asarray(objs["kind"]) == kind
    if classes is not None:
        if preds is None:
            raise ValueError(f"{project.path}: no predictions, cannot filter by class")
        wanted = {str(c) for c in classes}
        unknown = wanted - set(preds.class_names)
        if unknown:
            raise ValueError(f"unknown class(es) {sorted(unknown)}; the model's classes are {preds.class_names}")
        pred_name = np.array([preds.label(i) if i >= 0 else "" for i in pred_of_row], dtype=object)
        keep &= np.isin(pred_name, list(wanted))
    if clusters is not None:
        if clus is None:
            raise ValueError(f"{project.path}: no clusters, cannot filter by cluster")
        keep &= np.isin(cluster_of_row, [int(c) for c in clusters])
    if min_confidence is not None:
        keep &= conf >= float(min_confidence)
    if max_confidence is not None:
        keep &= conf <= float(max_confidence)

    rows = _ordered_rows(project, order, objs, ids, preds, pred_of_row, conf, cluster_of_row, clus, keep, seed,
                         catalog_column, label_map)

    # unique ids, first occurrence wins
    seen: set[str] = set()
    queue: list[str] = []
    for r in rows:
        oid = str(ids[r])
        if oid not in seen:
            seen.add(oid)
            queue.append(oid)
    if exclude_decided:
        state = Replay.from_journal(project.journal).combined(vetter)
        decided = {k for k, v in state.items() if v["label"] is not None}
        skipped = {k for k, v in state.items() if v["label"] is None and v["skipped"]}
        queue = [q for q in queue if q not in decided and q not in skipped] + [q for q in queue if q in skipped]
    return queue[:limit] if limit is not None else queue


def _ordered_rows(project, order, objs, ids, preds, pred_of_row, conf, cluster_of_row, clus, keep, seed,
                  catalog_column, label_map) -> np.ndarray:
    if order == "random":
        rows = np.flatnonzero(keep)
        return rows[np.random.default_rng(seed).permutation(len(rows))]
    if order == "broad":
        fits = project.journal.latest("line_fit")
        cand = []
        for r in np.flatnonzero(keep):
            rec = fits.get(ids[r])
            if rec is not None and rec.payload.get("broad_needed"):
                d = _float(rec.payload.get("delta_bic"))
                cand.append((-(d if math.isfinite(d) else -np.inf), r))
        return np.array([r for _, r in sorted(cand)], dtype=int)
    if preds is None:
        raise ValueError(f"{project.path}: queue order {order!r} needs classifier predictions; run classify first")
    has = keep & (pred_of_row >= 0)
    idx = np.maximum(pred_of_row, 0)
    if order == "ambiguous":
        rows = np.flatnonzero(has)
        ent = preds.entropy[idx[rows]]
        mar = preds.margin[idx[rows]]
        return rows[np.lexsort((rows, mar, -ent))]
    if order == "suspect":
        col = catalog_column or _guess_catalog_column(objs, preds.class_names, label_map)
        if col is None:
            raise ValueError(f"{project.path}: no catalogue column with labels matching the classes "
                             f"{preds.class_names}; give catalog_column (and label_map)")
        if col not in objs.colnames:
            raise ValueError(f"{project.path}: no column {col!r} in the object table")
        cls_index = {c.lower(): k for k, c in enumerate(preds.class_names)}
        lmap = {str(k).strip().lower(): str(v) for k, v in (label_map or {}).items()}
        values = objs[col]
        mask = np.ma.getmaskarray(values)
        cand = []
        for r in np.flatnonzero(has):
            if mask[r]:
                continue
            v = str(values[r]).strip().lower()
            k = cls_index.get(lmap.get(v, v).lower())
            i = idx[r]
            if k is None or k == preds.pred[i]:
                continue
            cand.append((-(preds.prob[i, preds.pred[i]] - preds.prob[i, k]), r))
        return np.array([r for _, r in sorted(cand)], dtype=int)
    # disagreement
    if clus is None:
        raise ValueError(f"{project.path}: queue order 'disagreement' needs cluster labels; cluster first")
    both = has & (cluster_of_row != np.iinfo(np.int64).min)
    majority: dict[int, tuple[int, float]] = {}
    for c in np.unique(cluster_of_row[both]):
        members = np.flatnonzero(both & (cluster_of_row == c))
        if len(members) < 2:
            continue
        counts = np.bincount(preds.pred[idx[members]], minlength=len(preds.class_names))
        majority[int(c)] = (int(np.argmax(counts)), float(counts.max() / len(members)))
    cand = []
    for r in np.flatnonzero(both):
        m = majority.get(int(cluster_of_row[r]))
        if m is None or preds.pred[idx[r]] == m[0]:
            continue
        cand.append((-m[1], -conf[r], r))
    return np.array([t[-1] for t in sorted(cand)], dtype=int)


def _guess_catalog_column(objs, class_names, label_map) -> str | None:
    from galdesk.project.objects import BASE_COLUMNS

    names = {c.lower() for c in class_names} | {str(k).strip().lower() for k in (label_map or {})}
    best, best_hits = None, 0
    for col in objs.colnames:
        if col in BASE_COLUMNS and col != "spec_class":
            continue
        if np.asarray(objs[col]).dtype.kind not in "US":
            continue
        values = np.char.lower(np.char.strip(np.asarray(objs[col]).astype(str)))
        hits = int(np.isin(values, list(names)).sum())
        if hits > best_hits:
            best, best_hits = col, hits
    return best


def _float(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


# ------------------------------------------------------------------------------------------------------------------
# agreement between vetters
# ------------------------------------------------------------------------------------------------------------------
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
