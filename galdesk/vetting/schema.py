"""Vetting vocabulary: record kinds, the reserved label, default classes and flags, the label schema, and the
vetter's name and on-screen context recorded with each decision. See :mod:`galdesk.vetting` for the record kinds."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

from galdesk.project.journal import Record
from galdesk.project.results import StoredPredictions, load_predictions

__all__ = ["REJECTED", "DEFAULT_CLASSES", "DEFAULT_SPECTRUM_CLASSES", "DEFAULT_FLAGS", "ACTION_KINDS", "VET_KINDS",
           "SCHEMA_KIND", "QUEUE_KIND",
           "QUEUE_ORDERS", "DECISION_ACTIONS", "LabelSchema", "default_vetter", "default_context"]

#: Label of a rejected object (never a class name).
REJECTED = "rejected"
#: Classes of a project without predictions and without a saved schema.
DEFAULT_CLASSES = ["elliptical", "spiral", "other"]
#: Classes of a project of spectra only (without predictions and a saved schema): the BPT classes of the emission
#: lines (Kewley et al. 2006), a broad-line AGN, and galaxies without emission lines.
DEFAULT_SPECTRUM_CLASSES = ["star-forming", "composite", "Seyfert", "LINER", "broad-line AGN", "passive", "other"]
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
#: Actions of a ``decision`` record.
DECISION_ACTIONS = ("label", "accept", "reject")


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
    spectrum_classes : list of str or None
        Classes of the spectra in a project that holds images and spectra (their number keys are these when a
        spectrum is shown); None: ``classes`` for every object.
    """

    classes: list[str]
    flags: list[str] = field(default_factory=lambda: list(DEFAULT_FLAGS))
    seq: int | None = None
    spectrum_classes: list[str] | None = None

    def __post_init__(self) -> None:
        self.classes = [str(c).strip() for c in self.classes]
        self.flags = [str(f).strip() for f in self.flags]
        if self.spectrum_classes is not None:
            self.spectrum_classes = [str(c).strip() for c in self.spectrum_classes] or None
        if not self.classes:
            raise ValueError("a label schema needs at least one class")
        for kind, names in (("class", self.classes), ("flag", self.flags), ("class", self.spectrum_classes or [])):
            if any(not n for n in names):
                raise ValueError(f"empty {kind} name in label schema")
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} names in label schema: {names}")
        if REJECTED in self.classes or REJECTED in (self.spectrum_classes or []):
            raise ValueError(f"{REJECTED!r} is reserved for rejected objects and cannot be a class")

    @property
    def keys(self) -> dict[str, str]:
        """Number key -> class (``{"1": classes[0], ...}``, at most 9)."""
        return {str(i + 1): c for i, c in enumerate(self.classes[:9])}

    def classes_for(self, kind: str | None) -> list[str]:
        """The classes of an object of ``kind`` ("image", "spectrum"): the spectra's own in a mixed schema."""
        return self.spectrum_classes if kind == "spectrum" and self.spectrum_classes else self.classes

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
        if label in self.classes or label in (self.spectrum_classes or []) or label == REJECTED:
            return label
        known = ", ".join(self.classes) + (f"; for spectra: {', '.join(self.spectrum_classes)}"
                                           if self.spectrum_classes else "")
        raise ValueError(f"unknown label {label!r}; the schema's classes are: {known}")

    def check_flag(self, flag: str) -> str:
        flag = str(flag).strip()
        if flag not in self.flags:
            raise ValueError(f"unknown flag {flag!r}; the schema's flags are: {', '.join(self.flags) or '(none)'}")
        return flag

    def to_dict(self) -> dict:
        out = {"classes": list(self.classes), "flags": list(self.flags), "keys": self.keys}
        if self.spectrum_classes:
            out["spectrum_classes"] = list(self.spectrum_classes)
        return out

    @classmethod
    def from_dict(cls, d: dict, seq: int | None = None) -> "LabelSchema":
        return cls(list(d["classes"]), list(d.get("flags", DEFAULT_FLAGS)), seq, d.get("spectrum_classes"))

    @classmethod
    def default(cls, project) -> "LabelSchema":
        """From the predictions' class names, else :data:`DEFAULT_SPECTRUM_CLASSES` for a project of spectra only,
        else :data:`DEFAULT_CLASSES`; a project with images and spectra also gets the spectral classes for its
        spectra (:attr:`spectrum_classes`)."""
        preds = load_predictions(project)
        names = [c for c in preds.class_names if c != REJECTED] if preds else []
        if not names and project.n_spectra and not project.n_images:
            names = list(DEFAULT_SPECTRUM_CLASSES)
        mixed = project.n_spectra and project.n_images
        return cls(names or list(DEFAULT_CLASSES), spectrum_classes=list(DEFAULT_SPECTRUM_CLASSES) if mixed else None)

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
