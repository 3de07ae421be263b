"""CPU seconds (process time, one torch thread) of a short training of MSNet and BSDM.

Wall clock on a shared machine says little; process time of 20 steps, scaled to the
default 750 (MSNet) and 500 (BSDM) steps, estimates the CPU cost of a full fit.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/deep_cpu_per_step.py abu-airport-1
"""

from __future__ import annotations

import sys
import time

import torch

from rednmf.datasets import load_benchmark
from rednmf.detectors.registry import get_detector

#: (method, short-schedule parameters, steps of the default schedule)
RUNS = [("msnet", {"epochs": 20, "rounds": 1}, 750), ("bsdm", {"epochs": 20}, 500)]


def main(scene: str) -> None:
    torch.set_num_threads(1)
    cube, _ = load_benchmark(scene)
    for name, params, full in RUNS:
        det = get_detector(name, **params)
        c0, w0 = time.process_time(), time.perf_counter()
        det.fit(cube)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        steps = det.total_steps()
        print(
            f"{scene} {name}: {steps} steps {cpu:.2f} s CPU ({wall:.2f} s wall) -> "
            f"about {cpu / steps * full:.0f} s CPU for the default {full} steps",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "abu-airport-1")
