"""The running-sum, vectorised-elimination local RX against the box-filter, LU one before it."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from rednmf.backend import get_backend
from rednmf.scoring import windows
from rednmf.scoring.cube import brad
from rednmf.scoring.local_rx import local_rx

lrx = importlib.import_module("rednmf.scoring.local_rx")


def reference_local_rx(
    cube: np.ndarray, inner: int, outer: int, ridge: float, rel_floor: float = 1e-12
) -> np.ndarray:
    """The previous implementation: box filters, full covariances, batched LU solves."""
    rows, cols, k = cube.shape
    x = cube.astype(np.float64)
    x = x - x.reshape(-1, k).mean(axis=0)
    var = float(np.mean(x * x))
    floor = rel_floor * var if var > 0.0 else rel_floor

    def ring(a: np.ndarray) -> np.ndarray:
        def box(size: int) -> np.ndarray:
            sizes = (size, size) + (1,) * (a.ndim - 2)
            return uniform_filter(a, size=sizes, mode="constant") * float(size * size)

        return box(outer) - box(inner)

    count = np.rint(ring(np.ones((rows, cols)))).reshape(-1, 1)
    mu = ring(x).reshape(-1, k) / count
    s2 = ring(x[..., :, None] * x[..., None, :]).reshape(-1, k, k)
    cov = s2 / count[:, :, None] - mu[:, :, None] * mu[:, None, :]
    load = np.maximum(ridge * np.trace(cov, axis1=1, axis2=2) / k, floor)
    cov += load[:, None, None] * np.eye(k)
    d = x.reshape(-1, k) - mu
    return np.einsum("pk,pk->p", d, np.linalg.solve(cov, d[..., None])[..., 0]).reshape(rows, cols)


@pytest.fixture
def cube() -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.normal(size=(23, 19, 6)) @ rng.normal(size=(6, 6)) + 4.0


@pytest.mark.parametrize(
    ("inner", "outer", "ridge"),
    [(1, 3, 0.01), (1, 3, 1.0), (3, 7, 0.0), (3, 7, 0.01), (5, 11, 0.1), (9, 19, 0.0)],
)
def test_equals_previous_implementation(cube, inner, outer, ridge):
    """Also without loading where every ring (12 pixels or more) outnumbers the 6 bands."""
    got = local_rx(cube, inner=inner, outer=outer, ridge=ridge)
    np.testing.assert_allclose(got, reference_local_rx(cube, inner, outer, ridge), rtol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 20])
def test_equals_previous_implementation_any_k(k):
    rng = np.random.default_rng(k)
    cube = rng.normal(size=(30, 31, k)).astype(np.float32)
    got = local_rx(cube, inner=5, outer=13, ridge=0.01)
    np.testing.assert_allclose(got, reference_local_rx(cube, 5, 13, 0.01), rtol=1e-9)


def test_large_k_goes_to_lu(monkeypatch, cube):
    monkeypatch.setattr(lrx, "_ELIMINATION_MAX_K", 3)
    got = local_rx(cube, inner=3, outer=7, ridge=0.01)
    np.testing.assert_allclose(got, reference_local_rx(cube, 3, 7, 0.01), rtol=1e-9)


def test_not_positive_definite_pixels_fall_back_to_lu(monkeypatch, cube):
    """A negative loading makes some windows indefinite: those pixels are solved by LU."""
    xp = get_backend("numpy")
    monkeypatch.setattr(windows, "REL_FLOOR", -1e6)
    solved = []

    def spy(sums, xs, *args):
        solved.append(len(xs))
        return solve_scores(sums, xs, *args)

    solve_scores = lrx._solve_scores
    monkeypatch.setattr(lrx, "_solve_scores", spy)
    ridge = -0.005  # not reachable through local_rx, which checks ridge >= 0
    got = lrx.local_rx_backend(cube, 3, 7, ridge, np.dtype(np.float64), xp)
    assert 0 < sum(solved) < cube.shape[0] * cube.shape[1]
    np.testing.assert_allclose(got, reference_local_rx(cube, 3, 7, ridge, -1e6), rtol=1e-7)


def test_blocks_and_strips_agree(monkeypatch):
    rng = np.random.default_rng(12)
    cube = rng.normal(size=(41, 17, 4))
    whole = local_rx(cube, inner=3, outer=9, ridge=0.1)
    monkeypatch.setattr(lrx, "_BLOCK_ELEMENTS", 17 * 15 * 14)  # 6 rows (+ halos) per block
    monkeypatch.setattr(lrx, "_MIN_CALL_ELEMENTS", 1)
    for chunk_rows in (1, 2, 5):
        monkeypatch.setattr(lrx, "_CHUNK_ELEMENTS", 17 * 15 * chunk_rows)
        monkeypatch.setattr(lrx, "_SUB_ELEMENTS", 1)  # window sums row by row
        np.testing.assert_allclose(local_rx(cube, inner=3, outer=9, ridge=0.1), whole, rtol=1e-10)


def test_block_size_does_not_change_a_bit(monkeypatch):
    """The running window sums continue from block to block: any block size, the same scores."""
    rng = np.random.default_rng(13)
    cube = rng.normal(size=(61, 17, 4))
    whole = local_rx(cube, inner=3, outer=9, ridge=0.1)
    for block_rows in (1, 9, 10, 25):  # 9 halo rows: the smallest blocks hold 18 rows
        monkeypatch.setattr(lrx, "_BLOCK_ELEMENTS", 17 * 15 * block_rows)
        np.testing.assert_array_equal(local_rx(cube, inner=3, outer=9, ridge=0.1), whole)


def test_float32_scores_close_to_float64(cube):
    want = local_rx(cube, inner=3, outer=7, ridge=0.01)
    got = local_rx(cube, inner=3, outer=7, ridge=0.01, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_non_contiguous_input(cube):
    view = np.asfortranarray(cube)[:, ::-1]
    np.testing.assert_allclose(
        local_rx(view, inner=3, outer=7), reference_local_rx(view, 3, 7, 0.1), rtol=1e-9
    )


@pytest.mark.parametrize("n", [1, 2, 5, 9, 20])
@pytest.mark.parametrize("h", [0, 1, 4])
def test_window_running_sums_any_length(n, h):
    """Clipped window sums as running sums of their steps, also for windows past the array."""
    xp = get_backend("numpy")
    rng = np.random.default_rng(n + 10 * h)
    a = rng.normal(size=(n, 3, 2))
    want = np.stack([a[max(0, i - h) : i + h + 1].sum(axis=0) for i in range(n)])
    for lo, hi in [(0, n), (n // 2, n), (0, (n + 1) // 2)]:
        start = lrx._window_sum(a, h, lo - 1, np.full((3, 2), np.nan), xp)
        steps = lrx._window_steps(a, h, lo, hi, 0, np.full((hi - lo, 3, 2), np.nan), xp)
        np.testing.assert_allclose(start + np.cumsum(steps, axis=0), want[lo:hi], atol=1e-12)
        at = np.ascontiguousarray(a.transpose(1, 0, 2))
        steps1 = lrx._window_steps(at, h, lo, hi, 1, np.full((3, hi - lo, 2), np.nan), xp)
        got1 = start[:, None] + np.cumsum(steps1, axis=1)
        np.testing.assert_allclose(got1, want[lo:hi].transpose(1, 0, 2), atol=1e-12)


def test_brad_on_a_tile_smaller_than_the_window():
    """``local_rx_backend`` on a part of a scene (as the Dask tiles do): windows clipped to it."""
    xp = get_backend("numpy")
    rng = np.random.default_rng(13)
    tile = rng.normal(size=(6, 8, 3))
    got = lrx.local_rx_backend(tile, 3, 9, 0.1, np.dtype(np.float64), xp)
    assert np.all(np.isfinite(got))
    x = tile - tile.reshape(-1, 3).mean(axis=0)
    for r, c in [(0, 0), (2, 5), (5, 7)]:
        mask = np.zeros((6, 8), dtype=bool)
        mask[max(0, r - 4) : r + 5, max(0, c - 4) : c + 5] = True
        mask[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = False
        ring = x[mask]
        mu = ring.mean(axis=0)
        cov = np.cov(ring, rowvar=False, bias=True)
        cov += 0.1 * np.trace(cov) / 3 * np.eye(3)
        d = x[r, c] - mu
        np.testing.assert_allclose(got[r, c], d @ np.linalg.solve(cov, d), rtol=1e-9)


def test_cumsum_primitive_matches_numpy():
    xp = get_backend("numpy")
    a = np.random.default_rng(14).normal(size=(4, 5, 6))
    for axis in range(3):
        np.testing.assert_array_equal(xp.cumsum(a, axis), np.cumsum(a, axis=axis))
        b = a.copy()
        xp.cumsum(b, axis, out=b)
        np.testing.assert_array_equal(b, np.cumsum(a, axis=axis))


def test_torch_primitives_and_scores_match_numpy(cube):
    pytest.importorskip("torch")
    np_xp, t_xp = get_backend("numpy"), get_backend("torch", "cpu")
    a = np.random.default_rng(15).normal(size=(4, 5, 6))
    b = np.random.default_rng(16).normal(size=(4, 5, 6))
    for axis in range(3):
        t = t_xp.asarray(a.copy())
        t_xp.cumsum(t, axis, out=t)
        np.testing.assert_allclose(t_xp.to_numpy(t), np_xp.cumsum(a, axis), rtol=1e-12)
    for op in ("add", "divide", "minimum"):
        want = getattr(np_xp, op)(a, b)
        out = t_xp.asarray(np.empty_like(a))
        getattr(t_xp, op)(t_xp.asarray(a), t_xp.asarray(b), out=out)
        np.testing.assert_allclose(t_xp.to_numpy(out), want, rtol=1e-12)
    np.testing.assert_array_equal(
        t_xp.to_numpy(t_xp.moveaxis(t_xp.asarray(a), 2, 0)), np_xp.moveaxis(a, 2, 0)
    )
    for dtype in ("float64", "float32"):
        want = brad(cube, inner=3, outer=7, n_pca=4, ridge=0.01, dtype=dtype)
        got = brad(
            cube, inner=3, outer=7, n_pca=4, ridge=0.01, dtype=dtype, backend="torch",
            device="cpu",
        )  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-9 if dtype == "float64" else 1e-3)


def test_working_memory_is_one_buffer_of_moments_whatever_the_rows():
    """The peak above the input is about the buffer of packed moments, not the scene.

    1000 columns x 20 components, outer window 27: the buffer holds the rows of a
    block and the 27 rows its window sums add or drop, at least 54 rows (100 MB,
    above the 32 MiB budget). The sub-strip buffers, the per-block copies and the
    scene's statistics stay small beside it, and the peak does not grow with the
    rows but for the score map.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    peaks = []
    for rows in (120, 240):
        cube = rng.standard_normal((rows, 1000, 20)).astype(np.float32)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            local_rx(cube, 9, 27)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            tracemalloc.stop()
    per_row = 8 * 1000 * 21 * 22 // 2  # packed moments of one row of z = (x, 1)
    held = max(8 * lrx._BLOCK_ELEMENTS, 2 * 27 * per_row)
    assert peaks[0] <= 1.5 * held, (peaks, held)  # with the strips of window sums (41 MB)
    assert peaks[1] <= peaks[0] + 0.05 * held, peaks  # + the larger score map only
