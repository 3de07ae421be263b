"""A fitted REDNMF scoring another scene: fit on the top half, score the bottom half.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/transfer_halves.py [--iters 5,100]

For every scene of ``$REDNMF_DATA`` (the paper's ten) with anomalies in both halves: the
AUC on the bottom half of ``REDNMF(max_iter=k).fit(bottom)`` (fitted on it directly) and
of ``REDNMF(max_iter=k).fit(top).decision_function(bottom)`` (the top half's background
``W`` and encoder ``M``), for each budget ``k`` of ``--iters``; and, for comparison,
GRX's ``decision_function`` (the top half's mean and covariance). Printed as a markdown
table (the numbers of docs/choices.md, "Scoring new pixels with a fitted REDNMF").
"""

from __future__ import annotations

import argparse

from rednmf import REDNMF, get_detector
from rednmf.datasets import list_scenes, load_benchmark
from rednmf.metrics import roc_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder of the .mat scenes (REDNMF_DATA)")
    ap.add_argument("--iters", default="5,100")
    args = ap.parse_args()
    ks = [int(k) for k in args.iters.split(",")]
    head = " | ".join(
        f"{k} it: direct | {k} it: top half's model | {k} it: difference" for k in ks
    )
    print(f"| scene | {head} | GRX: direct | GRX: top half's |")
    print("|---" * (3 * len(ks) + 3) + "|")
    for path in list_scenes(args.data):
        cube, gt = load_benchmark(path)
        half = cube.shape[0] // 2
        top, bottom, truth = cube[:half], cube[half:], gt[half:]
        if not gt[:half].any() or not truth.any():
            continue
        cells = []
        for k in ks:
            direct = roc_auc(REDNMF(max_iter=k).fit(bottom).decision_scores_, truth)
            transfer = roc_auc(REDNMF(max_iter=k).fit(top).decision_function(bottom), truth)
            cells.append(f"{direct:.4f} | {transfer:.4f} | {transfer - direct:+.4f}")
        grx_direct = roc_auc(get_detector("grx").fit(bottom).decision_scores_, truth)
        grx_transfer = roc_auc(get_detector("grx").fit(top).decision_function(bottom), truth)
        print(
            f"| {path.stem} | "
            + " | ".join(cells)
            + f" | {grx_direct:.4f} | {grx_transfer:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
