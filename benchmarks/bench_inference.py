#!/usr/bin/env python
"""Inference throughput: galdesk's ``classify_stack`` versus a bare PyTorch loop over the same tensors.

    python benchmarks/bench_inference.py [--n 2000] [--batch 64] [--threads 2] [--model gz1-binary]

Uses the bundled model and the real GZ1 working-size stack when ../shared/data is there (random stamps of the
same shape otherwise). Prints images/s for

* bare-model   : ``model(x)`` + softmax under ``torch.inference_mode()`` on already-preprocessed inputs
* bare+prep    : the same loop, preprocessing each batch from the raw stack with the same torch operations
* galdesk      : ``classify_stack`` (preprocessing, progress, cancel checks, OOM guard, predictions object)

and the ratio galdesk / bare+prep (1.0 = no overhead), plus the optional bf16 and 8-view TTA modes. Each figure is
the best of ``--repeats`` runs (the machine is shared; the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _stack(n: int, data: Path) -> tuple[np.ndarray, str]:
    gz1 = data / "images" / "gz1"
    if (gz1 / "labels.csv").exists():
        from galdesk.ml.datasets import gz1_binary

        stack, _, _ = gz1_binary(gz1, size=64)
        reps = int(np.ceil(n / len(stack)))
        return np.concatenate([stack] * reps)[:n], "GZ1 cut-outs (64x64x3)"
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, 3, 64, 64)).astype(np.float32), "random stamps (64x64x3)"


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="gz1-binary")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args(argv)

    import torch

    from galdesk.ml.infer import classify_stack
    from galdesk.ml.models import ImageCNN
    from galdesk.ml.preprocess import preprocess
    from galdesk.ml.weights import LoadedModel, load_model

    torch.set_num_threads(args.threads)
    stack, what = _stack(args.n, Path(args.data))
    try:
        lm = load_model(args.model)
    except FileNotFoundError:
        m = ImageCNN(2, 3, 48, width=24).eval()
        spec = {"stack_size": 64, "crop_fraction": 0.5, "input_size": 48, "scaling": "standardize",
                "mean": [30.0] * 3, "std": [40.0] * 3}
        lm = LoadedModel(m, {"class_names": ["a", "b"], "preprocessing": spec, "architecture": m.config}, "random",
                         "")
    model, spec, b = lm.model.eval(), lm.preprocessing, args.batch
    raw = torch.as_tensor(stack)
    prepped = preprocess(stack, spec)

    def bare_model():
        out = []
        with torch.inference_mode():
            for i in range(0, len(prepped), b):
                out.append(torch.softmax(model(prepped[i:i + b]), 1))
        return torch.cat(out)

    def bare_prep():
        out = []
        with torch.inference_mode():
            for i in range(0, len(raw), b):
                out.append(torch.softmax(model(preprocess(raw[i:i + b], spec)), 1))
        return torch.cat(out)

    def galdesk(**kw):
        return lambda: classify_stack(stack, lm, batch_size=b, device="cpu", **kw)

    bare_model()  # warm-up (oneDNN primitive caches)
    ref = bare_prep().numpy()
    got = classify_stack(stack, lm, batch_size=b, device="cpu").probabilities
    assert np.allclose(ref, got, atol=1e-5), "galdesk and the bare loop disagree"
    bf = classify_stack(stack, lm, batch_size=b, device="cpu", cpu_bf16=True).probabilities
    n = len(stack)
    res = {"bare_model": n / _best(bare_model, args.repeats), "bare_prep": n / _best(bare_prep, args.repeats),
           "galdesk": n / _best(galdesk(), args.repeats),
           "galdesk_bf16": n / _best(galdesk(cpu_bf16=True), args.repeats),
           "galdesk_tta8": n / _best(galdesk(tta=True), max(1, args.repeats - 1))}
    print(f"{what}: {n} images, batch {b}, {args.threads} threads, torch {torch.__version__}, model {lm.id} "
          f"(input {spec['input_size']} px, {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters)")
    for k, v in res.items():
        print(f"  {k:<14} {v:8.0f} images/s")
    print(f"  ratio galdesk / bare+prep  = {res['galdesk'] / res['bare_prep']:.2f}")
    print(f"  ratio galdesk / bare model = {res['galdesk'] / res['bare_model']:.2f}")
    print(f"  bf16 speed-up {res['galdesk_bf16'] / res['galdesk']:.2f}x, "
          f"max |dp| vs fp32 = {np.abs(bf - got).max():.4f}")
    return res


if __name__ == "__main__":
    main()
