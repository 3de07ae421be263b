"""Per-scene AUC and seconds of REDNMF's defaults and of single-choice variants.

Usage (docs/choices.md quotes its output)::

    .venv/bin/python benchmarks/choices_checks.py --jobs 2

Each variant changes one parameter of ``REDNMF()``; every fit runs with one
BLAS thread, and the seconds are wall time of ``fit`` (factorisation and
scoring) in this run, on this machine.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.metrics import roc_auc

VARIANTS: dict[str, dict] = {
    "default": {},
    "sparsity='l21-row' (eq. 17 as printed)": {"sparsity": "l21-row"},
    "scorer='norm'": {"scorer": "norm"},
    "dtype='float64'": {"dtype": "float64"},
    "paper (lam, beta) = (50, 1), absolute": {"lam": 50.0, "beta": 1.0, "lam_mode": "absolute"},
}


def run(args: tuple[str, str]) -> tuple[str, str, float, float, int]:
    path, variant = args
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube, gt = load_benchmark(path)
        t0 = time.perf_counter()
        det = REDNMF(**VARIANTS[variant]).fit(cube)
        seconds = time.perf_counter() - t0
    return path, variant, roc_auc(det.decision_scores_, gt), seconds, det.n_iter_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    scenes = [str(p) for p in list_scenes(args.data or data_dir())]
    jobs = [(s, v) for v in args.variants for s in scenes]
    with ProcessPoolExecutor(args.jobs) as ex:
        results = list(ex.map(run, jobs))
    print(f"defaults: {REDNMF().get_params()}\n")
    for variant in args.variants:
        rows = [r for r in results if r[1] == variant]
        print(f"\n{variant}\n\n| scene | AUC | seconds | iterations |\n|---|---|---|---|")
        for path, _, auc, sec, it in rows:
            name = path.rsplit("/", 1)[-1].removesuffix(".mat")
            print(f"| {name} | {auc:.4f} | {sec:.1f} | {it} |")
        aucs = [r[2] for r in rows]
        secs = [r[3] for r in rows]
        print(f"| **mean** | **{np.mean(aucs):.4f}** | {np.mean(secs):.1f} | |")


if __name__ == "__main__":
    main()
