"""``galdesk cluster``: features, Ward tree and cuts of a project from the terminal."""

from __future__ import annotations

import sys

from galdesk.cli.common import DEVICES, EXIT_OK, device_option, fail, message, print_json

__all__ = ["add_parsers", "add_feature_options", "cmd_cluster", "cmd_features"]


def cmd_cluster(args) -> int:
    from galdesk.cluster.linkage import DIRECT_SECONDS  # noqa: PLC0415
    from galdesk.cluster.pipeline import apply_cuts, cluster_project  # noqa: PLC0415
    from galdesk.cluster.store import load_linkage  # noqa: PLC0415
    from galdesk.project import Project, ProjectError  # noqa: PLC0415
    from galdesk.tasks import ConsoleContext  # noqa: PLC0415

    ctx = ConsoleContext(quiet=args.json)
    clash = _option_clash(args)
    if clash:
        return fail("cluster", clash)
    try:
        project = Project.open(args.project)
    except ProjectError as exc:
        return fail("cluster", message(exc))
    try:
        cm = load_linkage(project) if args.reuse else None
        model = ("descriptors:project" if args.train else "descriptors") if args.unsupervised else args.model
        if cm is not None and args.unsupervised and cm.info.get("model_id") != model:
            print(f"note: --reuse re-cuts the stored tree, made with {cm.info.get('model_id')!r}, not {model!r}; "
                  "leave out --reuse to cluster anew", file=sys.stderr)
        if cm is None and args.train_vqvae:
            from galdesk.ml.vqvae import train_project_vqvae  # noqa: PLC0415

            model = train_project_vqvae(project, epochs=args.epochs or 10, seed=args.seed, ctx=ctx,
                                        device=device_option(args.device))
            ctx.restart_clock()
        elif cm is None and args.train_contrastive:
            from galdesk.ml.contrastive import train_project_contrastive  # noqa: PLC0415

            model = train_project_contrastive(project, epochs=args.epochs or 20, seed=args.seed, ctx=ctx,
                                              device=device_option(args.device))
            ctx.restart_clock()
        if cm is None:
            cm = cluster_project(project, model=model, rotations=args.rotations, average=args.average,
                                 n_components=args.components, max_direct=args.max_direct, n_micro=args.micro,
                                 direct_seconds=DIRECT_SECONDS if args.direct_seconds is None else args.direct_seconds,
                                 seed=args.seed, device=device_option(args.device), ctx=ctx,
                                 workers=max(1, args.workers))
        suggestion = None
        if args.distance is not None:
            cuts = cm.cuts_for(distance=args.distance)
        elif args.n_clusters is not None:
            cuts = cm.cuts_for(n_clusters=args.n_clusters)
        else:
            if not cm.has_copies:
                return fail("cluster", "--suggest needs rotated copies (--rotations 4 or 8); or give "
                                       "--n-clusters / --distance")
            suggestion = cm.suggest(threshold=args.threshold, min_size=args.min_size,
                                    max_clusters=args.max_clusters, ctx=ctx)
            cuts = suggestion.cuts
        out = apply_cuts(project, cm, cuts, author=args.author, source="suggest" if suggestion else "cli")
    except (FileNotFoundError, KeyError, ValueError) as exc:
        return fail("cluster", message(exc))
    finally:
        project.close()
    summary = {"project": str(project.path), **out, "info": cm.info, "linkage_id": cm.linkage_id,
               "n_leaves": cm.tree.n_leaves}
    if suggestion is not None:
        summary["suggestion"] = {"threshold": suggestion.threshold, "min_size": suggestion.min_size,
                                 "max_clusters": suggestion.max_clusters, "clusters": suggestion.clusters,
                                 "stopped_at_max_clusters": suggestion.stopped_at_cap,
                                 "scores": {str(k): v for k, v in suggestion.scores.items()}}
    if args.json:
        summary["cuts"] = {str(k): v for k, v in out["cuts"].items()}
        print_json(summary)
    else:
        _print_clusters(cm, out, suggestion)
    return EXIT_OK


