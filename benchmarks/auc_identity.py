"""Per-scene AUC of every registered method with its defaults, against a saved reference.

The check of a behaviour-preserving refactor: run it once on the tree before
the change with ``--save``, once after with ``--compare``, and read the
largest absolute difference. Each method is built by
:func:`rednmf.detectors.registry.get_detector` with no parameter and fitted on
the raw cube of each benchmark scene (:func:`list_scenes`), as
``benchmarks/baselines_table.py`` does.

The deep methods (``DEEP_METHODS``: MSNet, BSDM) are left out unless named:
they train a network for minutes per scene on a CPU.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/auc_identity.py --save rednmf-bench/auc_ref.csv
    OPENBLAS_NUM_THREADS=1 python benchmarks/auc_identity.py --compare rednmf-bench/auc_ref.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from rednmf.detectors.registry import DEEP_METHODS, METHODS, get_detector
from rednmf.metrics import roc_auc

try:  # the module of the benchmark scenes since issue 13
    from rednmf.datasets import list_scenes, load_benchmark
except ImportError:  # the tree before issue 13
    from rednmf.data import list_scenes, load_benchmark  # type: ignore[no-redef]

FIELDS = ("scene", "method", "auc", "seconds")


def run(methods: list[str], scenes: list[Path]) -> list[dict[str, str]]:
    """Return one row ``{scene, method, auc, seconds}`` per scene and method."""
    rows: list[dict[str, str]] = []
    for path in scenes:
        cube, gt = load_benchmark(path)
        for name in methods:
            t0 = time.perf_counter()
            scores = get_detector(name).fit(cube).decision_scores_
            seconds = time.perf_counter() - t0
            auc = roc_auc(scores, gt)
            rows.append(
                {"scene": path.stem, "method": name, "auc": repr(auc), "seconds": f"{seconds:.2f}"}
            )
            print(f"# {path.stem} {name}: AUC {auc:.6f}, {seconds:.1f} s", flush=True)
    return rows


def compare(rows: list[dict[str, str]], reference: Path) -> float:
    """Print every difference to the reference and return the largest one."""
    with reference.open(newline="") as f:
        ref = {(r["scene"], r["method"]): float(r["auc"]) for r in csv.DictReader(f)}
    worst = 0.0
    for row in rows:
        key = (row["scene"], row["method"])
        if key not in ref:
            print(f"{key[0]} {key[1]}: not in the reference")
            continue
        diff = abs(float(row["auc"]) - ref[key])
        worst = max(worst, diff)
        print(f"{key[0]:32s} {key[1]:12s} {float(row['auc']):.10f} {ref[key]:.10f} {diff:.3g}")
    print(f"max |AUC - reference| over {len(rows)} (scene, method) pairs: {worst:.3g}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", help="method names (default: all but the deep)")
    parser.add_argument("--save", type=Path, help="write the AUCs to this CSV")
    parser.add_argument("--compare", type=Path, help="compare with this reference CSV")
    parser.add_argument("--tol", type=float, default=1e-9, help="largest accepted difference")
    args = parser.parse_args(argv)
    methods = [m.lower() for m in args.methods] or [
        m for m in sorted(METHODS) if m not in DEEP_METHODS
    ]
    rows = run(methods, list_scenes())
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        with args.save.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.save}")
    if args.compare:
        return 0 if compare(rows, args.compare) <= args.tol else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
