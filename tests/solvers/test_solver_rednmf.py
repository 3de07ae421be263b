"""The REDNMF solvers: updates, objective, shrinkage, switches.

Two solvers run Algorithm 1: :func:`~rednmf.solvers.rednmf.rednmf_solve` on
whole matrices and :func:`~rednmf.solvers.rednmf.rednmf_solve_blocks` by blocks
of pixels. Tests of what both do run on both (``SOLVERS``).

Which updates are guaranteed to descend objective (10), with the other
factors fixed:

* W step (14, corrected form of Sec. 4.4): yes, Lee-Seung auxiliary function
  (the paper's Sec. 4.4); the ``S+ H'`` term is linear with a nonnegative
  coefficient, which the same majoriser covers.
* H step (16): yes; the H subproblem is a quadratic whose Hessian
  ``W'W + beta I`` has nonnegative entries, so the Lee-Seung majoriser applies.
* S step (17): exact proximal step of ``||X - WH - S||^2 + lam R(S)``; it
  ignores the encoder term, so it is guaranteed only when ``beta = 0``.
* M step (15): ``(X - S)(X - S)'`` has entries of both signs; the split update
  has no auxiliary-function proof. We measure it (test below) instead of
  asserting descent.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from oracles import reference as REF
from rednmf._validation import cube_to_matrix
from rednmf.exceptions import ConvergenceWarning, InputError
from rednmf.preprocessing import scale_data
from rednmf.solvers import rednmf as R
from rednmf.solvers.init import initialize_factors
from rednmf.solvers.prox import group_shrink, soft_threshold


@pytest.fixture
def problem(small_scene):
    cube, _ = small_scene
    X, _ = cube_to_matrix(cube)
    X = scale_data(X, "minmax")
    W, H, M = initialize_factors(X, 4, "random", np.random.default_rng(1))
    return X, W, H, M


#: Both solvers, for the S steps they share (pixel groups, 'l1', 'none'; fixed lambda).
SOLVERS = [R.rednmf_solve, R.rednmf_solve_blocks]


def _obj(X, W, H, M, S, beta, lam, sparsity="l21", shrink="column"):
    return R.rednmf_objective(X, W, H, M, S, beta=beta, lam=lam, sparsity=sparsity, shrink=shrink)


# -- shrinkage operators ---------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1])
def test_group_shrink_is_the_proximal_minimiser(axis):
    rng = np.random.default_rng(0)
    E = rng.standard_normal((6, 9))
    tau = float(np.median(np.linalg.norm(E, axis=axis)))

    def f(S):
        return np.sum((E - S) ** 2) + 2 * tau * np.linalg.norm(S, axis=axis).sum()

    S = group_shrink(E, tau, axis=axis)
    assert np.any(np.all(S == 0, axis=axis)), "some groups should be zeroed"
    f0 = f(S)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(200):
            assert f0 <= f(S + scale * rng.standard_normal(E.shape)) + 1e-12


def test_soft_threshold_is_the_proximal_minimiser():
    rng = np.random.default_rng(1)
    E = rng.standard_normal((5, 7))
    tau = 0.4

    def f(S):
        return np.sum((E - S) ** 2) + 2 * tau * np.abs(S).sum()

    S = soft_threshold(E, tau)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(200):
            assert f(S) <= f(S + scale * rng.standard_normal(E.shape)) + 1e-12


# -- descent of the individual updates -------------------------------------------------


def _warm(problem, iters=5, beta=1.0):
    X, W, H, M = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = R.rednmf_solve(
            X, W, H, M, lam=1.0, beta=beta, max_iter=iters, tol=0, lam_mode="adaptive",
            m_split="elementwise",
        )  # fmt: skip
    return X, res.W, res.H, res.M


@pytest.mark.parametrize("beta", [0.0, 1.0, 10.0])
def test_W_and_H_updates_do_not_increase_the_objective(problem, beta):
    X, W, H, M = _warm(problem, beta=beta)
    lam = 0.3
    for _ in range(30):
        S = REF.update_S(X - W @ H, lam, "l21", "column")
        Sp, Sn = R._split(S)
        before = _obj(X, W, H, M, S, beta, lam)
        W = REF.update_W(X, W, H, Sp, Sn, 1e-12)
        after_w = _obj(X, W, H, M, S, beta, lam)
        assert after_w <= before * (1 + 1e-12)
        H = REF.update_H(X, W, H, M, Sp, Sn, beta, 1e-12)
        after_h = _obj(X, W, H, M, S, beta, lam)
        assert after_h <= after_w * (1 + 1e-12)


@pytest.mark.parametrize("sparsity,shrink", [("l21", "column"), ("l21", "row"), ("l1", "column")])
def test_S_update_is_exact_when_beta_is_zero(problem, sparsity, shrink):
    X, W, H, M = _warm(problem, beta=0.0)
    lam = 0.2
    rng = np.random.default_rng(0)
    S = REF.update_S(X - W @ H, lam, sparsity, shrink)
    best = _obj(X, W, H, M, S, 0.0, lam, sparsity, shrink)
    for scale in (1e-5, 1e-3, 1e-1):
        other = S + scale * rng.standard_normal(S.shape)
        assert best <= _obj(X, W, H, M, other, 0.0, lam, sparsity, shrink) + 1e-9


@pytest.mark.parametrize("solve", SOLVERS)
def test_whole_iterations_descend_without_encoder_and_fixed_lambda(problem, solve):
    X, W, H, M = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(X, W, H, M, lam=0.5, beta=0.0, max_iter=150, tol=0, lam_mode="absolute")
    obj = res.objective
    assert np.all(np.diff(obj) <= 1e-10 * obj[:-1])
    assert obj[-1] < 0.5 * obj[0]


def test_M_update_measured(problem):
    """No proof of descent for (15): record how often it raises the objective.

    On the synthetic scene it lowered the encoder term in every one of the 50
    steps we checked; the assertion keeps that observation honest.
    """
    X, W, H, M = _warm(problem)
    lam, beta = 0.3, 1.0
    increases = 0
    for _ in range(50):
        S = REF.update_S(X - W @ H, lam, "l21", "column")
        Sp, Sn = R._split(S)
        before = _obj(X, W, H, M, S, beta, lam)
        M = REF.update_M(X, M, H, Sp, Sn, 1e-12)
        increases += _obj(X, W, H, M, S, beta, lam) > before * (1 + 1e-12)
    assert increases == 0


# -- the solver ------------------------------------------------------------------------


@pytest.mark.parametrize("solve", SOLVERS)
def test_factors_stay_nonnegative_and_objective_is_recorded(problem, solve):
    X, W, H, M = problem
    res = solve(X, W, H, M, lam=1.0, beta=1.0, max_iter=40, tol=0, lam_mode="svd")
    assert res.n_iter == 40 and res.objective.shape == (40,)
    for A in (res.W, res.H, res.M):
        assert A.min() >= 0
    # The last recorded objective is (10) evaluated at the returned factors.
    expect = _obj(X, res.W, res.H, res.M, res.S, 1.0, res.lam_history[-1])
    assert res.objective[-1] == pytest.approx(expect, rel=1e-10)


def test_relative_lambda_tracks_the_median_residual_norm(problem):
    X, W, H, M = _warm(problem, iters=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = R.rednmf_solve(X, W, H, M, lam=0.7, beta=1.0, max_iter=1, tol=0, lam_mode="adaptive")
    med = np.median(np.linalg.norm(X - W @ H, axis=0))
    assert one.lam_history[0] == pytest.approx(0.7 * med, rel=1e-12)
    # S columns with norm <= lam/2 are exactly zero; the others shrink by lam/2.
    E = X - W @ H
    norms = np.linalg.norm(E, axis=0)
    zero = norms <= 0.35 * med
    assert zero.any() and (~zero).any()
    assert np.all(one.S[:, zero] == 0)
    np.testing.assert_allclose(
        np.linalg.norm(one.S[:, ~zero], axis=0), norms[~zero] - 0.35 * med, rtol=1e-10
    )


def test_stops_on_tol_and_warns_on_max_iter(problem):
    X, W, H, M = problem
    res = R.rednmf_solve_blocks(X, W, H, M, lam=1.0, max_iter=2000, tol=1e-2, lam_mode="svd")
    assert res.converged and res.n_iter < 2000
    rel = abs(res.objective[-1] - res.objective[-2]) / res.objective[-2]
    assert rel <= 1e-2
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        R.rednmf_solve(X, W, H, M, lam=1.0, beta=1.0, max_iter=3, tol=1e-12)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        R.rednmf_solve_blocks(X, W, H, M, lam=1.0, beta=1.0, max_iter=3, tol=1e-12)


def test_switches(problem):
    X, W, H, M = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kw = dict(lam=1.0, max_iter=10, lam_mode="svd")
        no_enc = R.rednmf_solve_blocks(X, W, H, M, beta=0.0, **kw)
        no_s = R.rednmf_solve_blocks(X, W, H, M, sparsity="none", **kw)
        l1 = R.rednmf_solve_blocks(X, W, H, M, sparsity="l1", **kw)
        row = R.rednmf_solve(X, W, H, M, shrink="row", **kw)
    np.testing.assert_array_equal(no_enc.M, M)  # the encoder is not learned
    assert not np.any(no_s.S)
    # L1 zeroes single entries, L2,1 whole pixels or whole bands.
    assert 0 < np.mean(l1.S == 0) < 1
    col_zero = np.all(l1.S == 0, axis=0).mean()
    assert col_zero < np.mean(l1.S == 0)
    row_zero = np.all(row.S == 0, axis=1)
    assert np.all((row.S == 0) == np.broadcast_to(row_zero[:, None], row.S.shape))


def test_float32_matches_float64(problem):
    X, W, H, M = problem
    kw = {"lam": 1.0, "max_iter": 50, "lam_mode": "svd", "m_split": "elementwise"}
    r64 = R.rednmf_solve_blocks(X, W, H, M, **kw)
    f = np.float32
    r32 = R.rednmf_solve_blocks(X.astype(f), W.astype(f), H.astype(f), M.astype(f), **kw)
    assert r32.W.dtype == np.float32 and r32.S.dtype == np.float32
    np.testing.assert_allclose(r32.objective, r64.objective, rtol=1e-3)
    np.testing.assert_allclose(r32.W @ r32.H, r64.W @ r64.H, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize(
    "beta, sparsity, shrink",
    [(1.0, "l21", "column"), (0.0, "l21", "column"), (10.0, "l1", "column"), (1.0, "l21", "row")],
)
def test_solver_loop_equals_the_plain_transcription(problem, beta, sparsity, shrink):
    X, W, H, M = problem
    W1, H1, M1, S1, obj1 = REF.plain_rednmf(
        X, W, H, M, lam=1.0, beta=beta, n_iter=50, sparsity=sparsity, shrink=shrink
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = R.rednmf_solve(
            X,
            W,
            H,
            M,
            lam=1.0,
            beta=beta,
            max_iter=50,
            tol=0,
            sparsity=sparsity,
            shrink=shrink,
            lam_mode="adaptive",
            m_split="elementwise",
        )
    np.testing.assert_allclose(res.objective, obj1, rtol=1e-8)
    for got, want in ((res.W, W1), (res.H, H1), (res.M, M1), (res.S, S1)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solve", SOLVERS)
def test_svd_lambda_is_fixed_from_the_rank_r_residual(problem, solve):
    X, W, H, M = problem
    r = W.shape[1]
    U, _, _ = np.linalg.svd(X, full_matrices=False)
    resid = X - U[:, :r] @ (U[:, :r].T @ X)
    expect = 0.8 * np.median(np.linalg.norm(resid, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(X, W, H, M, lam=0.8, beta=0.0, max_iter=60, tol=0, lam_mode="svd")
    np.testing.assert_allclose(res.lam_history, expect, rtol=1e-8)
    # One fixed objective: without the encoder every iteration descends.
    assert np.all(np.diff(res.objective) <= 1e-10 * res.objective[:-1])


def test_svd_lambda_scales_with_the_data(problem):
    X, _, _, _ = problem
    a = R.svd_residual_scale(X, 4)
    assert R.svd_residual_scale(1000.0 * X, 4) == pytest.approx(1000.0 * a, rel=1e-6)


@pytest.mark.parametrize(
    "beta, sparsity, lam",
    [
        (1.0, "l21", 0.5),
        (0.0, "l21", 0.5),
        (1.0, "l1", 0.02),
        (1.0, "none", 0.0),
        (3.0, "l21", 0.3),
    ],
)
@pytest.mark.parametrize("block_size, n_jobs", [(2048, 1), (256, 1), (300, 2)])
def test_block_engine_equals_the_plain_transcription(
    problem, beta, sparsity, lam, block_size, n_jobs
):
    """The block engine (fixed lambda, pixel-wise S step) is Algorithm 1, whatever the blocks."""
    X, W, H, M = problem
    W1, H1, M1, S1, obj1 = REF.plain_rednmf(
        X, W, H, M, lam=lam, beta=beta, n_iter=50, sparsity=sparsity, fixed=True
    )
    res = R.rednmf_solve_blocks(
        X, W, H, M, lam=lam, beta=beta, max_iter=50, tol=0, sparsity=sparsity,
        lam_mode="absolute", block_size=block_size, n_jobs=n_jobs, m_split="elementwise",
    )  # fmt: skip
    assert res.n_iter == 50
    np.testing.assert_allclose(res.objective, obj1, rtol=1e-8)
    for got, want in ((res.W, W1), (res.H, H1), (res.M, M1), (res.S, S1)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)
    if sparsity == "l21":
        assert 0 < np.count_nonzero(np.any(res.S, axis=0)) < X.shape[1], "S must be partly zero"


@pytest.mark.parametrize(
    "beta, sparsity, lam_mode, lam, m_split",
    [
        (1.0, "l21", "absolute", 0.5, "factored"),
        (1.0, "l21", "svd", 1.0, "factored"),
        (0.0, "l21", "svd", 1.0, "elementwise"),
        (3.0, "l21", "absolute", 0.3, "elementwise"),
        (1.0, "l1", "absolute", 0.02, "factored"),
        (1.0, "none", "absolute", 0.0, "factored"),
    ],
)
def test_the_two_solvers_agree(problem, beta, sparsity, lam_mode, lam, m_split):
    """Whole matrices and pixel blocks: the same iterates, up to the order of the sums."""
    X, W, H, M = problem
    kw = dict(lam=lam, beta=beta, max_iter=50, sparsity=sparsity, lam_mode=lam_mode)
    dense = R.rednmf_solve(X, W, H, M, m_split=m_split, **kw)
    blocks = R.rednmf_solve_blocks(X, W, H, M, m_split=m_split, block_size=300, n_jobs=2, **kw)
    assert dense.n_iter == blocks.n_iter == 50
    np.testing.assert_allclose(blocks.lam_history, dense.lam_history, rtol=1e-10)
    np.testing.assert_allclose(blocks.objective, dense.objective, rtol=1e-8)
    for name in "WHMS":
        got, want = getattr(blocks, name), getattr(dense, name)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10, err_msg=name)
    if lam_mode == "absolute" and sparsity != "none":  # (with 'svd' every pixel is in S here)
        assert 0 < np.count_nonzero(dense.S) < dense.S.size, "S must be partly zero"


def test_block_engine_result_does_not_depend_on_threads(problem):
    X, W, H, M = (A.astype(np.float32) for A in problem)
    kw = dict(max_iter=30, block_size=200)
    one = R.rednmf_solve_blocks(X, W, H, M, n_jobs=1, **kw)
    two = R.rednmf_solve_blocks(X, W, H, M, n_jobs=2, **kw)
    for a, b in ((one.W, two.W), (one.H, two.H), (one.M, two.M), (one.S, two.S)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.objective, two.objective)


@pytest.mark.parametrize("sparsity", ["l21", "l1", "none"])
def test_block_engine_stops_at_tol_with_the_factors_of_that_iteration(problem, sparsity):
    """An early stop returns W, H, M, S of the iteration whose objective settled.

    (With ``sparsity='none'`` the early stop used to fail: the S step of the
    NumPy passes has no groups to shrink.)
    """
    X, W, H, M = problem
    lam = 0.5 if sparsity == "l21" else 0.02
    kw = dict(lam=lam, beta=1.0, sparsity=sparsity, lam_mode="absolute", block_size=400)
    stopped = R.rednmf_solve_blocks(X, W, H, M, max_iter=500, tol=1e-2, **kw)
    assert stopped.converged and 2 < stopped.n_iter < 500
    fixed = R.rednmf_solve_blocks(X, W, H, M, max_iter=stopped.n_iter, tol=0, **kw)
    np.testing.assert_array_equal(stopped.objective, fixed.objective)
    for a, b in ((stopped.W, fixed.W), (stopped.H, fixed.H), (stopped.M, fixed.M)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(stopped.S, fixed.S, rtol=1e-12, atol=1e-15)
    assert stopped.objective[-1] == pytest.approx(
        R.rednmf_objective(
            X, fixed.W, fixed.H, fixed.M, fixed.S, beta=1.0, lam=lam, sparsity=sparsity
        ),
        rel=1e-9,
    )


# -- the factored split of the M step (issue: REDNMF at the hardware limit) -------------


def test_factored_M_step_has_the_gradient_of_the_elementwise_one(problem):
    """Both splits are numerator - denominator = -(1/2beta) dJ/dM: the same fixed points."""
    X, W, H, M = _warm(problem)
    S = REF.update_S(X - W @ H, 0.3, "l21", "column")
    Sp, Sn = R._split(S)
    grad = 2 * (M @ X @ X.T + M @ S @ S.T - H @ X.T + H @ S.T - M @ X @ S.T - M @ S @ X.T)
    for num_den in (_num_den_elementwise, _num_den_factored):
        num, den = num_den(X, M, H, Sp, Sn)
        assert np.all(num >= 0) and np.all(den >= 0)
        np.testing.assert_allclose(2 * (den - num), grad, rtol=1e-9, atol=1e-9)


def _num_den_elementwise(X, M, H, Sp, Sn):
    SSp, SSn = R._split((Sp - Sn) @ (Sp - Sn).T)
    num = H @ (X + Sn).T + M @ (X @ Sp.T + Sp @ X.T + SSn)
    den = M @ (X @ X.T + X @ Sn.T + Sn @ X.T + SSp) + H @ Sp.T
    return num, den


def _num_den_factored(X, M, H, Sp, Sn):
    num = H @ (X + Sn).T + M @ (X @ Sp.T + Sp @ X.T + Sp @ Sn.T + Sn @ Sp.T)
    den = M @ (X @ X.T + X @ Sn.T + Sn @ X.T + Sp @ Sp.T + Sn @ Sn.T) + H @ Sp.T
    return num, den


def test_factored_M_step_is_its_formula(problem):
    X, W, H, M = _warm(problem)
    S = REF.update_S(X - W @ H, 0.3, "l21", "column")
    Sp, Sn = R._split(S)
    num, den = _num_den_factored(X, M, H, Sp, Sn)
    np.testing.assert_allclose(
        REF.update_M_factored(X, M, H, Sp, Sn, 1e-10), M * num / (den + 1e-10), rtol=1e-12
    )


@pytest.mark.parametrize("beta, sparsity, lam", [(1.0, "l21", 0.5), (3.0, "l21", 0.3)])
@pytest.mark.parametrize("block_size, n_jobs", [(2048, 1), (300, 2)])
def test_block_engine_factored_equals_its_transcription(
    problem, beta, sparsity, lam, block_size, n_jobs
):
    X, W, H, M = problem
    W1, H1, M1, S1, obj1 = REF.plain_rednmf(
        X, W, H, M, lam=lam, beta=beta, n_iter=50, sparsity=sparsity, fixed=True,
        m_split="factored",
    )  # fmt: skip
    res = R.rednmf_solve_blocks(
        X, W, H, M, lam=lam, beta=beta, max_iter=50, tol=0, sparsity=sparsity,
        lam_mode="absolute", block_size=block_size, n_jobs=n_jobs, m_split="factored",
    )  # fmt: skip
    np.testing.assert_allclose(res.objective, obj1, rtol=1e-8)
    for got, want in ((res.W, W1), (res.H, H1), (res.M, M1), (res.S, S1)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)
    # and it is not the element-wise split
    other = R.rednmf_solve_blocks(
        X, W, H, M, lam=lam, beta=beta, max_iter=50, tol=0, sparsity=sparsity,
        lam_mode="absolute", block_size=block_size, n_jobs=n_jobs, m_split="elementwise",
    )  # fmt: skip
    assert not np.allclose(other.M, res.M, rtol=1e-3)


def test_plain_loop_factored_equals_its_transcription(problem):
    X, W, H, M = problem
    W1, H1, M1, S1, obj1 = REF.plain_rednmf(
        X, W, H, M, lam=1.0, beta=1.0, n_iter=30, shrink="row", m_split="factored"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = R.rednmf_solve(
            X, W, H, M, lam=1.0, beta=1.0, max_iter=30, tol=0, shrink="row",
            lam_mode="adaptive", m_split="factored",
        )  # fmt: skip
    np.testing.assert_allclose(res.objective, obj1, rtol=1e-8)
    np.testing.assert_allclose(res.M, M1, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solve", SOLVERS)
def test_m_split_is_checked(problem, solve):
    X, W, H, M = problem
    with pytest.raises(InputError, match="m_split"):
        solve(X, W, H, M, max_iter=1, m_split="diagonal")


@pytest.mark.parametrize(
    "solve, lam_mode", [(R.rednmf_solve, "noise"), (R.rednmf_solve_blocks, "adaptive")]
)
def test_each_solver_refuses_the_scale_it_does_not_run(problem, solve, lam_mode):
    X, W, H, M = problem
    with pytest.raises(InputError, match="lam_mode must be one of"):
        solve(X, W, H, M, max_iter=1, lam_mode=lam_mode)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"max_iter": 1},
        {"lam_mode": "svd", "lam": 2.0, "tol": 3e-3, "max_iter": 300},  # stops early
        {"n_jobs": 2, "block_size": 512},
    ],
)
def test_s_not_stored_is_the_stored_s_bit_for_bit(kw):
    """In memory S is formed again from the factors of its S step: the same S, W, H."""
    rng = np.random.default_rng(0)
    X = np.asfortranarray(rng.random((30, 4200), dtype=np.float32))  # pixel-major
    X[:, ::97] += 0.5  # a few anomalous pixels
    W, H, M = initialize_factors(X, 6, "nndsvda", np.random.default_rng(0))
    params = {"lam": 4.0, "beta": 1.0, "max_iter": 30, "tol": 0.0, "lam_mode": "noise"}
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        implicit = R.rednmf_solve_blocks(X, W, H, M, store_s=False, **params)
        assert isinstance(R.rednmf_solve_blocks(X, W, H, M, max_iter=1).S, np.ndarray)
        stored = np.zeros(X.shape, dtype=X.dtype, order="F")
        ref = R.rednmf_solve_blocks(X, W, H, M, anomaly_out=stored, **params)
    assert isinstance(implicit.S, R.EvidenceMatrix) and implicit.n_iter == ref.n_iter
    assert np.any(ref.S)
    np.testing.assert_array_equal(np.asarray(implicit.S), ref.S)
    np.testing.assert_array_equal(implicit.S[:, 100:900], ref.S[:, 100:900])
    np.testing.assert_array_equal(implicit.H, ref.H)
    np.testing.assert_array_equal(implicit.W, ref.W)
    np.testing.assert_array_equal(implicit.objective, ref.objective)


@pytest.mark.parametrize("method", ["minmax", "max", "none"])
@pytest.mark.parametrize("source", [np.float32, np.float64, np.int16])
def test_scaled_matrix_is_scale_data_block_by_block(method, source):
    """The scaled view the in-memory REDNMF reads: scale_data's values, no copy of the cube."""
    from rednmf.preprocessing import ScaledMatrix, scale_params

    rng = np.random.default_rng(1)
    cube = (rng.random((37, 23, 11)) * 3000).astype(source)
    X = cube.reshape(-1, 11).T  # pixel-major view
    params = scale_params(X, method, np.float32)
    ref = scale_data(X, method, np.float32, params)
    lazy = ScaledMatrix(X, method, np.float32, params)
    assert lazy.shape == ref.shape and lazy.dtype == np.float32 and lazy.flags.f_contiguous
    np.testing.assert_array_equal(lazy[:, 100:700], ref[:, 100:700])
    np.testing.assert_array_equal(np.asarray(lazy), ref)
    assert lazy.mean() == pytest.approx(float(ref.mean(dtype=np.float64)), rel=1e-12)