def _option_clash(args) -> str | None:
    """Why ``galdesk cluster``'s options do not go together, or None."""
    if args.train and not args.unsupervised:
        return ("--train learns the label-free invariance with --unsupervised; for a network use --train-vqvae or "
                "--train-contrastive")
    if args.unsupervised and (args.train_vqvae or args.train_contrastive):
        return ("--unsupervised clusters the shape descriptors; --train-vqvae / --train-contrastive train a network "
                "and cluster its features: give one of them")
    return None


def _print_clusters(cm, out: dict, suggestion) -> None:
    """The text summary of ``galdesk cluster``: the tree, the cut, a note when the cap set the number, a table."""
    info = cm.info
    how = cm.tree.describe()
    print(f"{cm.n_objects} objects clustered ({how}; features: {info.get('model_id')} {info.get('layer')}, "
          f"{info.get('projection', 'PCA')}, {info.get('n_components')} dimensions); "
          f"cut version {out['cut_version']}: {out['n_clusters']} clusters"
          + (f", rotation consistency {out['consistency']:.3f}" if out["consistency"] is not None else ""))
    if suggestion is not None and suggestion.stopped_at_cap:
        print(f"note: the suggestion stopped at --max-clusters {suggestion.max_clusters} with splits left that "
              "rotation consistency allows; the number of clusters is the cap's, not the tree's (raise "
              "--max-clusters, or cut with --n-clusters K)")
    per = out["per_cluster"] or [None] * out["n_clusters"]
    print(f"{'cluster':>7}  {'size':>6}  consistency")
    for k, (size, score) in enumerate(zip(out["sizes"], per)):
        print(f"{k:>7}  {size:>6}  {'' if score is None else f'{score:.3f}'}")


def cmd_features(args) -> int:
    """``galdesk features`` (here) and ``galdesk batch features`` (``args.scheduler``: on a Dask cluster)."""
    from galdesk.project import Project, ProjectError  # noqa: PLC0415
    from galdesk.tasks import ConsoleContext  # noqa: PLC0415

    ctx = ConsoleContext(quiet=args.json)
    try:
        project = Project.open(args.project)
    except ProjectError as exc:
        return fail("features", message(exc))
    try:
        if getattr(args, "scheduler", None):
            from galdesk.services.batch import features_batch  # noqa: PLC0415

            rows, feats = features_batch(project, args.model, rotations=args.rotations or False,
                                         scheduler=args.scheduler, ctx=ctx, n_workers=args.workers,
                                         device=device_option(args.device), chunk=args.chunk)
        else:
            from galdesk.cluster.features import extract_features  # noqa: PLC0415

            rows, feats = extract_features(project, args.model, rotations=args.rotations or False, ctx=ctx,
                                           device=device_option(args.device))
        attrs = project.load_result("features")[1]
    except (FileNotFoundError, KeyError, ValueError) as exc:
        return fail("features", message(exc))
    finally:
        project.close()
    if not rows.size:
        return fail("features", f"{project.path}: no cut-outs with the bands the model {args.model} takes")
    out = {"project": str(project.path), "objects": int(rows.size), "dim": int(feats.shape[1]),
           "model": attrs.get("model_id"), "model_hash": attrs.get("model_hash"), "device": attrs.get("device"),
           "rotations": attrs.get("rotations")}
    if args.json:
        print_json(out)
    else:
        print(f"features of {out['objects']} objects ({out['dim']} numbers each, {out['model']}, averaged over "
              f"{out['rotations']} view(s), on {out['device']}) stored in {project.path / 'results/features.h5'}")
    return EXIT_OK


def add_feature_options(f) -> None:
    """The options of ``features``, shared with ``batch features``."""
    f.add_argument("project")
    f.add_argument("--model", default="gz1-binary",
                   help="image CNN whose penultimate layer gives the features (bundled name or file)")
    f.add_argument("--rotations", type=int, choices=[0, 4, 8], default=0,
                   help="average the features over 4 rotations or 8 rotations and flips (default 0: none)")
    f.add_argument("--device", default="auto", choices=DEVICES)
    f.add_argument("--json", action="store_true")


