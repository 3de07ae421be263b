"""Turn a score map into a detection threshold: a score, a fraction, or a false-alarm rate.

Pure functions over arrays; NaN scores (no-data pixels) are ignored.

* ``threshold``: the score itself.
* ``contamination``: the ``1 - contamination`` quantile of the scores, so that
  about that fraction of the valid pixels is detected, whatever the scene.
* ``far`` (false-alarm rate): a constant-false-alarm-rate rule. The background
  is modelled as a log-normal fitted robustly to the bulk of the scores: the
  median and the MAD (times 1.4826) of ``log(s - min(s) + eps)``; the
  threshold is that model's ``1 - far`` quantile. Unlike ``contamination``,
  the number of detections follows the data: few or none in a clean scene,
  more where many pixels stand out of the background. The rule assumes that
  anomalies are a minority (under half) of the pixels.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from rednmf._validation import check_real
from rednmf.exceptions import InputError

__all__ = ["select_threshold", "far_threshold", "check_threshold_rule"]


def _valid(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise InputError("every score is NaN (no valid pixel); there is nothing to threshold")
    return s


def far_threshold(scores: np.ndarray, far: float) -> float:
    """Score threshold of a false-alarm rate ``far`` under a robust log-normal background.

    Parameters
    ----------
    scores : array-like
        Scores, higher = more anomalous; NaN ignored.
    far : float in (0, 0.5)
        The fraction of background pixels allowed above the threshold.

    Returns
    -------
    float
    """
    far = check_real("far", far, low=0.0, high=0.5, low_inclusive=False)
    s = _valid(scores)
    lo, hi = float(s.min()), float(s.max())
    if hi == lo:
        return hi
    eps = 1e-9 * (hi - lo)
    logs = np.log(s - lo + eps)
    centre = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - centre)))
    if spread == 0.0:
        spread = float(np.std(logs)) or 1.0
    z = NormalDist().inv_cdf(1.0 - far)
    return float(np.exp(centre + z * spread) + lo - eps)


def select_threshold(
    scores: np.ndarray,
    *,
    threshold: float | None = None,
    contamination: float | None = None,
    far: float | None = None,
) -> float:
    """Return the detection threshold chosen by exactly one (or none) of the three rules.

    Parameters
    ----------
    scores : array-like
        Scores, NaN ignored.
    threshold : float, optional
        A score.
    contamination : float in (0, 0.5], optional
        Fraction of valid pixels detected.
    far : float in (0, 0.5), optional
        False-alarm rate of :func:`far_threshold`.

    Returns
    -------
    float
        Pixels with a score strictly above it are detections. With no rule
        given, ``contamination=0.01``.

    Raises
    ------
    InputError
        If more than one rule is given or a value is out of range.
    """
    given = [
        n
        for n, v in (
            ("--threshold", threshold),
            ("--contamination", contamination),
            ("--far", far),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)} are exclusive; give one threshold rule")
    if threshold is not None:
        return check_real("threshold", threshold)
    if far is not None:
        return far_threshold(scores, far)
    frac = 0.01 if contamination is None else contamination
    frac = check_real("contamination", frac, low=0.0, high=0.5, low_inclusive=False)
    return float(np.quantile(_valid(scores), 1.0 - frac))


def check_threshold_rule(
    threshold: float | None, contamination: float | None, far: float | None
) -> None:
    """Validate the threshold options before any work (same checks as :func:`select_threshold`)."""
    select_threshold(np.zeros(1), threshold=threshold, contamination=contamination, far=far)
