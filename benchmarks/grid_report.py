"""Markdown tables of the grid search behind REDNMF's defaults (docs/choices.md).

Usage, after ``benchmarks/grid_defaults.py --out docs/grid``::

    .venv/bin/python benchmarks/grid_report.py docs/grid/grid.csv

Reads the CSV written by ``grid_defaults.py`` and prints the tables that
docs/choices.md quotes: mean AUC over the scenes per configuration and
iteration count, per-scene AUC of each configuration at the chosen iteration
count, the window and PCA sweeps of BRAD, the column-norm scorer, and the same
local detector on the scaled cube without any factorisation.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["iter"] = int(r["iter"])
        r["auc"] = float(r["auc"])
        r["fit_s"] = float(r["fit_s"])
        r["win"] = f"{r['inner']}/{r['outer']}" if r["inner"] else ""
        r["ridge"] = str(float(r.get("ridge") or 0.1))
    return rows


def table(rows: list[dict], key, scenes: list[str], title: str) -> None:
    """Print one markdown table: a row per ``key(row)``, a column per scene, and the mean."""
    cells: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        cells[key(r)][r["scene"]] = r["auc"]
    short = [s.split("_")[0].replace("abu-", "") for s in scenes]
    print(f"\n{title}\n")
    print("| setting | " + " | ".join(short) + " | mean |")
    print("|---|" + "---|" * (len(scenes) + 1))
    for k in sorted(cells, key=str):
        vals = [cells[k].get(s, np.nan) for s in scenes]
        label = " ".join(str(x) for x in (k if isinstance(k, tuple) else (k,)))
        body = " | ".join(f"{v:.4f}" for v in vals)
        print(f"| {label} | {body} | **{np.nanmean(vals):.4f}** |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--iter", type=int, default=300, help="iteration count of the sweeps")
    args = ap.parse_args()
    rows = load(args.csv)
    scenes = sorted({r["scene"] for r in rows})
    std = [
        r
        for r in rows
        if r["scorer"] == "brad"
        and r["win"] == "9/27"
        and r["n_pca"] == "20"
        and r["ridge"] == "0.1"
    ]

    # Mean over scenes per configuration and iteration count.
    means: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in std:
        means[r["config"], r["iter"]].append(r["auc"])
    iters = sorted({i for _, i in means if i})
    print(f"Mean AUC over {len(scenes)} scenes, BRAD 9/27 on PCA-20 of S, by iterations\n")
    print("| configuration | " + " | ".join(f"{i} it" for i in iters) + " |")
    print("|---|" + "---|" * len(iters))
    for cfg in sorted({c for c, _ in means}):
        vals = [np.mean(means[cfg, i]) if (cfg, i) in means else np.nan for i in iters]
        print(f"| {cfg} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")

    at = [r for r in std if r["iter"] in (args.iter, 0)]
    table(at, lambda r: r["config"], scenes, f"Per scene at {args.iter} iterations (BRAD 9/27)")
    win = [
        r
        for r in rows
        if r["scorer"] == "brad"
        and r["n_pca"] == "20"
        and r["ridge"] == "0.1"
        and r["iter"] in (args.iter, 0)
    ]
    table(win, lambda r: (r["config"], r["win"]), scenes, "BRAD window (inner/outer), PCA-20")
    pca = [
        r
        for r in rows
        if r["scorer"] == "brad"
        and r["win"] == "9/27"
        and r["ridge"] == "0.1"
        and r["iter"] == args.iter
    ]
    table(pca, lambda r: (r["config"], f"k={r['n_pca']}"), scenes, "BRAD PCA components, 9/27")
    ridge = [
        r
        for r in rows
        if r["scorer"] == "brad"
        and r["win"] == "9/27"
        and r["n_pca"] == "20"
        and r["iter"] == args.iter
    ]
    if len({r["ridge"] for r in ridge}) > 1:
        table(ridge, lambda r: (r["config"], f"ridge={r['ridge']}"), scenes, "BRAD ridge, 9/27")
    norm = [r for r in rows if r["scorer"] == "norm" and r["iter"] == args.iter]
    table(norm, lambda r: r["config"], scenes, "Column-norm scorer ||S_j||")

    fit: dict[str, list[float]] = defaultdict(list)
    for r in std:
        if r["iter"] == args.iter:
            fit[r["config"]].append(r["fit_s"])
    print(f"\nMedian fit seconds per scene at {args.iter} iterations (one BLAS thread)\n")
    for cfg, v in sorted(fit.items()):
        print(f"- {cfg}: {np.median(v):.1f} s")


if __name__ == "__main__":
    main()
