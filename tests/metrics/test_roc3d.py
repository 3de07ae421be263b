"""Chang's 3D ROC: the derived areas against brute-force integrals and hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from rednmf.metrics import roc3d_areas, roc3d_curve, roc_auc
from rednmf.metrics.roc3d import normalize_scores


def _brute_force(scores: np.ndarray, gt: np.ndarray, n: int = 200_001) -> dict[str, float]:
    """Trapezoid integrals on a fine threshold grid, straight from the definitions."""
    s = scores.ravel().astype(np.float64)
    y = gt.ravel() > 0
    s = (s - s.min()) / (s.max() - s.min())
    tau = np.linspace(0.0, 1.0, n)
    pos, neg = s[y], s[~y]
    # P_D(tau) = P(s' >= tau) on the fine grid, by sorting
    pd_f = 1.0 - np.searchsorted(np.sort(pos), tau, side="left") / pos.size
    pf_f = 1.0 - np.searchsorted(np.sort(neg), tau, side="left") / neg.size
    d_tau = float(np.trapezoid(pd_f, tau))
    f_tau = float(np.trapezoid(pf_f, tau))
    # AUC(D,F): trapezoid of P_D over P_F on all distinct thresholds (descending)
    thr = np.unique(s)[::-1]
    tpr = np.array([0.0] + [(pos >= t).mean() for t in thr])
    fpr = np.array([0.0] + [(neg >= t).mean() for t in thr])
    df = float(np.trapezoid(tpr, fpr))
    return {"AUC_DF": df, "AUC_Dtau": d_tau, "AUC_Ftau": f_tau}


def test_areas_match_brute_force_integrals() -> None:
    rng = np.random.default_rng(0)
    gt = np.zeros((30, 30), dtype=np.uint8)
    gt[rng.choice(30, 6), rng.choice(30, 6)] = 1
    scores = rng.gamma(2.0, size=(30, 30)) + 2.0 * gt
    got = roc3d_areas(scores, gt)
    ref = _brute_force(scores, gt)
    assert got["AUC_DF"] == pytest.approx(ref["AUC_DF"], abs=1e-12)
    assert got["AUC_DF"] == pytest.approx(roc_auc(scores, gt), abs=1e-12)
    assert got["AUC_Dtau"] == pytest.approx(ref["AUC_Dtau"], abs=1e-4)
    assert got["AUC_Ftau"] == pytest.approx(ref["AUC_Ftau"], abs=1e-4)
    df, dt, ft = got["AUC_DF"], got["AUC_Dtau"], got["AUC_Ftau"]
    assert got["AUC_TD"] == pytest.approx(df + dt)
    assert got["AUC_BS"] == pytest.approx(df - ft)
    assert got["AUC_TDBS"] == pytest.approx(dt - ft)
    assert got["AUC_SNPR"] == pytest.approx(dt / ft)
    assert got["AUC_ODP"] == pytest.approx(df + dt - ft)
    assert got["AUC_ODP_alt"] == pytest.approx(dt + 1.0 - ft)


def test_hand_checked_small_case() -> None:
    # normalised scores: background 0, 0.25, 0.5; anomalies 0.75, 1  -> perfect separation
    scores = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.nan]])
    gt = np.array([[0, 0, 0], [1, 1, 1]])
    a = roc3d_areas(scores, gt)  # the NaN pixel (an anomaly) is left out
    assert a["AUC_DF"] == 1.0
    assert a["AUC_Dtau"] == pytest.approx(0.875)  # mean(0.75, 1)
    assert a["AUC_Ftau"] == pytest.approx(0.25)  # mean(0, 0.25, 0.5)
    assert a["AUC_TD"] == pytest.approx(1.875)
    assert a["AUC_BS"] == pytest.approx(0.75)
    assert a["AUC_TDBS"] == pytest.approx(0.625)
    assert a["AUC_SNPR"] == pytest.approx(3.5)
    assert a["AUC_ODP"] == pytest.approx(1.625)
    assert a["AUC_ODP_alt"] == pytest.approx(1.625)


def test_scale_invariance_and_ties() -> None:
    gt = np.array([1, 0, 0, 1])
    # a tie between an anomaly and a background pixel counts one half in AUC(D,F)
    a = roc3d_areas(np.array([1.0, 1.0, 0.0, 0.5]), gt)
    assert a["AUC_DF"] == pytest.approx(0.625)
    b = roc3d_areas(np.array([1.0, 1.0, 0.0, 0.5]) * 7.0 + 3.0, gt)
    assert a == pytest.approx(b)


def test_curve_steps_and_end_points() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    gt = np.array([0, 0, 0, 1, 1])
    tau, pd, pf = roc3d_curve(scores, gt)
    np.testing.assert_allclose(tau, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(pd, [1.0, 1.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(pf, [1.0, 2 / 3, 1 / 3, 0.0, 0.0])
    tau, pd, pf = roc3d_curve(scores, gt, n_thresholds=5)
    assert tau.size == 5 and np.all(np.diff(pd) <= 0) and np.all(np.diff(pf) <= 0)


def test_constant_scores() -> None:
    assert np.all(normalize_scores(np.full(4, 3.0)) == 0.0)
    a = roc3d_areas(np.full(4, 3.0), np.array([1, 0, 0, 0]))
    assert a["AUC_DF"] == 0.5 and a["AUC_Dtau"] == 0.0 and a["AUC_SNPR"] == float("inf")
