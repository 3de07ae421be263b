"""One parameter of REDNMF by the defaults' protocol: the iteration budget or the rank.

Run from the repository root (on 2 cores about 15 min for the budgets, 7 for the ranks)::

    .venv/bin/python benchmarks/parameter_sweep.py iterations --out docs/earn --jobs 2
    .venv/bin/python benchmarks/parameter_sweep.py rank --out docs/earn --jobs 2

For the 12 real scenes of ``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA``, clean and with
the paper's noise (sigma = 0.01, 0.05, 0.10, two draws each; the conditions of
``benchmarks/earn_its_place.py``), it fits REDNMF with one parameter set to each value
of the sweep (:data:`SWEEPS`) and every other parameter at its default, and ``msrx``
(the scorer on the raw cube) beside them:

* ``iterations``: ``max_iter`` = 100, 75, 50, 35, 25, 15, 10, 5, 3 and 1. With
  ``tol=0`` a fit of ``k`` iterations is the first ``k`` iterations of a longer one.
* ``rank``: ``n_components`` = 8 (the default), 4, 6, 12, 16, and a rank chosen from
  the data: the number of the cube's principal components above its own noise (the
  count ``msrx`` projects on, :func:`rednmf.scoring.pca.noise_pca_count` with the
  noise of :func:`rednmf.solvers.noise.band_noise_variance`, at most 20), and at least 2.

It prints and writes to ``iterations.md`` or ``rank.md`` in ``--out``:

* per candidate, the mean and worst AUC over the 12 scenes and the number of scenes at
  least as good as ``msrx``, per noise level; the criterion of the protocol (mean over
  the scenes and the four levels, draws averaged); the median seconds of a clean fit;
* leave one scene out, among the eligible candidates (below) and among all: the one
  that the protocol of the defaults (:func:`earn_its_place.choose`) picks on the other
  11, in the order of the sweep (the default first: a tie keeps it), and the held-out
  AUC; the candidate it picks on all 12;
* the per-scene AUC at sigma = 0.05;
* planted targets of 1, 3 x 3, 7 x 7 and 15 x 15 pixels at sigma = 0.05 (the ten
  scenes of ``benchmarks/planted_sizes.py``): the mean AUC per size of each candidate
  and of ``msrx`` (for the budgets also of the evidence alone, ``score_cube=False``). A
  candidate is *eligible* when it finds targets of every size at least as well as
  ``msrx`` (within 0.0005: the requirement of ``tests/scoring/test_cube_and_evidence.py``);
  the protocol chooses among the eligible candidates, and the report also says what it
  would choose among all;
* for the budgets, how far the fitted background moves from its start (clean scenes):
  ``||W H - W0 H0||_F / ||W0 H0||_F`` with ``W0, H0`` the NNDSVDa start
  (:func:`rednmf.solvers.init.initialize_factors` on the scaled cube);
* for the rank, the data's rank per noise level (minimum, median, maximum over the
  scenes and draws).

The rows go to ``--csv`` (default ``rednmf-bench/sweep_<sweep>.csv``, outside the
repository; an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from earn_its_place import (
    SIGMAS,
    _conditions,
    choose,
    leave_one_out_table,
    load_rows,
    scene_means,
    summary_cells,
    summary_header,
)
from planted_sizes import SIZES, planted_scene
from rednmf import REDNMF, get_detector
from rednmf.datasets import all_scenes, load_benchmark
from rednmf.experiments.common import noisy_cube
from rednmf.metrics import roc_auc, roc_auc_by_target_size
from rednmf.preprocessing import scale_data
from rednmf.scoring.pca import noise_pca_count
from rednmf.scoring.scorers import MultiScale
from rednmf.solvers.init import initialize_factors
from rednmf.solvers.noise import band_noise_variance

#: The budgets, in the order that breaks ties (the earlier default first).
BUDGETS = (100, 75, 50, 35, 25, 15, 10, 5, 3, 1)
#: The fixed ranks, the default first; the data's rank follows them.
RANKS = (8, 4, 6, 12, 16)
#: The largest rank taken from the data (``MultiScale``'s ``n_pca``).
MAX_DATA_RANK = 20
DATA_RANK = "data's rank"
FIELDS = ["scene", "sigma", "draw", "candidate", "auc", "seconds"]
#: How far below msrx a candidate may find planted targets of a size and stay eligible.
PLANTED_TOLERANCE = 0.0005


def data_rank(cube: np.ndarray) -> int:
    """The number of the scaled cube's principal components above its noise, at least 2."""
    d = cube.shape[-1]
    X = scale_data(cube.reshape(-1, d).T, "minmax", np.float64)
    cov = np.cov(X)
    return max(2, noise_pca_count(cov, band_noise_variance(cov), X.shape[1], MAX_DATA_RANK))


