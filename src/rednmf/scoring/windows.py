"""The dual window shared by the local detectors: local RX, BRAD, the CR family, the Dask tiles.

A pixel is compared with the ring of an ``outer x outer`` window centred on it,
minus the ``inner x inner`` guard window around it. Written once here:

* :func:`check_window_sides`: both sides odd, ``outer > inner``, and (given
  the scene's shape) the outer window inside the scene, with a hint that
  names values that would work;
* :func:`loading_floor`: the floor that keeps a window's system non-singular
  when its samples are (nearly) identical, ``REL_FLOOR`` times a spread of the
  whole scene (local RX: the mean variance per band; CR: the mean squared
  distance of the pixels to their mean), ``REL_FLOOR`` itself when that
  spread is zero;
* :func:`tiles`: the row (or column) ranges a scene is processed in;
* :func:`background_weights`: the weight of each pixel in its neighbours'
  window statistics when some pixels are known to be background (the others,
  suspects, count for :data:`SUSPECT_WEIGHT`).

How the window is then used differs by method and stays with it: local RX
sums moments over the ring with running box sums
(:mod:`rednmf.scoring.local_rx`, also on each Dask tile with a halo of
``outer // 2``, :class:`rednmf.engines.dask.DaskSession`); the CR detectors gather
the ring's inner products from a pixel-pair table and solve one small system
per pixel (:mod:`rednmf.detectors.cr`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf.exceptions import InputError

__all__ = [
    "REL_FLOOR",
    "SUSPECT_WEIGHT",
    "background_weights",
    "check_background",
    "check_window_sides",
    "loading_floor",
    "tiles",
]

#: Floor of a window's loading (local RX: the ridge of the ring covariance; CR:
#: the squared Tikhonov weights), relative to a spread of the whole scene.
REL_FLOOR = 1e-12


def check_window_sides(inner: int, outer: int, shape: tuple[int, ...] | None = None) -> None:
    """Raise ``InputError`` unless ``inner``, ``outer`` make a dual window (for ``shape``).

    Parameters
    ----------
    inner, outer : int
        Sides of the guard and outer windows: odd, ``outer > inner``.
    shape : tuple, optional
        ``(rows, cols, ...)`` of the scene: then the outer window must fit in
        it, and the hints name the sides that would.
    """
    if inner % 2 == 0:
        raise InputError(f"inner must be odd, got {inner}; pass an odd window side such as 3 or 9")
    if outer % 2 == 0:
        raise InputError(
            f"outer must be odd, got {outer}; pass an odd window side such as 7 or 27"
        )
    if outer <= inner:
        if shape is None:
            hint = (
                f"pass a smaller inner (odd, below {outer}) or a larger outer "
                "(odd, at most the image side)"
            )
        else:
            rows, cols = shape[:2]
            side = min(rows, cols) - (1 - min(rows, cols) % 2)  # largest odd window that fits
            hint = (
                f"pass an outer window between {inner + 2} and {side}"
                if inner + 2 <= side
                else f"pass an inner window of at most {side - 2} (the scene is {rows}x{cols})"
            )
        raise InputError(f"outer ({outer}) must be greater than inner ({inner}); {hint}")
    if shape is not None and (shape[0] < outer or shape[1] < outer):
        rows, cols = shape[:2]
        side = min(rows, cols) - (1 - min(rows, cols) % 2)  # largest odd window that fits
        if side > inner:
            hint = f"pass outer={side} or a smaller odd side above {inner}"
        elif side >= 3:
            hint = f"pass inner={side - 2}, outer={side}"
        else:
            hint = "the scene is too small for local windows: use the global RX (method 'grx')"
        raise InputError(
            f"scene of {rows}x{cols} pixels is smaller than the {outer}x{outer} outer "
            f"window; {hint}"
        )


def loading_floor(spread: float) -> float:
    """``REL_FLOOR * spread``, or ``REL_FLOOR`` when the scene has no spread (``spread <= 0``)."""
    return REL_FLOOR * spread if spread > 0.0 else REL_FLOOR


def tiles(n: int, size: int) -> list[tuple[int, int]]:
    """``[(0, size), (size, 2 size), ..., (., n)]``: ``0..n`` in consecutive ranges of ``size``."""
    return [(a, min(n, a + size)) for a in range(0, n, size)]


#: Weight of a pixel outside the known background in the window statistics of
#: its neighbours (:func:`background_weights`): small enough that a few
#: background pixels outweigh a ring of suspects (48 background pixels against
#: 600 suspects: 0.6 %), non-zero so that a ring of suspects alone keeps its
#: statistics.
SUSPECT_WEIGHT = 1e-3


def background_weights(background: Any, shape: tuple[int, int], xp: Any) -> Any:
    """Weights (float64, on ``xp``): 1 on ``background``, :data:`SUSPECT_WEIGHT` elsewhere.

    ``None`` when ``background`` is None (every pixel has the weight 1).

    Raises
    ------
    InputError
        If ``background`` is not a 2-D mask of shape ``shape``.
    """
    mask = check_background(background, shape)
    if mask is None:
        return None
    return xp.asarray(np.where(mask, 1.0, SUSPECT_WEIGHT), dtype=xp.float64)


def check_background(background: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """``background`` as a boolean ``(rows, cols)`` mask (None stays None).

    Raises
    ------
    InputError
        If it is not of shape ``shape``.
    """
    if background is None:
        return None
    mask = np.asarray(background)
    if mask.shape != tuple(shape):
        raise InputError(
            f"background mask of shape {mask.shape} does not match the scene's {tuple(shape)}"
        )
    return mask.astype(bool)
