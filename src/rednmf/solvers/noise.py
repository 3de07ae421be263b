r"""The noise level of a scene and the noise-aware threshold of REDNMF's S step.

Pure functions over the ``bands x bands`` covariance of the pixels and the
pixel norms of a residual: no pixel data are read here.

**Band noise.** Noise that is independent between bands cannot be predicted
from the other bands, while the signal of a hyperspectral band is almost
entirely predictable from its neighbours. The residual variance of the least
squares regression (with intercept) of band ``b`` on all other bands, over the
pixels, therefore estimates band ``b``'s noise variance (the multiple-regression
noise estimate of hyperspectral subspace identification, Bioucas-Dias &
Nascimento, HySime, 2008). The other bands' own noise leaks into the
regression, so the estimate errs upwards, the less the more bands share the
signal (on a rank-3 signal with 100 bands: 0.99-1.12 times the planted
standard deviation; with 30 bands up to 1.6 times; ``tests/solvers/test_noise.py``).
With ``C`` the covariance of the pixels:

.. math::

    \hat\sigma_b^2 = \frac{1}{[(C + \varepsilon I)^{-1}]_{bb}},
    \qquad \varepsilon = 10^{-10}\,\operatorname{tr} C / d .

**Noise outside the background.** With ``U`` the ``r`` leading left singular
vectors of ``X`` (the best rank-``r`` background subspace), the expected
noise energy that a pixel's rank-``r`` residual ``R_j = X_j - U U' X_j`` keeps,
and the standard deviation of that energy for Gaussian noise, are

.. math::

    \hat N = \sum_b \hat\sigma_b^2 \,(1 - \|U_{b,:}\|^2), \qquad
    \mathrm{sd}(\hat N) = \Big(2 \sum_b \hat\sigma_b^4 (1 - \|U_{b,:}\|^2)^2\Big)^{1/2}.

**Threshold.** REDNMF's ``'svd'`` scale sets the S step's threshold to
``lam / 2`` times the median pixel norm ``m_R`` of that residual. On a noisy
scene ``m_R^2`` is mostly noise (``\approx \hat N``), every pixel's residual is
about as large as the median, and the threshold zeroes all of ``S``. The
``'noise'`` scale splits the residual energy into its noise part and its
structured part ``m^2 = \max(m_R^2 - \hat N, 0)`` and thresholds

.. math::

    \tau^2 = \hat N + z\,\mathrm{sd}(\hat N) + (\mathrm{lam}/2)^2\, m^2 :

a pixel enters ``S`` when its residual exceeds the noise it is expected to
carry (by ``z`` standard deviations: a pure-noise pixel passes with
probability about ``1 - \Phi(z)``) plus ``lam / 2`` times the structured
misfit of the background. On a clean scene (``\hat N \approx 0``) this is the
``'svd'`` threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rednmf._blas import one_blas_thread

__all__ = ["NoiseScale", "band_noise_variance", "noise_scale"]


def band_noise_variance(cov: np.ndarray) -> np.ndarray:
    """Noise variance of each band from the covariance of the pixels.

    Parameters
    ----------
    cov : ndarray of shape (bands, bands)
        Covariance of the pixels (biased, float64 recommended).

    Returns
    -------
    ndarray of shape (bands,)
        ``sigma_b^2 = 1 / [(C + eps I)^-1]_bb`` (float64): the residual
        variance of band ``b`` regressed on the other bands. A single band has
        nothing to be regressed on; its estimate is 0.
    """
    C = np.asarray(cov, dtype=np.float64)
    d = C.shape[0]
    if d < 2:
        return np.zeros(d)
    eps = 1e-10 * max(float(np.trace(C)), np.finfo(np.float64).tiny) / d
    A = C + eps * np.eye(d)
    try:
        with one_blas_thread():
            inv_diag = np.diag(np.linalg.inv(A))
    except np.linalg.LinAlgError:  # pragma: no cover - A is positive definite
        inv_diag = np.diag(np.linalg.pinv(A))
    return 1.0 / np.maximum(inv_diag, np.finfo(np.float64).tiny)


@dataclass(frozen=True)
class NoiseScale:
    """What :func:`noise_scale` measured and the thresholds it derives.

    Attributes
    ----------
    noise_var : ndarray of shape (bands,)
        Estimated noise variance of each band (float64).
    noise_energy : float
        ``N``: expected noise energy of a pixel outside the rank-r subspace.
    noise_energy_sd : float
        Its standard deviation under Gaussian noise.
    structured : float
        ``m``: the structured (noise-free) median residual norm,
        ``sqrt(max(m_R^2 - N, 0))``.
    fit_threshold : float
        ``tau`` of the S step during the fit (see the module docstring).
    evidence_threshold : float
        ``(lam / 2) m``: the structured part alone, the threshold of the
        evidence that is scored (:func:`rednmf.solvers.rednmf.anomaly_evidence`).
    """

    noise_var: np.ndarray
    noise_energy: float
    noise_energy_sd: float
    structured: float
    fit_threshold: float
    evidence_threshold: float


def noise_scale(
    cov: np.ndarray,
    U: np.ndarray,
    median_residual_norm: float,
    lam: float,
    margin: float,
) -> NoiseScale:
    """The noise-aware thresholds of the S step (module docstring).

    Parameters
    ----------
    cov : ndarray of shape (bands, bands)
        Covariance of the pixels of the scaled data.
    U : ndarray of shape (bands, r)
        Orthonormal basis of the rank-r background subspace (leading
        eigenvectors of ``X X'``).
    median_residual_norm : float
        ``m_R``: median pixel norm of ``X - U U' X``.
    lam : float
        REDNMF's relative sparsity weight (``lam / 2`` multiplies ``m``).
    margin : float
        ``z``: standard deviations of the noise energy added to the threshold.

    Returns
    -------
    NoiseScale
    """
    var = band_noise_variance(cov)
    outside = np.clip(1.0 - np.sum(np.asarray(U, dtype=np.float64) ** 2, axis=1), 0.0, 1.0)
    energy = float(np.sum(var * outside))
    sd = float(np.sqrt(2.0 * np.sum((var * outside) ** 2)))
    structured = float(np.sqrt(max(median_residual_norm**2 - energy, 0.0)))
    half = lam / 2.0
    fit = float(np.sqrt(energy + margin * sd + (half * structured) ** 2))
    return NoiseScale(var, energy, sd, structured, fit, half * structured)
