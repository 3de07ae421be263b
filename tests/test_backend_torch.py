"""The torch backend (rednmf.backend): the same engine code on torch tensors agrees with NumPy.

Runs on the CPU build of torch (no GPU here); ``device='cuda'`` takes the same
code path. Skipped only when torch is not installed (``make`` installs it).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rednmf.backend import get_backend, namespace  # noqa: E402
from rednmf.datasets import make_scene  # noqa: E402
from rednmf.detectors.rednmf import REDNMF  # noqa: E402
from rednmf.engines import TorchEngine  # noqa: E402
from rednmf.exceptions import InputError  # noqa: E402
from rednmf.metrics import roc_auc  # noqa: E402
from rednmf.preprocessing import scale_data  # noqa: E402
from rednmf.scoring.cube import brad, pca_project  # noqa: E402
from rednmf.scoring.local_rx import local_rx  # noqa: E402
from rednmf.scoring.scorers import MultiScale  # noqa: E402
from rednmf.solvers.init import initialize_factors  # noqa: E402
from rednmf.solvers.rednmf import rednmf_solve_blocks  # noqa: E402

FIELDS = ("W", "H", "M", "S")


@pytest.fixture(scope="module")
def scene():
    return make_scene(rows=30, cols=30, bands=20, random_state=0)


def _problem(cube: np.ndarray, dtype: type) -> tuple[np.ndarray, ...]:
    rows, cols, d = cube.shape
    X = scale_data(np.ascontiguousarray(cube).reshape(rows * cols, d).T, "minmax", dtype=dtype)
    W, H, M = initialize_factors(X, 4, "nndsvda", np.random.default_rng(0))
    return X, W, H, M


def _fit(X, W, H, M, **kw):
    opts = dict(max_iter=30, lam_mode="svd", m_split="elementwise", block_size=256)
    opts.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rednmf_solve_blocks(X, W, H, M, **opts)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))


@pytest.mark.parametrize(
    "kw",
    [{}, {"sparsity": "l1"}, {"sparsity": "none"}, {"beta": 0.0}, {"lam_mode": "absolute"}],
    ids=["l21", "l1", "none", "no-encoder", "absolute"],
)
def test_solver_torch_matches_numpy_float32(scene, kw):
    X, W, H, M = _problem(scene[0], np.float32)
    a = _fit(X, W, H, M, **kw)
    b = _fit(X, W, H, M, backend="torch", device="cpu", **kw)
    assert b.n_iter == a.n_iter == 30
    for name in FIELDS:
        got = getattr(b, name)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        assert _rel(getattr(a, name), got) < 1e-4, name
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-5)
    np.testing.assert_allclose(b.lam_history, a.lam_history, rtol=1e-5)


def test_solver_torch_float64_agrees_to_1e_10(scene):
    X, W, H, M = _problem(scene[0], np.float64)
    a = _fit(X, W, H, M)
    b = _fit(X, W, H, M, backend="torch", device="cpu")
    for name in FIELDS:
        assert getattr(b, name).dtype == np.float64
        assert _rel(getattr(a, name), getattr(b, name)) < 1e-10, name
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-10)


def test_solver_torch_tol_stop_and_tensor_input(scene):
    """The early stop (S recomputed from the previous iterate) and tensors in, NumPy out."""
    X, W, H, M = _problem(scene[0], np.float64)
    a = _fit(X, W, H, M, tol=2e-3, max_iter=200)
    tensors = [torch.from_numpy(np.asfortranarray(X))] + [torch.from_numpy(A) for A in (W, H, M)]
    b = _fit(*tensors, tol=2e-3, max_iter=200)  # backend inferred from the tensors
    assert a.converged and b.converged and b.n_iter == a.n_iter < 200
    for name in FIELDS:
        assert isinstance(getattr(b, name), np.ndarray)
        assert _rel(getattr(a, name), getattr(b, name)) < 1e-10, name


def test_brad_torch_matches_numpy(scene):
    rng = np.random.default_rng(3)
    cube = scene[0].astype(np.float32) + rng.normal(0, 0.01, scene[0].shape).astype(np.float32)
    p_np = pca_project(cube, 5)
    p_t = pca_project(cube, 5, backend="torch", device="cpu")
    assert p_t.dtype == p_np.dtype == np.float32
    np.testing.assert_allclose(p_t, p_np, rtol=1e-4, atol=1e-5 * np.abs(p_np).max())
    for kw in ({}, {"n_pca": None, "ridge": 0.0}, {"dtype": "float32"}):
        opts = {"inner": 3, "outer": 9, "n_pca": 6, "ridge": 0.01}
        opts.update(kw)
        want = brad(cube, **opts)
        got = brad(cube, backend="torch", device="cpu", **opts)
        assert got.dtype == want.dtype and isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=2e-3 if kw.get("dtype") else 1e-6)
    x = p_np.astype(np.float64)
    np.testing.assert_allclose(
        local_rx(x, 3, 7, backend="torch", device="cpu"), local_rx(x, 3, 7), rtol=1e-9
    )


def test_rednmf_torch_same_auc(scene):
    """Same AUC in float32; the same fit in float64.

    In float32 the ``'svd'`` scale of lambda (from the trailing eigenvalues of
    ``XX'``) moves by ~1e-3 with the order of the float32 sums, on NumPy as on
    torch (both are that far from the float64 value), so the objectives agree
    to ~1e-3 and the AUCs to ~1e-4; in float64 everything agrees to rounding.
    """
    cube, gt = scene
    kw = {"max_iter": 30, "scorer": MultiScale(inner=3, outer=9, n_pca=10)}
    a = REDNMF(**kw).fit(cube)
    b = REDNMF(engine=TorchEngine("cpu"), **kw).fit(cube)
    assert isinstance(b.decision_scores_, np.ndarray) and isinstance(b.anomaly(cube), np.ndarray)
    assert abs(roc_auc(b.decision_scores_, gt) - roc_auc(a.decision_scores_, gt)) < 2e-4
    np.testing.assert_allclose(b.objective_, a.objective_, rtol=5e-3)
    a = REDNMF(dtype="float64", **kw).fit(cube)
    b = REDNMF(engine="torch:cpu", dtype="float64", **kw).fit(cube)
    np.testing.assert_allclose(b.objective_, a.objective_, rtol=1e-10)
    np.testing.assert_allclose(b.decision_scores_, a.decision_scores_, rtol=1e-8)
    assert roc_auc(b.decision_scores_, gt) == roc_auc(a.decision_scores_, gt)


@pytest.mark.parametrize(
    "kw",
    [
        {"engine": "jax"},
        {"engine": "torch", "lam_mode": "adaptive"},
        {"engine": TorchEngine("no-such-device")},
        {"engine": "torch:no-such-device"},
    ],
    ids=["unknown", "adaptive", "bad-device", "bad-device-name"],
)
def test_torch_bad_combinations_are_input_errors(scene, kw):
    with pytest.raises(InputError) as err:
        REDNMF(max_iter=2, **kw).fit(scene[0])
    assert "\n" not in str(err.value)


def test_solver_torch_with_a_placement_is_an_input_error(scene):
    X, W, H, M = _problem(scene[0], np.float32)
    with pytest.raises(InputError, match="backend='torch'"):
        rednmf_solve_blocks(X, W, H, M, backend="torch", placement=object())


def test_namespace_and_lazy_import():
    assert namespace(np.zeros(2)).name == "numpy"
    assert namespace(np.zeros(2), torch.zeros(2)).name == "torch"
    code = "import sys, rednmf; from rednmf.detectors.rednmf import REDNMF; " \
        "print('torch' in sys.modules)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nndsvd_on_the_device_equals_numpy(scene, dtype):
    # The two passes over X run on torch; the eigendecomposition and the rest on the host.
    cube = scene[0] if isinstance(scene, tuple) else scene
    X = scale_data(cube.reshape(-1, cube.shape[2]).T.copy(), "minmax", dtype=dtype)
    ref = initialize_factors(X, 5, "nndsvda", np.random.default_rng(0))
    got = initialize_factors(
        X, 5, "nndsvda", np.random.default_rng(0), xp=get_backend("torch", "cpu")
    )
    for a, b in zip(got, ref, strict=True):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-9 if dtype == np.float64 else 1e-5, atol=1e-12)


def test_global_rx_pooling_and_tail_probabilities_on_the_device_equal_numpy():
    from rednmf.scoring.global_rx import global_rx, global_rx_backend
    from rednmf.scoring.multiscale import combine_scales

    xp = get_backend("torch", "cpu")
    rng = np.random.default_rng(5)
    P = rng.normal(size=(23, 31, 4))
    P[3:6, 4:8] += 5.0
    for reweight in (None, 0.975):
        got = xp.to_numpy(global_rx_backend(xp.asarray(P), 0.01, reweight, xp))
        np.testing.assert_allclose(got, global_rx(P, ridge=0.01, reweight=reweight), rtol=1e-10)
    a = np.round(rng.random((23, 31)), 2)  # ties on purpose
    b = rng.random((23, 31))
    for size in (1, 3, 4, 5):
        np.testing.assert_allclose(
            xp.to_numpy(xp.box_mean_nearest(xp.asarray(a), size)),
            get_backend("numpy").box_mean_nearest(a, size),
            rtol=1e-12,
        )
    np.testing.assert_array_equal(
        xp.to_numpy(xp.tail_counts(xp.asarray(a))), get_backend("numpy").tail_counts(a)
    )
    c = rng.random((23, 31))  # no ties: a pooled mean may differ in its last bit
    for combine in ("max", "sum", "hmp"):
        got = combine_scales(xp.asarray(c), xp.asarray(b), 3, combine, True)
        np.testing.assert_allclose(
            xp.to_numpy(got), combine_scales(c, b, 3, combine, True), rtol=1e-12
        )