@dataclass(frozen=True)
class Sweep:
    """A parameter's values as candidates: labels in the protocol's order, the default first."""

    title: str
    labels: tuple[str, ...]
    #: Whether the report adds the evidence alone on the planted targets and the movement.
    budgets: bool = False

    def detector(self, label: str, cube: np.ndarray) -> REDNMF:
        """REDNMF as candidate ``label`` fits ``cube``."""
        if self.budgets:
            return REDNMF(max_iter=int(label.split()[0]))
        if label == DATA_RANK:
            return REDNMF(n_components=data_rank(cube))
        return REDNMF(n_components=int(label.split()[1]))


SWEEPS = {
    "iterations": Sweep(
        "REDNMF's iteration budget", tuple(f"{k} it" for k in BUDGETS), budgets=True
    ),
    "rank": Sweep("REDNMF's rank", (*(f"rank {r}" for r in RANKS), DATA_RANK)),
}


def _run(sweep: str, cond: tuple[str, float, int]) -> list[dict]:
    name, sigma, draw = cond
    path = next(p for p in all_scenes() if p.stem == name)
    base = dict(scene=name, sigma=sigma, draw=draw)
    out = []
    with threadpool_limits(1):
        raw, gt = load_benchmark(path)
        cube = noisy_cube(raw, sigma, 1000 * draw + int(round(sigma * 1000))).astype(np.float32)
        fits = [("msrx", lambda: get_detector("msrx"))]
        fits += [(c, lambda c=c: SWEEPS[sweep].detector(c, cube)) for c in SWEEPS[sweep].labels]
        for label, make in fits:
            t = time.perf_counter()
            scores = make().fit(cube).decision_scores_
            secs = time.perf_counter() - t
            out.append({**base, "candidate": label, "auc": roc_auc(scores, gt), "seconds": secs})
        if sweep == "rank":  # the data's rank, for the report
            out.append({**base, "candidate": "rank from the data", "auc": data_rank(cube)})
    return out


def _movement(name: str) -> list[float]:
    """``||W H - W0 H0|| / ||W0 H0||`` of the clean scene ``name`` after each budget."""
    path = next(p for p in all_scenes() if p.stem == name)
    with threadpool_limits(1):
        cube, _ = load_benchmark(path)
        cube = cube.astype(np.float32)
        d = cube.shape[-1]
        X = scale_data(cube.reshape(-1, d).T, "minmax", np.float32)
        W0, H0, _ = initialize_factors(X, 8, "nndsvda", np.random.default_rng(0))
        start = W0.astype(np.float64) @ H0
        out = []
        for k in BUDGETS:
            det = REDNMF(max_iter=k).fit(cube)
            background = det.components_.astype(np.float64) @ det.coefficients_
            out.append(float(np.linalg.norm(background - start) / np.linalg.norm(start)))
    return out


def _planted(sweep: str, seed: int) -> dict[str, dict[int, float]]:
    """Mean AUC per target size on planted scene ``seed``: each candidate, msrx (and for
    the budgets each one's evidence alone)."""
    spec = SWEEPS[sweep]
    with threadpool_limits(1):
        cube, gt = planted_scene(seed)
        fits = {"msrx": get_detector("msrx")}
        for label in spec.labels:
            fits[label] = spec.detector(label, cube)
            if spec.budgets:
                fits[f"{label}, evidence alone"] = REDNMF(
                    max_iter=fits[label].max_iter, scorer=MultiScale(score_cube=False)
                )
        return {
            label: roc_auc_by_target_size(det.fit(cube).decision_scores_, gt)
            for label, det in fits.items()
        }


def _eligible(
    planted: list[dict[str, dict[int, float]]], pool: tuple[str, ...]
) -> tuple[list[str], str]:
    """The candidates that find planted targets of every size as well as msrx, and a table."""
    mean = {
        label: {side: float(np.mean([p[label][side] for p in planted])) for side in SIZES}
        for label in planted[0]
    }
    ok = [
        c
        for c in pool
        if all(mean[c][side] >= mean["msrx"][side] - PLANTED_TOLERANCE for side in SIZES)
    ]
    out = ["| detector | " + " | ".join(f"{s} × {s}" for s in SIZES) + " | eligible |"]
    out.append("|---" * (len(SIZES) + 2) + "|")
    for label, m in mean.items():
        mark = "yes" if label in ok else ("no" if label in pool else "")
        out.append(f"| {label} | " + " | ".join(f"{m[s]:.4f}" for s in SIZES) + f" | {mark} |")
    return ok, "\n".join(out)


