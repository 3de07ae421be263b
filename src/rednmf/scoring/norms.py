"""Column-norm scorer: the Euclidean norm of each pixel's anomaly spectrum."""

from __future__ import annotations

import numpy as np

from rednmf._validation import check_cube

__all__ = ["column_norm"]


def column_norm(S_cube: np.ndarray) -> np.ndarray:
    """Score each pixel by the l2 norm of its column of the anomaly matrix.

    Parameters
    ----------
    S_cube : array-like of shape (rows, cols, bands)
        The anomaly matrix ``S`` reshaped to a cube.

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        ``||S_j||_2`` for every pixel ``j``, in the cube's floating-point dtype.

    Raises
    ------
    InputError
        If the cube is not a finite 3-D numeric array.
    """
    arr = check_cube(S_cube, min_pixels=1, min_bands=1)
    return np.linalg.norm(arr, axis=2)
