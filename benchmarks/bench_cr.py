"""Old vs new implementation of the collaborative-representation detectors.

Run from the repository root, one BLAS thread so the numbers mean one core::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cr.py [--scene abu-airport-1]
        [--repeats 3]

The previous implementation (gather the ``(P, m, b)`` ring samples of a block of
pixels, form the ``m x m`` Gram matrices with a batched product, solve with
:func:`numpy.linalg.solve`, residual from the gathered samples) is kept below,
verbatim but for the signatures. Both run on the same preprocessed cube, old and
new interleaved, ``--repeats`` times; the table gives the median seconds, the
speed-up, the largest absolute and relative score difference and the AUCs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_info

from rednmf.datasets import data_dir, load_benchmark
from rednmf.detectors.cr import (
    CRD,
    LSADCRIDW,
    LSUNRSORAD,
    idw_weights,
    ring_offsets,
)
from rednmf.metrics import roc_auc

# -- the previous implementation ----------------------------------------------

Solver = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_OLD_BLOCK_ELEMENTS = 1 << 22


def _old_cr_residual(
    H: np.ndarray, valid: np.ndarray, y: np.ndarray, lam: float, w2: np.ndarray, floor: float
) -> np.ndarray:
    diff2 = np.einsum("pmb,pmb->pm", H - y[:, None, :], H - y[:, None, :])
    g2 = np.where(valid, np.maximum(w2 * diff2, floor), 1.0)
    A = H @ H.transpose(0, 2, 1)
    idx = np.arange(H.shape[1])
    A[:, idx, idx] += lam * g2
    alpha = np.linalg.solve(A, (H @ y[:, :, None]))[..., 0]
    resid = y - np.einsum("pm,pmb->pb", alpha, H)
    return np.sqrt(np.einsum("pb,pb->p", resid, resid))


def _old_unrs_residual(
    H: np.ndarray, valid: np.ndarray, y: np.ndarray, lam: float, floor: float
) -> np.ndarray:
    sums = H.sum(axis=2)
    n = valid.sum(axis=1, keepdims=True).astype(np.float64)
    mu = np.where(valid, sums, 0.0).sum(axis=1, keepdims=True) / n
    dev = np.where(valid, sums - mu, 0.0)
    sd = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / np.maximum(n - 1.0, 1.0))
    keep = valid & (np.abs(dev) <= 2.0 * sd)
    keep |= valid & ~keep.any(axis=1, keepdims=True)
    Z = np.where(keep[..., None], H - y[:, None, :], 0.0)
    C = Z @ Z.transpose(0, 2, 1)
    idx = np.arange(H.shape[1])
    d2 = C[:, idx, idx].copy()
    C[:, idx, idx] += np.where(keep, lam * np.maximum(d2, floor), 1.0)
    e = keep.astype(np.float64)
    v = np.linalg.solve(C, e[:, :, None])[..., 0] * e
    alpha = v / v.sum(axis=1, keepdims=True)
    resid = y - np.einsum("pm,pmb->pb", alpha, H)
    return np.sqrt(np.einsum("pb,pb->p", resid, resid))


def _old_scores(
    cube: np.ndarray, inner: int, outer: int, solver: Solver, *, summed: bool, border: str
) -> np.ndarray:
    rows, cols, b = cube.shape
    dr, dc = ring_offsets(inner, outer)
    hi = inner // 2
    if summed:
        sr, sc = np.meshgrid(np.arange(-hi, hi + 1), np.arange(-hi, hi + 1), indexing="ij")
        shifts = list(zip(sr.ravel().tolist(), sc.ravel().tolist(), strict=True))
    else:
        shifts = [(0, 0)]
    halo = outer // 2 + (hi if summed else 0)
    if border == "mirror":
        padded = np.pad(cube, ((halo, halo), (halo, halo), (0, 0)), mode="symmetric")
        inside = np.ones(padded.shape[:2], dtype=bool)
    else:
        padded = np.pad(cube, ((halo, halo), (halo, halo), (0, 0)), mode="constant")
        inside = np.pad(np.ones((rows, cols), dtype=bool), halo, mode="constant")
    m = dr.size
    n_pix = rows * cols
    block = max(1, _OLD_BLOCK_ELEMENTS // (m * b))
    flat = cube.reshape(n_pix, b)
    scores = np.zeros(n_pix)
    for p0 in range(0, n_pix, block):
        pix = np.arange(p0, min(n_pix, p0 + block))
        r = pix // cols + halo
        c = pix % cols + halo
        y = flat[pix]
        for s_r, s_c in shifts:
            rr = (r + s_r)[:, None] + dr[None, :]
            cc = (c + s_c)[:, None] + dc[None, :]
            scores[pix] += solver(padded[rr, cc], inside[rr, cc], y)
    return scores.reshape(rows, cols)


def _old_scene_floor(x: np.ndarray) -> float:
    """The floor on the squared Tikhonov weights, from the whole scaled scene at once."""
    x = x.reshape(-1, x.shape[2])
    return 1e-12 * float(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))


def old_fit_scores(det: CRD | LSADCRIDW | LSUNRSORAD, cube: np.ndarray) -> np.ndarray:
    """The previous ``_fit_scores`` of ``det`` (validation and masking aside)."""
    data, (offset, divisor) = det._prepare(cube)
    x = (np.asarray(data, dtype=np.float64) - offset) / divisor  # the scaled float64 copy
    lam, floor = float(det.reg), _old_scene_floor(x)
    if isinstance(det, LSUNRSORAD):

        def solver(H: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _old_unrs_residual(H, valid, y, lam, floor)

    else:
        m = det.outer**2 - det.inner**2
        w2 = idw_weights(det.inner, det.outer) ** 2 if isinstance(det, LSADCRIDW) else np.ones(m)

        def solver(H: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _old_cr_residual(H, valid, y, lam, w2, floor)

    summed = not isinstance(det, CRD)
    return _old_scores(x, det.inner, det.outer, solver, summed=summed, border=det.border)


# -- the comparison ------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="abu-airport-1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--border", default="clip", choices=["clip", "mirror"])
    args = parser.parse_args()
    cube, gt = load_benchmark(data_dir() / f"{args.scene}.mat")
    cube = np.asarray(cube, dtype=np.float64)

    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} thr" for i in threadpool_info())
    print(f"scene {args.scene} {cube.shape}, border={args.border}, repeats={args.repeats}")
    print(f"{platform.processor() or platform.machine()}, BLAS: {blas}\n")
    cols = ["detector", "old s", "new s", "speed-up", "max abs diff", "max rel diff"]
    print("| " + " | ".join([*cols, "AUC old", "AUC new"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for cls in (CRD, LSADCRIDW, LSUNRSORAD):
        det = cls(border=args.border)
        old_t, new_t = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            old = old_fit_scores(det, cube)
            old_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            new = det.fit(cube).decision_scores_
            new_t.append(time.perf_counter() - t0)
        t_old, t_new = statistics.median(old_t), statistics.median(new_t)
        diff = np.abs(new - old)
        rel = float(np.max(diff / np.abs(old)))
        print(
            f"| {det.name} | {t_old:.2f} | {t_new:.2f} | {t_old / t_new:.1f}x "
            f"| {diff.max():.1e} | {rel:.1e} | {roc_auc(old, gt):.8f} | {roc_auc(new, gt):.8f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
