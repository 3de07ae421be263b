"""REDNMF's iteration budget by the defaults' protocol: AUC after 1 to 100 iterations.

Run from the repository root (about 10 min on 2 cores)::

    .venv/bin/python benchmarks/iterations_auc.py --out docs/earn --jobs 2

For the 12 real scenes of ``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA``, clean and with
the paper's noise (sigma = 0.01, 0.05, 0.10, two draws each; the conditions of
``benchmarks/earn_its_place.py``), it fits ``REDNMF(max_iter=k)`` with every other
parameter at its default, for each budget ``k`` of :data:`BUDGETS`, and ``msrx`` (the
scorer on the raw cube) beside them. With ``tol=0`` a fit of ``k`` iterations is the
first ``k`` iterations of a longer one. It prints and writes to ``iterations.md`` in
``--out``:

* per budget, the mean and worst AUC over the 12 scenes and the number of scenes at
  least as good as ``msrx``, per noise level; the criterion of the protocol (mean over
  the scenes and the four levels, draws averaged); the median seconds of a clean fit;
* leave one scene out, among the eligible budgets (below) and among all: the budget
  that the protocol of the defaults (:func:`earn_its_place.choose`) picks on the other
  11, in the order of :data:`BUDGETS` (the earlier default, 100, first: a tie keeps
  the budget closest to it), and the held-out AUC; the budget it picks on all 12;
* the per-scene AUC at sigma = 0.05;
* how far the fitted background moves from its start (clean scenes):
  ``||W H - W0 H0||_F / ||W0 H0||_F`` with ``W0, H0`` the NNDSVDa start
  (:func:`rednmf.solvers.init.initialize_factors` on the scaled cube), per budget;
* planted targets of 1, 3 x 3, 7 x 7 and 15 x 15 pixels at sigma = 0.05 (the ten
  scenes of ``benchmarks/planted_sizes.py``): the mean AUC per size of each budget, of
  its evidence alone (``score_cube=False``) and of ``msrx``. A budget is *eligible* when
  it finds targets of every size at least as well as ``msrx`` (within 0.0005: the
  requirement of ``tests/scoring/test_cube_and_evidence.py``); the protocol chooses
  among the eligible budgets, and the report also says what it would choose among all.

The rows go to ``--csv`` (outside the repository; an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from earn_its_place import (
    SIGMAS,
    _conditions,
    choose,
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
from rednmf.scoring.scorers import MultiScale
from rednmf.solvers.init import initialize_factors

#: The budgets, in the order that breaks ties (the earlier default first).
BUDGETS = (100, 75, 50, 35, 25, 15, 10, 5, 3, 1)
FIELDS = ["scene", "sigma", "draw", "candidate", "auc", "seconds"]
#: How far below msrx a budget may find planted targets of a size and stay eligible.
PLANTED_TOLERANCE = 0.0005


def _run(cond: tuple[str, float, int]) -> list[dict]:
    name, sigma, draw = cond
    path = next(p for p in all_scenes() if p.stem == name)
    base = dict(scene=name, sigma=sigma, draw=draw)
    out = []
    with threadpool_limits(1):
        raw, gt = load_benchmark(path)
        cube = noisy_cube(raw, sigma, 1000 * draw + int(round(sigma * 1000))).astype(np.float32)
        fits = [("msrx", lambda: get_detector("msrx"))]
        fits += [(f"{k} it", lambda k=k: REDNMF(max_iter=k)) for k in BUDGETS]
        for label, make in fits:
            t = time.perf_counter()
            scores = make().fit(cube).decision_scores_
            secs = time.perf_counter() - t
            out.append({**base, "candidate": label, "auc": roc_auc(scores, gt), "seconds": secs})
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


def _planted(seed: int) -> dict[str, dict[int, float]]:
    """Mean AUC per target size on planted scene ``seed``: each budget, its evidence, msrx."""
    with threadpool_limits(1):
        cube, gt = planted_scene(seed)
        fits = {"msrx": get_detector("msrx")}
        for k in BUDGETS:
            fits[f"{k} it"] = REDNMF(max_iter=k)
            fits[f"{k} it, evidence alone"] = REDNMF(
                max_iter=k, scorer=MultiScale(score_cube=False)
            )
        return {
            label: roc_auc_by_target_size(det.fit(cube).decision_scores_, gt)
            for label, det in fits.items()
        }


def _eligible(planted: list[dict[str, dict[int, float]]]) -> tuple[list[str], str]:
    """The budgets that find planted targets of every size as well as msrx, and a table."""
    mean = {
        label: {side: float(np.mean([p[label][side] for p in planted])) for side in SIZES}
        for label in planted[0]
    }
    ok = [
        f"{k} it"
        for k in BUDGETS
        if all(mean[f"{k} it"][side] >= mean["msrx"][side] - PLANTED_TOLERANCE for side in SIZES)
    ]
    out = ["| detector | " + " | ".join(f"{s} × {s}" for s in SIZES) + " | eligible |"]
    out.append("|---" * (len(SIZES) + 2) + "|")
    for label, m in mean.items():
        mark = "yes" if label in ok else ("no" if label.endswith(" it") else "")
        out.append(f"| {label} | " + " | ".join(f"{m[s]:.4f}" for s in SIZES) + f" | {mark} |")
    return ok, "\n".join(out)


def _leave_one_out(mean: dict, candidates: list[str], scenes: list[str]) -> list[str]:
    """The table of the budget chosen without each scene, and that scene's AUC."""
    out = ["| held-out scene | chosen | " + " | ".join(f"σ = {s}" for s in SIGMAS) + " |"]
    out.append("|---" * (len(SIGMAS) + 2) + "|")
    held: dict[float, list[float]] = {s: [] for s in SIGMAS}
    for sc in scenes:
        chosen = choose(mean, candidates, [o for o in scenes if o != sc])
        for s in SIGMAS:
            held[s].append(mean[(chosen, s)][sc])
        cells = " | ".join(f"{mean[(chosen, s)][sc]:.4f}" for s in SIGMAS)
        out.append(f"| {sc} | {chosen} | {cells} |")
    means = " | ".join(f"**{np.mean(held[s]):.4f}**" for s in SIGMAS)
    out.append(f"| **mean** | | {means} |")
    out.append("| **worst** | | " + " | ".join(f"{min(held[s]):.4f}" for s in SIGMAS) + " |")
    return out


