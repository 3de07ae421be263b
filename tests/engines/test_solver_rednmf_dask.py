"""REDNMF on a Dask cluster: the same fit as in memory, chunk by chunk on the workers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from rednmf import REDNMF, cli, make_scene  # noqa: E402
from rednmf._validation import cube_to_matrix  # noqa: E402
from rednmf.engines import DaskEngine  # noqa: E402
from rednmf.engines.dask import DaskPlacement, _aligned, chunk_ranges  # noqa: E402
from rednmf.exceptions import InputError  # noqa: E402
from rednmf.preprocessing import scale_data  # noqa: E402
from rednmf.solvers.init import initialize_factors  # noqa: E402
from rednmf.solvers.rednmf import rednmf_solve_blocks  # noqa: E402
from rednmf.solvers.rednmf_blocks import DEFAULT_BLOCK_SIZE, _Sums  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    cube, _ = make_scene(rows=40, cols=40, bands=30, n_targets=6, random_state=0)
    X, _ = cube_to_matrix(cube)
    X = scale_data(X.astype(np.float32), "minmax")
    W, H, M = initialize_factors(X, 4, "nndsvda", np.random.default_rng(1))
    return X, W, H, M


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"sparsity": "none"},
        {"beta": 0.0, "lam_mode": "absolute", "lam": 0.3},
        {"tol": 0.02, "max_iter": 60},  # stops early: S is rebuilt on the workers
    ],
)
def test_dask_fit_equals_in_memory_fit(client, problem, kw):
    X, W, H, M = problem
    args = {"max_iter": 20, "lam_mode": "svd", "m_split": "elementwise", "block_size": 400, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = rednmf_solve_blocks(X, W, H, M, **args)
        dist = rednmf_solve_blocks(X, W, H, M, placement=DaskPlacement(client, 400), **args)
    if kw.get("tol"):
        assert mem.converged and mem.n_iter < args["max_iter"]
    assert dist.n_iter == mem.n_iter and dist.converged == mem.converged
    np.testing.assert_array_equal(dist.objective, mem.objective)
    for name in "WHMS":
        np.testing.assert_array_equal(getattr(dist, name), getattr(mem, name), err_msg=name)


def test_dask_default_chunks_agree_to_rounding(client, problem):
    """One chunk per worker adds the sums in another order: equal to float32 rounding."""
    X, W, H, M = problem
    args = {"max_iter": 20, "lam_mode": "svd", "m_split": "elementwise", "block_size": 400}
    mem = rednmf_solve_blocks(X, W, H, M, **args)
    out = np.zeros_like(X)
    dist = rednmf_solve_blocks(
        X, W, H, M, placement=DaskPlacement(client), anomaly_out=out, **args
    )
    assert dist.S is out
    for name in "WHMS":
        np.testing.assert_allclose(getattr(dist, name), getattr(mem, name), atol=1e-5)


def test_detector_scores_equal_in_memory(client):
    cube, _ = make_scene(rows=128, cols=96, bands=30, n_targets=6, random_state=2)
    mem = REDNMF(max_iter=15).fit(cube)  # 12288 pixels: two blocks (and chunks) of 6144
    chunks = DaskEngine(client, chunk_size=DEFAULT_BLOCK_SIZE)
    dist = REDNMF(max_iter=15, engine=chunks).fit(cube)
    # S is identical; it is scored on the workers (rednmf.engines.dask.DaskSession),
    # whose reductions and box sums add in another order: equal to rounding.
    np.testing.assert_allclose(dist.decision_scores_, mem.decision_scores_, rtol=1e-7)
    np.testing.assert_array_equal(dist.anomaly(cube), mem.anomaly(cube))
    np.testing.assert_array_equal(dist.coefficients_, mem.coefficients_)


def test_cli_scheduler(client, tmp_path):
    cube, gt = make_scene(rows=40, cols=40, bands=20, n_targets=4, random_state=3)
    np.savez(tmp_path / "s.npz", data=cube, map=gt)
    code, out, err = _run_cli(
        [
            "detect",
            str(tmp_path / "s.npz"),
            "--out",
            str(tmp_path / "o"),
            "--json",
            "--max-iter",
            "10",
            "--scheduler",
            client.scheduler.address,
        ]  # fmt: skip
    )
    assert code == 0, err
    rec = json.loads(out.strip().splitlines()[-1])
    ref = REDNMF(max_iter=10).fit(cube).decision_scores_
    np.testing.assert_allclose(np.load(rec["files"]["scores_npy"]), ref, rtol=1e-4, atol=1e-6)
    assert rec["params"]["engine"] == client.scheduler.address


def test_cli_scheduler_only_for_rednmf(tmp_path):
    cube, gt = make_scene(rows=30, cols=30, bands=10, random_state=3)
    np.savez(tmp_path / "s.npz", data=cube, map=gt)
    code, _, err = _run_cli(
        ["detect", str(tmp_path / "s.npz"), "--method", "grx", "--scheduler", "tcp://x:1"]
    )
    assert code == 2 and "--scheduler" in err


def test_scheduler_needs_the_block_engine():
    cube, _ = make_scene(rows=30, cols=30, bands=10, random_state=3)
    with pytest.raises(InputError, match="block engine"):
        REDNMF(engine="tcp://127.0.0.1:1", lam_mode="adaptive").fit(cube)


def test_unreachable_scheduler_is_an_input_error(monkeypatch):
    monkeypatch.setattr("rednmf.engines.dask.CONNECT_TIMEOUT", "1s")
    cube, _ = make_scene(rows=30, cols=30, bands=10, random_state=3)
    with pytest.raises(InputError, match="Dask scheduler"):
        REDNMF(engine=DaskEngine("tcp://127.0.0.1:1"), max_iter=2).fit(cube)


def test_received_arrays_are_aligned():
    """Unpickled arrays can be unaligned; NumPy would not use BLAS on them."""
    buf = np.zeros(4 * 6 + 1, dtype=np.uint8)
    odd = buf[1:].view(np.float32).reshape(2, 3)
    assert not odd.flags.aligned
    fixed = _aligned((odd, [odd]))
    assert fixed[0].flags.aligned and fixed[1][0].flags.aligned
    s = _Sums(HHt=odd, HXt=odd, PSp=odd, PSn=odd, SSt=None, penalty=0.0)
    assert _aligned(s).HHt.flags.aligned


def test_chunk_ranges():
    assert chunk_ranges(5000, None, 2, 2048) == [(0, 4096), (4096, 5000)]
    # a given chunk size: an even number of near-equal chunks, as the in-memory blocks
    assert chunk_ranges(1000, 400, 3, 2048) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert chunk_ranges(800, 400, 3, 2048) == [(0, 400), (400, 800)]
    assert chunk_ranges(300, 400, 3, 2048) == [(0, 300)]


def _run_cli(args):
    from typer.testing import CliRunner

    res = CliRunner().invoke(cli.app, args)
    return res.exit_code, res.stdout, res.stderr
