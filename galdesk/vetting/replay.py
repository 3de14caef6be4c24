"""Replaying the journal: the decision in effect on each object, per vetter and combined, with undo/redo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from galdesk.project.journal import Journal, Record
from galdesk.project.results import as_project
from galdesk.vetting.schema import ACTION_KINDS, VET_KINDS

__all__ = ["Replay", "decisions", "vetters"]


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
