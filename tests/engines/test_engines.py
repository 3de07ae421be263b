"""The engine= parameter of REDNMF (rednmf.engines): names, objects, clone, old parameters."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from rednmf import REDNMF, make_scene
from rednmf.engines import (
    DaskEngine,
    InMemory,
    LocalSession,
    OutOfCore,
    TorchEngine,
    resolve_engine,
)
from rednmf.exceptions import InputError
from rednmf.scoring.cube import brad, multiscale
from rednmf.scoring.from_matrix import score_matrix


@pytest.fixture(scope="module")
def cube():
    return make_scene(rows=32, cols=32, bands=16, n_targets=4, random_state=5)[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, InMemory()),
        ("memory", InMemory()),
        ("out-of-core", OutOfCore()),
        ("torch", TorchEngine()),
        ("torch:cuda:1", TorchEngine("cuda:1")),
        ("tcp://host:8786", DaskEngine("tcp://host:8786")),
    ],
)
def test_names(name, expected, monkeypatch):
    monkeypatch.setattr(TorchEngine, "check", lambda self: None)  # no torch needed here
    got = resolve_engine(name)
    assert type(got) is type(expected) and got.get_params() == expected.get_params()


@pytest.mark.parametrize(
    "engine", [InMemory(n_jobs=2, spill=False), OutOfCore(temp_dir="/tmp"), TorchEngine("cpu")]
)
def test_engines_clone_pickle_and_show_their_parameters(engine):
    det = REDNMF(engine=engine, max_iter=3)
    copy = clone(det)
    assert copy.engine is not engine and copy.engine.get_params() == engine.get_params()
    assert pickle.loads(pickle.dumps(det)).engine.get_params() == engine.get_params()
    assert type(engine).__name__ in repr(det)
    deep = det.get_params(deep=True)
    assert all(deep[f"engine__{k}"] == v for k, v in engine.get_params().items())


def test_a_dask_client_is_shared_by_clones():
    client = object()  # stands for a connected distributed.Client: not copied
    engine = DaskEngine(client, chunk_size=512)
    assert clone(REDNMF(engine=engine)).engine.scheduler is client


def test_set_params_reaches_the_engine(cube):
    det = REDNMF(engine=InMemory(n_jobs=1), max_iter=5)
    det.set_params(engine__n_jobs=2)
    assert det.engine.n_jobs == 2


@pytest.mark.parametrize(
    ("engine", "match"),
    [
        ("tpu", "engine='tpu' is not an engine"),
        (3, "The 'engine' parameter of REDNMF must be"),
        (InMemory(n_jobs=0), "n_jobs"),
        (DaskEngine(None), "DaskEngine needs a scheduler"),
        (DaskEngine("tcp://x:1", chunk_size=0), "chunk_size"),
        (
            OutOfCore(temp_dir="/nonexistent/rednmf-tmp"),
            "temp_dir '/nonexistent/rednmf-tmp' is not",
        ),
        (OutOfCore(temp_dir=5), "The 'temp_dir' parameter of OutOfCore must be"),
    ],
)
def test_bad_engines_are_one_line_input_errors(cube, engine, match):
    with pytest.raises(InputError, match=match) as err:
        REDNMF(engine=engine, max_iter=2).fit(cube)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("engine", ["out-of-core", "tcp://127.0.0.1:1"])
def test_engines_that_need_the_block_engine_say_so(cube, engine):
    with pytest.raises(InputError, match="block engine"):
        REDNMF(engine=engine, lam_mode="adaptive").fit(cube)


def test_engines_give_the_default_scores(cube):
    ref = REDNMF(max_iter=10).fit(cube)
    for engine in ("memory", InMemory(n_jobs=2), InMemory(spill=False)):
        got = REDNMF(max_iter=10, engine=engine).fit(cube)
        np.testing.assert_array_equal(got.decision_scores_, ref.decision_scores_)
    ooc = REDNMF(max_iter=10, engine=OutOfCore(n_jobs=1)).fit(cube)
    with pytest.raises(InputError, match="out of core"):
        ooc.anomaly(cube)  # not kept
    np.testing.assert_allclose(ooc.decision_scores_, ref.decision_scores_, rtol=1e-4, atol=1e-6)


def test_out_of_core_temp_dir_is_used_and_left_empty(cube, tmp_path):
    REDNMF(max_iter=3, engine=OutOfCore(temp_dir=tmp_path)).fit(cube)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="is not an existing folder"):
        REDNMF(max_iter=3, engine=OutOfCore(temp_dir=tmp_path / "missing")).fit(cube)


@pytest.mark.parametrize("scorer", ["brad", "multiscale"])
def test_one_pipeline_scores_every_handle_alike(tmp_path, scorer):
    """An array and a memory map, in a session: the same scores, which
    are the cube scorers' up to the order of the float64 sums."""
    rng = np.random.default_rng(0)
    E = rng.random((6, 30 * 28)).astype(np.float32)
    E[:, 100] += 3.0
    window = {"inner": 3, "outer": 7, "n_pca": 4, "ridge": 0.01}
    params = {"scorer": scorer, **window}
    mem = score_matrix(E, (30, 28), **params)
    mm = np.lib.format.open_memmap(tmp_path / "E.npy", mode="w+", dtype=E.dtype, shape=E.shape)
    mm[...] = E
    np.testing.assert_array_equal(score_matrix(mm, (30, 28), **params), mem)
    np.testing.assert_array_equal(score_matrix(E, (30, 28), LocalSession(), **params), mem)
    cube = E.T.reshape(30, 28, 6)
    whole = (brad if scorer == "brad" else multiscale)(cube, **window)
    np.testing.assert_allclose(mem, whole, rtol=1e-5)
    assert np.argmax(mem) == 100


