"""Scoring on a Dask cluster (map_overlap): the same scores as the in-memory scorers."""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from rednmf import REDNMF, make_scene  # noqa: E402
from rednmf.engines import DaskEngine  # noqa: E402
from rednmf.engines.dask import DaskParts, DaskSession  # noqa: E402
from rednmf.exceptions import InputError  # noqa: E402
from rednmf.scoring.cube import brad, column_norm, multiscale  # noqa: E402
from rednmf.scoring.from_matrix import score_matrix  # noqa: E402
from rednmf.solvers.rednmf_blocks import DEFAULT_BLOCK_SIZE as BLOCK  # noqa: E402

#: Pixel chunks of the 60 x 50 scene (3000 pixels): some end mid-row, some are
#: smaller than a row, one is the whole scene.
CHUNKINGS = [700, 49, 3000, (1000, 37, 1963)]


@pytest.fixture(scope="module")
def cube():
    """60 x 50 x 12, correlated background, anomalies inside, on edges and in corners."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(12, 12))
    cube = rng.normal(size=(60, 50, 12)) @ mix + 3.0
    for r, c in [(30, 25), (0, 0), (59, 49), (0, 30), (45, 0), (12, 13), (7, 44)]:
        cube[r, c] += 6.0 * mix[0]
    return cube


def _matrix(cube, chunks):
    """The cube as a bands x pixels Dask array in chunks of pixels."""
    E = np.ascontiguousarray(cube.reshape(-1, cube.shape[2]).T)
    return da.from_array(E, chunks=(cube.shape[2], chunks))


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize(
    "params",
    [
        {},  # n_pca=20 >= 12 bands: centred, no rotation
        {"n_pca": 5, "ridge": 0.01},
        {"n_pca": 3, "inner": 3, "outer": 11, "ridge": 0.0},
    ],
)
def test_brad_on_the_cluster_equals_brad(client, cube, chunks, params):
    ref = brad(cube, **params)
    got = score_matrix(_matrix(cube, chunks), (60, 50), DaskSession(client), **params)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)
    top = np.argsort(ref.ravel())[-3:]
    assert set(np.argsort(got.ravel())[-3:]) == set(top)


@pytest.mark.parametrize("chunk_rows", [None, 4, 7])
@pytest.mark.parametrize("robust_global", [True, False])
def test_multiscale_on_the_cluster_equals_multiscale(client, cube, chunk_rows, robust_global):
    """Local RX by tiles with halos, global RX from reduced (and reweighted) statistics."""
    params = {"n_pca": 6, "ridge": 0.01, "robust_global": robust_global}
    ref = multiscale(cube, **params)
    session = DaskSession(client, chunk_rows=chunk_rows)
    got = score_matrix(_matrix(cube, 700), (60, 50), session, scorer="multiscale", **params)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_norms_on_the_cluster_equal_column_norm(client, cube, chunks):
    got = score_matrix(_matrix(cube, chunks), (60, 50), DaskSession(client), scorer="norm")
    np.testing.assert_allclose(got, column_norm(cube), rtol=1e-14, atol=0)


def test_dask_scoring_without_a_client(cube):
    """Dask's default (threaded) scheduler gives the same scores."""
    got = score_matrix(_matrix(cube, 700), (60, 50), DaskSession(None), n_pca=4)
    np.testing.assert_allclose(got, brad(cube, n_pca=4), rtol=1e-9, atol=0)


def test_dask_scoring_bad_input(cube):
    session = DaskSession(None)
    with pytest.raises(InputError, match="outer window"):
        score_matrix(_matrix(cube[:20], 700), (20, 50), session, outer=27)
    with pytest.raises(InputError, match="scorer"):
        score_matrix(_matrix(cube, 700), (60, 50), session, scorer="max")
    with pytest.raises(InputError, match="bands x pixels"):
        score_matrix(da.zeros((12, 100)), (60, 50), session)
    with pytest.raises(InputError, match="chunk_rows"):
        DaskSession(None, chunk_rows=0)


@pytest.fixture(scope="module")
def scene():
    # 12288 pixels: two blocks of the solver (and two chunks of BLOCK) of 6144
    cube, _ = make_scene(rows=128, cols=96, bands=30, n_targets=6, random_state=2)
    return cube


def _assert_scores_close(dist, mem, rtol=1e-7):
    """Equal up to float rounding (float32 S): relative to each score and to the largest."""
    np.testing.assert_allclose(dist, mem, rtol=rtol, atol=rtol * 1e-2 * np.abs(mem).max())