def _report(
    rows: list[dict], movement: dict[str, list[float]], planted: list[dict[str, dict[int, float]]]
) -> str:
    secs: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["sigma"] == 0.0:
            secs[r["candidate"]].append(r["seconds"])
    pool = [f"{k} it" for k in BUDGETS]
    eligible, planted_table = _eligible(planted)
    scenes = sorted({r["scene"] for r in rows})
    mean = scene_means(rows, ["msrx", *pool])
    out = ["## Mean / worst AUC over the 12 scenes / scenes at least as good as msrx", ""]
    out += summary_header("budget", ["criterion", "median s (clean)"])
    for c in ["msrx", *pool]:
        cells = summary_cells(mean, c)
        crit = np.mean([mean[(c, s)][sc] for s in SIGMAS for sc in scenes])
        out.append(f"| {c} | " + " | ".join(cells) + f" | {crit:.5f} | {np.median(secs[c]):.2f} |")
    out += ["", "## Planted targets at σ = 0.05 (ten scenes; mean AUC per target size)", ""]
    out += [planted_table, ""]
    out += [f"Eligible (every size within {PLANTED_TOLERANCE} of msrx or above): "
            + (", ".join(eligible) or "none") + "."]  # fmt: skip
    for title, candidates in (("the eligible budgets", eligible), ("all budgets", pool)):
        out += ["", f"## Leave one scene out among {title} (chosen on the other 11)", ""]
        out += _leave_one_out(mean, candidates, scenes)
        out += ["", f"Chosen on all 12 scenes: **{choose(mean, candidates, scenes)}**."]
    out.append("")
    out += ["## Per scene at σ = 0.05 (draws averaged)", ""]
    out.append("| scene | msrx | " + " | ".join(pool) + " |")
    out.append("|---" * (len(pool) + 2) + "|")
    for sc in scenes:
        cells = " | ".join(f"{mean[(c, 0.05)][sc]:.4f}" for c in ["msrx", *pool])
        out.append(f"| {sc} | {cells} |")
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
    ap.add_argument("--out", default="docs/earn")
    ap.add_argument("--csv", default="rednmf-bench/iterations_auc.csv")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["scene"], r["sigma"], r["draw"]) for r in load_rows(path)}
    todo = [c for c in _conditions() if (c[0], float(c[1]), float(c[2])) not in done]
    new = not path.exists()
    with path.open("a", newline="") as f, ProcessPoolExecutor(args.jobs) as ex:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for cond, rows in zip(todo, ex.map(_run, todo), strict=True):
            w.writerows(rows)
            f.flush()
            print(cond, " ".join(f"{r['candidate']}={r['auc']:.4f}" for r in rows), flush=True)
    scenes = sorted({r["scene"] for r in load_rows(path)})
    with ProcessPoolExecutor(args.jobs) as ex:
        movement = dict(zip(scenes, ex.map(_movement, scenes), strict=True))
        planted = list(ex.map(_planted, range(10)))
    text = (
        "# REDNMF's iteration budget\n\n"
        "Generated by `benchmarks/iterations_auc.py`. Seconds: one BLAS thread, two fits at\n"
        "a time on the machine as loaded during the run.\n\n"
        + _report(load_rows(path), movement, planted)
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "iterations.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
