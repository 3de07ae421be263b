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
