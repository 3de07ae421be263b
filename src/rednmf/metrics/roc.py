"""Pixel-level ROC analysis of an anomaly score map against a ground-truth map."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as _skm

from rednmf.exceptions import InputError

__all__ = [
    "roc_auc",
    "roc_auc_by_target_size",
    "roc_curve",
    "roc_curve_auc",
    "scores_and_labels",
]


def scores_and_labels(scores: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The scored pixels and their labels, checked: what every ROC measure here starts from.

    Flatten, binarise ``gt > 0``, drop NaN scores (masked pixels) and check both
    classes remain.

    Parameters
    ----------
    scores : array-like
        Scores, higher = more anomalous; NaN marks a pixel left out.
    gt : array-like of the same shape
        Ground truth, nonzero = anomaly.

    Returns
    -------
    s : numpy.ndarray of float64
        The non-NaN scores, flattened.
    y : numpy.ndarray of bool
        Their labels.

    Raises
    ------
    InputError
        If the shapes differ, a dtype is not numeric or is complex, ``scores`` hold an
        infinite value, ``gt`` a non-finite one, or a class is missing.
    """
    s = np.asarray(scores)
    g = np.asarray(gt)
    if s.shape != g.shape:
        raise InputError(
            f"scores have shape {s.shape} but gt has shape {g.shape}; they must match pixel "
            "for pixel"
        )
    for name, arr in (("scores", s), ("gt", g)):
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise InputError(f"{name} has dtype {arr.dtype}; pass a numeric array")
        if np.iscomplexobj(arr):
            raise InputError(f"{name} is complex; pass a real-valued array")
    if s.size == 0:
        raise InputError("scores and gt are empty; AUC is undefined")
    s = s.astype(np.float64, copy=False).ravel()
    g = g.ravel()
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise InputError("gt holds NaN or infinite values; pass a 0/1 (or boolean) map")
    if np.isinf(s).any():
        raise InputError(
            f"scores hold {int(np.isinf(s).sum())} infinite value(s); use finite scores "
            "(NaN marks a masked pixel)"
        )
    keep = ~np.isnan(s)
    s = s[keep]
    y = g[keep] > 0
    n_pos = int(np.count_nonzero(y))
    masked = "" if keep.all() else " among the pixels with a non-NaN score"
    if n_pos == 0:
        raise InputError(f"ground truth has no anomaly pixel{masked}; AUC is undefined")
    if n_pos == y.size:
        raise InputError(f"ground truth has no background pixel{masked}; AUC is undefined")
    return s, y


def roc_auc(scores: ArrayLike, gt: ArrayLike) -> float:
    """Area under the pixel-level ROC curve of an anomaly score map.

    Parameters
    ----------
    scores : array-like
        Anomaly scores, higher meaning more anomalous, e.g. of shape
        ``(rows, cols)``. NaN marks a masked pixel, which is left out.
    gt : array-like
        Ground truth of the same shape; pixels with ``gt > 0`` are anomalies.

    Returns
    -------
    float
        The AUC in [0, 1] (ties count one half), as
        :func:`sklearn.metrics.roc_auc_score`.

    Raises
    ------
    InputError
        If the shapes differ, a score is infinite, or the kept pixels are all
        anomalies or all background.
    """
    s, y = scores_and_labels(scores, gt)
    return float(_skm.roc_auc_score(y, s))


def roc_curve(
    scores: ArrayLike, gt: ArrayLike, *, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-level ROC curve of an anomaly score map.

    Parameters
    ----------
    scores, gt : array-like
        As in :func:`roc_auc`.
    drop_intermediate : bool, default True
        Drop thresholds that do not change the shape of the curve, as in
        :func:`sklearn.metrics.roc_curve`.

    Returns
    -------
    fpr, tpr, thresholds : numpy.ndarray
        False and true positive rates at the decreasing ``thresholds``;
        ``thresholds[0]`` is ``inf`` (no pixel flagged).

    Raises
    ------
    InputError
        As :func:`roc_auc`.
    """
    s, y = scores_and_labels(scores, gt)
    fpr, tpr, thresholds = _skm.roc_curve(y, s, drop_intermediate=drop_intermediate)
    return fpr, tpr, thresholds


def roc_auc_by_target_size(scores: ArrayLike, gt: ArrayLike) -> dict[int, float]:
    """AUC of each target against the whole background, averaged per target size.

    Each connected region of ``gt > 0`` (4-connectivity) is one target; its AUC is
    :func:`roc_auc` over its pixels and every background pixel. Targets are grouped by
    the side of a square of their area (``round(sqrt(area))``), so planted squares of
    1, 3 x 3, 7 x 7 ... pixels are keyed 1, 3, 7.

    Parameters
    ----------
    scores, gt : array-like of shape (rows, cols)
        As for :func:`roc_auc`.

    Returns
    -------
    dict of int to float
        Side -> mean AUC of the targets of that size, sides in increasing order.
    """
    from scipy.ndimage import label

    scores = np.asarray(scores)
    truth = np.asarray(gt) > 0
    labels, n = label(truth)
    by_side: dict[int, list[float]] = {}
    for i in range(1, n + 1):
        target = labels == i
        side = int(round(float(np.sqrt(target.sum()))))
        keep = target | ~truth
        by_side.setdefault(side, []).append(roc_auc(scores[keep], target[keep]))
    return {side: float(np.mean(by_side[side])) for side in sorted(by_side)}


def roc_curve_auc(scores: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray, float]:
    """The ROC curve and its area from one sort of the scores (a run writes both).

    Parameters
    ----------
    scores, gt : array-like
        As in :func:`roc_auc`.

    Returns
    -------
    fpr, tpr : numpy.ndarray
        As :func:`roc_curve` (intermediate thresholds dropped).
    auc : float
        The area under that curve: :func:`roc_auc`'s value exactly (scikit-learn's
        ``roc_auc_score`` is the trapezoidal area of this same curve).

    Raises
    ------
    InputError
        As :func:`roc_auc`.
    """
    fpr, tpr, _ = roc_curve(scores, gt)
    return fpr, tpr, float(_skm.auc(fpr, tpr))
