"""Peak resident memory of a factorisation fit, phase by phase (REDNMF and the NMF family).

Fits ``get_detector(METHOD, max_iter=ITER)`` in this process on a synthetic
float32 scene (:func:`rednmf.datasets.make_scene`), with a thread sampling the
resident set size (``/proc/self/statm``) every 2 ms. The phases are methods
of the detector and of the scorers, wrapped to record, relative to the RSS
just before ``fit`` (the cube already held): the RSS at entry, the peak while
the phase runs and the RSS at exit. The memory of an iteration does not
depend on how many run, so a few iterations suffice.

Printed: ``phase | RSS at entry | peak | at exit`` in MiB above the cube, the
peak also as a multiple of the cube's size (nested phases indented).

Usage::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_fit_memory.py \
        [--method rednmf] [--rows 1000 --cols 1000 --bands 50] [--iter 3]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import threading
import time
from typing import Any

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20

#: (module, qualified name) of the phases that are wrapped, in the order they run.
PHASES = [
    ("rednmf.detectors._factorization", "FactorizationDetector._data_matrix"),
    ("rednmf.detectors._factorization", "FactorizationDetector._initial_factors"),
    ("rednmf.detectors.rednmf", "REDNMF._solve"),
    ("rednmf.detectors._factorization", "FactorizationDetector._solve"),
    ("rednmf.detectors.rednmf", "REDNMF._score"),
    ("rednmf.detectors._factorization", "FactorizationDetector._score"),
    ("rednmf.scoring.from_matrix", "project_matrix"),
    ("rednmf.scoring.from_matrix", "evidence_suspects"),
    ("rednmf.detectors.rednmf", "REDNMF._project_cube"),
    ("rednmf.scoring.from_matrix", "cube_against_background"),
    ("rednmf.scoring.multiscale", "local_rx_backend"),
    ("rednmf.scoring.multiscale", "global_rx_backend"),
    ("rednmf.scoring.multiscale", "_combined"),
]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Sampler:
    """The highest RSS seen since :meth:`reset` (a daemon thread samples it)."""

    def __init__(self) -> None:
        self.peak = rss()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def read(self) -> tuple[int, int]:
        now = rss()
        self.peak = max(self.peak, now)
        return now, self.peak

    def reset(self) -> None:
        self.peak = rss()


def wrap(sampler: Sampler, module: str, qual: str, stack: list, rows: list) -> None:
    """Record entry, peak and exit RSS of ``module.qual`` (nested phases keep their own)."""
    owner: Any = importlib.import_module(module)
    *path, name = qual.split(".")
    for part in path:
        owner = getattr(owner, part)
    fn = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if fn is None:
        return

    @functools.wraps(fn)
    def phase(*args: Any, **kw: Any) -> Any:
        now, peak = sampler.read()
        if stack:
            stack[-1][1] = max(stack[-1][1], peak)
        sampler.reset()
        stack.append([now, now])
        index = len(rows)
        rows.append(None)  # the row of this phase, in the order the phases start
        try:
            return fn(*args, **kw)
        finally:
            end, peak = sampler.read()
            start, top = stack.pop()
            top = max(top, peak)
            rows[index] = (len(stack), qual, start, top, end)
            if stack:
                stack[-1][1] = max(stack[-1][1], top)
            sampler.reset()

    setattr(owner, name, phase)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="rednmf")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--iter", type=int, default=3)
    args = parser.parse_args()

    from rednmf.datasets import make_scene
    from rednmf.detectors.registry import get_detector

    cube, _ = make_scene(rows=args.rows, cols=args.cols, bands=args.bands, random_state=0)
    cube = np.asarray(cube, dtype=np.float32)
    det = get_detector(args.method, max_iter=args.iter)
    sampler = Sampler()
    stack: list = []
    rows: list = []
    for module, qual in PHASES:
        wrap(sampler, module, qual, stack, rows)
    base = rss()
    sampler.reset()
    det.fit(cube)
    _, peak = sampler.read()
    for _, _, _, top, _ in rows:
        peak = max(peak, top)
    mb = cube.nbytes / MIB
    print(f"{args.method}: cube {args.rows} x {args.cols} x {args.bands} float32, {mb:.0f} MiB")
    print(f"peak of the fit above the cube: {(peak - base) / MIB:.0f} MiB "
          f"({(peak - base) / cube.nbytes:.2f}x the cube)\n")  # fmt: skip
    print("| phase | at entry MiB | peak MiB | peak / cube | at exit MiB |")
    print("|---|---|---|---|---|")
    for depth, qual, start, top, end in rows:
        label = ("&nbsp;&nbsp;" * depth) + qual
        print(f"| {label} | {(start - base) / MIB:.0f} | {(top - base) / MIB:.0f} | "
              f"{(top - base) / cube.nbytes:.2f} | {(end - base) / MIB:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
