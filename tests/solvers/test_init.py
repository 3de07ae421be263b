"""Initialisation: NNDSVDA from the Gram matrix equals NNDSVDA from LAPACK's SVD."""

from __future__ import annotations

import numpy as np

from rednmf.solvers import init as I


def _nndsvda_from_lapack(X, rank):
    """The reference: the same construction on ``numpy.linalg.svd`` (float64)."""
    U, s, Vt = np.linalg.svd(X.astype(np.float64), full_matrices=False)
    orig = I._leading_svd
    try:
        I._leading_svd = lambda X_, r, xp=None: (U[:, :r], s[:r], Vt[:r])
        return I._nndsvda(X, rank)
    finally:
        I._leading_svd = orig


def test_leading_svd_equals_lapack_up_to_the_sign_of_each_pair():
    rng = np.random.default_rng(0)
    X = rng.random((30, 5)) @ rng.random((5, 40000)) + 0.01 * rng.random((30, 40000))
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    U2, s2, Vt2 = I._leading_svd(X, 6)  # 40000 pixels: several blocks
    np.testing.assert_allclose(s2, s[:6], rtol=1e-10)
    sign = np.sign(np.sum(U[:, :6] * U2, axis=0))
    np.testing.assert_allclose(U2, U[:, :6] * sign, atol=1e-8)
    np.testing.assert_allclose(Vt2, Vt[:6] * sign[:, None], atol=1e-8)


def test_nndsvda_is_independent_of_the_svd_route(small_scene):
    cube, _ = small_scene
    X = cube.reshape(-1, cube.shape[2]).T
    X = (X - X.min()) / (X.max() - X.min())
    W, H = I._nndsvda(X, 4)
    W0, H0 = _nndsvda_from_lapack(X, 4)
    np.testing.assert_allclose(W, W0, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, H0, rtol=1e-7, atol=1e-10)
    assert W.min() > 0 and H.min() > 0
