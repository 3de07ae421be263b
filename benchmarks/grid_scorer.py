"""Scorer sweep on fixed anomaly matrices: BRAD ridge, windows and PCA (docs/choices.md).

Fits REDNMF once per scene (``--fit`` options, default: the configuration under
study), keeps ``S``, then scores it with every BRAD variant of the grid; the
same variants are applied to the scaled cube itself (no factorisation) for
comparison. Usage::

    .venv/bin/python benchmarks/grid_scorer.py --out docs/grid --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import itertools
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf._validation import cube_to_matrix
from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.metrics import roc_auc
from rednmf.preprocessing import scale_data
from rednmf.scoring.from_matrix import score_matrix

WINDOWS = ((7, 21), (9, 27), (11, 33), (13, 39))
RIDGES = (0.01, 0.1, 0.3, 1.0, 3.0)
N_PCA = (10, 20)
FIT = {"n_components": 8, "lam": 1.0, "beta": 1.0, "init": "nndsvda", "max_iter": 300, "tol": 0}


def run_scene(path: str) -> list[dict]:
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube, gt = load_benchmark(path)
        det = REDNMF(**FIT).fit(cube)
        S, shape = cube_to_matrix(det.anomaly(cube))
        X = scale_data(cube_to_matrix(cube)[0].astype(np.float32))
        for (source, E), (i, o), ridge, k in itertools.product(
            (("S", S), ("cube", X)), WINDOWS, RIDGES, N_PCA
        ):
            s = score_matrix(E, shape, inner=i, outer=o, n_pca=k, ridge=ridge)
            rows.append(
                {
                    "scene": Path(path).stem,
                    "source": source,
                    "inner": i,
                    "outer": o,
                    "ridge": ridge,
                    "n_pca": k,
                    "auc": roc_auc(s, gt),
                }
            )
        rows.append(
            {
                "scene": Path(path).stem,
                "source": "S",
                "inner": "",
                "outer": "",
                "ridge": "",
                "n_pca": "norm",
                "auc": roc_auc(score_matrix(S, shape, scorer="norm"), gt),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="docs/grid")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = list_scenes(args.data or data_dir())
    fields = ["scene", "source", "inner", "outer", "ridge", "n_pca", "auc"]
    with ProcessPoolExecutor(args.jobs) as ex, open(out / "scorer.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for p, rows in zip(scenes, ex.map(run_scene, map(str, scenes)), strict=True):
            w.writerows(rows)
            fh.flush()
            print(f"done {p.stem}", flush=True)
    print(f"wrote {out / 'scorer.csv'}")


if __name__ == "__main__":
    main()
