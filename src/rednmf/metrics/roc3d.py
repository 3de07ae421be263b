r"""Chang's three-dimensional ROC analysis and the areas derived from it.

The 3D ROC (Chang 2021) adds the threshold ``tau`` as a third axis to the ROC
curve. Scores are first min-max normalised to [0, 1] over the valid (non-NaN)
pixels, ``s' = (s - min s) / (max s - min s)`` (all 0 when the scores are
constant), and a pixel is declared a target at threshold ``tau`` when
``s' >= tau``. With ``T`` the anomaly pixels and ``B`` the background pixels::

    P_D(tau) = |{i in T : s'_i >= tau}| / |T|,
    P_F(tau) = |{i in B : s'_i >= tau}| / |B|,     tau in [0, 1].

The curve ``(P_F(tau), P_D(tau), tau)`` projects onto three 2D curves whose
areas are:

* ``AUC(D,F) = integral P_D dP_F``, the usual ROC AUC (ties count one half,
  as :func:`rednmf.metrics.roc_auc`);
* ``AUC(D,tau) = integral_0^1 P_D(tau) dtau``; since
  ``integral_0^1 [s' >= tau] dtau = s'``, it equals the mean normalised score
  of the anomaly pixels;
* ``AUC(F,tau) = integral_0^1 P_F(tau) dtau`` = the mean normalised score of
  the background pixels.

and the derived areas (Chang 2021; Chang 2022):

* ``AUC_TD   = AUC(D,F) + AUC(D,tau)``  target detectability, in [0, 2];
* ``AUC_BS   = AUC(D,F) - AUC(F,tau)``  background suppressibility, in [-1, 1];
* ``AUC_TDBS = AUC(D,tau) - AUC(F,tau)``  joint target detection and
  background suppression, in [-1, 1];
* ``AUC_SNPR = AUC(D,tau) / AUC(F,tau)``  signal-to-noise probability ratio
  (``inf`` when ``AUC(F,tau) = 0``);
* ``AUC_ODP  = AUC(D,F) + AUC(D,tau) - AUC(F,tau)``  overall detection
  probability, in [-1, 2] (the form of Chang 2021, key ``"AUC_ODP"``);
* ``AUC_ODP' = AUC(D,tau) + 1 - AUC(F,tau)``  the other quantity published
  under the name ODP, in [0, 2] (key ``"AUC_ODP_alt"``).

References
----------
C.-I. Chang, "An effective evaluation tool for hyperspectral target
detection: 3D receiver operating characteristic curve analysis", IEEE TGRS
59 (6), 2021, 5131-5153.
C.-I. Chang, "Comprehensive analysis of receiver operating characteristic
(ROC) curves for hyperspectral anomaly detection", IEEE TGRS 60, 2022.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rednmf.metrics.roc import roc_auc, scores_and_labels

__all__ = ["normalize_scores", "roc3d_areas", "roc3d_curve"]


def normalize_scores(scores: ArrayLike) -> np.ndarray:
    """Min-max normalise scores to [0, 1], ignoring NaN; constant scores become 0.

    Parameters
    ----------
    scores : array-like
        Any shape; NaN values stay NaN.

    Returns
    -------
    numpy.ndarray
        ``(s - min s) / (max s - min s)`` as float64, same shape.
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = s[~np.isnan(s)]
    if finite.size == 0:
        return s.copy()
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.where(np.isnan(s), np.nan, 0.0)
    return (s - lo) / (hi - lo)


def roc3d_curve(
    scores: ArrayLike, gt: ArrayLike, *, n_thresholds: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 3D ROC curve ``(tau, P_D(tau), P_F(tau))`` on normalised scores.

    Parameters
    ----------
    scores, gt : array-like
        As in :func:`rednmf.metrics.roc_auc` (NaN scores are left out).
    n_thresholds : int, optional
        Evaluate on ``n_thresholds`` evenly spaced ``tau`` in [0, 1]; by
        default on every distinct normalised score plus the end points 0 and 1
        (the curve is a step function that changes only at those values).

    Returns
    -------
    tau, pd, pf : numpy.ndarray
        Increasing thresholds and the detection and false-alarm
        probabilities ``P(s' >= tau)`` over anomaly and background pixels.
    """
    s, y = scores_and_labels(scores, gt)
    s = normalize_scores(s)
    if n_thresholds is None:
        tau = np.unique(np.concatenate([[0.0, 1.0], s]))
    else:
        tau = np.linspace(0.0, 1.0, int(n_thresholds))
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    # P(s' >= tau) = 1 - (number of scores < tau) / count
    pd = 1.0 - np.searchsorted(pos, tau, side="left") / pos.size
    pf = 1.0 - np.searchsorted(neg, tau, side="left") / neg.size
    return tau, pd, pf


def roc3d_areas(scores: ArrayLike, gt: ArrayLike) -> dict[str, float]:
    """Chang's 3D-ROC areas of a score map (formulas in the module docstring).

    Parameters
    ----------
    scores, gt : array-like
        As in :func:`rednmf.metrics.roc_auc`.

    Returns
    -------
    dict
        ``AUC_DF, AUC_Dtau, AUC_Ftau, AUC_TD, AUC_BS, AUC_TDBS, AUC_SNPR,
        AUC_ODP, AUC_ODP_alt``, floats.
    """
    s, y = scores_and_labels(scores, gt)
    df = roc_auc(s, y)
    sn = normalize_scores(s)
    d_tau = float(sn[y].mean())
    f_tau = float(sn[~y].mean())
    snpr = d_tau / f_tau if f_tau > 0 else float("inf")
    return {
        "AUC_DF": df,
        "AUC_Dtau": d_tau,
        "AUC_Ftau": f_tau,
        "AUC_TD": df + d_tau,
        "AUC_BS": df - f_tau,
        "AUC_TDBS": d_tau - f_tau,
        "AUC_SNPR": snpr,
        "AUC_ODP": df + d_tau - f_tau,
        "AUC_ODP_alt": d_tau + 1.0 - f_tau,
    }
