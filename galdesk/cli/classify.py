"""``galdesk train`` and ``galdesk classify``: image CNNs on a project's cut-outs."""

from __future__ import annotations

from galdesk.cli.common import DEVICES, EXIT_OK, device_option, fail, message, print_json
from galdesk.ml import DEFAULT_MODEL

__all__ = ["add_parsers", "add_classify_options", "cmd_classify", "cmd_train"]



def cmd_classify(args) -> int:
    from galdesk.ml.service import classify_project, parse_label_map
    from galdesk.project import ProjectError
    from galdesk.tasks import ConsoleContext

    try:
        if getattr(args, "scheduler", None):   # galdesk batch classify: on a Dask cluster
            from galdesk.services.batch import classify_batch

            out = classify_batch(args.project, args.model, args.scheduler, ctx=ConsoleContext(quiet=args.json),
                                 n_workers=args.workers, device=device_option(args.device), tta=args.tta,
                                 label_column=args.label_column, label_map=parse_label_map(args.label_map),
                                 chunk=args.chunk)
        else:
            out = classify_project(args.project, model=args.model, device=device_option(args.device),
                                   label_column=args.label_column, label_map=parse_label_map(args.label_map),
                                   tta=args.tta, ctx=ConsoleContext(quiet=args.json))
    except (ProjectError, FileNotFoundError, KeyError, ValueError) as exc:
        return fail("classify", message(exc))
    if args.json:
        print_json({k: out[k] for k in ("classified", "device", "model", "metrics", "model_hash", "class_names",
                                        "skipped", "suspects")})
    else:
        print(f"classified {out['classified']} objects with {out['model']} on {out['device']}")
        m = out["metrics"]
        if m:
            print(f"against {args.label_column}: accuracy {_num(m.get('accuracy'))}, ROC AUC {_num(m.get('roc_auc'))}, "
                  f"n_labelled {m['n_labelled']}; {len(out['suspects'])} suspect label(s)")
    return EXIT_OK


def cmd_train(args) -> int:
    from galdesk.ml.service import parse_label_map, train_project
    from galdesk.ml.train import TrainConfig
    from galdesk.project import ProjectError
    from galdesk.tasks import ConsoleContext

    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, device=device_option(args.device))
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    try:
        out = train_project(args.project, args.label_column, output=args.output, class_names=classes,
                            label_map=parse_label_map(args.label_map), config=cfg,
                            ctx=ConsoleContext(quiet=args.json), resume_from=args.resume)
    except (ProjectError, FileNotFoundError, KeyError, ValueError) as exc:
        return fail("train", message(exc))
    if args.json:
        print_json({k: v for k, v in out.items() if k != "history"})
    else:
        test = (out["metrics"] or {}).get("test") or {}
        print(f"model saved to {out['model']} (best epoch {out['best_epoch']}); test accuracy "
              f"{_num(test.get('accuracy'))}, ROC AUC {_num(test.get('roc_auc'))}")
    return EXIT_OK


def _num(value) -> str:
    """A metric as a terminal shows it: three decimals (the JSON keeps every digit)."""
    return f"{value:.3f}" if isinstance(value, (int, float)) else str(value)


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train an image CNN on a project's labelled cut-outs")
    t.add_argument("project")
    t.add_argument("--label-column", required=True, help="catalogue column holding the class of each object")
    t.add_argument("-o", "--output", help="model file (.safetensors; default PROJECT/models/COLUMN.safetensors)")
    t.add_argument("--classes", help="comma-separated class names (default: the column's distinct values)")
    t.add_argument("--label-map", help="catalogue value=class pairs, comma-separated "
                                       "(e.g. spiral_clockwise=spiral,edge_on_disk=spiral)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--resume", help="checkpoint to resume from")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("classify", help="classify a project's cut-outs with the bundled or your own model")
    add_classify_options(c)
    c.set_defaults(func=cmd_classify)


def add_classify_options(c) -> None:
    """The options of ``classify``, shared with ``batch classify``."""
    c.add_argument("project")
    c.add_argument("--model", default=DEFAULT_MODEL, help=f"bundled name or model file (default {DEFAULT_MODEL})")
    c.add_argument("--device", default="auto", choices=DEVICES)
    c.add_argument("--label-column", help="catalogue column to compute metrics and suspect labels against")
    c.add_argument("--label-map", help="catalogue value=class pairs, comma-separated")
    c.add_argument("--tta", action="store_true", help="average the 8 rotations/flips (slower)")
    c.add_argument("--json", action="store_true")
