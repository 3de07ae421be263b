"""Solvers of the NMF family: NMF, RNMF, L1NMF, EWNMF.

What is guaranteed to descend, and what these tests check:

* NMF (eq. 1): each Lee-Seung step does not increase ``||X - WH||^2``, so the
  objective is non-increasing at every iteration (asserted). Oracle: the same
  iterates as scikit-learn's ``solver='mu'``.
* Shared multiplicative steps ``mu_update_W/H`` for
  ``||sqrt(U) * (P - N - WH)||^2``: non-increasing at fixed ``P, N, U``
  (asserted per step, with and without ``N`` and ``U``).
* RNMF (eq. 5): the S step is the exact prox (asserted against perturbations)
  and the W, H steps are the shared steps, so with ``lam_mode='absolute'`` the
  objective is non-increasing at every iteration (asserted). With
  ``'adaptive'`` ``lam_t`` changes between iterations and nothing is
  guaranteed; we measure it.
* L1NMF: at fixed weights ``U`` each step lowers the weighted least-squares
  surrogate (asserted). Because ``U e^2 / 2 + max(|e0|, delta) / 2`` majorises
  the Huber-smoothed ``|e|`` (asserted numerically), with ``delta_mode='absolute'``
  the smoothed L1 objective is non-increasing at every iteration (asserted).
  The exact (unsmoothed) L1 norm is not guaranteed to descend; nor is the
  relative mode (``delta_t`` changes); we measure both.
* EWNMF: the T step is the exact minimiser over each pixel's simplex
  (asserted) and the W, H steps lower the weighted least squares at fixed T
  (asserted), so with ``gamma_mode='absolute'`` the full objective is
  non-increasing at every iteration (asserted); the relative mode is measured.

Measured on the 40 x 40 x 50 synthetic scene (rank 4, float64, 60 iterations
from the ``problem`` initialisation): the relative modes of RNMF, L1NMF and
EWNMF never raised their recorded objective either, and the unsmoothed L1
norm of L1NMF fell at every iteration; the ``test_*_measured`` tests keep those
observations honest.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.decomposition import non_negative_factorization

from oracles import reference as REF
from rednmf._validation import cube_to_matrix
from rednmf.exceptions import ConvergenceWarning
from rednmf.preprocessing import scale_data
from rednmf.solvers import _mu_blocks as MB
from rednmf.solvers import ewnmf as EW
from rednmf.solvers import l1nmf as L1
from rednmf.solvers import nmf as N
from rednmf.solvers import rnmf as RN
from rednmf.solvers.init import initialize_factors

RTOL = 1e-12  # allowed relative rise: float64 rounding only


@pytest.fixture
def problem(small_scene):
    cube, _ = small_scene
    X, _ = cube_to_matrix(cube)
    X = scale_data(X, "minmax")
    W, H, _ = initialize_factors(X, 4, "random", np.random.default_rng(1))
    return X, W, H


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _non_increasing(obj):
    return bool(np.all(np.diff(obj) <= RTOL * np.abs(obj[:-1])))


def _n_rises(obj):
    return int(np.sum(np.diff(obj) > RTOL * np.abs(obj[:-1])))


# -- NMF -------------------------------------------------------------------------------


def test_nmf_descends_every_iteration(problem):
    X, W, H = problem
    res = _quiet(N.nmf_solve, X, W, H, max_iter=60, tol=0)
    assert res.n_iter == 60 and res.objective.shape == (60,)
    assert _non_increasing(res.objective)
    assert res.objective[-1] < 0.2 * res.objective[0]
    assert res.W.min() >= 0 and res.H.min() >= 0
    assert res.objective[-1] == pytest.approx(N.nmf_objective(X, res.W, res.H), rel=1e-12)


def test_nmf_matches_scikit_learn(problem):
    """Same start, no tol: the iterates of scikit-learn's MU solver.

    scikit-learn factorises ``samples x features ~ W_s H_s`` and updates ``W_s``
    first. Handing it our ``X`` (bands x pixels) as is, with ``W_s = W`` and
    ``H_s = H``, gives the same order of steps as ours (W then H); with ``X.T``
    the roles and the order would swap.
    """
    X, W, H = problem
    res = N.nmf_solve(X, W, H, max_iter=40, tol=0, eps=0.0)
    Ws, Hs, n = non_negative_factorization(
        X,
        W=W.copy(),
        H=H.copy(),
        n_components=W.shape[1],
        init="custom",
        solver="mu",
        beta_loss="frobenius",
        max_iter=40,
        tol=0,
        alpha_W=0.0,
        alpha_H=0.0,
    )
    assert n == 40
    np.testing.assert_allclose(res.W, Ws, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.H, Hs, rtol=1e-9, atol=1e-12)


def test_nmf_stops_on_tol_and_warns_on_max_iter(problem):
    X, W, H = problem
    res = N.nmf_solve(X, W, H, max_iter=5000, tol=1e-3)
    assert res.converged and res.n_iter < 5000
    assert abs(res.objective[-1] - res.objective[-2]) <= 1e-3 * res.objective[-2]
    with pytest.warns(ConvergenceWarning, match="NMF stopped at max_iter=3"):
        N.nmf_solve(X, W, H, max_iter=3, tol=1e-12)


def test_nmf_inputs_not_modified_and_float32_kept(problem):
    X, W, H = problem
    W0, H0 = W.copy(), H.copy()
    f = np.float32
    res = _quiet(N.nmf_solve, X.astype(f), W.astype(f), H.astype(f), max_iter=20, tol=0)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(H, H0)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    ref = _quiet(N.nmf_solve, X, W, H, max_iter=20, tol=0)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-3)


# -- the shared multiplicative steps ---------------------------------------------------


@pytest.mark.parametrize("with_N", [False, True])
@pytest.mark.parametrize("with_U", [False, True])
def test_shared_mu_steps_descend_their_weighted_least_squares(problem, with_N, with_U):
    X, W, H = problem
    rng = np.random.default_rng(2)
    Nm = np.maximum(rng.standard_normal(X.shape) * 0.05, 0) if with_N else None
    U = rng.uniform(0.1, 10.0, X.shape) if with_U else None

    def f(W, H):
        R = X - (0 if Nm is None else Nm) - W @ H
        return float(np.sum((1 if U is None else U) * R * R))

    for _ in range(20):
        before = f(W, H)
        W = REF.mu_update_W(X, W, H, N=Nm, U=U, eps=1e-12)
        mid = f(W, H)
        H = REF.mu_update_H(X, W, H, N=Nm, U=U, eps=1e-12)
        after = f(W, H)
        assert mid <= before * (1 + RTOL) and after <= mid * (1 + RTOL)
        assert W.min() >= 0 and H.min() >= 0


# -- RNMF ------------------------------------------------------------------------------


def test_rnmf_S_step_is_the_exact_minimiser(problem):
    X, W, H = problem
    W, H = (
        _quiet(N.nmf_solve, X, W, H, max_iter=10, tol=0).W,
        _quiet(N.nmf_solve, X, W, H, max_iter=10, tol=0).H,
    )
    lam = 0.05
    S = REF.update_S(X - W @ H, lam, "l1")
    best = RN.rnmf_objective(X, W, H, S, lam)
    assert 0 < np.mean(S == 0) < 1
    rng = np.random.default_rng(0)
    for scale in (1e-5, 1e-3, 1e-1):
        other = S + scale * rng.standard_normal(S.shape)
        assert best <= RN.rnmf_objective(X, W, H, other, lam) + 1e-12


def test_rnmf_descends_every_iteration_with_absolute_lambda(problem):
    X, W, H = problem
    res = _quiet(RN.rnmf_solve, X, W, H, lam=0.05, max_iter=60, tol=0, lam_mode="absolute")
    assert _non_increasing(res.objective)
    assert res.objective[-1] < 0.5 * res.objective[0]
    assert res.W.min() >= 0 and res.H.min() >= 0
    np.testing.assert_array_equal(res.param_history, 0.05)
    expect = RN.rnmf_objective(X, res.W, res.H, res.S, 0.05)
    assert res.objective[-1] == pytest.approx(expect, rel=1e-12)


def test_rnmf_relative_lambda_measured(problem):
    """Not guaranteed (``lam_t`` moves); measured: no rise in 60 iterations."""
    X, W, H = problem
    res = _quiet(RN.rnmf_solve, X, W, H, lam=4.0, max_iter=60, tol=0)
    assert _n_rises(res.objective) == 0
    one = _quiet(RN.rnmf_solve, X, W, H, lam=4.0, max_iter=1, tol=0)
    med = float(np.median(np.abs(X - W @ H)))
    assert one.param_history[0] == pytest.approx(4.0 * med, rel=1e-12)
    # Entries within lam_t / 2 = 2 * median of the residual are zero in S.
    E = X - W @ H
    np.testing.assert_array_equal(one.S == 0, np.abs(E) <= 2.0 * med)


def test_rnmf_warns_on_max_iter(problem):
    X, W, H = problem
    with pytest.warns(ConvergenceWarning, match="RNMF"):
        RN.rnmf_solve(X, W, H, lam=1.0, max_iter=2, tol=1e-12)


# -- L1NMF -----------------------------------------------------------------------------


def test_l1nmf_weighted_surrogate_majorises_the_smoothed_l1():
    rng = np.random.default_rng(0)
    delta = 0.1
    e0 = np.concatenate([rng.standard_normal(50), rng.uniform(-delta, delta, 50)])
    e = rng.standard_normal((200, 1)) * 2.0
    c = np.maximum(np.abs(e0), delta)
    g = e**2 / (2 * c) + c / 2  # surrogate at e0, evaluated at e
    f = np.vectorize(lambda v: L1.huber_l1(np.array([[v]]), delta))
    assert np.all(g >= f(e) - 1e-12)
    np.testing.assert_allclose(e0**2 / (2 * c) + c / 2, f(e0), rtol=1e-12)


def test_huber_l1_is_within_delta_half_of_l1():
    rng = np.random.default_rng(3)
    E = rng.standard_normal((7, 9)) * 0.2
    l1 = np.abs(E).sum()
    assert L1.huber_l1(E, 0.0) == pytest.approx(l1, rel=1e-12)
    assert l1 <= L1.huber_l1(E, 0.1) <= l1 + E.size * 0.05 + 1e-12


def test_l1nmf_updates_descend_the_weighted_surrogate_at_fixed_weights(problem):
    X, W, H = problem
    for _ in range(20):
        U = L1._weights(X - W @ H, 1e-3)
        before = float(np.sum(U * (X - W @ H) ** 2))
        W = REF.mu_update_W(X, W, H, U=U, eps=1e-12)
        mid = float(np.sum(U * (X - W @ H) ** 2))
        H = REF.mu_update_H(X, W, H, U=U, eps=1e-12)
        after = float(np.sum(U * (X - W @ H) ** 2))
        assert mid <= before * (1 + RTOL) and after <= mid * (1 + RTOL)


@pytest.mark.parametrize("delta", [1e-3, 0.05])
def test_l1nmf_smoothed_objective_descends_with_absolute_delta(problem, delta):
    X, W, H = problem
    res = _quiet(L1.l1nmf_solve, X, W, H, max_iter=60, tol=0, delta=delta, delta_mode="absolute")
    assert _non_increasing(res.objective)
    assert res.objective[-1] < 0.8 * res.objective[0]  # L1 descends slowly for small delta
    assert res.W.min() >= 0 and res.H.min() >= 0
    expect = L1.l1nmf_objective(X, res.W, res.H, delta)
    assert res.objective[-1] == pytest.approx(expect, rel=1e-12)


def test_l1nmf_measured(problem):
    """Not guaranteed: the relative mode and the unsmoothed L1 norm; measured: no rise."""
    X, W, H = problem
    res = _quiet(L1.l1nmf_solve, X, W, H, max_iter=60, tol=0)
    assert _n_rises(res.objective) == 0
    l1 = []
    for _ in range(60):
        res1 = _quiet(L1.l1nmf_solve, X, W, H, max_iter=1, tol=0, delta=1e-3,
                      delta_mode="absolute")  # fmt: skip
        W, H = res1.W, res1.H
        l1.append(L1.l1nmf_objective(X, W, H, 0.0))
    assert _n_rises(np.asarray(l1)) == 0


def test_l1nmf_adaptive_delta_tracks_the_median_residual(problem):
    X, W, H = problem
    one = _quiet(L1.l1nmf_solve, X, W, H, max_iter=1, tol=0, delta=0.1, delta_mode="adaptive")
    E = X - W @ H
    d_t = 0.1 * float(np.median(np.abs(E)))
    assert one.param_history[0] == pytest.approx(d_t, rel=1e-12)
    np.testing.assert_allclose(one.weights, 1 / np.maximum(np.abs(E), d_t), rtol=1e-12)


# -- EWNMF -----------------------------------------------------------------------------


def test_ewnmf_T_step_is_the_exact_minimiser_over_each_simplex(problem):
    X, W, H = problem
    gamma = 0.01
    T = EW.entropy_weights(X - W @ H, gamma)
    np.testing.assert_allclose(T.sum(axis=0), 1.0, rtol=1e-12)
    assert T.min() > 0
    best = EW.ewnmf_objective(X, W, H, T, gamma)
    rng = np.random.default_rng(0)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(20):
            other = T * np.exp(scale * rng.standard_normal(T.shape))
            other /= other.sum(axis=0, keepdims=True)  # another point of the simplex
            assert best <= EW.ewnmf_objective(X, W, H, other, gamma) + 1e-12


def test_ewnmf_entropy_term_is_nonnegative_and_zero_at_uniform(problem):
    X, W, H = problem
    uniform = np.full_like(X, 1.0 / X.shape[0])
    fit = float(np.sum(uniform * (X - W @ H) ** 2))
    assert EW.ewnmf_objective(X, W, H, uniform, 5.0) == pytest.approx(fit, rel=1e-12)
    np.testing.assert_allclose(EW.weighted_residual(X, W, H, uniform), X - W @ H, rtol=1e-12)


def test_ewnmf_descends_every_iteration_with_absolute_gamma(problem):
    X, W, H = problem
    res = _quiet(EW.ewnmf_solve, X, W, H, gamma=0.01, max_iter=60, tol=0, gamma_mode="absolute")
    assert _non_increasing(res.objective)
    assert res.objective[-1] < 0.5 * res.objective[0]
    assert res.W.min() >= 0 and res.H.min() >= 0
    expect = EW.ewnmf_objective(X, res.W, res.H, res.weights, 0.01)
    assert res.objective[-1] == pytest.approx(expect, rel=1e-12)


def test_ewnmf_relative_gamma_measured(problem):
    """Not guaranteed (``gamma_t`` moves); measured: no rise in 60 iterations."""
    X, W, H = problem
    res = _quiet(EW.ewnmf_solve, X, W, H, gamma=3.0, max_iter=60, tol=0)
    assert _n_rises(res.objective) == 0
    one = _quiet(EW.ewnmf_solve, X, W, H, gamma=3.0, max_iter=1, tol=0)
    E = X - W @ H
    assert one.param_history[0] == pytest.approx(3.0 * np.mean(E**2), rel=1e-12)


def test_ewnmf_weights_are_stable_for_tiny_gamma(problem):
    X, W, H = problem
    T = EW.entropy_weights(X - W @ H, 1e-12)
    assert np.all(np.isfinite(T))
    np.testing.assert_allclose(T.sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "solve,kw",
    [
        (RN.rnmf_solve, {"lam": 4.0}),
        (L1.l1nmf_solve, {}),
        (EW.ewnmf_solve, {}),
    ],
)
def test_robust_solvers_stop_on_tol(problem, solve, kw):
    X, W, H = problem
    res = solve(X, W, H, max_iter=5000, tol=1e-3, **kw)
    assert res.converged and res.n_iter < 5000
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        solve(X, W, H, max_iter=2, tol=1e-12, **kw)


# -- the optimised loops against plain transcriptions of their equations ----------------
#
# The solvers work in preallocated buffers, split S without extra passes, reuse the
# residual of the next iteration for the objective and select medians by partition.
# The oracles (tests/oracles/reference.py, plain_*) are the equations of the module texts
# written out literally (float64, every array formed afresh); the solvers must follow
# the same iterates.

ORACLE_ITERS = 40


def _assert_same_run(res, W, H, objs, params, rtol):
    assert res.n_iter == len(objs)
    np.testing.assert_allclose(res.W, W, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(res.H, H, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(res.objective, objs, rtol=rtol)
    if params is not None:
        np.testing.assert_allclose(res.param_history, params, rtol=rtol)


@pytest.mark.parametrize("mode,lam", [("adaptive", 4.0), ("absolute", 0.05)])
def test_rnmf_matches_plain_transcription(problem, mode, lam):
    X, W, H = problem
    res = _quiet(RN.rnmf_solve, X, W, H, lam=lam, max_iter=ORACLE_ITERS, tol=0, lam_mode=mode)
    W1, H1, S1, objs, lams = REF.plain_rnmf(X, W, H, lam, ORACLE_ITERS, mode)
    _assert_same_run(res, W1, H1, objs, lams, rtol=1e-9)
    np.testing.assert_allclose(res.S, S1, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode,delta", [("adaptive", 0.5), ("absolute", 1e-3)])
def test_l1nmf_matches_plain_transcription(problem, mode, delta):
    X, W, H = problem
    res = _quiet(L1.l1nmf_solve, X, W, H, max_iter=ORACLE_ITERS, tol=0, delta=delta,
                 delta_mode=mode)  # fmt: skip
    W1, H1, U1, objs, deltas = REF.plain_l1nmf(X, W, H, ORACLE_ITERS, delta, mode)
    _assert_same_run(res, W1, H1, objs, deltas, rtol=1e-9)
    np.testing.assert_allclose(res.weights, U1, rtol=1e-9)


@pytest.mark.parametrize("mode,gamma", [("adaptive", 1.0), ("absolute", 0.01)])
def test_ewnmf_matches_plain_transcription(problem, mode, gamma):
    X, W, H = problem
    res = _quiet(EW.ewnmf_solve, X, W, H, gamma=gamma, max_iter=ORACLE_ITERS, tol=0,
                 gamma_mode=mode)  # fmt: skip
    W1, H1, T1, objs, gammas = REF.plain_ewnmf(X, W, H, ORACLE_ITERS, gamma, mode)
    _assert_same_run(res, W1, H1, objs, gammas, rtol=1e-9)
    np.testing.assert_allclose(res.weights, T1, rtol=1e-9, atol=1e-300)


def test_nmf_objective_matches_plain_transcription(problem):
    X, W, H = problem
    res = _quiet(N.nmf_solve, X, W, H, max_iter=ORACLE_ITERS, tol=0)
    W1, H1, objs = REF.plain_nmf(X, W, H, ORACLE_ITERS)
    _assert_same_run(res, W1, H1, objs, None, rtol=1e-9)


@pytest.mark.parametrize(
    "solve,oracle,kw",
    [
        (N.nmf_solve, None, {}),
        (RN.rnmf_solve, REF.plain_rnmf, {"lam": 4.0}),
        (L1.l1nmf_solve, REF.plain_l1nmf, {}),
        (EW.ewnmf_solve, REF.plain_ewnmf, {}),
    ],
)
def test_solvers_stop_where_the_transcriptions_stop(problem, solve, oracle, kw):
    X, W, H = problem
    res = solve(X, W, H, max_iter=500, tol=1e-3, **kw)
    assert res.converged
    if oracle is not None:
        W1, H1, _, objs, params = oracle(X, W, H, n_iter=500, tol=1e-3, **kw)
        _assert_same_run(res, W1, H1, objs, params, rtol=1e-9)


@pytest.mark.parametrize(
    "solve,oracle,kw",
    [
        (RN.rnmf_solve, REF.plain_rnmf, {"lam": 4.0}),
        (L1.l1nmf_solve, REF.plain_l1nmf, {}),
        (EW.ewnmf_solve, REF.plain_ewnmf, {}),
    ],
)
def test_float32_solvers_follow_the_float64_transcriptions(problem, solve, oracle, kw):
    X, W, H = problem
    f = np.float32
    res = _quiet(solve, X.astype(f), W.astype(f), H.astype(f), max_iter=20, tol=0, **kw)
    for arr in (res.W, res.H, res.S, res.weights):
        assert arr is None or arr.dtype == f
    _, _, _, objs, params = oracle(X, W, H, n_iter=20, **kw)
    np.testing.assert_allclose(res.objective, objs, rtol=1e-3)
    np.testing.assert_allclose(res.param_history, params, rtol=1e-3)


@pytest.mark.parametrize("gather", [MB._GATHER, 3])  # 3: every level of the selection runs
@pytest.mark.parametrize("case", ["random", "ties", "constant", "adversarial", "zeros"])
@pytest.mark.parametrize("size", [1, 2, 7, 1000, 1001, 200_000, 200_001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_median_equals_np_median(size, dtype, case, gather, monkeypatch):
    monkeypatch.setattr(MB, "_GATHER", gather)
    rng = np.random.default_rng(size)
    A = rng.standard_normal((1, size)).astype(dtype)
    if case == "ties":
        A[0, : size // 3] = A[0, -1]
    elif case == "constant":
        A[:] = 0.25
    elif case == "adversarial":
        A[0, ::64] = 100.0
    elif case == "zeros":
        A[0, : size // 2 + 1] = 0.0
    A = np.abs(A)
    blocks = np.array_split(A.reshape(-1), 7)  # uneven blocks, some empty when size < 7
    median = MB.BlockMedian(dtype, size)
    for b in blocks:
        median.add(b)
    got = median.result(lambda: iter(blocks))
    assert got == np.median(A) and type(got) is float
    assert not median.counts.any()  # reset for the next matrix


def test_sq_norm_and_huber_sums_are_float64(problem):
    X, W, H = problem
    E = (X - W @ H).astype(np.float32)
    E64 = E.astype(np.float64)
    assert N.sq_norm(E) == pytest.approx(float(np.sum(E64**2)), rel=1e-13)
    A = np.abs(E)
    got = L1._huber_of_abs(A, 0.01, np.empty_like(A))
    assert got == pytest.approx(L1.huber_l1(E, 0.01), rel=1e-13)


@pytest.mark.parametrize(
    "solve,kw",
    [
        (N.nmf_solve, {}),
        (RN.rnmf_solve, {"lam": 4.0, "keep_S": False}),
        (L1.l1nmf_solve, {"keep_weights": False}),
        (EW.ewnmf_solve, {"keep_weights": False}),
    ],
)
def test_solvers_hold_no_bands_x_pixels_array(solve, kw, monkeypatch):
    """Read scaled by blocks, a fit holds ``H``, the ``H`` before the step and a few blocks."""
    import tracemalloc

    from rednmf.preprocessing import ScaledMatrix, scale_params

    monkeypatch.setattr(MB, "_BLOCK_ELEMENTS", 1 << 15)  # blocks of 128 KiB
    cube = np.random.default_rng(0).uniform(1.0, 2.0, size=(300 * 300, 50)).astype(np.float32)
    X = ScaledMatrix(cube.T, "minmax", np.float32, scale_params(cube.T, "minmax", np.float32))
    W, H, _ = initialize_factors(X, 4, "random", np.random.default_rng(0))
    tracemalloc.start()
    try:
        _quiet(solve, X, W, H, max_iter=2, overwrite_H=True, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the old loops held 1 (NMF) to 5 (RNMF) arrays of the size of X; H is X / 12.5 here
    print(f"{solve.__name__}: {peak / 2**20:.2f} MiB for a {cube.nbytes / 2**20:.2f} MiB X")
    assert peak < cube.nbytes / 4
