"""Why the paper preset's lambda (the 'svd' scale) fails under added noise: pixels in S, AUC.

Run from the repository root::

    .venv/bin/python benchmarks/noise_lambda_check.py [--scene abu-airport-1]

For sigma in {0, 0.01, 0.05} (Gaussian noise on the min-max scaled cube, draw 0,
as the ``noise`` experiment of ``rednmf bench``) and lam in {4, 2, 1} (the
``'svd'`` scale), prints the fraction of pixels whose column of S is non-zero
and the AUC. See docs/reproduction.md, Table 3.
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.datasets import data_dir, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import InMemory
from rednmf.experiments.common import noisy_cube
from rednmf.metrics import roc_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="abu-airport-1")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    folder = data_dir() if args.data is None else args.data
    cube, gt = load_benchmark(f"{folder}/{args.scene}.mat")
    print("| sigma | lam | pixels with S != 0 | AUC |")
    print("|---|---|---|---|")
    with threadpool_limits(1):
        for sigma in (0.0, 0.01, 0.05):
            noisy = noisy_cube(cube, sigma, 0) if sigma else cube
            for lam in (4.0, 2.0, 1.0):
                det = REDNMF.from_preset("paper", lam=lam, engine=InMemory(n_jobs=1)).fit(noisy)
                kept = float(np.mean(np.any(det.anomaly(noisy) != 0, axis=2)))
                auc = roc_auc(det.decision_scores_, gt)
                print(f"| {sigma:.2f} | {lam:g} | {kept:.3f} | {auc:.4f} |")


if __name__ == "__main__":
    main()
