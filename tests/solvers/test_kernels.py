"""The compiled per-pixel kernel of the block engine against NumPy oracles."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from oracles import reference as REF
from rednmf import REDNMF
from rednmf._validation import cube_to_matrix
from rednmf.preprocessing import scale_data
from rednmf.solvers import _kernels, rednmf_blocks
from rednmf.solvers import rednmf as R
from rednmf.solvers.init import initialize_factors
from rednmf.solvers.prox import group_shrink


def _case(dtype, order, seed=0, d=23, m=40, r=3):
    rng = np.random.default_rng(seed)
    X = np.asarray(rng.random((d, m)), dtype=dtype, order=order)
    W = rng.random((d, r)).astype(dtype)
    H = rng.random((r, m)).astype(dtype)
    E = X - W @ H
    norms = np.linalg.norm(E, axis=0)
    tau = float(np.median(norms))  # about half the pixels are shrunk to zero
    S = np.asarray(rng.standard_normal((d, m)), dtype=dtype, order=order)
    f = rng.random(m).astype(dtype)
    S[:, ::3] = 0.0  # columns where the old S is zero ...
    f[::3] = 0.0  # ... and its factor too
    return X, W, H, S, f, tau


def _pixel_major_problem(cube, dtype, init, seed):
    """Scaled pixel-major ``X`` (as REDNMF() lays it out) and initial factors, in ``dtype``."""
    X, _ = cube_to_matrix(cube)
    X = np.asfortranarray(scale_data(X, "minmax"), dtype=dtype)
    W, H, M = initialize_factors(X, 4, init, np.random.default_rng(seed))
    return X, W.astype(dtype), H.astype(dtype), M.astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("order", ["F", "C"])
def test_residual_shrink_is_the_residual_the_fit_and_the_group_shrink(dtype, rtol, order):
    X, W, H, S, f, tau = _case(dtype, order)
    E = X.astype(np.float64) - W.astype(np.float64) @ H.astype(np.float64)
    fit_want = float(np.sum((E - S) ** 2))
    S_want = group_shrink(E, tau, axis=0)
    norms = np.linalg.norm(E, axis=0)
    A = np.full_like(S, np.nan)
    touched = (f != 0) | (norms > tau)  # S was or is non-zero
    fit, penalty, nnz = _kernels.residual_shrink(X, W, H, S, A, f, tau)
    assert fit == pytest.approx(fit_want, rel=rtol)
    assert penalty == pytest.approx(float(np.sum(np.maximum(norms - tau, 0.0))), rel=rtol)
    assert nnz == int(np.sum(norms > tau)) and 0 < nnz < X.shape[1]
    np.testing.assert_allclose(S, S_want, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_array_equal(A[:, touched], np.abs(S[:, touched]))
    assert np.isnan(A[:, ~touched]).all(), "columns where S stays zero are not touched"
    assert (~touched).any() and (touched & (S == 0).all(axis=0)).any()
    np.testing.assert_array_equal(f != 0, norms > tau)
    np.testing.assert_allclose(f[norms > tau], 1.0 - tau / norms[norms > tau], rtol=rtol)


def test_without_shrink_only_the_fit_is_computed():
    X, W, H, S, f, tau = _case(np.float64, "F", seed=1)
    S0, f0, A = S.copy(), f.copy(), np.zeros_like(S)
    fit, penalty, nnz = _kernels.residual_shrink(X, W, H, S, A, f, tau, shrink=False)
    assert fit == pytest.approx(float(np.sum((X - W @ H - S0) ** 2)), rel=1e-12)
    assert (penalty, nnz) == (0.0, 0)
    np.testing.assert_array_equal(S, S0)
    np.testing.assert_array_equal(f, f0)
    assert not A.any()
    _, _, _ = _kernels.residual_shrink(X, W, H, S, A, f, tau, with_fit=False)
    assert _kernels.residual_shrink(X, W, H, S, A, f, tau, with_fit=False)[0] == 0.0


def test_the_kernel_is_deterministic():
    X, W, H, S, f, tau = _case(np.float32, "F", seed=2, d=205, m=300, r=8)
    outs = []
    for _ in range(2):
        S1, f1, A1 = S.copy(order="F"), f.copy(), np.empty_like(S, order="F")
        outs.append((_kernels.residual_shrink(X, W, H, S1, A1, f1, tau), S1, f1))
    assert outs[0][0] == outs[1][0]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_shrink_residual_writes_the_group_shrink_of_every_pixel(dtype, rtol):
    X, W, H, _, _, tau = _case(dtype, "F", seed=4)
    E = X.astype(np.float64) - W.astype(np.float64) @ H.astype(np.float64)
    want = group_shrink(E, tau, axis=0)
    out, A = np.full_like(X, np.nan, order="F"), np.empty_like(X, order="F")
    _kernels.shrink_residual(X, W, H, out, A, tau)
    np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * 1e-3)
    zero = ~want.any(axis=0)
    assert zero.any() and not zero.all()
    assert not out[:, zero].any(), "pixels at most tau are written, as zeros"
    np.testing.assert_array_equal(A, np.abs(out))
    in_place = X.copy(order="F")  # out may be X itself
    _kernels.shrink_residual(in_place, W, H, in_place, A, tau)
    np.testing.assert_array_equal(in_place, out)


def test_anomaly_evidence_does_not_depend_on_blocks_threads_or_order(monkeypatch):
    """Chunks of a Dask fit and the whole scene in memory get the same evidence, bit for bit.

    The REDNMF() shapes of the Dask tests' scene (30 bands, rank 8, 12288 pixels
    in chunks of 6144): a BLAS product ``W H`` rounds differently on one and on
    two threads, and for 6144 and 8192 columns.
    """
    rng = np.random.default_rng(5)
    d, r, n = 30, 8, 12288
    W = rng.random((d, r)).astype(np.float32)
    H = rng.random((r, n)).astype(np.float32)
    X = np.asfortranarray(W @ H + 0.01 * rng.standard_normal((d, n)).astype(np.float32))
    tau = float(np.median(np.linalg.norm(X - W @ H, axis=0)))
    whole = R.anomaly_evidence(X, W, H, tau)
    assert 0 < np.count_nonzero(whole.any(axis=0)) < n
    with threadpool_limits(1):
        one_thread = R.anomaly_evidence(X, W, H, tau, block_size=1000)
        chunks = [R.anomaly_evidence(X[:, a:b].copy("F"), W, H[:, a:b].copy(), tau)
                  for a, b in ((0, 6144), (6144, n))]  # fmt: skip
    band_major = R.anomaly_evidence(np.ascontiguousarray(X), W, H, tau)
    in_place = X.copy(order="F")
    assert R.anomaly_evidence(in_place, W, H, tau, out=in_place) is in_place
    for got in (one_thread, np.concatenate(chunks, axis=1), band_major, in_place):
        np.testing.assert_array_equal(got, whole)
    # Both paths are the float64 group shrink to float32 rounding of X - WH (|X| <= 8 ulps).
    want = group_shrink(X.astype(np.float64) - W.astype(np.float64) @ H.astype(np.float64), tau)
    atol = 8 * np.finfo(np.float32).eps * float(np.abs(X).max())
    monkeypatch.setattr(rednmf_blocks, "USE_KERNELS", False)  # the NumPy passes
    for got in (whole, R.anomaly_evidence(X, W, H, tau)):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "beta, m_split", [(1.0, "factored"), (1.0, "elementwise"), (0.0, "factored")]
)
def test_block_engine_with_and_without_the_kernel_agree(small_scene, monkeypatch, beta, m_split):
    """The compiled pass and the NumPy passes give the same fit, to float32 rounding."""
    X, W, H, M = _pixel_major_problem(small_scene[0], np.float32, "nndsvda", 0)
    kw = dict(
        lam=0.9,  # blocks with S over most columns, over some, and none
        beta=beta,
        max_iter=40,
        tol=0,
        lam_mode="absolute",
        m_split=m_split,
        n_jobs=2,
        block_size=256,
    )
    fused = R.rednmf_solve_blocks(X, W, H, M, **kw)
    monkeypatch.setattr(rednmf_blocks, "USE_KERNELS", False)
    plain = R.rednmf_solve_blocks(X, W, H, M, **kw)
    assert 0 < np.count_nonzero(np.any(fused.S, axis=0)) < X.shape[1], "S must be partly zero"
    np.testing.assert_allclose(fused.objective, plain.objective, rtol=2e-5)
    for a, b in ((fused.W, plain.W), (fused.H, plain.H), (fused.M, plain.M), (fused.S, plain.S)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * float(np.abs(b).max()))
    assert not np.array_equal(fused.S, plain.S), "the two paths are different code"


def test_the_kernel_serves_pixel_major_numpy_blocks_with_pixel_groups():
    X = np.ones((5, 7), dtype=np.float32, order="F")
    H, S = np.ones((2, 7), dtype=np.float32), np.zeros_like(X, order="F")
    kw = dict(tau=0.1, beta=1.0, eps=1e-9, block_size=4, n_jobs=1)
    assert rednmf_blocks.BlockRange(X, H, S, sparsity="l21", **kw).compiled
    band_major = np.ascontiguousarray(X), H, np.ascontiguousarray(S)
    assert not rednmf_blocks.BlockRange(*band_major, sparsity="l21", **kw).compiled
    assert not rednmf_blocks.BlockRange(X, H, S, sparsity="l1", **kw).compiled


def test_the_default_detector_fit_runs_the_kernel(small_scene, monkeypatch):
    calls = []
    kernel = _kernels.residual_shrink

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(_kernels, "residual_shrink", counted)
    REDNMF(max_iter=5).fit(small_scene[0])
    assert len(calls) >= 5, "REDNMF() lays X out pixel-major, so its S step is compiled"


@pytest.mark.parametrize("m_split", ["elementwise", "factored"])
def test_compiled_engine_in_float64_is_the_plain_transcription(small_scene, monkeypatch, m_split):
    """Pixel-major float64 blocks (the compiled S step) against Algorithm 1 as printed."""
    calls = []
    kernel = _kernels.residual_shrink
    monkeypatch.setattr(
        _kernels, "residual_shrink", lambda *a, **k: calls.append(1) or kernel(*a, **k)
    )
    X, W, H, M = _pixel_major_problem(small_scene[0], np.float64, "random", 1)
    W1, H1, M1, S1, obj1 = REF.plain_rednmf(
        X, W, H, M, lam=0.5, beta=1.0, n_iter=40, fixed=True, m_split=m_split
    )
    res = R.rednmf_solve_blocks(
        X, W, H, M, lam=0.5, beta=1.0, max_iter=40, tol=0, lam_mode="absolute",
        m_split=m_split, block_size=300, n_jobs=2,
    )  # fmt: skip
    np.testing.assert_allclose(res.objective, obj1, rtol=1e-8)
    for got, want in ((res.W, W1), (res.H, H1), (res.M, M1), (res.S, S1)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)
    assert 0 < np.count_nonzero(np.any(res.S, axis=0)) < X.shape[1], "S must be partly zero"
    assert calls, "the compiled S step ran"


def test_compiled_engine_result_does_not_depend_on_threads(small_scene):
    X, W, H, M = _pixel_major_problem(small_scene[0], np.float32, "nndsvda", 0)
    kw = dict(
        lam=4.0, beta=1.0, max_iter=30, tol=0, lam_mode="noise", m_split="factored", block_size=200
    )
    one = R.rednmf_solve_blocks(X, W, H, M, n_jobs=1, **kw)
    two = R.rednmf_solve_blocks(X, W, H, M, n_jobs=2, **kw)
    for a, b in ((one.W, two.W), (one.H, two.H), (one.M, two.M), (one.S, two.S)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.objective, two.objective)
