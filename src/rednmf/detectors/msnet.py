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
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from rednmf.detectors._base import at_least, positive
from rednmf.detectors._deep import DeepDetector, import_torch

__all__ = ["MSNet", "build_msnet", "msnet_loss", "opbs", "zscore_bands"]

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


def opbs(pixels: np.ndarray, k: int) -> np.ndarray:
    r"""Orthogonal-projection band selection (OPBS).

    The first band is the one of largest variance; each next band is the one
    whose residual after projecting out the bands already chosen has the largest
    Euclidean norm (greedy Gram-Schmidt on the uncentred band vectors, as in
    the reference code).

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
    y = np.array(pixels, dtype=np.float64)  # residual band vectors, updated in place
    bands = y.shape[1]
    chosen = [int(np.argmax(y.var(axis=0)))]
    free = np.ones(bands, dtype=bool)
    free[chosen[0]] = False
    for _ in range(1, k):
        q = y[:, chosen[-1]]
        qq = float(q @ q)
        if qq > 0.0:
            y[:, free] -= np.outer(q, (q @ y[:, free]) / qq)
        norms = np.einsum("ij,ij->j", y, y)
        norms[~free] = -np.inf
        nxt = int(np.argmax(norms))
        chosen.append(nxt)
        free[nxt] = False
    return np.sort(np.asarray(chosen, dtype=np.intp))


def zscore_bands(cube: np.ndarray) -> np.ndarray:
    """Each band to zero mean and unit (population) standard deviation; constant bands to 0."""
    mean = cube.mean(axis=(0, 1), dtype=np.float64)
    std = cube.std(axis=(0, 1), dtype=np.float64)
    std[std == 0.0] = 1.0
    return ((cube - mean) / std).astype(np.float32)


def build_msnet(bands: int, shape: tuple[int, int], n_layers: int = 3, hidden: int = 16) -> Any:
    """The MSNet network for ``bands`` channels on a ``shape = (rows, cols)`` image.

    The module maps a ``(1, bands, rows, cols)`` tensor to the list of the
    ``n_layers`` decoder outputs, each ``(1, bands, rows, cols)``; element 0
    is the reconstruction. Parameters: ``n_layers * (3 b^2 + (18 h + 4) b + h)``
    with ``b = bands`` and ``h = hidden``.
    """
    torch = import_torch()
    nn, functional = torch.nn, torch.nn.functional
    rows, cols = shape

    def upsample(t: Any) -> Any:
        return functional.interpolate(t, size=(rows, cols), mode="bilinear")

    class Encoder(nn.Module):
        def __init__(self, rate: int) -> None:
            super().__init__()
            self.bottleneck = nn.Sequential(
                nn.Conv2d(bands, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, bands, 3, padding=1),
            )
            self.pool = nn.AvgPool2d(rate)
            self.side = nn.Conv2d(bands, bands, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            out = self.pool(torch.relu(self.bottleneck(x) + x))
            return out, self.side(upsample(out))

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.Conv2d(bands, bands, 1)
            self.mix = nn.Conv2d(bands, bands, 1)

        def forward(self, encoded: Any, coarser: Any) -> Any:
            return self.mix(torch.relu(self.up(upsample(encoded))) + coarser)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoders = nn.ModuleList(Encoder(2**level) for level in range(n_layers))
            self.decoders = nn.ModuleList(Decoder() for _ in range(n_layers))

        def forward(self, x: Any) -> list[Any]:
            encoded = []
            total = x
            for enc in self.encoders:
                out, side = enc(total)
                encoded.append(out)
                total = total + side
            decoded: list[Any] = [None] * n_layers
            coarser = torch.zeros_like(x)
            for level in range(n_layers - 1, -1, -1):
                decoded[level] = self.decoders[level](encoded[level], coarser)
                coarser = coarser + decoded[level]
            return decoded

    return Net()


def msnet_loss(x: Any, outputs: list[Any], separator: Any, lam: float) -> Any:
    """The enhanced separation training loss (module docstring) of one forward pass.

    ``x`` and each output are ``(1, bands, rows, cols)``; ``separator`` is
    ``(rows, cols)`` in [0, 1], 1 = anomaly.
    """
    torch = import_torch()
    functional = torch.nn.functional
    bands, rows, cols = x.shape[1:]
    y = outputs[0]
    m = separator[None, None]
    background = 1.0 - m
    br = ((background * (x - y)) ** 2).sum() / background.sum()
    kernel = torch.as_tensor(LOG_TEMPLATE, dtype=y.dtype, device=y.device).expand(bands, 1, 5, 5)
    padded = functional.pad(y, (2, 2, 2, 2), mode="reflect")
    log_y = functional.conv2d(padded, kernel, groups=bands)
    suppress = ((m * log_y) ** 2).sum() / (m.sum() + _EPS)
    multiscale = 0.0
    for level, out in enumerate(outputs):
        size = (rows // 2**level, cols // 2**level)
        xd = functional.interpolate(x, size=size, mode="bilinear")
        od = functional.interpolate(out, size=size, mode="bilinear")
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
        self.bands_selected_ = opbs(cube.reshape(-1, bands), k)
        data = zscore_bands(cube[:, :, self.bands_selected_])
        x = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))[None].to(device)
        net = build_msnet(k, (rows, cols), int(self.n_layers), int(self.hidden)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        separator = torch.zeros((rows, cols), device=device)
        self.round_scores_: list[np.ndarray] = []
        for _ in range(int(self.rounds)):
            for _ in range(int(self.epochs)):
                opt.zero_grad()
                loss = msnet_loss(x, net(x), separator, float(self.lam))
                loss.backward()
                opt.step()
                report(float(loss.detach()))
            with torch.no_grad():
                dm = ((x - net(x)[0]) ** 2).sum(dim=1)[0]
            self.round_scores_.append(dm.cpu().numpy().astype(np.float64))
            lo, hi = dm.min(), dm.max()
            separator = (dm - lo) / (hi - lo) if hi > lo else torch.zeros_like(dm)
        return self.round_scores_[-1]
