"""Seconds per scene: REDNMF's defaults against the previous default and msrx, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_defaults_time.py [--repeats 3]

For each of the 12 real scenes (``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA``):
the median wall time of ``REDNMF().fit(cube)`` (fit and scoring of the cube
with the evidence), of ``REDNMF(scorer=MultiScale(score_cube=False)).fit(cube)`` (the evidence
alone: the default until 2026-12-07) and of ``MSRX().fit(cube)`` (the scorer
on the raw cube), alternating, on one BLAS thread and one engine thread, and
the ratio of the first two. The issue's budget: at most 1.5 times the
previous default's time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from rednmf.datasets import all_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.rx import MSRX
from rednmf.engines import InMemory
from rednmf.metrics import roc_auc
from rednmf.scoring.scorers import MultiScale

#: The scorer of the evidence alone (the default until 2026-12-07).
EVIDENCE_ALONE = MultiScale(score_cube=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| scene | shape | defaults s | evidence alone s | ratio | msrx s | AUC defaults |")
    print("|---|---|---|---|---|---|---|")
    ratios, new_all, old_all, ms_all = [], [], [], []
    for path in all_scenes():
        cube, gt = load_benchmark(path)
        times: dict[str, list[float]] = {"new": [], "old": [], "msrx": []}
        auc = {}
        with threadpool_limits(1):
            for _ in range(args.repeats):
                for key, det in (
                    ("new", REDNMF(engine=InMemory(n_jobs=1))),
                    ("old", REDNMF(scorer=EVIDENCE_ALONE, engine=InMemory(n_jobs=1))),
                    ("msrx", MSRX()),
                ):
                    t = time.perf_counter()
                    det.fit(cube)
                    times[key].append(time.perf_counter() - t)
                    auc[key] = roc_auc(det.decision_scores_, gt)
        new, old, ms = (statistics.median(times[k]) for k in ("new", "old", "msrx"))
        ratios.append(new / old)
        new_all.append(new)
        old_all.append(old)
        ms_all.append(ms)
        print(
            f"| {path.stem} | {'x'.join(map(str, cube.shape))} | {new:.2f} | {old:.2f} | "
            f"{new / old:.2f} | {ms:.2f} | {auc['new']:.4f} |",
            flush=True,
        )
    print(
        f"| **mean** | | {statistics.mean(new_all):.2f} | {statistics.mean(old_all):.2f} | "
        f"{statistics.mean(ratios):.2f} (max {max(ratios):.2f}) | "
        f"{statistics.mean(ms_all):.2f} | |"
    )


if __name__ == "__main__":
    main()
