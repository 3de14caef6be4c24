"""Compare galdesk's default line fit with the pPXF multi-library reference (../shared/data/reference/ppxf_multilib).

Usage::

    python scripts/validate_multilib.py [--data ../shared/data] [--jobs 2] [--markdown]

Fits every spectrum of the reference with ``FitConfig()`` (no options, as a user would), and prints one row per
reference line: reference flux (median of three SSP libraries) ± sigma_total, galdesk flux, the difference and
whether it passes the tolerance of the reference's README (forbidden lines 10 % or 2σ; emission-regime Balmer
lines with S/N ≥ 10: Hα 8 %, Hβ 10 %, Hγ 20 %; early types and S/N < 10: 2σ_total), then the broad-line verdicts
side by side and Hγ/Hβ. The same rules are asserted by ``tests/test_lines_multilib.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))
from multilib_reference import compare, load_reference, verdict_rows  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables (for docs/lines_validation.md)")
    args = ap.parse_args(argv)

    from galdesk.lines.batch import fit_many
    from galdesk.lines.config import FitConfig

    ref = load_reference(args.data)
    files = sorted({r["file"] for r in ref["lines"]})
    fits = fit_many([str(Path(args.data) / f) for f in files], FitConfig(), n_jobs=args.jobs)
    by_file = {f: sf.to_dict() for f, sf in zip(files, fits)}
    rows = compare(ref, by_file)
    sep = " | " if args.markdown else "  "
    if args.markdown:
        print("| spectrum | regime | line | reference | galdesk | Δ | Δ/σ | pass |")
        print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = ("✓" if r["ok"] else "✗ " + r["rule"]) + ("" if r["kind"] == "narrow" else f" ({r['kind']})")
        cells = [r["spectrum"], r["regime"], r["line"], f"{r['ref']:.1f} ± {r['sigma']:.1f}",
                 "—" if r["ours"] is None else f"{r['ours']:.1f}",
                 "—" if r["rel"] is None else f"{100 * r['rel']:+.1f} %",
                 "—" if r["nsig"] is None else f"{r['nsig']:+.1f}", mark]
        print(("| " if args.markdown else "") + sep.join(cells) + (" |" if args.markdown else ""))
    for kind in ("narrow", "broad-line", "wing"):
        sub = [r for r in rows if r["kind"] == kind]
        print(f"\n{kind}: {sum(r['ok'] for r in sub)}/{len(sub)} lines within the tolerances")
    print()
    verdicts = verdict_rows(ref, by_file)
    if args.markdown:
        print("| " + " | ".join(verdicts[0]) + " |")
        print("|" + "---|" * len(verdicts[0]))
    for v in verdicts:
        print(("| " if args.markdown else "") + sep.join("—" if x is None else str(x) for x in v.values())
              + (" |" if args.markdown else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
