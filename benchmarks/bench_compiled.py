"""The block engine with and without its compiled S step, measured in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_compiled.py [--rounds 7]

Prints:

1. ms per iteration of the solver in ``REDNMF()``'s configuration on
   abu-airport-1 (pixel-major float32, rank 8, noise lambda, factored M step,
   40 iterations, set-up included), with the compiled S step
   (``rednmf_blocks.USE_KERNELS = True``) and without it, on one and on two
   threads: the paths alternate within each round, medians over the rounds.
2. With ``--block-sizes 2048,4096,8192``: the same per-iteration time for each
   block size (alternating, compiled S step) on abu-airport-1 and on a
   synthetic 316 x 316 x 200 scene (10^5 pixels, 8 iterations), one and two
   threads; then it stops.
3. With ``--evidence``: ms of :func:`rednmf.solvers.rednmf.anomaly_evidence`
   (the scored evidence, once per fit, in place in a copy of ``X``) with the
   compiled per-pixel pass and with the NumPy passes (a BLAS ``W H``, BLAS on
   its default threads), on abu-airport-1 and the synthetic 10^5 x 200 scene
   (rank 8, ``tau`` the median residual norm: half the pixels zero),
   alternating, medians; then it stops.
4. Seconds of the first and of the second ``REDNMF().fit`` in a new process
   (one subprocess each way, after a process has compiled and cached the
   kernel): what numba's import and loading the cached kernel add to a first
   fit.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from rednmf._validation import cube_to_matrix
from rednmf.datasets import load_benchmark
from rednmf.preprocessing import scale_data
from rednmf.solvers import rednmf as R
from rednmf.solvers import rednmf_blocks
from rednmf.solvers.init import initialize_factors

SCENE = "abu-airport-1"
SOLVER = dict(lam=4.0, beta=1.0, tol=0, lam_mode="noise", m_split="factored")


def _problem(cube: np.ndarray) -> tuple[np.ndarray, ...]:
    X, _ = cube_to_matrix(scale_data(cube.astype(np.float32), "minmax"))
    X = np.asfortranarray(X)  # pixel-major, as REDNMF() lays it out
    return (X, *initialize_factors(X, 8, "nndsvda", np.random.default_rng(0)))


def block_sizes(sizes: list[int], rounds: int) -> None:
    scenes = {
        SCENE: (load_benchmark(SCENE)[0], 40),
        "synthetic 10^5 x 200": (np.random.default_rng(0).random((316, 316, 200)), 8),
    }
    print("| scene | threads | " + " | ".join(f"{b} px, ms / iteration" for b in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name, (cube, n_iter) in scenes.items():
        X, W, H, M = _problem(cube)
        for jobs in (1, 2):
            times: dict[int, list[float]] = {b: [] for b in sizes}
            for _ in range(rounds + 1):  # the first round warms up
                for b in sizes:
                    t = time.perf_counter()
                    R.rednmf_solve_blocks(
                        X, W, H, M, max_iter=n_iter, n_jobs=jobs, block_size=b, **SOLVER
                    )
                    times[b].append((time.perf_counter() - t) / n_iter * 1e3)
            meds = " | ".join(f"{statistics.median(times[b][1:]):.2f}" for b in sizes)
            print(f"| {name} | {jobs} | {meds} |")


def per_iteration(rounds: int, n_iter: int = 40) -> None:
    X, W, H, M = _problem(load_benchmark(SCENE)[0])
    print("| threads | compiled S step, ms / iteration | NumPy passes, ms / iteration | ratio |")
    print("|---|---|---|---|")
    for jobs in (1, 2):
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds + 1):  # the first round warms up
            for compiled in (True, False):
                rednmf_blocks.USE_KERNELS = compiled
                t = time.perf_counter()
                R.rednmf_solve_blocks(X, W, H, M, max_iter=n_iter, n_jobs=jobs, **SOLVER)
                times[compiled].append((time.perf_counter() - t) / n_iter * 1e3)
        on, off = (statistics.median(times[c][1:]) for c in (True, False))
        print(f"| {jobs} | {on:.2f} | {off:.2f} | {off / on:.2f}x |")
    rednmf_blocks.USE_KERNELS = True


def evidence(rounds: int) -> None:
    scenes = {
        SCENE: load_benchmark(SCENE)[0],
        "synthetic 10^5 x 200": np.random.default_rng(0).random((316, 316, 200)),
    }
    print("| scene | compiled pass, ms | NumPy passes, ms | ratio |")
    print("|---|---|---|---|")
    for name, cube in scenes.items():
        X, W, H, _ = _problem(cube)
        tau = float(np.median(np.linalg.norm(X - W @ H, axis=0)))
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds + 1):  # the first round warms up
            for compiled in (True, False):
                rednmf_blocks.USE_KERNELS = compiled
                out = X.copy(order="F")
                t = time.perf_counter()
                R.anomaly_evidence(out, W, H, tau, out=out)
                times[compiled].append((time.perf_counter() - t) * 1e3)
        on, off = (statistics.median(times[c][1:]) for c in (True, False))
        print(f"| {name} | {on:.1f} | {off:.1f} | {off / on:.2f}x |")
    rednmf_blocks.USE_KERNELS = True


def _child(compiled: bool) -> None:
    t0 = time.perf_counter()
    from rednmf import REDNMF

    rednmf_blocks.USE_KERNELS = compiled
    cube, _ = load_benchmark(SCENE)
    t1 = time.perf_counter()
    REDNMF().fit(cube)
    t2 = time.perf_counter()
    REDNMF().fit(cube)
    t3 = time.perf_counter()
    print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")


def first_fit() -> None:
    print()
    print("| S step | imports + read s | first fit s | second fit s |")
    print("|---|---|---|---|")
    for compiled in (True, False):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(int(compiled))],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        a, b, c = out.stdout.split()
        name = "compiled" if compiled else "NumPy passes"
        print(f"| {name} | {a} | {b} | {c} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block-sizes", help="compare these block sizes, e.g. 2048,4096,8192")
    parser.add_argument("--evidence", action="store_true", help="time anomaly_evidence only")
    parser.add_argument("--child", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(bool(args.child))
        return
    if args.evidence:
        evidence(args.rounds)
        return
    if args.block_sizes:
        block_sizes([int(b) for b in args.block_sizes.split(",")], args.rounds)
        return
    per_iteration(args.rounds)
    first_fit()


if __name__ == "__main__":
    main()
