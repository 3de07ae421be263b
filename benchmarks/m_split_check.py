"""The two splits of REDNMF's M step: objective increases per iteration and fit time.

Run from the repository root::

    .venv/bin/python benchmarks/m_split_check.py [--repeats 3]

For every real scene (``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA``) and the demo's
synthetic scene, clean and at sigma = 0.05 (draw 0): the default fit with
``m_split='elementwise'`` (as printed) and ``'factored'``; the number of the 99
iteration-to-iteration changes of objective (10) that are increases (relative
change above 1e-9), the final objective, and the median fit time (one BLAS
thread, the two splits alternating in one run). The AUCs of both splits on the
12 scenes come from ``benchmarks/robust_defaults.py`` (fit ``noise-factored``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.datasets import all_scenes, load_benchmark, make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import InMemory
from rednmf.experiments.common import noisy_cube


def increases(objective: np.ndarray) -> int:
    """Iterations whose objective rose by more than 1e-9 relative."""
    return int(np.sum(np.diff(objective) > 1e-9 * np.abs(objective[:-1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    scenes = [(p.stem, *load_benchmark(p)) for p in all_scenes()]
    scenes.append(("synthetic (demo)", *make_scene(random_state=0)))
    print(
        "| scene | sigma | increases elementwise | increases factored | objective ratio "
        "factored / elementwise | fit s elementwise | fit s factored | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    totals = {"elementwise": 0, "factored": 0}
    ratios = []
    for name, cube, _ in scenes:
        for sigma in (0.0, 0.05):
            data = noisy_cube(cube, sigma, 0) if sigma else cube
            times: dict[str, list[float]] = {"elementwise": [], "factored": []}
            fits = {}
            with threadpool_limits(1):
                for _ in range(args.repeats):
                    for split in times:
                        t = time.perf_counter()
                        fits[split] = REDNMF(
                            m_split=split, scorer="norm", engine=InMemory(n_jobs=1)
                        ).fit(data)
                        times[split].append(time.perf_counter() - t)
            inc = {k: increases(f.objective_) for k, f in fits.items()}
            for k in inc:
                totals[k] += inc[k]
            obj = fits["factored"].objective_[-1] / fits["elementwise"].objective_[-1]
            te, tf = (statistics.median(times[k]) for k in ("elementwise", "factored"))
            ratios.append(tf / te)
            print(
                f"| {name} | {sigma:g} | {inc['elementwise']} | {inc['factored']} | {obj:.4f} | "
                f"{te:.2f} | {tf:.2f} | {tf / te:.2f} |",
                flush=True,
            )
    print(
        f"| **total / median** | | {totals['elementwise']} | {totals['factored']} | | | | "
        f"{statistics.median(ratios):.2f} |"
    )


if __name__ == "__main__":
    main()
