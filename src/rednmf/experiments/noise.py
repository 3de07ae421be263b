"""Table 3: AUC under additive Gaussian noise on the min-max normalised cube.

``X_noisy = X + N(0, sigma^2)`` with ``X`` scaled to [0, 1] (Sec. 5.3), for
sigma in {0.01, 0.05, 0.10}, several draws with fixed seeds; mean +- std.
The detectors then scale their input as they always do (the factorisations by
a global min-max, which the noise stretches slightly).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from rednmf.experiments.common import Context, Job
from rednmf.experiments.paper import paper_value
from rednmf.experiments.report import markdown_table, versus
from rednmf.experiments.table2 import scenes
from rednmf.io.writers import write_csv

NAME = "noise"
TITLE = "Table 3 - AUC under Gaussian noise"
SIGMAS = (0.01, 0.05, 0.10)
DRAWS = 3
#: ``msrx`` (REDNMF's scorer on the raw cube) is REDNMF's honest baseline (not in the paper).
METHODS = ("rednmf", "msrx", "nmf", "l1nmf", "rnmf", "ewnmf")
QUICK = {"sigmas": (0.05,), "draws": 1, "methods": ("rednmf", "msrx", "nmf")}


def _setup(ctx: Context) -> tuple[tuple[float, ...], int, list[str]]:
    if ctx.quick:
        return QUICK["sigmas"], QUICK["draws"], ctx.pick(QUICK["methods"])
    return SIGMAS, DRAWS, ctx.pick(METHODS)


def jobs(ctx: Context) -> list[Job]:
    """One fit per sigma, draw (seed = draw), method and scene."""
    sigmas, draws, ms = _setup(ctx)
    return [
        Job(NAME, s, m, ctx.params(m), label=m, noise=sig, seed=d)
        for s in scenes(ctx)
        for sig in sigmas
        for d in range(draws)
        for m in ms
    ]


def summarise(ctx: Context, results: list[tuple[Job, dict[str, Any]]]) -> str:
    """Write ``noise.csv`` (every draw) and return mean +- std tables per sigma."""
    sigmas, _, ms = _setup(ctx)
    draws: dict[tuple[float, str, str], list[float]] = defaultdict(list)
    rows = []
    for j, r in results:
        draws[j.noise, j.method, j.scene].append(r["auc"])
        rows.append(
            {
                "sigma": j.noise,
                "seed": j.seed,
                "scene": j.scene,
                "method": j.method,
                "auc": r["auc"],
                "seconds": r["seconds"],
            }
        )
    write_csv(ctx.out / "noise.csv", rows, ["sigma", "seed", "scene", "method", "auc", "seconds"])
    parts = [
        "Cells: mean AUC over the draws (paper's AUC, mean - paper), then +- std. Noise is "
        "added to the cube min-max scaled to [0, 1] (seed = draw index); each detector then "
        "applies its own scaling as usual (global min-max for the factorisations)."
    ]
    for sig in sigmas:
        key = f"{sig:.2f}"

        def cell(m: str, s: str, sig: float = sig, key: str = key) -> str:
            v = draws.get((sig, m, s))
            if not v:
                return "-"
            text = versus(float(np.mean(v)), paper_value("table3", m, s, key))
            return f"{text} +- {np.std(v):.4f}" if len(v) > 1 else f"{text}, one draw"

        parts += ["", f"sigma = {key}", "", markdown_table(ms, scenes(ctx), cell, "method")]
    return "\n".join(parts)
