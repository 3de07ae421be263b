"""BRAD and column-norm scores of an anomaly matrix held as a :mod:`dask.array`.

The scores are the in-memory ones (:func:`rednmf.scoring.brad.brad`,
:func:`rednmf.scoring.norms.column_norm`), computed where the chunks live,
e.g. on the workers of the ``dask.distributed`` cluster that fitted REDNMF
(:mod:`rednmf.solvers.rednmf_dask`). Only ``bands``-sized statistics and the
``(rows, cols)`` score map come back to the caller.

BRAD on chunks:

1. PCA (:func:`rednmf.scoring.brad.pca_project`): the mean spectrum and the
   ``bands x bands`` covariance of the centred pixels are float64 Dask
   reductions over the chunks; the small covariance is eigen-decomposed here,
   with the same ordering and sign convention; every chunk is projected on its
   own (``map_blocks``).
2. Local RX (:func:`rednmf.scoring.local_rx.local_rx`): the scene mean of the
   projected cube, which centres it, and its variance, which sets the loading
   floor, are again global reductions; then every tile is scored by
   :func:`~rednmf.scoring.local_rx._local_rx` with those scene statistics,
   through :func:`dask.array.map_overlap` with a halo of ``outer // 2`` pixels
   in both spatial axes and ``boundary='none'``: a tile on the image edge gets
   no halo on that side, so its windows are clipped there, exactly as on the
   whole image, where the box sums and the ring counts are zero outside it.
   Every pixel kept from a tile has its whole outer window inside the tile plus
   halo, so its window sums are those of the whole image.

The scores equal the in-memory ones up to float rounding (the reductions and
box sums add in another order): about ``1e-12`` relative in float64.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_choice, check_int
from rednmf.backend import get_backend
from rednmf.exceptions import InputError
from rednmf.scoring.brad import principal_axes
from rednmf.scoring.from_matrix import SCORERS
from rednmf.scoring.global_rx import (
    REWEIGHT_QUANTILE,
    global_rx_apply,
    global_rx_factor,
    reweight_cutoff,
)
from rednmf.scoring.local_rx import _local_rx, check_windows
from rednmf.scoring.multiscale import (
    SUSPECT_LEVEL,
    combine_scales,
    cube_and_evidence,
    noise_pca_count,
)
from rednmf.scoring.windows import loading_floor

__all__ = ["score_dask", "score_matrix_dask"]


def score_dask(
    S_cube: da.Array,
    scorer: str = "brad",
    *,
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.1,
    dtype: DTypeLike = np.float64,
    client: Any = None,
) -> np.ndarray:
    """Score an anomaly cube held as a Dask array, chunk by chunk where it lives.

    Parameters
    ----------
    S_cube : dask.array.Array of shape (rows, cols, bands)
        The anomaly matrix ``S`` as a cube, floating point, in chunks of rows
        and columns (any sizes; the bands are merged into one chunk if split).
    scorer : {'brad', 'norm'}, default 'brad'
        ``'brad'``: :func:`rednmf.scoring.brad.brad`; ``'norm'``:
        :func:`rednmf.scoring.norms.column_norm`, ``||S_j||_2`` per pixel.
    inner, outer : int, default 9 and 27
        Odd sides of the guard and outer windows of BRAD.
    n_pca : int or None, default 20
        Principal components kept by BRAD; ``None`` keeps every band.
    ridge : float, default 0.1
        BRAD's diagonal loading, relative to each window's mean band variance.
    dtype : {'float64', 'float32'}, default float64
        Precision of BRAD's batched solves and of its scores.
    client : distributed.Client, optional
        Client of the cluster that computes the graph (the one holding the
        chunks); ``None``: Dask's default scheduler.

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores, equal to ``brad(S_cube.compute(), ...)`` (or
        ``column_norm``) up to float rounding.

    Raises
    ------
    InputError
        If the array is not 3-D, or a parameter is invalid, or the scene is
        smaller than the outer window.
    """
    if S_cube.ndim != 3:
        raise InputError(f"S_cube must be 3-D (rows, cols, bands), got shape {S_cube.shape}")
    rows, cols, _ = S_cube.shape
    return _score(
        S_cube.rechunk({2: -1}), (rows, cols), scorer=scorer, inner=inner, outer=outer,
        n_pca=n_pca, ridge=ridge, dtype=dtype, client=client, chunk_rows=None,
    )  # fmt: skip


def score_matrix_dask(
    E: da.Array,
    shape: tuple[int, int],
    *,
    scorer: str = "brad",
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.1,
    dtype: DTypeLike = np.float64,
    client: Any = None,
    chunk_rows: int | None = None,
    pool: int = 3,
    noise_var: np.ndarray | None = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
    projected_cube: np.ndarray | None = None,
    suspect_level: float = SUSPECT_LEVEL,
) -> np.ndarray:
    """:func:`rednmf.scoring.from_matrix.score_matrix` of a ``bands x pixels`` Dask array.

    ``E`` is typically chunked along the pixels the way REDNMF's Dask fit cut
    them (:meth:`rednmf.solvers.rednmf_dask.KeptChunks.evidence`), chunk
    boundaries falling anywhere in a row. The PCA (or the norms) runs on those
    chunks as they are; only the projected pixels (``n_pca`` values
    each) are regrouped into tiles of whole rows for the local RX. See
    :func:`score_dask` for the parameters.

    Parameters
    ----------
    E : dask.array.Array of shape (bands, rows * cols)
        Anomaly matrix (or residual), pixels in row-major order.
    shape : (rows, cols)
        Spatial shape.
    chunk_rows : int, optional
        Rows per tile of the local RX; default: one tile per worker of
        ``client`` (per pixel chunk of ``E`` if fewer, or without a client).
        Each tile is scored with a halo of ``outer // 2`` rows on either side,
        so fewer, larger tiles recompute less.
    scorer, inner, outer, n_pca, ridge, dtype, client
        As in :func:`score_dask`; ``scorer='multiscale'`` projects on the
        cluster and gathers the projected pixels (``n_pca`` values each)
        to score them in memory (:func:`rednmf.scoring.multiscale.multiscale_projected`).
    pool, noise_var, combine, pool_global, robust_global, projected_cube, suspect_level
        As in :func:`rednmf.scoring.from_matrix.score_matrix`. With
        ``projected_cube`` (in this process) and ``'multiscale'`` the evidence
        is projected on the cluster, gathered, and scored here with the cube
        (:func:`rednmf.scoring.multiscale.cube_and_evidence`).

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores.
    """
    rows, cols = shape
    if E.ndim != 2 or E.shape[1] != rows * cols:
        raise InputError(f"E of shape {E.shape} is not bands x pixels of a {rows}x{cols} scene")
    if chunk_rows is not None:
        chunk_rows = check_int("chunk_rows", chunk_rows, low=1)
    if scorer == "multiscale" and projected_cube is not None:
        if n_pca is not None:
            n_pca = check_int("n_pca", n_pca, low=1)
        inner, outer, ridge, out_dtype = check_windows(shape, inner, outer, ridge, dtype)
        proj = _pca_project_dask(E.T.rechunk({1: -1}), n_pca, client, noise_var)
        xp = get_backend("numpy")
        P_e = np.asarray(_compute(client, proj)).reshape(rows, cols, -1)
        return cube_and_evidence(
            projected_cube, P_e, inner, outer, ridge, pool, out_dtype, xp,
            suspect_level=suspect_level, combine=combine, pool_global=pool_global,
            robust_global=robust_global,
        )  # fmt: skip
    return _score(
        E.T.rechunk({1: -1}), shape, scorer=scorer, inner=inner, outer=outer,
        n_pca=n_pca, ridge=ridge, dtype=dtype, client=client,
        chunk_rows=chunk_rows, pool=pool, noise_var=noise_var, combine=combine,
        pool_global=pool_global, robust_global=robust_global,
    )  # fmt: skip


def _score(
    data: da.Array,
    shape: tuple[int, int],
    *,
    scorer: str,
    inner: int,
    outer: int,
    n_pca: int | None,
    ridge: float,
    dtype: DTypeLike,
    client: Any,
    chunk_rows: int | None,
    pool: int = 3,
    noise_var: np.ndarray | None = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
) -> np.ndarray:
    """Scores of a cube ``(rows, cols, bands)`` or of its pixels ``(rows * cols, bands)``.

    Either array has its bands in one chunk.
    """
    check_choice("scorer", scorer, SCORERS)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float64)
    if scorer == "norm":
        norms = data.map_blocks(np.linalg.norm, axis=-1, drop_axis=data.ndim - 1, dtype=data.dtype)
        return _compute(client, norms).reshape(shape)
    if n_pca is not None:
        n_pca = check_int("n_pca", n_pca, low=1)
    inner, outer, ridge, out_dtype = check_windows(shape, inner, outer, ridge, dtype)
    proj = _pca_project_dask(data, n_pca, client, noise_var)
    glob = None
    if scorer == "multiscale":
        glob = _global_rx_dask(proj, ridge, client, REWEIGHT_QUANTILE if robust_global else None)
    if data.ndim == 2:  # regroup the projected pixels into tiles of whole rows
        rows, cols = shape
        if chunk_rows is None:
            tiles = data.numblocks[0]
            if client is not None:
                tiles = min(tiles, len(client.scheduler_info()["workers"]))
            chunk_rows = math.ceil(rows / max(1, tiles))
        sizes = [min(chunk_rows, rows - r) * cols for r in range(0, rows, chunk_rows)]
        proj = proj.rechunk({0: tuple(sizes)}).reshape(rows, cols, proj.shape[1])
    proj = _persist(client, proj)
    local = _compute(client, _local_rx_dask(proj, inner, outer, ridge, out_dtype, client))
    if glob is None:
        return local
    glob = _compute(client, glob).reshape(shape)
    return combine_scales(local, glob, pool, combine, pool_global)


def _global_rx_dask(
    proj: da.Array, ridge: float, client: Any, reweight: float | None = None
) -> da.Array:
    """Global RX of the projected pixels (``(..., k)`` chunks): statistics reduced, chunks scored.

    Equal to :func:`rednmf.scoring.global_rx.global_rx` (with its ``reweight``)
    up to float rounding.
    """
    axes = tuple(range(proj.ndim - 1))
    k = proj.shape[-1]
    x64 = proj.astype(np.float64)
    mean, cov = _moments_dask(x64, None, axes, client)
    chol = global_rx_factor(cov, ridge)
    scores = proj.map_blocks(
        global_rx_apply, mean, chol, drop_axis=proj.ndim - 1, dtype=np.float64
    )
    if reweight is None:
        return scores
    keep = _persist(client, scores <= reweight_cutoff(k, reweight))
    n_keep = int(_compute(client, keep.sum()))
    if n_keep <= k:  # too few pixels pass: the first scores
        return scores
    mean, cov = _moments_dask(x64, (keep, n_keep), axes, client)
    chol = global_rx_factor(cov, ridge)
    return proj.map_blocks(global_rx_apply, mean, chol, drop_axis=proj.ndim - 1, dtype=np.float64)


def _moments_dask(
    x64: da.Array, kept: tuple[da.Array, int] | None, axes: tuple[int, ...], client: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased covariance of the pixels of ``x64`` (with ``kept = (keep, count)``:
    those where ``keep``)."""
    if kept is None:
        n = math.prod(x64.shape[:-1])
        mean = _compute(client, x64.mean(axis=axes))
        xc = x64 - mean
        return mean, _compute(client, da.tensordot(xc, xc, axes=(axes, axes))) / n
    keep, n = kept
    w = keep[..., None].astype(np.float64)
    mean = _compute(client, (x64 * w).sum(axis=axes)) / n
    xc = (x64 - mean) * w
    return mean, _compute(client, da.tensordot(xc, xc, axes=(axes, axes))) / n