@pytest.mark.parametrize(
    ("kw", "rtol"),
    [
        ({}, 1e-7),
        ({"scorer__n_pca": 6, "scorer__ridge": 0.1}, 1e-7),
        ({"scorer__inner": 3, "scorer__outer": 15}, 1e-7),
        (
            {"scorer__pool_global": True, "scorer__robust_global": True, "scorer__combine": "sum"},
            1e-7,
        ),
        # The residual X - WH, formed on the workers pixel by pixel as in memory
        # (rednmf.solvers._kernels.shrink_residual): the same evidence.
        ({"sparsity": "none"}, 1e-7),
    ],
)
def test_detector_scores_on_the_cluster(client, scene, kw, rtol, monkeypatch):
    kw = {"scorer__score_cube": False, **kw}  # the evidence alone: every detector on the workers
    mem = REDNMF(max_iter=15).set_params(**kw).fit(scene)
    # The driver's scorer is not used: the scoring runs on the workers.
    monkeypatch.setattr(
        "rednmf.scoring.from_matrix.InProcess.local_rx",
        lambda *a, **k: pytest.fail("scored on the driver"),
    )
    with distributed.get_task_stream(client) as ts:
        dist = REDNMF(max_iter=15, engine=DaskEngine(client, chunk_size=BLOCK)).set_params(**kw)
        dist.fit(scene)
    assert any("tile_scores" in str(t["key"]) for t in ts.data)
    np.testing.assert_array_equal(dist.anomaly(scene), mem.anomaly(scene))
    _assert_scores_close(dist.decision_scores_, mem.decision_scores_, rtol)


def test_detector_scores_cube_and_evidence_from_the_cluster(client, scene):
    # The default scores the cube with the evidence: the evidence is projected on the
    # workers and its k values per pixel gathered; the detectors run on the driver.
    mem = REDNMF(max_iter=15).fit(scene)
    with distributed.get_task_stream(client) as ts:
        dist = REDNMF(max_iter=15, engine=DaskEngine(client, chunk_size=BLOCK)).fit(scene)
    keys = [str(t["key"]) for t in ts.data]
    # the evidence's moments reduced and its chunks projected into row tiles on the workers
    assert any("mean_chunk" in k for k in keys) and any("reshape" in k for k in keys)
    np.testing.assert_array_equal(dist.anomaly(scene), mem.anomaly(scene))
    _assert_scores_close(dist.decision_scores_, mem.decision_scores_)


def test_detector_norm_scores_on_the_cluster(client, scene):
    mem = REDNMF(max_iter=15, scorer="norm").fit(scene)
    dist = REDNMF(max_iter=15, scorer="norm", engine=DaskEngine(client, chunk_size=BLOCK)).fit(
        scene
    )
    np.testing.assert_array_equal(dist.decision_scores_, mem.decision_scores_)


def test_out_of_core_fit_scored_on_the_cluster(client, scene):
    mem = REDNMF(max_iter=10, engine="out-of-core").fit(scene)
    dist = REDNMF(max_iter=10, engine=DaskEngine(client, chunk_size=BLOCK, out_of_core=True)).fit(
        scene
    )
    with pytest.raises(InputError, match="out of core"):
        dist.anomaly(scene)  # not kept
    _assert_scores_close(dist.decision_scores_, mem.decision_scores_)


def test_the_cluster_holds_nothing_after_the_fit(client, scene):
    REDNMF(max_iter=3, engine=DaskEngine(client, chunk_size=1024)).fit(scene)
    # The actor handles of a fit form reference cycles (as before this scoring
    # existed): they are released when the garbage collector runs.
    deadline = time.monotonic() + 5.0
    while any(client.has_what().values()) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert not any(client.has_what().values())


def _gather_two_chunks(client, X, H, S, keep=True):
    """Put ``X, H`` on the workers as two chunks and gather them back (S into ``S``).

    Returns the chunks kept on the workers (``keep``) or None.
    """
    parts = DaskParts(
        client, X, H, [(0, 12), (12, 30)], keep=keep, tau=0.0, n_jobs=1, beta=1.0,
        sparsity="l21", eps=1e-10, block_size=12, keep_prev=False,
    )  # fmt: skip
    try:
        parts.gather_into(H.copy(), S)
    finally:
        parts.close()
    return parts.kept


def test_kept_chunks_hold_S_and_the_residual(client):
    rng = np.random.default_rng(3)
    X = np.asfortranarray(rng.random((5, 30)))
    H = rng.random((2, 30))
    W = rng.random((5, 2))
    S = np.zeros_like(X)
    assert _gather_two_chunks(client, X, H, S, keep=False) is None
    chunks = _gather_two_chunks(client, X, H, S)
    np.testing.assert_array_equal(chunks.evidence().compute(), S)
    with pytest.raises(RuntimeError, match="handed over"):
        chunks.evidence()
    chunks = _gather_two_chunks(client, X, H, S)
    np.testing.assert_allclose(chunks.evidence(W).compute(), X - W @ H, rtol=1e-14)
