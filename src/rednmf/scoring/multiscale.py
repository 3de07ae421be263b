r"""Multi-scale scoring of an anomaly cube: local and global evidence, at a pixel and pooled.

A fixed dual window sees one kind of anomaly. A single pixel is found by a
small guard window; a blob larger than the guard window leaks into the ring
that is supposed to be background and hides itself; a spectrally broad
anomaly spread over many pixels is a local background of its own. So the
same projected cube ``P`` (its leading principal components) is scored
against two backgrounds, each at two spatial supports of the target:

* **local** – the dual-window RX of :func:`rednmf.scoring.local_rx`: a pixel
  against the ring around it (targets smaller than the guard window);
* **global** – RX against the statistics of the whole scene
  (:func:`rednmf.scoring.global_rx`): anomalies too large, or too spread
  out, for any local window. With ``robust_global`` (default) the statistics
  are estimated once more without the pixels beyond the chi-square 0.975
  quantile (one-step reweighting): the anomalies, large ones above all, no
  longer widen the background they are measured against;
* **pooled** – each of the two averaged over a ``pool x pool``
  neighbourhood (the global one only with ``pool_global``, default): evidence
  that several neighbouring pixels share, which independent noise does not
  (targets of a few pixels on a noisy scene).

Their raw scores live on different scales, so each is turned into its
empirical upper-tail probability in the scene, ``p_i(x) = #{y : s_i(y) >= s_i(x)} / n``
(the fraction of pixels at least as extreme). Three combinations of the ``K``
detectors:

.. math::

    s_{\max}(x) = -\log_{10} \min_i p_i(x), \qquad
    s_{\mathrm{sum}}(x) = -\sum_i \log_{10} p_i(x), \qquad
    s_{\mathrm{hmp}}(x) = -\log_{10} \frac{K}{\sum_i 1 / p_i(x)}.

``'max'`` is Tippett's combination, the generalised likelihood ratio over the
unknown extent of the anomaly: a pixel is as anomalous as it is under
the detector that finds it most unusual ("one pixel in ``10^s`` is as extreme
under its most sensitive detector"). ``'sum'`` (default) is Fisher's
combination: it accumulates evidence that several detectors share (an
extended target is also unusual locally, a real target also in its pooled
neighbourhood), and it lets a background pixel that only one detector ranks
high fall back. ``'hmp'`` is the harmonic mean p-value (Wilson, 2019), meant
for dependent tests such as these (one projection, overlapping supports):
dominated by the smallest ``p_i`` like ``'max'``, but several small ones add
up. On the 12 real scenes ``'sum'`` is best on clean data and ``'max'`` under
the strongest added noise; with the four detectors, ``'sum'`` and ``'hmp'``
tie on the criterion of the defaults and ``'sum'`` is better on clean scenes
(``docs/choices.md``).

**How many components.** On a noisy scene the trailing principal components
of the evidence are noise, which the local covariances then have to estimate
and which drowns a weak target. Given the noise variance of each band
(:func:`rednmf.solvers.noise.band_noise_variance`), the evidence is whitened by
it and only the components whose variance exceeds the largest eigenvalue that
white noise alone would produce with ``n`` pixels and ``d`` bands (the
Marchenko–Pastur edge ``(1 + \sqrt{d/n})^2``) are kept
(:func:`rednmf.scoring.pca.noise_pca_count`), at most ``n_pca``.

References
----------
.. [1] L. H. C. Tippett, *The Methods of Statistics*, 1931 (minimum p-value
   combination).
.. [2] D. J. Wilson, "The harmonic mean p-value for combining dependent tests,"
   PNAS 116(4), 1195-1200, 2019.
.. [3] V. A. Marchenko and L. A. Pastur, "Distribution of eigenvalues for
   some sets of random matrices," Math. USSR-Sbornik 1(4), 1967.
.. [4] I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an
   optical pattern with unknown spectral distribution," IEEE TASSP 38(10), 1990.
.. [5] R. A. Fisher, *Statistical Methods for Research Workers*, 1932
   (combination of independent tests by the sum of their log p-values).
.. [6] P. J. Rousseeuw and K. Van Driessen, "A fast algorithm for the minimum
   covariance determinant estimator," Technometrics 41(3), 1999 (reweighting).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rednmf._validation import check_choice
from rednmf.backend import namespace
from rednmf.scoring.global_rx import REWEIGHT_QUANTILE, global_rx_backend
from rednmf.scoring.local_rx import local_rx_backend
from rednmf.scoring.windows import background_weights

__all__ = [
    "COMBINATIONS",
    "SUSPECT_LEVEL",
    "Detectors",
    "cube_against_background",
    "cube_and_evidence",
    "detector_maps",
    "evidence_suspects",
    "combine_scales",
    "combine_tail_probabilities",
]


COMBINATIONS = ("max", "sum", "hmp")


def combine_tail_probabilities(*maps: Any, combine: str = "sum", xp: Any = None) -> Any:
    """Combine score maps through their empirical upper-tail probabilities.

    Parameters
    ----------
    *maps : ndarray or torch.Tensor
        Score maps of one shape, higher = more anomalous, finite.
    combine : {'max', 'sum', 'hmp'}, default 'sum'
        ``'max'``: ``-log10 min_i p_i`` (Tippett); ``'sum'``:
        ``-sum_i log10 p_i`` (Fisher); ``'hmp'``: ``-log10`` of the harmonic
        mean of the ``p_i``.
    xp : backend, optional
        Array backend of the maps (default: that of the first tensor, else NumPy).

    Returns
    -------
    ndarray or torch.Tensor (float64)
        The combined score, with ``p_i(x)`` the fraction of pixels whose score
        ``i`` is at least that of ``x``.
    """
    check_choice("combine", combine, COMBINATIONS)
    xp = namespace(*maps) if xp is None else xp
    return _combined(iter(maps), combine, xp)


def _combined(maps: Iterator[Any], combine: str, xp: Any) -> Any:
    """:func:`combine_tail_probabilities` of maps taken one at a time from an iterator.

    Only the running combination and the current map are held (with
    :func:`_map_stream`, the next map is made once the current one is let go);
    the sums are those of the maps stacked, in the same order.
    """
    out, shape, count = None, (), 0
    for m in maps:
        shape, count = tuple(m.shape), count + 1
        p = xp.tail_counts(m).reshape(-1)
        del m  # the map's memory can go as its successor is made
        p /= float(np.prod(shape))  # the tail fraction
        logp = xp.log10(p)
        del p
        logp *= -1.0
        if combine == "hmp":  # harmonic mean of p = 10^-logp
            logp = 10.0**logp
        if out is None:
            out = logp
        elif combine == "max":
            out = xp.stack_reduce([out, logp], "max")
        else:
            out += logp
        del logp
    assert out is not None, "no map to combine"
    if combine == "hmp":
        out = -xp.log10(count / out)
    return out.reshape(shape)


@dataclass(frozen=True)
class Detectors:
    """The multi-scale detectors' settings, validated, and the backend ``xp`` they run on.

    ``inner, outer, ridge, pool, combine, pool_global, robust_global`` as in
    :class:`rednmf.scoring.scorers.MultiScale`; ``out_dtype``: the precision
    of the local detector's solves.
    """

    inner: int
    outer: int
    ridge: float
    pool: int
    out_dtype: np.dtype
    xp: Any
    combine: str = "sum"
    pool_global: bool = True
    robust_global: bool = True


def detector_maps(P: Any, d: Detectors, background: Any = None) -> list[Any]:
    """The score maps of the multi-scale detectors of a projected cube ``P`` (backend ``d.xp``).

    Returns ``[local, pooled local, global]`` and, with ``pool_global``, the
    pooled global map, each ``(rows, cols)`` on ``xp``. ``background``: a
    boolean ``(rows, cols)`` mask of the pixels known to be background; the
    local ring statistics weigh the others down
    (:func:`rednmf.scoring.windows.background_weights`) and the global
    statistics leave them out (:func:`rednmf.scoring.global_rx.global_rx`).
    """
    return list(_map_stream(P, d, background))


def _map_stream(P: Any, d: Detectors, background: Any = None) -> Iterator[Any]:
    """The maps of :func:`detector_maps`, in its order, each made when the previous one is
    taken (the local maps are let go before the global detector runs)."""
    xp = d.xp
    weights = background_weights(background, tuple(P.shape[:2]), xp)
    local = local_rx_backend(P, d.inner, d.outer, d.ridge, d.out_dtype, xp, weights=weights)
    del weights
    yield local
    pooled = xp.box_mean_nearest(local, d.pool)
    del local
    yield pooled
    del pooled
    reweight = REWEIGHT_QUANTILE if d.robust_global else None
    glob = global_rx_backend(P, d.ridge, reweight, xp, background=background)
    yield glob
    if d.pool_global:
        pooled = xp.box_mean_nearest(glob, d.pool)
        del glob
        yield pooled


def combine_scales(
    local: Any,
    glob: Any,
    pool: int,
    combine: str = "sum",
    pool_global: bool = True,
    xp: Any = None,
) -> Any:
    """The multi-scale score from the local and global RX maps (the pooled ones made here)."""
    xp = namespace(local, glob) if xp is None else xp
    maps = [local, xp.box_mean_nearest(local, pool), glob]
    if pool_global:
        maps.append(xp.box_mean_nearest(glob, pool))
    return combine_tail_probabilities(*maps, combine=combine, xp=xp)


#: Default tail probability of the evidence's score at or below which a pixel
#: is a suspect in :func:`cube_and_evidence`: one pixel in twenty (chosen by
#: leave-one-scene-out, ``docs/choices.md``).
SUSPECT_LEVEL = 0.05


def cube_and_evidence(
    P_cube: Any, P_evidence: Any, d: Detectors, suspect_level: float = SUSPECT_LEVEL
) -> np.ndarray:
    r"""Score the cube against the background that the evidence leaves, and the evidence.

    A background/anomaly split gives a detector two things the cube alone
    does not: the evidence ``E`` (what the background model cannot
    explain) and a list of suspects, the pixels the evidence finds anomalous.
    The background model also absorbs part of every anomaly (a pixel's
    coefficients are free, so whatever lies in the span of the basis is
    explained), which only the cube still has. So:

    1. the evidence is scored by the multi-scale detectors (:func:`detector_maps`,
       combined by ``d.combine``); the pixels whose tail probability is at most
       ``suspect_level`` are suspects, the others background;
    2. the cube is scored by the same detectors with background statistics of
       the background pixels alone: suspects leave the global mean and
       covariance and weigh :data:`~rednmf.scoring.windows.SUSPECT_WEIGHT` in
       the local rings, so anomalies do not widen the background they are
       measured against;
    3. the final score combines the four cube detectors and the evidence's
       local detector at the pixel and pooled (its global detectors only
       repeat what the cube's see) by their tail probabilities.

    ``P_cube`` and ``P_evidence`` are the projected ``(rows, cols, k)`` cube and
    evidence on backend ``d.xp`` (``k`` may differ). Returns NumPy scores. Steps 1
    and 2-3 are :func:`evidence_suspects` and :func:`cube_against_background`.
    """
    local_e, background = evidence_suspects(P_evidence, d, suspect_level)
    return cube_against_background(P_cube, background, local_e, d)


def evidence_suspects(
    P_evidence: Any, d: Detectors, suspect_level: float = SUSPECT_LEVEL
) -> tuple[list[Any], np.ndarray]:
    """Step 1 of :func:`cube_and_evidence`: the evidence's local maps and the background.

    Returns the local RX map of the projected evidence and its pooled map
    (on ``d.xp``, combined again in step 3) and the boolean ``(rows, cols)``
    mask of the background pixels (NumPy): those whose combined tail
    probability is above ``suspect_level``. The maps are made and combined one
    at a time; the caller may let ``P_evidence`` go once this returns.
    """
    local: list[Any] = []

    def maps() -> Iterator[Any]:
        for m in _map_stream(P_evidence, d):
            if len(local) < 2:  # the local map and its pooled map are kept
                local.append(m)
            yield m
            del m

    xp = d.xp
    evidence = _combined(maps(), d.combine, xp)
    n = int(np.prod(evidence.shape))
    tail = xp.to_numpy(xp.tail_counts(evidence)).reshape(evidence.shape) / n
    return local, tail > suspect_level


def cube_against_background(
    P_cube: Any, background: np.ndarray, local_evidence: list[Any], d: Detectors
) -> np.ndarray:
    """Steps 2-3 of :func:`cube_and_evidence`: the cube's detectors against ``background``,
    combined with the evidence's ``local_evidence`` maps (:func:`evidence_suspects`).

    The cube's maps are made and combined one at a time. Returns NumPy scores.
    """
    maps = itertools.chain(_map_stream(P_cube, d, background), local_evidence)
    return d.xp.to_numpy(_combined(maps, d.combine, d.xp))
