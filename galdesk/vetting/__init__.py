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

from galdesk.vetting.agreement import agreement
from galdesk.vetting.queue import build_queue
from galdesk.vetting.replay import Replay, decisions, vetters
from galdesk.vetting.schema import (
                                    ACTION_KINDS,
                                    DEFAULT_CLASSES,
                                    DEFAULT_FLAGS,
                                    QUEUE_ORDERS,
                                    REJECTED,
                                    VET_KINDS,
                                    LabelSchema,
                                    default_context,
                                    default_vetter,
)
from galdesk.vetting.session import VetSession

__all__ = ["LabelSchema", "Replay", "VetSession", "build_queue", "decisions", "agreement", "vetters",
           "default_vetter", "default_context", "QUEUE_ORDERS", "ACTION_KINDS", "VET_KINDS", "REJECTED",
           "DEFAULT_CLASSES", "DEFAULT_FLAGS"]
