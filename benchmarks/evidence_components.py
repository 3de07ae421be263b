"""Is the evidence's noise-aware component count what loses REDNMF's signal under noise?

Run from the repository root (about 3 min on 2 cores)::

    .venv/bin/python benchmarks/evidence_components.py --jobs 2

docs/choices.md ("Where the signal goes") found that under noise the scorer keeps few
components of the evidence (k = 3 at sigma = 0.05) and with them a small share of the
anomalies' contrast. This script scores REDNMF's default way (the cube with the
evidence's suspects at 0.05 left out of its statistics, and the evidence's local
detectors) with the evidence projected on other counts: its components above the
cube's noise (the default), above its own noise (``'estimate'``), or a fixed 5, 10 or
20. On the 12 real scenes, clean and at sigma = 0.01 / 0.05 / 0.10 (two draws; the
conditions of ``benchmarks/earn_its_place.py``) it prints the mean AUC per noise level
and the criterion of the defaults' protocol; on the ten planted scenes of
``benchmarks/planted_sizes.py`` the mean AUC per target size.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from earn_its_place import SIGMAS, _conditions
from planted_sizes import SIZES, planted_scene
from rednmf import REDNMF
from rednmf.backend import get_backend
from rednmf.datasets import all_scenes, load_benchmark
from rednmf.experiments.common import noisy_cube
from rednmf.metrics import roc_auc, roc_auc_by_target_size
from rednmf.preprocessing import scale_data
from rednmf.scoring.from_matrix import project_matrix
from rednmf.scoring.multiscale import Detectors, combine_tail_probabilities, detector_maps
from rednmf.scoring.scorers import MultiScale

#: The evidence's projection: label -> noise reference ('noise': the cube's) or a fixed count.
VARIANTS: dict[str, str | int] = {
    "above the cube's noise (default)": "noise",
    "above its own noise": "estimate",
    "fixed 5": 5,
    "fixed 10": 10,
    "fixed 20": 20,
}


def _scores(cube: np.ndarray) -> dict[str, np.ndarray]:
    rows, cols, d = cube.shape
    det = REDNMF(scorer=MultiScale(score_cube=False)).fit(cube)
    xp = get_backend("numpy")
    sp = det.get_params(deep=True)
    E = det.evidence(cube).reshape(-1, d).T
    X = scale_data(cube.reshape(-1, d).T, "minmax", np.float32, det.scaling_)
    P_x = project_matrix(X, (rows, cols), sp["scorer__n_pca"], "estimate")
    args = Detectors(sp["scorer__inner"], sp["scorer__outer"], sp["scorer__ridge"],
                     sp["scorer__pool"], np.dtype(np.float64), xp)  # fmt: skip
    out = {}
    for label, v in VARIANTS.items():
        if isinstance(v, int):
            P_e = project_matrix(E, (rows, cols), v, None)
        else:
            noise = det.noise_std_**2 if v == "noise" else "estimate"
            P_e = project_matrix(E, (rows, cols), sp["scorer__n_pca"], noise)
        maps_e = detector_maps(P_e, args)
        tail = xp.tail_counts(combine_tail_probabilities(*maps_e)) / (rows * cols)
        maps_x = detector_maps(P_x, args, background=tail > 0.05)
        out[label] = combine_tail_probabilities(*maps_x, maps_e[0], maps_e[1])
    return out


def _real(cond: tuple[str, float, int]) -> list[tuple[str, float, str, float]]:
    name, sigma, draw = cond
    path = next(p for p in all_scenes() if p.stem == name)
    with threadpool_limits(1):
        raw, gt = load_benchmark(path)
        cube = noisy_cube(raw, sigma, 1000 * draw + int(round(sigma * 1000))).astype(np.float32)
        return [(name, sigma, k, roc_auc(s, gt)) for k, s in _scores(cube).items()]


def _planted(seed: int) -> dict[str, dict[int, float]]:
    with threadpool_limits(1):
        cube, gt = planted_scene(seed)
        return {k: roc_auc_by_target_size(s, gt) for k, s in _scores(cube).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    with ProcessPoolExecutor(args.jobs) as ex:
        real = [r for rows in ex.map(_real, _conditions()) for r in rows]
        planted = list(ex.map(_planted, range(10)))
    auc: dict[tuple[str, float, str], list[float]] = defaultdict(list)
    for name, sigma, k, a in real:
        auc[(k, sigma, name)].append(a)
    scenes = sorted({r[0] for r in real})
    print("| evidence projected on | " + " | ".join(f"σ = {s}" for s in SIGMAS), end="")
    print(" | criterion | " + " | ".join(f"planted {s} × {s}" for s in SIZES) + " |")
    print("|---" * (len(SIGMAS) + len(SIZES) + 2) + "|")
    for k in VARIANTS:
        means = [np.mean([np.mean(auc[(k, s, sc)]) for sc in scenes]) for s in SIGMAS]
        pl = [np.mean([p[k][side] for p in planted]) for side in SIZES]
        print(f"| {k} | " + " | ".join(f"{m:.4f}" for m in means), end="")
        print(f" | {np.mean(means):.5f} | " + " | ".join(f"{m:.4f}" for m in pl) + " |")


if __name__ == "__main__":
    main()