def _data_ranks(rows: list[dict]) -> list[str]:
    """The data's rank per noise level: minimum / median / maximum over scenes and draws."""
    out = ["| σ | data's rank: min / median / max |", "|---|---|"]
    for s in SIGMAS:
        k = [r["auc"] for r in rows if r["candidate"] == "rank from the data" and r["sigma"] == s]
        out.append(f"| {s} | {min(k):.0f} / {np.median(k):.0f} / {max(k):.0f} |")
    return out


def _report(
    sweep: str,
    rows: list[dict],
    movement: dict[str, list[float]] | None,
    planted: list[dict[str, dict[int, float]]],
) -> str:
    spec = SWEEPS[sweep]
    name = "budget" if spec.budgets else "candidate"
    secs: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["sigma"] == 0.0 and "seconds" in r:
            secs[r["candidate"]].append(r["seconds"])
    pool = list(spec.labels)
    eligible, planted_table = _eligible(planted, spec.labels)
    scenes = sorted({r["scene"] for r in rows})
    mean = scene_means(rows, ["msrx", *pool])
    out = ["## Mean / worst AUC over the 12 scenes / scenes at least as good as msrx", ""]
    out += summary_header(name, ["criterion", "median s (clean)"])
    for c in ["msrx", *pool]:
        cells = summary_cells(mean, c)
        crit = np.mean([mean[(c, s)][sc] for s in SIGMAS for sc in scenes])
        out.append(f"| {c} | " + " | ".join(cells) + f" | {crit:.5f} | {np.median(secs[c]):.2f} |")
    if not spec.budgets:
        out += ["", "## The data's rank", ""] + _data_ranks(rows)
    out += ["", "## Planted targets at σ = 0.05 (ten scenes; mean AUC per target size)", ""]
    out += [planted_table, ""]
    out += [f"Eligible (every size within {PLANTED_TOLERANCE} of msrx or above): "
            + (", ".join(eligible) or "none") + "."]  # fmt: skip
    for title, candidates in ((f"the eligible {name}s", eligible), (f"all {name}s", pool)):
        out += ["", f"## Leave one scene out among {title} (chosen on the other 11)", ""]
        out += leave_one_out_table(mean, candidates, scenes)
        out += ["", f"Chosen on all 12 scenes: **{choose(mean, candidates, scenes)}**."]
    out.append("")
    out += ["## Per scene at σ = 0.05 (draws averaged)", ""]
    out.append("| scene | msrx | " + " | ".join(pool) + " |")
    out.append("|---" * (len(pool) + 2) + "|")
    for sc in scenes:
        cells = " | ".join(f"{mean[(c, 0.05)][sc]:.4f}" for c in ["msrx", *pool])
        out.append(f"| {sc} | {cells} |")
    if movement is None:
        return "\n".join(out) + "\n"
    out += ["", "## How far the background moves from its NNDSVDa start (clean)", ""]
    out += ["||W H − W₀ H₀||_F / ||W₀ H₀||_F after each budget.", ""]
    out.append("| scene | " + " | ".join(pool) + " |")
    out.append("|---" * (len(pool) + 1) + "|")
    for sc in scenes:
        out.append(f"| {sc} | " + " | ".join(f"{v:.3f}" for v in movement[sc]) + " |")
    med = np.median([movement[sc] for sc in scenes], axis=0)
    out.append("| **median** | " + " | ".join(f"**{v:.3f}**" for v in med) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", choices=sorted(SWEEPS))
    ap.add_argument("--out", default="docs/earn")
    ap.add_argument("--csv", help="default: rednmf-bench/sweep_<sweep>.csv")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    sweep = args.sweep
    path = Path(args.csv or f"rednmf-bench/sweep_{sweep}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["scene"], r["sigma"], r["draw"]) for r in load_rows(path)}
    todo = [c for c in _conditions() if (c[0], float(c[1]), float(c[2])) not in done]
    new = not path.exists()
    with path.open("a", newline="") as f, ProcessPoolExecutor(args.jobs) as ex:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for cond, rows in zip(todo, ex.map(_run, [sweep] * len(todo), todo), strict=True):
            w.writerows(rows)
            f.flush()
            print(cond, " ".join(f"{r['candidate']}={r['auc']:.4f}" for r in rows), flush=True)
    scenes = sorted({r["scene"] for r in load_rows(path)})
    with ProcessPoolExecutor(args.jobs) as ex:
        movement = (
            dict(zip(scenes, ex.map(_movement, scenes), strict=True))
            if SWEEPS[sweep].budgets
            else None
        )
        planted = list(ex.map(_planted, [sweep] * 10, range(10)))
    text = (
        f"# {SWEEPS[sweep].title}\n\n"
        f"Generated by `benchmarks/parameter_sweep.py {sweep}`. Seconds: one BLAS thread, two\n"
        "fits at a time on the machine as loaded during the run.\n\n"
        + _report(sweep, load_rows(path), movement, planted)
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{sweep}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
