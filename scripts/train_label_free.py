"""Train label-free SimCLR features (galdesk.ml.contrastive) on the Galaxy Zoo 1 cut-outs, and optionally measure
them on gz1-binary's 731 held-out galaxies.

Training reads only the JPEG files and their object ids (never ``gz1_label``/``gz1_class``) and leaves out the 731
galaxies of the bundled classifier's test split (``split.ids.test`` in resources/models/gz1-binary.json), so that
``--evaluate`` scores galaxies the network never saw. The labels are read only by ``--evaluate``: each cluster of a
global Ward cut (standardise + PCA + Ward, :func:`galdesk.cluster.cluster_project`, 4 turned copies as the CLI's
default) is mapped to its majority class, elliptical vs everything else, and the two-group accuracy is printed at
10/20/30/40 clusters (and of the rotation-consistency suggestion).

    python scripts/train_label_free.py --epochs 30 --input-size 48 --output simclr-gz1.safetensors --evaluate

The data are expected in ../shared/data/images/gz1 (``--data``); projects are ingested into a temporary folder
(``--workdir`` to keep them).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "images" / "gz1"


def _catalog(rows: list[dict], root: Path, dest: Path) -> Path:
    """A catalogue of object ids and files only: no labels reach the projects."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["objid", "file"])
        for r in rows:
            w.writerow([r["objid"], str(root / r["file"])])
    return dest


def _project(rows: list[dict], root: Path, where: Path, workers: int):
    from galdesk.project import Project
    from galdesk.services.ingest import ingest
    from galdesk.tasks import ConsoleContext

    if not (where.parent / (where.name + ".galdesk")).exists():
        ingest([], where, catalog=_catalog(rows, root, where.parent / f"{where.name}.csv"), workers=workers,
               ctx=ConsoleContext())
    return Project.open(where.parent / (where.name + ".galdesk"))


def held_out_split(data: Path) -> tuple[list[dict], list[dict]]:
    """``(rows to learn from, held-out rows)`` of the GZ1 cut-outs in ``data``: object ids and files only (no label
    column is kept), the held-out ones being gz1-binary's test split (``split.ids.test`` in its card)."""
    card = json.loads((ROOT / "resources" / "models" / "gz1-binary.json").read_text(encoding="utf-8"))
    test_ids = set(map(str, card["split"]["ids"]["test"]))
    with open(data / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [{"objid": r["objid"], "file": r["file"]} for r in csv.DictReader(f)]   # no label columns kept
    return [r for r in rows if r["objid"] not in test_ids], [r for r in rows if r["objid"] in test_ids]


def held_out_labels(data: Path, held: list[dict]) -> dict[str, str]:
    """``{objid: gz1_label}`` of the held-out rows only (read for scoring, never for learning)."""
    ids = {r["objid"] for r in held}
    with open(data / "labels.csv", newline="", encoding="utf-8") as f:
        return {r["objid"]: r["gz1_label"] for r in csv.DictReader(f) if r["objid"] in ids}


def evaluate(project, model_path: str, labels: dict[str, str], ks=(10, 20, 30, 40)) -> dict:
    """Two-group (elliptical vs the rest) accuracy of majority-class clusters at global cuts of ``ks`` clusters and
    of the suggested cuts."""
    import numpy as np

    from galdesk.cluster import cluster_project

    cm = cluster_project(project, model=model_path, rotations=4, save=False)
    ids = np.asarray(project.objects["id"]).astype(str)[cm.rows]
    y = np.array([labels[i] == "elliptical" for i in ids])

    def acc(cuts):
        lab = cm.labels(cm.cut(cuts))
        right = sum(max(y[lab == c].sum(), (~y[lab == c]).sum()) for c in np.unique(lab))
        return float(right / len(y)), int(np.unique(lab).size)

    out = {"n": int(len(y)), "base_rate": float(max(y.mean(), 1 - y.mean()))}
    for k in ks:
        out[str(k)] = acc(cm.cuts_for(n_clusters=k))[0]
    sug = cm.suggest(threshold=0.8)
    a, n = acc(sug.cuts)
    out["suggested"] = {"clusters": n, "accuracy": a}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--input-size", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N galaxies only (a quick check)")
    ap.add_argument("--workers", type=int, default=2, help="ingest processes")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the ingested projects here")
    ap.add_argument("--output", type=Path, default=Path("simclr-gz1.safetensors"))
    ap.add_argument("--evaluate", action="store_true", help="score on gz1-binary's 731 held-out galaxies")
    args = ap.parse_args(argv)

    import torch

    from galdesk.ml.contrastive import train_project_contrastive
    from galdesk.tasks import ConsoleContext

    if args.device in (None, "cpu"):
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    train_rows, test_rows = held_out_split(args.data)
    train_rows = train_rows[:args.limit]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="galdesk-simclr-"))
    print(f"training on {len(train_rows)} galaxies (the {len(test_rows)} held-out ones excluded); work in {work}")
    t0 = time.monotonic()
    project = _project(train_rows, args.data, work / f"train{len(train_rows)}", args.workers)
    try:
        path = train_project_contrastive(project, output=args.output, epochs=args.epochs, ctx=ConsoleContext(),
                                         seed=args.seed, device=args.device, input_size=args.input_size,
                                         batch_size=args.batch_size, lr=args.lr, temperature=args.temperature,
                                         width=args.width, depth=args.depth,
                                         on_epoch=lambda r: print(f"epoch {r['epoch']}: loss {r['loss']:.3f} "
                                                                  f"({r['seconds']:.0f} s)", flush=True))
    finally:
        project.close()
    saved = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    print(f"saved {path} after {time.monotonic() - t0:.0f} s; loss by epoch:",
          " ".join(f"{r['loss']:.3f}" for r in saved["history"]))
    if args.evaluate:
        labels = held_out_labels(args.data, test_rows)
        held = _project(test_rows, args.data, work / "test", args.workers)
        try:
            print(json.dumps(evaluate(held, path, labels), indent=2))
        finally:
            held.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
