"""Tests of the synthetic scene generator and of the benchmark loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from sklearn.metrics import roc_auc_score

from rednmf.datasets import SceneTruth, data_dir, list_scenes, load_benchmark, make_scene
from rednmf.exceptions import InputError


def global_rx(cube: np.ndarray) -> np.ndarray:
    """Global RX: squared Mahalanobis distance of each pixel to the scene mean, in float64."""
    X = np.asarray(cube, dtype=np.float64).reshape(-1, cube.shape[2])
    D = X - X.mean(axis=0)
    C = D.T @ D / (X.shape[0] - 1)
    return np.einsum("ij,ij->i", D @ np.linalg.pinv(C), D).reshape(cube.shape[:2])


# --- make_scene -----------------------------------------------------------------------


def test_default_scene_shapes_and_dtypes():
    cube, gt = make_scene()
    assert cube.shape == (80, 80, 100)
    assert cube.dtype == np.float64
    assert gt.shape == (80, 80)
    assert gt.dtype == np.uint8
    assert set(np.unique(gt)) == {0, 1}
    assert int(gt.sum()) == 12
    assert np.all(np.isfinite(cube))
    assert cube.min() >= 0.0
    assert cube.max() < 2.0


def test_small_scene_fixture(small_scene):
    cube, gt = small_scene
    assert cube.shape == (40, 40, 50)
    assert int(gt.sum()) == 6


def test_same_seed_same_scene_other_seed_differs():
    a_cube, a_gt = make_scene(rows=30, cols=30, bands=40, n_targets=5, random_state=7)
    b_cube, b_gt = make_scene(rows=30, cols=30, bands=40, n_targets=5, random_state=7)
    np.testing.assert_array_equal(a_cube, b_cube)
    np.testing.assert_array_equal(a_gt, b_gt)
    c_cube, c_gt = make_scene(rows=30, cols=30, bands=40, n_targets=5, random_state=8)
    assert not np.array_equal(a_cube, c_cube)
    assert not np.array_equal(a_gt, c_gt)


def test_generator_random_state_is_accepted():
    cube, _ = make_scene(
        rows=20, cols=20, bands=20, n_targets=2, random_state=np.random.default_rng(3)
    )
    ref, _ = make_scene(rows=20, cols=20, bands=20, n_targets=2, random_state=3)
    np.testing.assert_array_equal(cube, ref)


@pytest.mark.parametrize("n_targets", [1, 5, 20])
def test_gt_counts_single_pixel_targets(n_targets):
    _, gt = make_scene(rows=40, cols=40, bands=30, n_targets=n_targets, random_state=1)
    assert int(gt.sum()) == n_targets


def test_block_targets_and_placement():
    cube, gt, truth = make_scene(
        rows=50,
        cols=50,
        bands=30,
        n_targets=6,
        target_size=(1, 2, 3),
        random_state=2,
        return_truth=True,
    )
    assert int(gt.sum()) == 2 * (1 + 4 + 9)
    # Targets stay away from the border.
    assert not gt[:2].any() and not gt[-2:].any()
    assert not gt[:, :2].any() and not gt[:, -2:].any()
    # Each block is one connected component holding a single abundance.
    from scipy.ndimage import label

    labels, n = label(gt)
    assert n == 6
    sizes = sorted(int((labels == k).sum()) for k in range(1, n + 1))
    assert sizes == [1, 1, 4, 4, 9, 9]
    for k in range(1, n + 1):
        assert np.unique(truth.abundance[labels == k]).size == 1


def test_background_is_low_rank_nonnegative_and_smooth():
    _, _, truth = make_scene(
        rows=40, cols=40, bands=30, noise=0.0, random_state=4, return_truth=True
    )
    assert isinstance(truth, SceneTruth)
    # Spatially smooth: neighbouring fractions differ far less than the fractions vary.
    step = np.abs(np.diff(truth.fractions, axis=0)).mean()
    assert step < 0.25 * truth.fractions.std(axis=(0, 1)).min()
    np.testing.assert_allclose(truth.fractions.sum(axis=2), 1.0)
    assert truth.fractions.min() >= 0.0
    assert truth.endmembers.min() > 0.0
    B = truth.background.reshape(-1, truth.background.shape[2])
    np.testing.assert_allclose(B, truth.fractions.reshape(-1, 4) @ truth.endmembers)
    assert np.linalg.matrix_rank(B, tol=1e-8) == 4
    # The target is not a mixture of the endmembers.
    E = truth.endmembers.T
    coef, *_ = np.linalg.lstsq(E, truth.target, rcond=None)
    residual = np.linalg.norm(E @ coef - truth.target) / np.linalg.norm(truth.target)
    assert residual > 0.05


def test_implanted_pixels_follow_the_mixture_formula():
    abundances = (1.0, 0.8, 0.5, 0.3)
    cube, gt, truth = make_scene(
        noise=0.0, abundances=abundances, random_state=5, return_truth=True
    )
    rows, cols = np.nonzero(gt)
    seen = set()
    for r, c in zip(rows, cols, strict=True):
        a = truth.abundance[r, c]
        seen.add(float(a))
        expected = a * truth.target + (1 - a) * truth.background[r, c]
        np.testing.assert_allclose(cube[r, c], expected, rtol=0, atol=1e-12)
    assert seen == set(abundances)
    # Away from the targets the noise-free cube is the background.
    np.testing.assert_array_equal(cube[gt == 0], truth.background[gt == 0])
    # The noisy scene with the same seed has the same background, targets and abundances.
    noisy, noisy_gt, noisy_truth = make_scene(
        abundances=abundances, random_state=5, return_truth=True
    )
    np.testing.assert_array_equal(noisy_gt, gt)
    np.testing.assert_array_equal(noisy_truth.background, truth.background)
    resid = noisy - cube
    assert 0.004 < resid.std() < 0.006


def test_noise_level_scales():
    quiet, _, truth = make_scene(noise=0.001, random_state=6, return_truth=True)
    loud, _ = make_scene(noise=0.02, random_state=6)
    assert np.std(quiet - truth.background) < np.std(loud - truth.background)


def test_global_rx_finds_targets_on_default_scene():
    cube, gt, truth = make_scene(return_truth=True)
    scores = global_rx(cube)
    assert roc_auc_score(gt.ravel(), scores.ravel()) > 0.9
    # Weak sub-pixel targets are harder than whole-pixel ones.
    strong = scores[truth.abundance == 1.0].mean()
    weak = scores[truth.abundance == 0.3].mean()
    assert weak < strong
    background_top = np.quantile(scores[gt == 0], 0.999)
    assert scores[truth.abundance == 1.0].min() > background_top
    assert weak < 2 * background_top


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 3}, "rows"),
        ({"cols": 2.5}, "cols"),
        ({"bands": 5}, "bands"),
        ({"n_endmembers": 0}, "n_endmembers"),
        ({"bands": 20, "n_endmembers": 20}, "n_endmembers"),
        ({"n_targets": 0}, "n_targets"),
        ({"n_targets": True}, "n_targets"),
        ({"target_size": 0}, "target_size"),
        ({"target_size": ()}, "target_size"),
        ({"target_size": "2"}, "target_size"),
        ({"abundances": (1.0, 0.0)}, "abundances"),
        ({"abundances": (1.2,)}, "abundances"),
        ({"abundances": ()}, "abundances"),
        ({"abundances": (float("nan"),)}, "abundances"),
        ({"noise": -0.1}, "noise"),
        ({"random_state": "seed"}, "random_state"),
        ({"random_state": -1}, "random_state"),
        ({"rows": 10, "cols": 10, "n_targets": 50}, "could not place"),
        ({"rows": 10, "cols": 10, "target_size": 8}, "could not place"),
    ],
)
def test_bad_parameters_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        make_scene(**kwargs)


# --- benchmark scenes -----------------------------------------------------------------


def test_data_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REDNMF_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert list_scenes() == []
    monkeypatch.setenv("REDNMF_DATA", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="REDNMF_DATA"):
        list_scenes()


def test_load_benchmark_reads_variables_and_picks_gt(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 100, size=(6, 5, 4)).astype(np.int16)
    gt = np.zeros((6, 5), dtype=np.uint8)
    gt[2, 3] = 1
    path = tmp_path / "toy_tag.mat"
    scipy.io.savemat(path, {"data": cube, "gt": np.zeros((5, 6)), "groundtruth": gt})
    got_cube, got_gt = load_benchmark(path)
    assert got_cube.dtype == np.int16
    np.testing.assert_array_equal(got_cube, cube)
    np.testing.assert_array_equal(got_gt, gt)
    assert got_gt.dtype == np.uint8

    scipy.io.savemat(tmp_path / "nogt.mat", {"data": cube})
    with pytest.raises(InputError, match="ground-truth"):
        load_benchmark(tmp_path / "nogt.mat")
    scipy.io.savemat(tmp_path / "nocube.mat", {"map": gt})
    with pytest.raises(InputError, match="no 3-D"):
        load_benchmark(tmp_path / "nocube.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(InputError, match="cannot read"):
        load_benchmark(tmp_path / "junk.mat")
    with pytest.raises(InputError, match="not found"):
        load_benchmark(tmp_path / "absent.mat")


def test_load_benchmark_by_name(monkeypatch, tmp_path):
    cube = np.ones((3, 3, 2))
    gt = np.eye(3, dtype=np.uint8)
    for stem in ("alpha_src", "beta-1_x", "beta-1-sun_x"):
        scipy.io.savemat(tmp_path / f"{stem}.mat", {"data": cube, "map": gt})
    monkeypatch.setenv("REDNMF_DATA", str(tmp_path))
    assert [p.name for p in list_scenes()] == ["alpha_src.mat", "beta-1-sun_x.mat", "beta-1_x.mat"]
    for name in ("alpha_src", "alpha_src.mat", "alpha"):
        np.testing.assert_array_equal(load_benchmark(name)[1], gt)
    load_benchmark("beta-1")  # unique: "beta-1-sun_x" does not start with "beta-1_"
    with pytest.raises(InputError, match="no scene 'gamma'.*alpha_src"):
        load_benchmark("gamma")


@pytest.mark.realdata
def test_list_scenes_real(data_dir):
    names = [p.name for p in list_scenes(data_dir)]
    assert "abu-airport-1.mat" in names
    assert names == sorted(names)


@pytest.mark.realdata
def test_airport1_shape_dtype_and_anomalies(airport1):
    cube, gt = airport1
    assert cube.shape == (100, 100, 205)
    assert cube.dtype == np.uint16
    assert gt.shape == (100, 100)
    assert int(gt.sum()) == 144


@pytest.mark.realdata
def test_airport1_by_name_matches_fixture(data_dir: Path, airport1, monkeypatch):
    monkeypatch.setenv("REDNMF_DATA", str(data_dir))
    cube, gt = load_benchmark("abu-airport-1")
    np.testing.assert_array_equal(cube, airport1[0])
    np.testing.assert_array_equal(gt, airport1[1])


@pytest.mark.realdata
def test_pavia_uses_groundtruth_variable(data_dir: Path):
    cube, gt = load_benchmark(data_dir / "pavia-centre-100_lzw.mat")
    assert cube.shape == (100, 100, 102)
    assert cube.dtype == np.float64
    assert int(gt.sum()) == 71


@pytest.mark.realdata
def test_global_rx_auc_on_airport1(airport1):
    cube, gt = airport1
    auc = roc_auc_score(gt.ravel(), global_rx(cube).ravel())
    assert auc == pytest.approx(0.8221, abs=0.001)


def test_data_dir_default_location(monkeypatch):
    monkeypatch.delenv("REDNMF_DATA", raising=False)
    folder = data_dir()
    assert folder.parts[-3:] == ("shared", "data", "had")
