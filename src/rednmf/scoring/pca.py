"""The principal axes of an evidence covariance, and how many of them rise above the noise.

The steps "moments -> axes" of :func:`rednmf.scoring.from_matrix.project_matrix`,
the projection of every scorer (in memory, out of core, on Dask, and of a cube:
:mod:`rednmf.scoring.cube`).
"""

from __future__ import annotations

import numpy as np

from rednmf._blas import one_blas_thread

__all__ = ["noise_pca_count", "principal_axes"]


def principal_axes(cov: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading eigenvectors of a covariance, largest eigenvalue first.

    Each vector's sign is fixed so that its largest-magnitude entry is
    positive, which makes every PCA of the scorers (in memory, out of core, on
    Dask) deterministic and the same.
    """
    with one_blas_thread():
        _, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, ::-1][:, :k]  # decreasing eigenvalues
    signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    return vecs * signs


def noise_pca_count(cov: np.ndarray, noise_var: np.ndarray, n: int, max_k: int | None) -> int:
    """Principal components of the evidence that rise above white noise.

    Parameters
    ----------
    cov : ndarray of shape (bands, bands)
        Covariance of the evidence.
    noise_var : ndarray of shape (bands,)
        Noise variance of each band.
    n : int
        Number of pixels.
    max_k : int or None
        Upper bound (``None``: the number of bands).

    Returns
    -------
    int
        The number of eigenvalues of ``D^-1/2 C D^-1/2`` (``D = diag(noise_var)``)
        above ``(1 + sqrt(d / n))^2``, between 1 and ``max_k``.
    """
    C = np.asarray(cov, dtype=np.float64)
    d = C.shape[0]
    var = np.asarray(noise_var, dtype=np.float64)
    floor = max(float(var.max(initial=0.0)), np.finfo(np.float64).tiny) * 1e-12
    w = 1.0 / np.sqrt(np.maximum(var, floor))
    with one_blas_thread():
        ev = np.linalg.eigvalsh(C * w[:, None] * w[None, :])
    count = int(np.sum(ev > (1.0 + np.sqrt(d / n)) ** 2))
    top = d if max_k is None else min(d, max_k)
    return int(min(max(count, 1), top))
