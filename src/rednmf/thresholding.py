"""Turn a score map into a detection threshold: a score, a fraction, or a false-alarm rate.

Pure functions over arrays; NaN scores (no-data pixels) are ignored.

* ``threshold``: the score itself.
* ``contamination``: the score above which at most that fraction of the valid
  pixels lie (:func:`contamination_threshold`), whatever the scene.
* ``far`` (false-alarm rate): a peaks-over-threshold rule. The upper tail of
  the background is modelled by a generalised Pareto distribution (GPD), the
  limit law of exceedances over a high level (Pickands-Balkema-de Haan),
  fitted by maximum likelihood to the scores between the 90th and the 99th
  percentile only, truncated at the 99th: the top 1 % of the scene, where
  most anomalies of a benchmark scene sit, does not enter the fit. The tail
  mass above the 90th percentile is taken from the window count over the
  fitted window probability, and the threshold is the GPD quantile at which
  a fraction ``far`` of the pixels is expected above it, kept between the
  ``1 - 2.5 far`` and ``1 - 1.5 far`` quantiles of the scores (so that between
  ``1.5 far`` and ``2.5 far`` of the pixels are flagged, :data:`FLAGGED_BOUNDS`,
  chosen leaving one scene out; :func:`far_threshold`).
  How far that is from the rate delivered on real scenes is measured by
  ``benchmarks/far_calibration.py`` (see ``docs/outputs.md``). ``--diagnose``
  there shows why the GPD alone misses: fitted to the background pixels alone
  (ground truth used) it is close, so the tail model is not what fails; the
  scene's labelled anomalies share the top of the score range with unlabelled
  background (vehicles, roofs, edges), and no rule on the scores alone that
  was tried separates the two.

:func:`choose_threshold` applies one rule and says what it did (a
:class:`ThresholdChoice`: the value, the rule, a plain description for the run
summary and, for ``far``, the fallback that replaced the tail fit, if one did).
:class:`rednmf.detectors._base.BaseDetector` takes its ``threshold_`` from it
too, so there is one threshold source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rednmf._validation import check_real
from rednmf.exceptions import InputError

__all__ = [
    "FLAGGED_BOUNDS",
    "TAIL_WINDOW",
    "ThresholdChoice",
    "bounded_far_threshold",
    "check_threshold_rule",
    "choose_threshold",
    "contamination_threshold",
    "far_threshold",
    "gpd_tail_quantile",
]


def _valid(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise InputError("every score is NaN (no valid pixel); there is nothing to threshold")
    return s


#: Quantiles of the scores bounding the window the GPD tail is fitted to.
TAIL_WINDOW = (0.90, 0.99)
#: ``far`` flags between ``lo * far`` and ``hi * far`` of the pixels (see :func:`far_threshold`):
#: the bounds that kept the pooled flagged background fraction closest to ``far`` (worst
#: method and rate, 1e-3 to 1e-2) on 11 of the 12 real scenes, chosen leaving each scene out
#: in turn (``benchmarks/far_calibration.py --loso``; docs/outputs.md).
FLAGGED_BOUNDS = (1.5, 2.5)
#: The most window points the fit uses (evenly spaced order statistics beyond that).
_MAX_FIT_POINTS = 200_000


def _fit_gpd_truncated(x: np.ndarray, width: float) -> tuple[float, float]:
    """ML fit of a GPD (shape xi, scale sigma) to excesses ``x`` observed on ``[0, width]``."""
    from scipy import optimize, stats

    scale0 = float(x.mean()) or 1.0

    def nll(p: np.ndarray) -> float:
        xi, log_s = float(p[0]), float(p[1])
        sigma = np.exp(log_s) * scale0
        logpdf = stats.genpareto.logpdf(x, xi, scale=sigma)
        mass = float(stats.genpareto.cdf(width, xi, scale=sigma))
        if mass <= 0.0 or not np.all(np.isfinite(logpdf)):
            return 1e300
        return -(float(logpdf.sum()) - x.size * np.log(mass))

    res = optimize.minimize(
        nll,
        np.array([0.1, 0.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000},
    )
    return float(res.x[0]), float(np.exp(res.x[1]) * scale0)


def far_threshold(scores: np.ndarray, far: float) -> float:
    """Score threshold of a false-alarm rate ``far`` from a GPD fit of the background tail.

    Parameters
    ----------
    scores : array-like
        Scores, higher = more anomalous; NaN ignored.
    far : float in (0, 0.5)
        The fraction of background pixels allowed above the threshold.

    Returns
    -------
    float
        The score above which a fraction ``far`` of the background is expected.
        When ``far`` is not smaller than the tail above the 90th percentile,
        or too few distinct scores lie in the fit window, the empirical
        ``1 - 1.5 far`` quantile. Always between the ``1 - 2.5 far`` and the
        ``1 - 1.5 far`` quantiles of all scores (:data:`FLAGGED_BOUNDS`; see Notes).

    Notes
    -----
    With ``u``, ``c`` the 90th and 99th percentiles and ``x = s - u`` for the
    ``n_w`` scores in ``(u, c]``, the GPD ``G`` maximises
    ``sum log g(x) - n_w log G(c - u)`` (the window is a truncated sample).
    The background tail mass above ``u`` is ``p_u = (n_w / n) / G(c - u)``
    and the threshold is ``u + G^{-1}(1 - far / p_u)``.

    The truncated likelihood says little about the mass beyond ``c``: a window
    without visible decay fits a very heavy tail, and its quantile can lie far
    above every score (nothing flagged at any rate); a light-tailed window puts
    it too low (many times ``far`` flagged). And the top of a scene's scores
    holds its anomalies as well as its background: to flag a fraction ``far``
    of the background a rule must flag more than ``far`` of the pixels. So the
    threshold is kept between the ``1 - hi far`` and ``1 - lo far`` quantiles,
    ``(lo, hi) = FLAGGED_BOUNDS = (1.5, 2.5)``: between ``1.5 far n`` and
    ``2.5 far n`` pixels are flagged. The bounds were chosen on the 12 real
    scenes leaving each out in turn (the same bounds in 8 of the 12 folds); on
    the held-out scenes, pooled, every method's flagged background fraction is
    within 1.5x of ``far`` at 1e-3 and 1e-2 (docs/outputs.md). Where anomalies
    are far rarer than ``far``, up to ``2.5 far`` of the background is flagged;
    ``contamination`` is the rule with an upper bound. :func:`choose_threshold`
    says when a bound replaced the tail quantile.
    """
    return _far_threshold(scores, far)[0]


def gpd_tail_quantile(scores: np.ndarray, far: float) -> tuple[float | None, str | None]:
    """The GPD tail quantile of :func:`far_threshold` before its bounds.

    Parameters
    ----------
    scores : array-like
        Scores, NaN ignored.
    far : float in (0, 0.5)
        The rate.

    Returns
    -------
    value : float or None
        ``u + G^{-1}(1 - far / p_u)`` (see :func:`far_threshold`), or None
        when no tail fit is possible.
    reason : str or None
        Why no tail fit was possible (None when ``value`` is a float).
    """
    far = check_real("--far", far, low=0.0, high=0.5, low_inclusive=False)
    from scipy import stats  # after the check: a bad value is refused at once

    s = _valid(scores)
    u, c = (float(v) for v in np.quantile(s, TAIL_WINDOW))
    window = np.sort(s[(s > u) & (s <= c)])
    if c <= u or window.size < 20 or np.unique(window).size < 10:
        return None, "too few distinct scores between the 90th and 99th percentiles for a tail fit"
    if window.size > _MAX_FIT_POINTS:
        window = window[np.linspace(0, window.size - 1, _MAX_FIT_POINTS).astype(np.intp)]
    xi, sigma = _fit_gpd_truncated(window - u, c - u)
    mass = float(stats.genpareto.cdf(c - u, xi, scale=sigma))
    n_window = int(np.count_nonzero((s > u) & (s <= c)))
    p_u = n_window / s.size / mass
    if far >= p_u:
        return None, f"far is not below the fitted tail mass above the 90th percentile ({p_u:.3g})"
    return float(u + stats.genpareto.isf(far / p_u, xi, scale=sigma)), None


def bounded_far_threshold(
    scores: np.ndarray,
    far: float,
    tail: float | None,
    bounds: tuple[float, float] = FLAGGED_BOUNDS,
) -> tuple[float, str | None]:
    """Keep a tail quantile between the ``1 - hi far`` and ``1 - lo far`` quantiles.

    Parameters
    ----------
    scores : array-like
        Scores, NaN ignored.
    far : float in (0, 0.5)
        The rate.
    tail : float or None
        :func:`gpd_tail_quantile`'s value (None: no tail fit, the cap is used).
    bounds : (float, float)
        ``(lo, hi)``: between ``lo far`` and ``hi far`` of the pixels are flagged.

    Returns
    -------
    value : float
        The threshold.
    bound : str or None
        ``'cap'`` or ``'floor'`` when a bound replaced ``tail``, else None.
    """
    s = _valid(scores)
    lo_factor, hi_factor = bounds
    cap = float(np.quantile(s, max(0.0, 1.0 - lo_factor * far)))
    if tail is None or tail > cap:  # flags fewer than lo * far * n pixels
        return cap, "cap"
    floor = float(np.quantile(s, max(0.0, 1.0 - hi_factor * far)))
    if tail < floor:  # flags more than hi * far * n pixels
        return floor, "floor"
    return tail, None


def _far_threshold(scores: np.ndarray, far: float) -> tuple[float, str | None]:
    """:func:`far_threshold` and, when the GPD tail quantile was not used, why (else None)."""
    far = check_real("--far", far, low=0.0, high=0.5, low_inclusive=False)
    s = _valid(scores)
    if float(s.min()) == float(s.max()):
        return float(s.max()), "every score is equal: no tail to fit, nothing is flagged"
    lo_factor, hi_factor = FLAGGED_BOUNDS
    tail, reason = gpd_tail_quantile(s, far)
    value, bound = bounded_far_threshold(s, far, tail)
    if reason is not None:
        return value, f"{reason}; the empirical 1 - {lo_factor:g} far quantile is used"
    if bound == "cap":
        return value, (
            f"the GPD tail quantile would flag fewer than {lo_factor:g} far of the pixels; "
            f"capped at the 1 - {lo_factor:g} far quantile of the scores"
        )
    if bound == "floor":
        return value, (
            f"the GPD tail quantile would flag more than {hi_factor:g} far of the pixels; "
            f"raised to the 1 - {hi_factor:g} far quantile of the scores"
        )
    return value, None


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold a rule gave and how.

    Attributes
    ----------
    value : float
        Pixels with a score strictly above it are detections.
    rule : str
        ``'threshold'``, ``'contamination'`` or ``'far'``.
    setting : float
        The value the rule was given (the score, the fraction or the rate).
    fallback : str or None
        For ``far``: why the GPD tail quantile was replaced (the ``1 - 1.5 far``
        cap, the ``1 - 2.5 far`` floor, the empirical quantile, equal scores); None
        when it was used.
    """

    value: float
    rule: str
    setting: float
    fallback: str | None = None

    @property
    def text(self) -> str:
        """The rule in words, for the summary: e.g. ``'false-alarm rate 0.001 (GPD tail)'``."""
        if self.rule == "threshold":
            return "score"
        if self.rule == "contamination":
            return f"contamination {self.setting:g}"
        if self.fallback is None:
            return f"false-alarm rate {self.setting:g} (GPD tail)"
        if "capped" in self.fallback:
            return (
                f"false-alarm rate {self.setting:g} (capped at the 1 - {FLAGGED_BOUNDS[0]:g} far "
                "quantile)"
            )
        if "raised" in self.fallback:
            return (
                f"false-alarm rate {self.setting:g} (raised to the 1 - {FLAGGED_BOUNDS[1]:g} far "
                "quantile)"
            )
        if "equal" in self.fallback:
            return f"false-alarm rate {self.setting:g} (every score equal)"
        return f"false-alarm rate {self.setting:g} (empirical quantile, no tail fit)"


