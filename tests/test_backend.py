"""The NumPy backend's products against plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from rednmf.backend import get_backend


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lmul_is_the_product_in_c_order(order, dtype):
    rng = np.random.default_rng(0)
    p = rng.random((16, 205)).astype(dtype)
    b = np.asarray(rng.random((205, 700)), dtype=dtype, order=order)
    got = get_backend("numpy").lmul(p, b)
    assert got.flags.c_contiguous and got.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, p.astype(np.float64) @ b.astype(np.float64), rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tail_counts_count_the_entries_at_least_as_large(dtype):
    rng = np.random.default_rng(3)
    a = np.round(rng.standard_normal((9, 11)), 1).astype(dtype)  # ties on purpose
    a[0, :3] = [0.0, -0.0, 0.0]  # signed zeros are one value
    got = get_backend("numpy").tail_counts(a)
    expect = np.array([[np.sum(a >= x) for x in row] for row in a], dtype=np.float64)
    assert got.dtype == np.float64 and got.shape == a.shape
    np.testing.assert_array_equal(got, expect)


def test_tail_counts_are_scipys_max_ranks_of_the_negated_map():
    from scipy.stats import rankdata

    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 301))
    a[::3] = np.round(a[::3], 2)  # runs of ties among distinct values
    got = get_backend("numpy").tail_counts(a)
    np.testing.assert_array_equal(got, rankdata(-a, method="max").reshape(a.shape))
