r"""MSNet: self-supervised multiscale network with enhanced separation training.

H. Liu, X. Su, X. Shen and X. Zhou, "MSNet: Self-supervised multiscale network
with enhanced separation training for hyperspectral anomaly detection," IEEE
Trans. Geosci. Remote Sens. 62 (2024), art. 5520313 (ref. [62] of the REDNMF
paper). Written from the paper's description and the authors' public PyTorch
code (github.com/enter-i-username/MSNet), whose ``main.py`` settings are the
defaults here.

The method, in four parts:

1. **Band selection** (OPBS, Zhang et al. 2018): the band of largest variance,
   then repeatedly the band whose part orthogonal to the bands already chosen
   has the largest norm (:func:`opbs`); 64 bands.
2. **Normalisation**: each selected band to zero mean and unit variance.
3. **Network** (:func:`build_msnet`): ``L`` multiscale convolutional
   encoder-decoder layers. Encoder ``l`` is a residual bottleneck (3x3 conv to
   16 channels, ReLU, 3x3 conv back), ReLU and ``2^l x 2^l`` average pooling;
   its output, upsampled bilinearly to full size and mixed by a 1x1 conv, is
   added to the input of the next encoder. The decoders run from the coarsest
   scale up: decoder ``l`` upsamples encoder ``l``'s output, 1x1 conv, ReLU,
   adds the sum of the coarser decoders' outputs and mixes with a 1x1 conv.
   Decoder 0 gives the reconstruction :math:`Y`.
4. **Enhanced separation training** with a soft separator :math:`m \in [0, 1]`
   per pixel (zero at the start): with :math:`b` bands, the loss is

   .. math::

       \mathcal{L} = \frac1b \Big[
         \frac{\sum_j (1-m_j)^2 \|x_j - y_j\|^2}{\sum_j (1-m_j)}
         + \lambda \frac{\sum_j m_j^2 \|\mathrm{LoG}(Y)_j\|^2}{\sum_j m_j + \epsilon}
         + \frac1L \sum_{l} \frac{\|\downarrow_{2^l} X - \downarrow_{2^l} Y_l\|_F^2}
                                 {n_l} \Big],

   background reconstruction, anomaly suppression (a 5x5 Laplacian-of-Gaussian
   of the reconstruction, reflect padding) and the multiscale reconstruction
   of every decoder output :math:`Y_l` against the input, both bilinearly
   resized to :math:`1/2^l` of the size (:math:`n_l` pixels). Training runs in
   rounds of ``epochs`` Adam steps; after each round the detection map
   :math:`d_j = \|x_j - y_j\|^2` becomes the separator, min-max scaled to
   :math:`[0, 1]`. The score is :math:`d` after the last round.

Large scenes (over :data:`~rednmf.detectors._tiles.WHOLE_SCENE_VALUES` working
values) are trained and scored by tiles: windows with a halo of
:func:`receptive_radius`, each contributing its core's share of the loss, so the
accumulated gradient and the detection map are the whole scene's up to float
rounding (:func:`msnet_loss`, :func:`resample`).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from rednmf.detectors._base import at_least, positive
from rednmf.detectors._deep import DeepDetector, import_torch
from rednmf.detectors._tiles import Tile, plan_tiles

__all__ = [
    "MSNet",
    "band_moments",
    "build_msnet",
    "msnet_loss",
    "opbs",
    "receptive_radius",
    "resample",
    "zscore_bands",
]

#: The 5x5 Laplacian-of-Gaussian template of the anomaly suppression loss.
LOG_TEMPLATE = np.array(
    [
        [-2, -4, -4, -4, -2],
        [-4, 0, 8, 0, -4],
        [-4, 8, 24, 8, -4],
        [-4, 0, 8, 0, -4],
        [-2, -4, -4, -4, -2],
    ],
    dtype=np.float32,
)
#: Guards the anomaly term while the separator is still zero.
_EPS = 1e-6
#: Estimated working values per pixel and selected band of a training step (activations
#: kept for the backward pass, their gradients): the whole-scene fit of a 1000 x 1000 x 50
#: scene held about 30 (5.7 GB beyond the imports and the cube). By tiles the resident set
#: grows by about 2.3 times the estimate (glibc keeps freed pages; docs/performance.md).
WORK_PER_BAND = 32


def opbs(pixels: np.ndarray, k: int) -> np.ndarray:
    r"""Orthogonal-projection band selection (OPBS).

    The first band is the one of largest variance; each next band is the one
    whose residual after projecting out the bands already chosen has the largest
    Euclidean norm (greedy Gram-Schmidt on the uncentred band vectors, as in
    the reference code). The residuals are never formed: their inner products
    are the Gram matrix of the bands, from which each projection is one
    elimination step, so the pixels are read a block at a time
    (:func:`band_moments`) and nothing of their size is held.

    Parameters
    ----------
    pixels : ndarray of shape (n_pixels, bands)
    k : int
        Number of bands to keep, ``1 <= k <= bands``.

    Returns
    -------
    ndarray of int, shape (k,)
        The selected band indices, sorted.

    References
    ----------
    W. Zhang, X. Li, Y. Dou and L. Zhao, "A geometry-based band selection
    approach for hyperspectral image analysis," IEEE TGRS 56(8), 4318-4333, 2018.
    """
    _, var, gram = band_moments(pixels, gram=True)
    bands = gram.shape[0]
    chosen = [int(np.argmax(var))]
    free = np.ones(bands, dtype=bool)
    free[chosen[0]] = False
    for _ in range(1, k):
        c = chosen[-1]
        qq = gram[c, c]  # the squared norm of the last chosen band's residual
        if qq > 0.0:  # project it out of every residual: Gram-Schmidt in inner products
            gram -= np.outer(gram[:, c], gram[c, :]) / qq
        norms = np.diag(gram).copy()
        norms[~free] = -np.inf
        nxt = int(np.argmax(norms))
        chosen.append(nxt)
        free[nxt] = False
    return np.sort(np.asarray(chosen, dtype=np.intp))


#: Pixels per block of :func:`band_moments`.
_MOMENT_BLOCK = 2**15


def band_moments(
    pixels: np.ndarray, gram: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mean and (population) variance of each band, and optionally the bands' Gram matrix.

    ``pixels`` is ``(n_pixels, bands)``, read :data:`_MOMENT_BLOCK` pixels at a time,
    in float64: the mean, then the centred squares (two passes), and ``X^T X``.
    """
    n, bands = pixels.shape
    blocks = [pixels[a : a + _MOMENT_BLOCK] for a in range(0, n, _MOMENT_BLOCK)]
    mean = sum(block.sum(axis=0, dtype=np.float64) for block in blocks) / n
    squares = np.zeros(bands)
    products = np.zeros((bands, bands)) if gram else None
    for block in blocks:
        d = block.astype(np.float64)
        if products is not None:
            products += d.T @ d
        d -= mean
        squares += np.einsum("ij,ij->j", d, d)
    return mean, squares / n, products