def choose_threshold(
    scores: np.ndarray,
    *,
    threshold: float | None = None,
    contamination: float | None = None,
    far: float | None = None,
) -> ThresholdChoice:
    """Apply exactly one (or none) of the three rules and say what was done.

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
    ThresholdChoice
        With no rule given, ``contamination=0.01``.

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
        value = check_real("--threshold", threshold)
        return ThresholdChoice(value, "threshold", value)
    if far is not None:
        value, fallback = _far_threshold(scores, far)
        return ThresholdChoice(value, "far", float(far), fallback)
    frac = 0.01 if contamination is None else contamination
    frac = check_real("--contamination", frac, low=0.0, high=0.5, low_inclusive=False)
    return ThresholdChoice(contamination_threshold(scores, frac), "contamination", frac)


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """The score above which at most a fraction ``contamination`` of the scores lie.

    Parameters
    ----------
    scores : array-like
        Scores, NaN ignored (``n`` valid ones).
    contamination : float in (0, 0.5]
        The largest fraction of the pixels to flag.

    Returns
    -------
    float
        The ``(n - k)``-th smallest score, ``k = floor(contamination n)``: exactly
        ``k`` scores are above it (fewer where scores tie with it), none when
        ``k = 0``. The interpolated ``1 - contamination`` quantile would let
        ``ceil(contamination n)`` scores above it when ``contamination n`` is
        not whole.
    """
    contamination = check_real(
        "contamination", contamination, low=0.0, high=0.5, low_inclusive=False
    )
    s = _valid(scores)
    n = s.size
    k = min(n - 1, int(np.floor(contamination * n + 1e-9)))
    return float(np.partition(s, n - k - 1)[n - k - 1])


def check_threshold_rule(
    threshold: float | None, contamination: float | None, far: float | None
) -> None:
    """Validate the threshold options before any work (same checks as :func:`choose_threshold`)."""
    choose_threshold(np.zeros(1), threshold=threshold, contamination=contamination, far=far)
