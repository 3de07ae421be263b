"""Fit and scoring time of REDNMF with its defaults on every real scene.

Run from the repository root (``make bench`` does)::

    .venv/bin/python benchmarks/bench_speed.py [--data DIR] [--repeats 3]

Prints one row per scene: shape, iterations, fit seconds and scoring seconds
(median of ``--repeats`` runs, measured in this one run), and the AUC.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info

from rednmf._validation import check_cube, cube_to_matrix
from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.exceptions import ConvergenceWarning
from rednmf.metrics import roc_auc
from rednmf.preprocessing import scale_data
from rednmf.scoring.from_matrix import score_matrix


def time_scene(cube: np.ndarray, gt: np.ndarray, repeats: int) -> dict:
    """Median fit and scoring seconds of ``REDNMF()`` on one scene."""
    fit_s, score_s = [], []
    det = REDNMF()
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            det.fit(cube)
        total = time.perf_counter() - t0
        # Time the scoring step alone on the scored evidence, then attribute the rest to the fit.
        X, shape = cube_to_matrix(det.evidence(cube))
        t1 = time.perf_counter()
        score_matrix(X, shape, **det._scorer_params())
        s = time.perf_counter() - t1
        score_s.append(s)
        fit_s.append(total - s)
    return {
        "iters": det.n_iter_,
        "fit": statistics.median(fit_s),
        "score": statistics.median(score_s),
        "auc": roc_auc(det.decision_scores_, gt),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder of .mat scenes")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    blas = [
        (i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()
    ]
    print(f"machine: {platform.processor() or platform.machine()}, BLAS {blas}")
    print(f"defaults: {REDNMF().get_params()}")
    print()
    print("| scene | shape | iterations | fit s | scoring s | AUC |")
    print("|---|---|---|---|---|---|")
    rows = []
    for path in list_scenes(args.data or data_dir()):
        cube, gt = load_benchmark(path)
        check_cube(cube)
        scale_data(cube)  # fail early on a constant cube
        r = time_scene(cube, gt, args.repeats)
        rows.append(r)
        shape = "x".join(map(str, cube.shape))
        print(
            f"| {path.stem} | {shape} | {r['iters']} | {r['fit']:.2f} | {r['score']:.2f} "
            f"| {r['auc']:.4f} |",
            flush=True,
        )
    if rows:
        print(
            f"| mean | | {np.mean([r['iters'] for r in rows]):.0f} "
            f"| {np.mean([r['fit'] for r in rows]):.2f} "
            f"| {np.mean([r['score'] for r in rows]):.2f} "
            f"| {np.mean([r['auc'] for r in rows]):.4f} |"
        )


if __name__ == "__main__":
    main()