def zscore_bands(
    cube: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> np.ndarray:
    """Each band to zero mean and unit (population) standard deviation; constant bands to 0.

    ``mean`` and ``std`` (float64, per band) default to those of ``cube``; a window of a
    scene is standardised with the scene's.
    """
    if mean is None or std is None:
        mean = cube.mean(axis=(0, 1), dtype=np.float64)
        std = cube.std(axis=(0, 1), dtype=np.float64)
    std = np.where(std == 0.0, 1.0, std)
    return ((cube - mean) / std).astype(np.float32)


def build_msnet(bands: int, shape: tuple[int, int], n_layers: int = 3, hidden: int = 16) -> Any:
    """The MSNet network for ``bands`` channels on a ``shape = (rows, cols)`` image.

    The module maps a ``(1, bands, rows, cols)`` tensor to the list of the
    ``n_layers`` decoder outputs, each ``(1, bands, rows, cols)``; element 0
    is the reconstruction. Called as ``net(x, tile)`` with a
    :class:`~rednmf.detectors._tiles.Tile` of the image, ``x`` is the tile's
    window and so are the outputs: on the tile's core they equal the whole
    image's outputs (up to float rounding) when the halo is at least
    :func:`receptive_radius`. Parameters: ``n_layers * (3 b^2 + (18 h + 4) b + h)``
    with ``b = bands`` and ``h = hidden``.
    """
    torch = import_torch()
    nn = torch.nn
    rows, cols = shape

    def upsampler(tile: Tile) -> Callable[[Any, int], Any]:
        """Bilinear upsampling of a window pooled by ``p`` to the full-size window."""
        (r0, _), (c0, _) = tile.rows, tile.cols

        def upsample(t: Any, p: int) -> Any:
            coarse = (rows // p, cols // p)
            return resample(t, coarse, shape, (r0 // p, c0 // p), tile.rows, tile.cols)

        return upsample

    class Encoder(nn.Module):
        def __init__(self, rate: int) -> None:
            super().__init__()
            self.bottleneck = nn.Sequential(
                nn.Conv2d(bands, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, bands, 3, padding=1),
            )
            self.rate = rate
            self.pool = nn.AvgPool2d(rate)
            self.side = nn.Conv2d(bands, bands, 1)

        def forward(self, x: Any, upsample: Callable[[Any, int], Any]) -> tuple[Any, Any]:
            out = self.pool(torch.relu(self.bottleneck(x) + x))
            return out, self.side(upsample(out, self.rate))

    class Decoder(nn.Module):
        def __init__(self, rate: int) -> None:
            super().__init__()
            self.rate = rate
            self.up = nn.Conv2d(bands, bands, 1)
            self.mix = nn.Conv2d(bands, bands, 1)

        def forward(self, encoded: Any, coarser: Any, upsample: Callable[[Any, int], Any]) -> Any:
            return self.mix(torch.relu(self.up(upsample(encoded, self.rate))) + coarser)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoders = nn.ModuleList(Encoder(2**level) for level in range(n_layers))
            self.decoders = nn.ModuleList(Decoder(2**level) for level in range(n_layers))

        def forward(self, x: Any, tile: Tile | None = None) -> list[Any]:
            whole = Tile(shape, (0, rows), (0, cols), (0, rows), (0, cols))
            upsample = upsampler(whole if tile is None else tile)
            encoded = []
            total = x
            for enc in self.encoders:
                out, side = enc(total, upsample)
                encoded.append(out)
                total = total + side
            decoded: list[Any] = [None] * n_layers
            coarser = torch.zeros_like(x)
            for level in range(n_layers - 1, -1, -1):
                decoded[level] = self.decoders[level](encoded[level], coarser, upsample)
                coarser = coarser + decoded[level]
            return decoded

    return Net()


def receptive_radius(n_layers: int) -> int:
    """A bound on the pixels on each side of a pixel that move its terms of the loss.

    Per layer: two 3x3 convolutions (2) on the running sum, then pooling by
    ``p = 2^l`` and bilinear upsampling back, whose two taps reach 1.5 cells of
    ``p`` pixels, plus one cell when the scene's side is not a multiple of ``p``
    (the scale is then not exactly ``1/p``). The loss adds the 5x5 LoG (2) and
    the second tap of the downsampling (1).
    """
    radius = 0
    for level in range(n_layers):
        p = 2**level
        radius += 2 + ((3 * p + 1) // 2 + p if p > 1 else 0)
    return radius + 3


def resample(
    t: Any,
    scene_in: tuple[int, int],
    scene_out: tuple[int, int],
    origin: tuple[int, int],
    out_rows: tuple[int, int],
    out_cols: tuple[int, int],
) -> Any:
    """Bilinear resampling (``align_corners=False``) of a window of an image.

    ``t`` is ``(1, c, h, w)``, the pixels of a ``scene_in``-sized image from
    ``origin`` on; returned are the rows ``out_rows`` and columns ``out_cols``
    (ranges) of the image resampled to ``scene_out``: :func:`torch.nn.functional.interpolate`
    when ``t`` is the whole image and the whole result is asked for, else the
    same two taps per axis (indices clamped to the window: outputs whose taps
    leave it are wrong, and must lie in a tile's halo).
    """
    torch = import_torch()
    whole = (out_rows, out_cols) == ((0, scene_out[0]), (0, scene_out[1]))
    if whole and tuple(t.shape[2:]) == tuple(scene_in):
        return torch.nn.functional.interpolate(t, size=scene_out, mode="bilinear")
    for dim, n_in, n_out, start, (a, b) in zip(
        (2, 3), scene_in, scene_out, origin, (out_rows, out_cols), strict=True
    ):
        if n_in == n_out:  # the identity
            t = t.narrow(dim, a - start, b - a)
            continue
        i0, i1, lam = bilinear_taps(n_in, n_out, a, b)
        last = t.shape[dim] - 1
        near = torch.as_tensor(np.clip(i0 - start, 0, last), device=t.device)
        far = torch.as_tensor(np.clip(i1 - start, 0, last), device=t.device)
        weight = torch.as_tensor(lam, dtype=t.dtype, device=t.device)
        weight = weight.view(-1, 1) if dim == 2 else weight
        lo = t.index_select(dim, near)
        t = lo + (t.index_select(dim, far) - lo) * weight
    return t


def bilinear_taps(n_in: int, n_out: int, a: int, b: int) -> tuple[Any, Any, Any]:
    """The two input taps and the weight of the far one, of outputs ``a .. b-1``.

    Bilinear resampling from ``n_in`` to ``n_out`` samples with ``align_corners=False``:
    output ``i`` reads ``src = (i + 0.5) n_in / n_out - 0.5`` (at least 0) between
    inputs ``floor(src)`` and the next (clamped to the last).
    """
    src = np.maximum((np.arange(a, b) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    near = np.minimum(src.astype(np.intp), n_in - 1)
    return near, np.minimum(near + 1, n_in - 1), src - near


def _owned(n_in: int, n_out: int, core: tuple[int, int]) -> tuple[int, int]:
    """The outputs (a range) of a resampling whose near tap lies in ``core`` (a range)."""
    near = bilinear_taps(n_in, n_out, 0, n_out)[0]
    return int(np.searchsorted(near, core[0])), int(np.searchsorted(near, core[1]))


def msnet_loss(
    x: Any, outputs: list[Any], separator: Any, lam: float, tile: Tile | None = None
) -> Any:
    """The enhanced separation training loss (module docstring) of one forward pass.

    ``x`` and each output are ``(1, bands, rows, cols)``; ``separator`` is
    ``(rows, cols)`` in [0, 1], 1 = anomaly. With a ``tile`` that is not the whole
    scene, ``x`` and the outputs are its window (``separator`` is still the whole
    scene's) and the result is the tile's share: each term summed over the pixels
    of the tile's core (the downsampled ones whose near tap lies in it) over the
    whole scene's normaliser, so the shares of a partition sum to the loss.
    """
    torch = import_torch()
    functional = torch.nn.functional
    bands = x.shape[1]
    y = outputs[0]
    kernel = torch.as_tensor(LOG_TEMPLATE, dtype=y.dtype, device=y.device).expand(bands, 1, 5, 5)

    def log(t: Any) -> Any:  # the LoG of a window, mirrored at its edges
        return functional.conv2d(
            functional.pad(t, (2, 2, 2, 2), mode="reflect"), kernel, groups=bands
        )

    # The terms in the order of the reference (the order autograd sums y's gradient in).
    if tile is None or tile.whole:
        rows, cols = x.shape[2:]
        m = separator[None, None]
        background = 1.0 - m
        br = ((background * (x - y)) ** 2).sum() / background.sum()
        suppress = ((m * log(y)) ** 2).sum() / (m.sum() + _EPS)
        multiscale = 0.0
        for level, out in enumerate(outputs):
            size = (rows // 2**level, cols // 2**level)
            xd = functional.interpolate(x, size=size, mode="bilinear")
            od = functional.interpolate(out, size=size, mode="bilinear")
            multiscale = multiscale + ((xd - od) ** 2).sum() / (size[0] * size[1])
        return (br + lam * suppress + multiscale / len(outputs)) / bands
    rows, cols = tile.shape
    core = (..., *tile.core_in_window)
    m = separator[tile.core][None, None]
    background = 1.0 - m
    br = ((background * (x[core] - y[core])) ** 2).sum() / (1.0 - separator).sum()
    suppress = ((m * log(y)[core]) ** 2).sum() / (separator.sum() + _EPS)
    multiscale = 0.0
    origin = (tile.rows[0], tile.cols[0])
    for level, out in enumerate(outputs):
        size = (rows // 2**level, cols // 2**level)
        own_rows = _owned(rows, size[0], tile.core_rows)
        own_cols = _owned(cols, size[1], tile.core_cols)
        xd = resample(x, tile.shape, size, origin, own_rows, own_cols)
        od = resample(out, tile.shape, size, origin, own_rows, own_cols)
        multiscale = multiscale + ((xd - od) ** 2).sum() / (size[0] * size[1])
    return (br + lam * suppress + multiscale / len(outputs)) / bands


class MSNet(DeepDetector):
    r"""MSNet (Liu et al., TGRS 2024): multiscale CNN with enhanced separation training.

    See the module docstring for the method and the loss. Needs torch
    (``pip install 'rednmf[torch]'``).

    Parameters
    ----------
    n_bands : int, default=64
        Bands kept by OPBS band selection (all bands when the scene has fewer).
    n_layers : int, default=3
        Multiscale encoder-decoder layers (pooling ``1, 2, 4, ...``).
    hidden : int, default=16
        Channels inside each encoder's bottleneck.
    lam : float, default=1e-3
        Weight of the anomaly suppression term.
    lr : float, default=1e-3
        Adam learning rate (one optimiser for the whole training).
    epochs : int, default=150
        Adam steps per separation round.
    rounds : int, default=5
        Separation rounds; the score map is the one after the last. The
        authors' ``main.py`` trains 10 rounds but outputs round 5's map.
    random_state : int, default=0
        Seed of the network's initial weights.
    device : str or None, default=None
        Torch device; ``None`` is ``'cuda'`` when a GPU is present, else ``'cpu'``.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.
    bands_selected_ : ndarray of int
        Band indices chosen by OPBS (into the bands the detector kept).
    loss_history_ : list of float
        Training loss of every step.
    round_scores_ : list of ndarray
        The detection map after each round.
    n_tiles_ : int
        The tiles the scene was trained and scored in (1: the whole scene at once;
        more when the network would hold more than
        :data:`~rednmf.detectors._tiles.WHOLE_SCENE_VALUES` working values).

    References
    ----------
    H. Liu, X. Su, X. Shen and X. Zhou, "MSNet: Self-supervised multiscale
    network with enhanced separation training for hyperspectral anomaly
    detection," IEEE Trans. Geosci. Remote Sens. 62, 5520313, 2024.
    """

    name = "msnet"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **DeepDetector._parameter_constraints,
        "n_bands": at_least(1),
        "n_layers": [Interval(Integral, 1, 8, closed="both")],
        "hidden": at_least(1),
        "lam": positive("neither"),
        "lr": positive("neither"),
        "epochs": at_least(1),
        "rounds": at_least(1),
    }

    def __init__(
        self,
        *,
        n_bands: int = 64,
        n_layers: int = 3,
        hidden: int = 16,
        lam: float = 1e-3,
        lr: float = 1e-3,
        epochs: int = 150,
        rounds: int = 5,
        random_state: int = 0,
        device: Any = None,
        contamination: float = 0.01,
    ) -> None:
        self.n_bands = n_bands
        self.n_layers = n_layers
        self.hidden = hidden
        self.lam = lam
        self.lr = lr
        self.epochs = epochs
        self.rounds = rounds
        self.random_state = random_state
        self.device = device
        self.contamination = contamination

    def total_steps(self) -> int:
        """``epochs * rounds`` Adam steps."""
        return int(self.epochs) * int(self.rounds)

    def _fit_torch(
        self, torch: Any, cube: np.ndarray, device: Any, report: Callable[[float], None]
    ) -> np.ndarray:
        rows, cols, bands = cube.shape
        k = min(int(self.n_bands), bands)
        layers = int(self.n_layers)
        align = 2 ** (layers - 1)  # the coarsest pooling: windows start on its grid
        halo = -(-receptive_radius(layers) // align) * align
        tiles = plan_tiles((rows, cols), WORK_PER_BAND * k, halo=halo, align=align)
        self.n_tiles_ = len(tiles)
        pixels = cube.reshape(-1, bands)
        sel = self.bands_selected_ = opbs(pixels, k)
        mean, var, _ = (None, None, None) if len(tiles) == 1 else band_moments(pixels)

        def window(tile: Tile) -> Any:  # the tile's window, standardised, (1, k, h, w)
            std = None if var is None else np.sqrt(var[sel])
            data = zscore_bands(
                cube[tile.window][:, :, sel], None if mean is None else mean[sel], std
            )
            return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))[None].to(device)

        whole = window(tiles[0]) if len(tiles) == 1 else None
        inputs = (lambda tile: whole) if whole is not None else window
        net = build_msnet(k, (rows, cols), layers, int(self.hidden)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        separator = torch.zeros((rows, cols), device=device)
        dm = torch.empty((rows, cols), device=device)
        self.round_scores_: list[np.ndarray] = []
        for _ in range(int(self.rounds)):
            for _ in range(int(self.epochs)):
                opt.zero_grad()
                total = 0.0
                for tile in tiles:  # the gradient of the loss, the sum of the tiles' shares
                    x = inputs(tile)
                    loss = msnet_loss(x, net(x, tile), separator, float(self.lam), tile)
                    loss.backward()
                    total += float(loss.detach())
                opt.step()
                report(total)
            with torch.no_grad():
                for tile in tiles:
                    x = inputs(tile)
                    err = ((x - net(x, tile)[0]) ** 2).sum(dim=1)[0]
                    core = tile.core_in_window
                    dm[tile.core] = err[core]
            self.round_scores_.append(dm.cpu().numpy().astype(np.float64))
            lo, hi = dm.min(), dm.max()
            separator = (dm - lo) / (hi - lo) if hi > lo else torch.zeros_like(dm)
        return self.round_scores_[-1]
