"""``galdesk vet`` and ``galdesk vet-log``: vetting decisions from the terminal, into the same journal as the
window's Vet tab."""

from __future__ import annotations

from galdesk.cli.common import EXIT_OK, fail, print_json

__all__ = ["add_parsers", "cmd_vet", "cmd_vet_log"]


def _fail(message: str) -> int:
    return fail("vet", message)


def _open_for_cli(path):
    from galdesk.project import Project, ProjectError

    try:
        return Project.open(path), None
    except ProjectError as exc:
        return None, str(exc)


def cmd_vet(args) -> int:
    """``galdesk vet PROJECT --id ID --label LABEL [--note TEXT] [--vetter NAME] [--flag F] [--json]``.

    ``LABEL`` is a class of the schema, a number key (1-9), or ``accept`` (the prediction), ``reject``,
    ``skip``, ``undo`` or ``redo`` (the latter two ignore ``--id``). Same journal, same record as the window.
    """
    from galdesk.vetting import VetSession

    low = str(args.label).strip().lower()
    if getattr(args, "id", None) is None and low not in ("undo", "redo"):
        return _fail(f"{args.project}: --id is required with --label {args.label}")
    proj, err = _open_for_cli(args.project)
    if proj is None:
        return _fail(err)
    try:
        s = VetSession(proj, vetter=getattr(args, "vetter", None))
        label = str(args.label).strip()
        note = getattr(args, "note", None) or ""
        flags = getattr(args, "flag", None) or []
        if low == "undo":
            rec = s.undo()
        elif low == "redo":
            rec = s.redo()
        elif low == "accept":
            rec = s.accept(args.id, note=note, flags=flags)
        elif low == "reject":
            rec = s.reject(args.id, note=note, flags=flags)
        elif low == "skip":
            rec = s.skip(args.id)
        else:
            kind = str(proj.objects["kind"][proj.find(args.id)])
            classes = s.schema.classes_for(kind)
            if label.isdigit() and label not in classes and 0 < int(label) <= min(len(classes), 9):
                label = classes[int(label) - 1]    # a number key: the classes of that kind of object
            rec = s.decide(args.id, label, note=note, flags=flags)
        if rec is None:
            return _fail(f"{proj.path}: nothing to {low} for vetter {s.vetter!r}")
        state = s.state(rec.key)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return _fail(msg if str(proj.path) in str(msg) else f"{proj.path}: {msg}")
    finally:
        proj.close()
    if getattr(args, "json", False):
        print_json({"record": rec.to_dict(), "current": state})
    else:
        lab = state["label"] if state and state["label"] is not None else "(none)"
        print(f"{proj.path}: #{rec.seq} {rec.kind} {rec.key} by {rec.author}; current label: {lab}")
    return EXIT_OK


def cmd_vet_log(args) -> int:
    """``galdesk vet-log PROJECT [--vetter NAME] [--json]``: every vetting record, the current decisions and,
    with two or more vetters, their agreement."""
    from galdesk.vetting import VET_KINDS, Replay, agreement

    proj, err = _open_for_cli(args.project)
    if proj is None:
        return fail("vet-log", err)
    try:
        who = getattr(args, "vetter", None)
        recs = proj.journal.records(VET_KINDS, author=who)
        rep = Replay.from_journal(proj.journal)
        names = [who] if who else rep.vetters()
        current = rep.combined(who)
        pairs = []
        if len(names) > 1:
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    pairs.append(agreement(proj, a, b))
    finally:
        proj.close()
    if getattr(args, "json", False):
        print_json({"project": str(proj.path), "records": [r.to_dict() for r in recs],
                     "current": {k: v for k, v in current.items() if v["label"] is not None},
                     "vetters": names, "agreement": pairs})
        return EXIT_OK
    for r in recs:
        p = r.payload
        what = p.get("label") or p.get("flag") or (f"#{p['target']}" if "target" in p else "")
        extra = f"  note: {p['note']}" if p.get("note") else ""
        print(f"{r.seq:>6}  {r.time}  {r.author:<12} {r.kind:<8} {r.key:<24} {what}{extra}")
    n_dec = sum(1 for v in current.values() if v["label"] is not None)
    print(f"{len(recs)} record(s); {n_dec} object(s) decided by {len(names)} vetter(s)")
    for a in pairs:
        k = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
        print(f"agreement {a['vetter_a']} vs {a['vetter_b']}: kappa {k} on {a['n_common']} common object(s), "
              f"{len(a['conflicts'])} conflict(s)")
    return EXIT_OK


def add_parsers(subparsers) -> None:
    """Register ``vet`` and ``vet-log`` (``func`` set to the handler)."""
    v = subparsers.add_parser("vet", help="record one vetting decision in the project journal")
    v.add_argument("project")
    v.add_argument("--id", default=None, help="object id")
    v.add_argument("--label", required=True,
                   help="a class, a number key 1-9, or accept | reject | skip | undo | redo")
    v.add_argument("--note", default="", help="free-text note")
    v.add_argument("--flag", action="append", default=[], help="a flag of the schema (repeatable)")
    v.add_argument("--vetter", default=None, help="your name (default $GALDESK_VETTER or the login name)")
    v.add_argument("--json", action="store_true", help="print the record as JSON")
    v.set_defaults(func=cmd_vet)

    g = subparsers.add_parser("vet-log", help="list vetting decisions (and agreement between vetters)")
    g.add_argument("project")
    g.add_argument("--vetter", default=None, help="only this vetter's records")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_vet_log)
