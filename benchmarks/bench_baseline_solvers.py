"""Per-iteration time of the NMF-family solvers: the current loops against the previous ones.

Run from the repository root, with one BLAS thread::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_baseline_solvers.py \\
        [--scene abu-airport-1] [--iters 20] [--repeats 5] [--rank 8]

The previous implementations (before the solvers worked in preallocated
buffers) are kept below, verbatim in their arithmetic, so that both are timed
in the same run on the same machine state. Each fit runs ``--iters``
iterations with ``tol=0`` from the same float32 start (min-max scaled scene,
``init='random'``, seed 0); the table gives the median milliseconds per
iteration over ``--repeats`` alternating runs, the ratio, the time of a
200-iteration fit at that rate (the detectors' default ``max_iter``) and the
largest relative difference of the objective histories.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from rednmf._validation import cube_to_matrix
from rednmf.datasets import load_benchmark
from rednmf.exceptions import ConvergenceWarning
from rednmf.preprocessing import scale_data
from rednmf.solvers.ewnmf import ewnmf_solve
from rednmf.solvers.init import initialize_factors
from rednmf.solvers.l1nmf import l1nmf_solve
from rednmf.solvers.nmf import nmf_solve
from rednmf.solvers.rnmf import rnmf_solve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test oracles
from oracles.reference import mu_update_H, mu_update_W  # noqa: E402

# -- the previous implementations -----------------------------------------------------


def _sq(A):
    return float(np.einsum("ij,ij->", A, A, dtype=np.float64))


def prev_nmf(X, W, H, n_iter):
    obj = []
    for _ in range(n_iter):
        W = mu_update_W(X, W, H)
        H = mu_update_H(X, W, H)
        obj.append(_sq(X - W @ H))
    return np.asarray(obj)


def prev_rnmf(X, W, H, n_iter, lam=4.0):
    obj = []
    for _ in range(n_iter):
        E = X - W @ H
        lam_t = lam * float(np.median(np.abs(E)))
        S = np.sign(E) * np.maximum(np.abs(E) - lam_t / 2, 0.0)
        del E
        Sp, Sn = np.maximum(S, 0), np.maximum(-S, 0)
        P = X + Sn
        W = mu_update_W(P, W, H, N=Sp)
        H = mu_update_H(P, W, H, N=Sp)
        obj.append(_sq(X - W @ H - S) + lam_t * float(np.abs(S).sum(dtype=np.float64)))
    return np.asarray(obj)


def _huber(E, delta):
    A = np.abs(E).astype(np.float64)
    m = np.minimum(A, delta)
    return float((A - m + m * m / (2 * delta)).sum() + E.size * delta / 2)


def prev_l1nmf(X, W, H, n_iter, delta=0.5):
    obj = []
    for _ in range(n_iter):
        E = X - W @ H
        d_t = delta * max(float(np.median(np.abs(E))), np.finfo(np.float32).tiny)
        U = 1.0 / np.maximum(np.abs(E), d_t)
        del E
        W = mu_update_W(X, W, H, U=U)
        H = mu_update_H(X, W, H, U=U)
        obj.append(_huber(X - W @ H, d_t))
    return np.asarray(obj)


def prev_ewnmf(X, W, H, n_iter, gamma=1.0):
    obj = []
    for _ in range(n_iter):
        E = X - W @ H
        g_t = gamma * max(_sq(E) / E.size, np.finfo(np.float64).tiny)
        Z = E * E
        Z -= Z.min(axis=0, keepdims=True)
        T = np.exp(-Z / g_t)
        T /= T.sum(axis=0, keepdims=True)
        del E, Z
        W = mu_update_W(X, W, H, U=T)
        H = mu_update_H(X, W, H, U=T)
        E = X - W @ H
        fit = float(np.einsum("ij,ij,ij->", T, E, E, dtype=np.float64))
        T64 = T.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.where(T64 > 0, T64 * np.log(X.shape[0] * T64), 0.0).sum()
        obj.append(fit + g_t * float(ent))
    return np.asarray(obj)


# -- the current ones, with the same parameters ----------------------------------------

CURRENT = {
    "NMF": lambda X, W, H, k: nmf_solve(X, W, H, max_iter=k, tol=0).objective,
    "RNMF": lambda X, W, H, k: rnmf_solve(X, W, H, lam=4.0, max_iter=k, tol=0).objective,
    "L1NMF": lambda X, W, H, k: l1nmf_solve(X, W, H, max_iter=k, tol=0).objective,
    "EWNMF": lambda X, W, H, k: ewnmf_solve(X, W, H, max_iter=k, tol=0).objective,
}
PREVIOUS = {"NMF": prev_nmf, "RNMF": prev_rnmf, "L1NMF": prev_l1nmf, "EWNMF": prev_ewnmf}


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", default="abu-airport-1")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--methods", default="NMF,RNMF,L1NMF,EWNMF")
    args = ap.parse_args()

    cube, _ = load_benchmark(args.scene)
    X, _ = cube_to_matrix(cube)
    X = scale_data(X.astype(np.float32), "minmax")
    W, H, _ = initialize_factors(X, args.rank, "random", np.random.default_rng(0))
    W, H = W.astype(np.float32), H.astype(np.float32)
    k = args.iters
    print(
        f"scene {args.scene}: X {X.shape[0]} x {X.shape[1]} {X.dtype}, rank {args.rank}, "
        f"{k} iterations, median of {args.repeats}; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}\n"
    )
    print("| solver | before ms/iter | after ms/iter | speed-up | before s/200 it | "
          "after s/200 it | max rel. objective diff |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in args.methods.split(","):
            before, after = [], []
            for _ in range(args.repeats):  # alternate, so that load drifts hit both
                t, ob = _timed(PREVIOUS[name], X, W, H, k)
                before.append(t / k)
                t, oa = _timed(CURRENT[name], X, W, H, k)
                after.append(t / k)
            b, a = statistics.median(before), statistics.median(after)
            diff = float(np.max(np.abs(oa - ob) / np.abs(ob)))
            print(f"| {name} | {b * 1e3:.1f} | {a * 1e3:.1f} | {b / a:.2f}x | {b * 200:.1f} | "
                  f"{a * 200:.1f} | {diff:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
