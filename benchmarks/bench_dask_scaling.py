"""REDNMF's time per iteration on a Dask LocalCluster of 1 and 2 workers, and in memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_dask_scaling.py [--pixels 250000] [--iters 12]

One synthetic ``side x side x 200`` float32 scene (``bench_solver.synthetic_cube``),
the default REDNMF with ``--iters`` iterations, fitted in this one run:

* in memory with ``n_jobs=1`` and ``n_jobs=2`` (threads over pixel blocks);
* on a ``distributed.LocalCluster`` of 1 and of 2 worker processes, one thread
  each (``REDNMF(engine=DaskEngine(client))``: the chunks and their ``H`` and ``S`` live
  on the workers, the driver keeps ``W`` and ``M``).

Each mode's time per iteration is the median of the intervals between the fit
callback's calls (set-up and scoring excluded). Printed: that time, the speed-up
over one worker (or one thread) and the scaling efficiency ``t1 / (2 t2)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

from threadpoolctl import threadpool_limits

from bench_solver import synthetic_cube  # benchmarks/ is on sys.path when run as a script
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import DaskEngine, InMemory


def per_iteration(cube, **params) -> float:
    """Median seconds between consecutive iterations of one fit."""
    stamps: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        REDNMF(**params).fit(cube, callback=lambda t, f: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=250_000)
    ap.add_argument("--iters", type=int, default=12)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    cube = synthetic_cube(args.pixels)
    print(f"scene {' x '.join(map(str, cube.shape))}, {args.iters} iterations, "
          f"{len(os.sched_getaffinity(0))} CPUs")  # fmt: skip
    rows = {}
    with threadpool_limits(1):
        for jobs in (1, 2):
            rows[f"in memory, n_jobs={jobs}"] = per_iteration(
                cube, max_iter=args.iters, engine=InMemory(n_jobs=jobs)
            )
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            rows[f"Dask LocalCluster, {workers} worker process(es)"] = per_iteration(
                cube, max_iter=args.iters, engine=DaskEngine(client)
            )
    print()
    print("| mode | s / iteration | speed-up over 1 | scaling efficiency t1 / (2 t2) |")
    print("|---|---|---|---|")
    for name, sec in rows.items():
        one = rows[name.replace("n_jobs=2", "n_jobs=1").replace(", 2 worker", ", 1 worker")]
        eff = f"{one / (2 * sec):.2f}" if one is not sec else ""
        print(f"| {name} | {sec:.3f} | {one / sec:.2f}x | {eff} |")


if __name__ == "__main__":
    main()
