"""AUC and objective change of the default REDNMF after 10-100 iterations, per real scene.

Is the default budget of 100 iterations (``tol=0``) more than detection needs, and
would a stopping rule on the relative objective change end the fit earlier
without changing the accuracy? For every scene, ``REDNMF(max_iter=k)`` with
every other default, ``k`` in ``--iters``; prints the AUC and the relative
objective change of the last iteration, then the mean AUC over the scenes.
(With ``tol=0`` the first ``k`` iterations of a longer fit are the same, so
each cell is the fit stopped after ``k`` iterations.)

Run from the repository root::

    .venv/bin/python benchmarks/iterations_auc.py [--data DIR] [--iters 10,20,30,40,50,60,75,100]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from rednmf.datasets import list_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.metrics import roc_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder of the .mat scenes (REDNMF_DATA)")
    ap.add_argument("--iters", default="10,20,30,40,50,60,75,100")
    args = ap.parse_args()
    ks = [int(k) for k in args.iters.split(",")]
    aucs: dict[int, list[float]] = {k: [] for k in ks}
    print("| scene | " + " | ".join(f"{k} it: AUC (rel. change)" for k in ks) + " |")
    print("|---" * (len(ks) + 1) + "|")
    for path in list_scenes(args.data):
        cube, gt = load_benchmark(path)
        cells = []
        for k in ks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                det = REDNMF(max_iter=k).fit(cube)
            obj = det.objective_
            rel = abs(obj[-1] - obj[-2]) / abs(obj[-2])
            auc = roc_auc(det.decision_scores_, gt)
            aucs[k].append(auc)
            cells.append(f"{auc:.4f} ({rel:.1e})")
        print(f"| {path.stem} | " + " | ".join(cells) + " |", flush=True)
    print("| mean AUC | " + " | ".join(f"{np.mean(aucs[k]):.5f}" for k in ks) + " |")


if __name__ == "__main__":
    main()
