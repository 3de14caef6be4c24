"""Learn the bundled label-free shape invariance (galdesk.cluster.invariance) on the Galaxy Zoo 1 cut-outs, and
optionally measure it on gz1-binary's 731 held-out galaxies.

Like ``scripts/train_label_free.py``: the fit reads only the JPEG files and their object ids (never
``gz1_label``/``gz1_class``) and leaves out the 731 galaxies of the bundled classifier's test split
(``split.ids.test`` in resources/models/gz1-binary.json). ``--evaluate`` then reads the labels of those 731 only, to
score: each cluster of a global Ward cut (4 turned copies, as the CLI's default) mapped to its majority class,
elliptical vs the rest, at 10/20/30/40 clusters and for the rotation-consistency suggestion; next to it the same
with plain standardisation + PCA (``descriptors:pca``) and with the invariance learned on the 731 themselves
(``descriptors:project``).

    python scripts/fit_shape_invariance.py --evaluate      # writes resources/label_free/gz1-shape-invariance.*

About a minute on one core for the fit (4,257 galaxies x 8 augmented copies at 64 px).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_label_free import DEFAULT_DATA, _project, evaluate, held_out_labels, held_out_split  # noqa: E402

BUNDLED_PATH = ROOT / "resources" / "label_free" / "gz1-shape-invariance.safetensors"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--views", type=int, default=8, help="augmented copies per galaxy")
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="ingest processes")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the ingested projects here")
    ap.add_argument("--output", type=Path, default=BUNDLED_PATH)
    ap.add_argument("--evaluate", action="store_true", help="score on gz1-binary's 731 held-out galaxies")
    args = ap.parse_args(argv)

    from galdesk.cluster.features import stack_and_rows
    from galdesk.cluster.invariance import learn_invariance, save_invariance
    from galdesk.tasks import ConsoleContext

    train_rows, test_rows = held_out_split(args.data)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="galdesk-invariance-"))
    print(f"learning on {len(train_rows)} galaxies (the {len(test_rows)} held-out ones excluded); work in {work}")
    t0 = time.monotonic()
    project = _project(train_rows, args.data, work / f"train{len(train_rows)}", args.workers)
    try:
        _, stack = stack_and_rows(project, 3)
        proj = learn_invariance(stack, n_views=args.views, sample=len(train_rows), n_components=args.components,
                                reg=args.reg, seed=args.seed, ctx=ConsoleContext())
        size = int(stack.shape[-1])
    finally:
        project.close()
    extra = {"id": args.output.stem, "description": "Label-free linear invariance of the shape descriptors "
                                                    "(galdesk.cluster.invariance), learned from augmented copies",
             "data": {"source": "Galaxy Zoo 1 SDSS gri JPEG cut-outs (../shared/data/images/gz1)",
                      "galaxies": proj.card["n_galaxies"], "working_size_px": size,
                      "excluded": "the 731 galaxies of gz1-binary's test split (split.ids.test); its training "
                                  "and validation galaxies, and those without a binary label, are in",
                      "labels_read": False},
             "reproduce": "python scripts/fit_shape_invariance.py --evaluate [--data .../shared/data/images/gz1] "
                          "(writes resources/label_free/ unless --output; compare the card's fingerprint)"}
    saved = save_invariance(args.output, proj, extra)
    print(f"saved {args.output} ({saved['n_galaxies']} galaxies, {saved['n_components']} directions, "
          f"top eigenvalues {[round(float(v), 1) for v in proj.eigenvalues[:4]]}) in {time.monotonic() - t0:.0f} s")
    if args.evaluate:
        labels = held_out_labels(args.data, test_rows)
        held = _project(test_rows, args.data, work / "test", args.workers)
        models = ["descriptors:pca", "descriptors:project"]
        if args.output.resolve() == BUNDLED_PATH.resolve():
            models.insert(0, "descriptors")
        metrics = {}
        try:
            for m in models:
                metrics[m] = evaluate(held, m, labels)
                print(m, json.dumps(metrics[m]), flush=True)
        finally:
            held.close()
        if "descriptors" in metrics:          # the card records what the bundled file scores, and how it was measured
            card_path = args.output.with_suffix(".json")
            saved["metrics"] = {"held_out": {"galaxies": "gz1-binary split.ids.test (731, base rate "
                                                         f"{metrics['descriptors']['base_rate']:.3f})",
                                             "measure": "two-group (elliptical vs the rest) accuracy of majority-"
                                                        "label clusters: global Ward cuts and the suggested cuts",
                                             **{m: metrics[m] for m in models}}}
            card_path.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
