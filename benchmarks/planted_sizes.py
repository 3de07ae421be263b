"""Planted targets of 1, 3 x 3, 7 x 7 and 15 x 15 pixels at sigma = 0.05: REDNMF against msrx.

Ten synthetic 120 x 120 x 60 scenes (``SYNTHETIC_SCENES["planted-sizes"]`` of
:mod:`rednmf.experiments.common`, ``random_state`` 0..9: eight targets, two of each listed size, at
abundances 0.6 and 0.4), Gaussian noise of
standard deviation 0.05 added after scaling (:func:`rednmf.experiments.common.noisy_cube`,
seed 0). Each detector with its defaults; per scene and target side, the mean AUC of each
target against the whole background (:func:`rednmf.metrics.roc_auc_by_target_size`).
``REDNMF(scorer=MultiScale(score_cube=False))`` is REDNMF's evidence alone (what the cube adds).

Printed: one row per scene and detector, then the means over the scenes (the numbers
behind ``tests/scoring/test_cube_and_evidence.py`` and docs/choices.md).

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/planted_sizes.py [--scenes 10]
"""

from __future__ import annotations

import argparse

import numpy as np

from rednmf import REDNMF, get_detector, make_scene
from rednmf.experiments.common import SYNTHETIC_SCENES, noisy_cube
from rednmf.metrics import roc_auc_by_target_size
from rednmf.scoring.scorers import MultiScale

SIZES = SYNTHETIC_SCENES["planted-sizes"]["target_size"]
DETECTORS = {
    "rednmf": lambda: REDNMF(),
    "msrx": lambda: get_detector("msrx"),
    "rednmf evidence alone": lambda: REDNMF(scorer=MultiScale(score_cube=False)),
}


def planted_scene(seed: int, sigma: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The planted scene ``seed``: float32 cube with noise ``sigma`` and its truth."""
    cube, gt = make_scene(**{**SYNTHETIC_SCENES["planted-sizes"], "random_state": seed})
    return noisy_cube(cube, sigma, 0).astype(np.float32), gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=10)
    args = parser.parse_args()
    rows: dict[str, list[dict[int, float]]] = {name: [] for name in DETECTORS}
    print("| scene | detector | " + " | ".join(f"{s} x {s}" for s in SIZES) + " |")
    print("|---|---|" + "---|" * len(SIZES))
    for seed in range(args.scenes):
        cube, gt = planted_scene(seed)
        for name, make in DETECTORS.items():
            aucs = roc_auc_by_target_size(make().fit(cube).decision_scores_, gt)
            rows[name].append(aucs)
            print(f"| {seed} | {name} | " + " | ".join(f"{aucs[s]:.4f}" for s in SIZES) + " |",
                  flush=True)  # fmt: skip
    print(f"\nmeans over {args.scenes} scenes\n")
    print(
        "| detector | "
        + " | ".join(f"{s} x {s}" for s in SIZES)
        + " | scenes REDNMF >= msrx at 15 x 15 |"
    )
    print("|---|" + "---|" * (len(SIZES) + 1))
    wins = sum(r[15] >= m[15] for r, m in zip(rows["rednmf"], rows["msrx"], strict=True))
    for name, per_scene in rows.items():
        means = [np.mean([a[s] for a in per_scene]) for s in SIZES]
        extra = f"{wins} of {args.scenes}" if name == "rednmf" else ""
        print(f"| {name} | " + " | ".join(f"{m:.4f}" for m in means) + f" | {extra} |")


if __name__ == "__main__":
    main()