def test_engines_import_neither_dask_nor_torch():
    code = (
        "import sys, rednmf.engines, rednmf.solvers.rednmf; "
        "print(any(m.split('.')[0] in ('dask', 'distributed', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_parameter_lists_the_engine_and_the_scorer():
    from rednmf.detectors.registry import get_detector

    with pytest.raises(InputError, match="has no parameter 'n_jobs'") as err:
        get_detector("rednmf", n_jobs=1)  # the engine's parameter, not REDNMF's
    listed = str(err.value).split("valid parameters: ")[1].split(" (scorer")[0].split(", ")
    assert "engine" in listed and "scorer__n_pca" in listed
    assert len([p for p in listed if "__" not in p]) <= 15


def test_the_engine_decides_out_of_core(tmp_path, monkeypatch):
    """Always, never, or when the model can and a memory-mapped cube would not fit."""
    mm = np.lib.format.open_memmap(
        tmp_path / "c.npy", mode="w+", dtype=np.float32, shape=(8, 9, 5)
    )
    small = np.zeros((8, 9, 5), dtype=np.float32)
    assert OutOfCore().fits_out_of_core(small, model_can=False)
    assert not InMemory().fits_out_of_core(mm, model_can=True)  # it fits
    monkeypatch.setattr("rednmf._memory.available_memory", lambda: 1 << 10)
    assert InMemory().fits_out_of_core(mm, model_can=True)
    assert not InMemory().fits_out_of_core(small, model_can=True)  # in memory already
    assert not InMemory().fits_out_of_core(mm, model_can=False)
    assert not InMemory(spill=False).fits_out_of_core(mm, model_can=True)
    with pytest.raises(InputError, match="TorchEngine fits in memory only"):
        TorchEngine("cpu").fits_out_of_core(mm, model_can=True)


def test_out_of_core_data_is_the_scene_read_by_blocks_and_S_on_disk(tmp_path):
    rng = np.random.default_rng(1)
    cube = rng.random((6, 7, 4)).astype(np.float32)
    cube[2, 3, 1] = np.nan  # an invalid pixel, filled
    with OutOfCore(temp_dir=tmp_path).out_of_core_data(
        cube, None, dtype=np.dtype(np.float32), scale="minmax", min_bands=2, name="REDNMF"
    ) as data:
        assert data.S.shape == data.X.shape == (4, 42) and data.S.flags.f_contiguous
        assert len(list(tmp_path.iterdir())) == 1  # the temporary folder of S
        assert not data.valid[2, 3] and data.valid.sum() == 41 and list(data.kept) == [0, 1, 2, 3]
        X = data.X[:, 0:42]
        lo, hi = np.nanmin(cube), np.nanmax(cube)
        np.testing.assert_allclose(X[:, 0], (cube[0, 0] - lo) / (hi - lo), rtol=1e-6)
    assert data.S is None and list(tmp_path.iterdir()) == []
