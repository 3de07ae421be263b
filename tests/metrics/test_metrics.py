"""Tests of the pixel-level ROC metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rednmf.exceptions import InputError
from rednmf.metrics import roc_auc, roc_auc_by_target_size, roc_curve, roc_curve_auc


def brute_force_auc(scores: np.ndarray, gt: np.ndarray) -> float:
    """Mann-Whitney statistic: P(score of an anomaly > score of a background pixel), ties 1/2."""
    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(gt).ravel() > 0
    pos, neg = s[y], s[~y]
    wins = 0.0
    for p in pos:
        wins += np.count_nonzero(p > neg) + 0.5 * np.count_nonzero(p == neg)
    return wins / (pos.size * neg.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_and_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    gt = (rng.random((20, 15)) < 0.2).astype(np.uint8)
    # Few distinct values, so many ties across and within classes.
    scores = rng.integers(0, 6, size=gt.shape) + 2.0 * gt * rng.integers(0, 2, size=gt.shape)
    auc = roc_auc(scores, gt)
    assert isinstance(auc, float)
    assert auc == pytest.approx(roc_auc_score(gt.ravel(), scores.ravel()), abs=1e-12)
    assert auc == pytest.approx(brute_force_auc(scores, gt), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_sort_gives_the_curve_and_exactly_roc_auc(seed):
    rng = np.random.default_rng(seed)
    gt = (rng.random((40, 30)) < 0.1).astype(np.uint8)
    scores = rng.integers(0, 9, size=gt.shape) + 1.5 * gt * rng.random(gt.shape)
    scores[rng.random(gt.shape) < 0.05] = np.nan  # no-data pixels are left out, as there
    fpr, tpr, auc = roc_curve_auc(scores, gt)
    assert auc == roc_auc(scores, gt)  # the same float, not approximately
    want = roc_curve(scores, gt)
    np.testing.assert_array_equal(fpr, want[0])
    np.testing.assert_array_equal(tpr, want[1])
    keep = np.isfinite(scores)
    assert auc == pytest.approx(brute_force_auc(scores[keep], gt[keep]), abs=1e-12)


def test_roc_auc_extremes_and_binarisation():
    gt = np.array([[0, 0], [3, 1]])  # any value > 0 is an anomaly
    assert roc_auc(np.array([[0.1, 0.2], [0.9, 0.8]]), gt) == 1.0
    assert roc_auc(np.array([[0.9, 0.8], [0.1, 0.2]]), gt) == 0.0
    assert roc_auc(np.ones((2, 2)), gt) == 0.5
    assert roc_auc([[0.1, 0.2], [0.9, 0.8]], gt.astype(bool)) == 1.0


def test_nan_scores_are_excluded():
    rng = np.random.default_rng(3)
    gt = (rng.random((12, 12)) < 0.25).astype(np.uint8)
    scores = rng.random(gt.shape) + gt * 0.3
    masked = scores.copy()
    mask = rng.random(gt.shape) < 0.3
    masked[mask] = np.nan
    expected = roc_auc_score(gt[~mask], scores[~mask])
    assert roc_auc(masked, gt) == pytest.approx(expected, abs=1e-12)
    fpr, tpr, _ = roc_curve(masked, gt)
    assert np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr))


def test_roc_curve_matches_sklearn():
    rng = np.random.default_rng(4)
    gt = (rng.random((10, 10)) < 0.3).astype(np.uint8)
    scores = rng.random(gt.shape) + 0.5 * gt
    fpr, tpr, thr = roc_curve(scores, gt)
    from sklearn.metrics import roc_curve as sk_roc_curve

    ref = sk_roc_curve(gt.ravel(), scores.ravel())
    for got, want in zip((fpr, tpr, thr), ref, strict=True):
        np.testing.assert_array_equal(got, want)
    assert fpr[0] == 0.0 and tpr[-1] == 1.0 and fpr[-1] == 1.0
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(scores, gt))
    full = roc_curve(scores, gt, drop_intermediate=False)
    assert full[0].size >= fpr.size


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 5\).*\(5, 4\)"):
        roc_auc(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(InputError, match=r"\(20,\).*\(4, 5\)"):
        roc_curve(np.zeros(20), np.zeros((4, 5)))


@pytest.mark.parametrize("func", [roc_auc, roc_curve])
def test_single_class_ground_truth_raises(func):
    scores = np.random.default_rng(0).random((5, 5))
    with pytest.raises(InputError, match="no anomaly pixel; AUC is undefined"):
        func(scores, np.zeros((5, 5)))
    with pytest.raises(InputError, match="no background pixel"):
        func(scores, np.ones((5, 5)))
    # The only anomaly is masked out by a NaN score.
    gt = np.zeros((5, 5))
    gt[2, 2] = 1
    scores[2, 2] = np.nan
    with pytest.raises(InputError, match="no anomaly pixel"):
        func(scores, gt)


def test_bad_inputs_raise_input_error():
    gt = np.array([0, 1, 0, 1])
    with pytest.raises(InputError, match="infinite"):
        roc_auc(np.array([0.0, np.inf, 1.0, 2.0]), gt)
    with pytest.raises(InputError, match="dtype"):
        roc_auc(np.array(["a", "b", "c", "d"]), gt)
    with pytest.raises(InputError, match="gt"):
        roc_auc(np.arange(4.0), np.array([0.0, np.nan, 1.0, 0.0]))
    with pytest.raises(InputError, match="empty"):
        roc_auc(np.zeros(0), np.zeros(0))
    with pytest.raises(InputError):
        roc_auc(np.full(4, np.nan), gt)


def test_errors_are_one_line():
    with pytest.raises(InputError) as info:
        roc_auc(np.zeros((3, 3)), np.zeros((3, 3)))
    assert "\n" not in str(info.value)


def test_roc_auc_by_target_size_is_each_targets_auc_against_the_background():
    # two 1-pixel targets, one 2x2 and one 3x3 (sides 1, 2, 3); brute-force pairwise AUC
    rng = np.random.default_rng(0)
    gt = np.zeros((20, 20), dtype=int)
    targets = [[(2, 2)], [(10, 15)], [(5, 5), (5, 6), (6, 5), (6, 6)],
               [(r, c) for r in range(14, 17) for c in range(2, 5)]]  # fmt: skip
    for t in targets:
        for r, c in t:
            gt[r, c] = 1
    scores = rng.normal(size=gt.shape) + 1.5 * gt
    background = scores[gt == 0]

    def brute(pixels):
        s = np.array([scores[p] for p in pixels])
        wins = (s[:, None] > background[None, :]).sum() + 0.5 * (s[:, None] == background).sum()
        return wins / (s.size * background.size)

    got = roc_auc_by_target_size(scores, gt)
    assert list(got) == [1, 2, 3]
    assert got[1] == pytest.approx((brute(targets[0]) + brute(targets[1])) / 2)
    assert got[2] == pytest.approx(brute(targets[2]))
    assert got[3] == pytest.approx(brute(targets[3]))