def add_parsers(sub) -> None:
    """Add ``cluster`` and ``features`` to the ``galdesk`` sub-command parsers."""
    f = sub.add_parser("features", help="penultimate-layer CNN features of a project's cut-outs, stored in the "
                                        "project (results/features.h5) for clustering and export")
    add_feature_options(f)
    f.set_defaults(func=cmd_features)
    c = sub.add_parser("cluster", help="Ward clustering of features (label-free shape descriptors, a CNN's, "
                                       "statmorph morphology) with cuts (global, per-branch or suggested by "
                                       "rotation consistency)")
    c.add_argument("project")
    feats = c.add_mutually_exclusive_group()
    feats.add_argument("--model", default="gz1-binary",
                       help="image CNN whose penultimate layer gives the features (bundled name or file; default "
                            "gz1-binary), 'descriptors' (as --unsupervised), 'descriptors:project' (as "
                            "--unsupervised --train), 'descriptors:pca' (the descriptors with standardisation + PCA), "
                            "or 'morphology' (the statmorph result of 'galdesk morphology'; turned copies of at most "
                            "200 galaxies are measured again)")
    feats.add_argument("--unsupervised", action="store_true",
                       help="cluster label-free features: rotation-invariant shape descriptors (light profile, "
                            "concentration, axis ratio, asymmetry, colours, spiral-arm Fourier structure) projected "
                            "on the directions that augmented copies of a galaxy leave alone (the bundled "
                            "gz1-shape-invariance, learned without labels; for cut-outs without 3 bands one is "
                            "learned on the project; below 200 galaxies, plain PCA, and the output says so); rotated "
                            "copies are turned off the pixel grid")
    train = c.add_mutually_exclusive_group()
    train.add_argument("--train", action="store_true",
                       help="with --unsupervised: learn the invariance on this project's own cut-outs (at most "
                            "2,000 of them, 8 augmented copies each; about a minute; at least 200 galaxies) instead "
                            "of the bundled one")
    train.add_argument("--train-vqvae", action="store_true",
                       help="train a VQ-VAE on the project's cut-outs (saved in PROJECT/models/vqvae.safetensors) "
                            "and cluster its features instead of a CNN's")
    train.add_argument("--train-contrastive", action="store_true",
                       help="train self-supervised SimCLR features on the project's cut-outs, without labels "
                            "(saved in PROJECT/models/contrastive.safetensors), and cluster them")
    c.add_argument("--epochs", type=int, default=None,
                   help="--train-vqvae / --train-contrastive: training epochs (default 10 / 20)")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--n-clusters", type=int, metavar="K", help="one global cut giving K clusters")
    how.add_argument("--distance", type=float, metavar="D", help="one global cut at Ward distance D")
    how.add_argument("--suggest", action="store_true",
                     help="per-branch cuts suggested by rotation consistency (the default)")
    c.add_argument("--rotations", type=int, choices=[0, 4, 8], default=4,
                   help="rotated/flipped copies for consistency (default 4; 0: none)")
    c.add_argument("--average", action="store_true", help="cluster features averaged over the rotations")
    c.add_argument("--components", type=int, default=32, help="PCA dimensions (default 32; the shape descriptors' "
                                                                   "invariance keeps its own 16)")
    c.add_argument("--threshold", type=float, default=0.8,
                   help="--suggest: smallest rotation consistency of a split's children (default 0.8)")
    c.add_argument("--min-size", type=int, default=None,
                   help="--suggest: smallest cluster (default max(3, 0.5%% of the objects))")
    c.add_argument("--max-clusters", type=int, default=None,
                   help="--suggest: at most this many clusters (default 50; one per 10 galaxies below 500)")
    c.add_argument("--direct-seconds", type=float, default=None,
                   help="exact Ward while it is predicted (timed on 2,000 of the objects) to take at most this many "
                        "seconds; above, through micro-clusters, galaxies still the leaves (default 5)")
    c.add_argument("--max-direct", type=int, default=None,
                   help="instead of --direct-seconds, a fixed switch: exact Ward up to this many objects (the same "
                        "tree on every machine)")
    c.add_argument("--micro", type=int, default=2_000, help="number of micro-clusters (default 2000)")
    c.add_argument("--reuse", action="store_true", help="only re-cut the stored tree (features, model and tree as "
                                                             "stored; recomputed when there is none)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="auto", choices=DEVICES)
    c.add_argument("--workers", type=int, default=1,
                   help="--model morphology: processes measuring the turned copies (default 1)")
    c.add_argument("--author", default="", help="name recorded with the cuts in the journal")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cluster)
