"""AUC and run time of registered detectors on the benchmark scenes.

Prints a markdown table (one row per scene, an ``AUC`` and a ``s`` column per
method, and a mean row) for any list of names registered in
:data:`rednmf.detectors.registry.METHODS`, each run with its defaults.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/baselines_table.py grx lrx crd
    python benchmarks/baselines_table.py --all --scenes abu-airport-1 abu-beach-3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rednmf.datasets import list_scenes, load_benchmark
from rednmf.detectors.registry import METHODS, get_detector
from rednmf.metrics import roc_auc


def run(methods: list[str], scenes: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """Return ``{(scene, method): (auc, seconds)}``; prints progress lines."""
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for scene in scenes:
        cube, gt = load_benchmark(scene)
        for name in methods:
            det = get_detector(name)
            t0 = time.perf_counter()
            scores = det.fit(cube).decision_scores_
            seconds = time.perf_counter() - t0
            results[scene, name] = (roc_auc(scores, gt), seconds)
            print(
                f"# {scene} {name}: AUC {results[scene, name][0]:.4f}, {seconds:.1f} s", flush=True
            )
    return results


def markdown(
    results: dict[tuple[str, str], tuple[float, float]], methods: list[str], scenes: list[str]
) -> str:
    """The results as a markdown table with a mean row."""
    head = "| scene | " + " | ".join(f"{m} AUC | {m} s" for m in methods) + " |"
    rule = "|---|" + "---|---|" * len(methods)
    lines = [head, rule]
    for scene in scenes:
        cells = [f"{results[scene, m][0]:.4f} | {results[scene, m][1]:.1f}" for m in methods]
        lines.append(f"| {scene} | " + " | ".join(cells) + " |")
    means = [
        f"{np.mean([results[s, m][0] for s in scenes]):.4f} | "
        f"{np.mean([results[s, m][1] for s in scenes]):.1f}"
        for m in methods
    ]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", help="registered method names")
    parser.add_argument("--all", action="store_true", help="every registered method")
    parser.add_argument("--scenes", nargs="+", help="scene names (default: all in data_dir)")
    args = parser.parse_args(argv)
    methods = sorted(METHODS) if args.all else [m.lower() for m in args.methods]
    if not methods:
        parser.error("name at least one method or pass --all")
    scenes = args.scenes or [p.stem for p in list_scenes()]
    results = run(methods, scenes)
    print()
    print(markdown(results, methods, scenes))


if __name__ == "__main__":
    main()