def _pca_project_dask(
    data: da.Array, n_pca: int | None, client: Any, noise_var: np.ndarray | None = None
) -> da.Array:
    """:func:`rednmf.scoring.brad._pca_project` of ``(..., bands)`` chunks, lazily.

    The mean and the covariance are computed (two passes over the chunks); the
    projection is returned as a graph, chunked as ``data`` in its leading axes.
    """
    bands = data.shape[-1]
    axes = tuple(range(data.ndim - 1))
    n = math.prod(data.shape[:-1])
    x64 = data.astype(np.float64)
    mean = _compute(client, x64.mean(axis=axes))
    if noise_var is None and (n_pca is None or n_pca >= bands):
        return data.map_blocks(_centre, mean, dtype=data.dtype)
    xc = x64 - mean
    cov = _compute(client, da.tensordot(xc, xc, axes=(axes, axes))) / n
    if noise_var is not None:
        n_pca = noise_pca_count(cov, noise_var, n, n_pca)
    vecs = principal_axes(cov, n_pca)
    chunks = (*data.chunks[:-1], (n_pca,))
    return data.map_blocks(_project, mean, vecs, chunks=chunks, dtype=data.dtype)


def _centre(block: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return (block.astype(np.float64) - mean).astype(block.dtype)


def _project(block: np.ndarray, mean: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """One chunk of the projection, computed as :func:`~rednmf.scoring.brad._pca_project` does."""
    flat = block.reshape(-1, block.shape[-1]).astype(np.float64) - mean
    return (flat @ vecs).astype(block.dtype).reshape(*block.shape[:-1], vecs.shape[1])


def _local_rx_dask(
    cube: da.Array, inner: int, outer: int, ridge: float, out_dtype: np.dtype, client: Any
) -> da.Array:
    """Local RX scores of a ``(rows, cols, k)`` Dask cube: a ``(rows, cols)`` graph.

    The scene mean and loading floor of :func:`~rednmf.scoring.local_rx._local_rx`
    are computed over the whole cube and handed to every tile.
    """
    x64 = cube.astype(np.float64)
    mean = _compute(client, x64.mean(axis=(0, 1)))
    var = float(_compute(client, ((x64 - mean) ** 2).mean()))
    floor = loading_floor(var)
    half = outer // 2
    scores = da.map_overlap(
        _tile_scores,
        cube,
        depth={0: half, 1: half, 2: 0},
        boundary="none",
        trim=True,
        drop_axis=2,
        dtype=out_dtype,
        meta=np.empty((0, 0), dtype=out_dtype),
        inner=inner,
        outer=outer,
        ridge=ridge,
        out_dtype=out_dtype,
        scene_stats=(mean, floor),
    )
    return scores


def _tile_scores(
    tile: np.ndarray,
    *,
    inner: int,
    outer: int,
    ridge: float,
    out_dtype: np.dtype,
    scene_stats: tuple[np.ndarray, float],
) -> np.ndarray:
    """Local RX of a tile with its halo (the halo's scores are trimmed by Dask)."""
    xp = get_backend("numpy")
    return _local_rx(tile, inner, outer, ridge, out_dtype, xp, scene_stats=scene_stats)


def _compute(client: Any, x: Any) -> Any:
    """``x`` computed on ``client`` (or Dask's default scheduler) as a NumPy value."""
    if client is None:
        return np.asarray(dask.compute(x)[0])
    return np.asarray(client.compute(x, sync=True))


def _persist(client: Any, x: da.Array) -> da.Array:
    """``x`` computed and kept where it is computed (on the workers of ``client``)."""
    return x.persist() if client is None else client.persist(x)
